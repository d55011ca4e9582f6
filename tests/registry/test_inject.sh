#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `kilt inject` with image facts from a real registry: containers that state neither entryPoint
# nor command get both from the image; a container with only a command keeps it and gets the
# image's ENTRYPOINT (Docker's rule: the image CMD is dropped); repeated images are looked up once;
# failures are loud (or skipped under --fail-open); --no-image-lookup turns lookups off.
source "$(dirname "$0")/lib.sh"

make_ca
start_registry anon ""
push_images kilt both ep neither
cat >"$WORK/recipe.conf" <<'EOR'
deploy {
    entrypoint: [ /agent/run, "--" ] ${original.entrypoint}
    command: ${original.command}
    mount: [ { image: "agent:1", volume: /agent, entrypoint: [ /agent/wait ] } ]
}
EOR
task() { # task NAME|IMAGE[|COMMAND-JSON] ...
  python3 - "$REG" "$@" <<'EOP'
import json, sys
reg, specs = sys.argv[1], sys.argv[2:]
defs = []
for s in specs:
    name, image, *cmd = s.split("|")
    d = {"name": name, "image": reg + "/kilt/" + image, "essential": name == "web"}
    if cmd: d["command"] = json.loads(cmd[0])
    defs.append(d)
print(json.dumps({"family": "app", "requiresCompatibilities": ["FARGATE"],
                  "networkMode": "awsvpc", "cpu": "256", "memory": "512",
                  "containerDefinitions": defs}))
EOP
}
argv_of() { # argv_of JSON NAME
  jget "$1" "[[c.get('entryPoint'), c.get('command')] for c in d['containerDefinitions'] if c['name']=='$2'][0]"
}
K=("$KILT" inject -r "$WORK/recipe.conf" --ca-file "$CA")

task 'web|both:1' 'side|both:1|["x"]' 'other|ep:1' >"$WORK/td.json"
before=$(requests_to_v2)
out=$("${K[@]}" "$WORK/td.json")
after=$(requests_to_v2)
expect_eq "neither set: both from the image" "$(argv_of "$out" web)" '[["/agent/run","--","/init"],["serve"]]'
expect_eq "command set: image CMD dropped, ENTRYPOINT kept" "$(argv_of "$out" side)" '[["/agent/run","--","/init"],["x"]]'
expect_eq "entrypoint-only image (empty command omitted)" "$(argv_of "$out" other)" '[["/agent/run","--","/bin/app","--flag"],null]'
expect_eq "two images, two manifests + two configs (the repeated one is cached)" "$((after - before))" 4

task 'web|neither:1' >"$WORK/neither.json"
rc=0
err=$("${K[@]}" "$WORK/neither.json" 2>&1 >/dev/null) || rc=$?
expect_eq "image with neither ENTRYPOINT nor CMD fails" "$rc" 1
expect_contains "and says why" "$err" "sets neither ENTRYPOINT nor CMD"

task 'web|both:nope' >"$WORK/missing.json"
err=$("${K[@]}" "$WORK/missing.json" 2>&1 >/dev/null) || true
expect_contains "unresolvable image: the registry's reason" "$err" "manifest nope: not found (HTTP 404 from $REG): MANIFEST_UNKNOWN"
out=$("${K[@]}" --fail-open -e "$WORK/missing.json" 2>"$WORK/warn")
expect_eq "--fail-open leaves the container alone" "$(argv_of "$out" web)" '[null,null]'
expect_contains "--fail-open warns with the reason" "$(cat "$WORK/warn")" "MANIFEST_UNKNOWN"

err=$("$KILT" inject -r "$WORK/recipe.conf" "$WORK/td.json" 2>&1 >/dev/null) || true
expect_contains "TLS failure is reported" "$err" "SSL certificate problem"
before=$(requests_to_v2)
rc=0
err=$("${K[@]}" --no-image-lookup "$WORK/td.json" 2>&1 >/dev/null) || rc=$?
after=$(requests_to_v2)
expect_eq "--no-image-lookup: no request" "$((after - before))" 0
expect_contains "--no-image-lookup: says how to fix" "$err" "cannot be looked up offline"

# Lookups for a document run concurrently: three containers whose registry stalls cost one
# time budget, not three (and the engine's own calls then find the failures cached).
start_stall
python3 - "$STALL" >"$WORK/stalled.json" <<'EOP'
import json, sys
defs = [{"name": "c%d" % i, "image": "%s/app%d:1" % (sys.argv[1], i), "essential": i == 0}
        for i in range(3)]
print(json.dumps({"family": "slow", "requiresCompatibilities": ["FARGATE"],
                  "networkMode": "awsvpc", "cpu": "256", "memory": "512",
                  "containerDefinitions": defs}))
EOP
t0=$(date +%s%3N)
"${K[@]}" --image-timeout 1500 --fail-open -e "$WORK/stalled.json" >/dev/null 2>"$WORK/slow"
t1=$(date +%s%3N)
expect_eq "three stalled images: three warnings" "$(grep -c 'timed out (time budget 1500 ms)' "$WORK/slow")" 3
if [ $((t1 - t0)) -lt 3500 ]; then pass "one budget for three lookups ($((t1 - t0)) ms)"; else fail "three stalled lookups took $((t1 - t0)) ms"; fi

finish
