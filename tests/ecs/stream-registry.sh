#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Image lookups on the streaming path for CloudFormation JSON (lib/cfn-stream.c) against a real
# registry (tests/registry/lib.sh): the same output, messages and registry requests as the
# whole-document path, images repeated across task definitions looked up once, and lookups of
# different task definitions still run together (one time budget for three stalled images).
source "$(dirname "$0")/../registry/lib.sh"

make_ca
start_registry anon ""
push_images kilt both ep
cat >"$WORK/recipe.conf" <<'EOR'
deploy {
    entrypoint: [ /agent/run, "--" ] ${original.entrypoint}
    command: ${original.command}
    mount: [ { image: "agent:1", volume: /agent, entrypoint: [ /agent/wait ] } ]
}
EOR
# template PREFIX IMAGE... : one Fargate task definition per image, a log group in between
template() {
  python3 - "$@" <<'EOP'
import json, sys
prefix, images = sys.argv[1], sys.argv[2:]
res = {"Logs": {"Type": "AWS::Logs::LogGroup"}}
for i, image in enumerate(images):
    res["Task%d" % i] = {"Type": "AWS::ECS::TaskDefinition", "Properties": {
        "RequiresCompatibilities": ["FARGATE"], "Cpu": "256", "Memory": "512",
        "ContainerDefinitions": [{"Name": "web", "Image": prefix + "/" + image,
                                  "Essential": True}]}}
print(json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": res}))
EOP
}
K=("$KILT" inject -r "$WORK/recipe.conf" --ca-file "$CA")

template "$REG/kilt" both:1 ep:1 both:1 >"$WORK/cfn.json"
before=$(requests_to_v2)
"${K[@]}" --json-path whole -e "$WORK/cfn.json" >"$WORK/whole.out" 2>"$WORK/whole.err"
mid=$(requests_to_v2)
"${K[@]}" --json-path stream -e "$WORK/cfn.json" >"$WORK/stream.out" 2>"$WORK/stream.err"
after=$(requests_to_v2)
expect_eq "streamed output equals the whole document's" "$(cmp -s "$WORK/whole.out" "$WORK/stream.out" && echo same)" same
expect_eq "streamed messages equal the whole document's" "$(cmp -s "$WORK/whole.err" "$WORK/stream.err" && echo same)" same
expect_eq "whole document: two images, two manifests + two configs" "$((mid - before))" 4
expect_eq "streamed: the same requests (the repeated image is cached)" "$((after - mid))" 4
expect_contains "the image's ENTRYPOINT reached the template" "$(cat "$WORK/stream.out")" '"/init"'

template "$REG/kilt" both:nope >"$WORK/missing.json"
rc_w=0 rc_s=0
"${K[@]}" --json-path whole "$WORK/missing.json" >/dev/null 2>"$WORK/mw.err" || rc_w=$?
"${K[@]}" --json-path stream "$WORK/missing.json" >/dev/null 2>"$WORK/ms.err" || rc_s=$?
expect_eq "unresolvable image: both fail" "$rc_w/$rc_s" "1/1"
expect_eq "unresolvable image: the same message" "$(cat "$WORK/ms.err")" "$(cat "$WORK/mw.err")"
expect_contains "and it is the registry's" "$(cat "$WORK/ms.err")" "MANIFEST_UNKNOWN"

# Three task definitions whose images stall: the batch prefetch looks them up together.
start_stall
template "$STALL" app0:1 app1:1 app2:1 >"$WORK/stalled.json"
t0=$(date +%s%3N)
"${K[@]}" --json-path stream --image-timeout 1500 --fail-open -e "$WORK/stalled.json" \
  >"$WORK/slow.out" 2>"$WORK/slow"
t1=$(date +%s%3N)
expect_eq "three stalled images: three warnings" "$(grep -c 'timed out (time budget 1500 ms)' "$WORK/slow")" 3
if [ $((t1 - t0)) -lt 3500 ]; then pass "one budget for three lookups ($((t1 - t0)) ms)"; else fail "three stalled lookups took $((t1 - t0)) ms"; fi
"${K[@]}" --json-path whole --image-timeout 1500 --fail-open -e "$WORK/stalled.json" \
  >"$WORK/slow-whole.out" 2>"$WORK/slow-whole"
expect_eq "stalled: the same output as the whole document" "$(cmp -s "$WORK/slow.out" "$WORK/slow-whole.out" && echo same)" same
# curl words a timeout in its own way each time ("after 1501 milliseconds"): compare the rest
norm() { sed 's/(time budget 1500 ms): [^(]*(/(time budget 1500 ms): ... (/' "$1"; }
expect_eq "stalled: the same messages" "$(norm "$WORK/slow")" "$(norm "$WORK/slow-whole")"

finish
