#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `kilt recipe check|render`: exit codes (0 ok, 1 error, 2 usage), messages with file:line:col,
# Docker's entrypoint/command rule, --set, --env order, and YAML output that reads back as the
# same plan as the JSON output.
set -uo pipefail
KILT=${KILT:?path of the kilt binary}
SRC=${KILT_SOURCE_DIR:?source tree}
R=$SRC/deploy/recipes
tmp=$(mktemp -d /tmp/kilt-cli-recipe.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0

# expect CODE DESCRIPTION -- command...: runs it, keeps stdout/stderr in $tmp/out, $tmp/err.
expect() {
  local want=$1 what=$2
  shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" -ne "$want" ]; then
    echo "FAIL: $what: exit $got, want $want"; sed 's/^/  err: /' "$tmp/err" | head -5
    fails=$((fails + 1))
  else
    echo "ok: $what"
  fi
}
# grep_in FILE PATTERN DESCRIPTION
grep_in() {
  if grep -qE -- "$2" "$tmp/$1"; then echo "ok:   $3"; else
    echo "FAIL: $3: '$2' not in $1:"; sed 's/^/  | /' "$tmp/$1" | head -10; fails=$((fails + 1)); fi
}

NGINX=(--image docker.io/library/nginx:1.27 --name web --entrypoint '["/docker-entrypoint.sh"]'
       --command '["nginx","-g","daemon off;"]' --set agent_image=registry.example/kilt/falco:0.32.2)
AI=(--set agent_image=registry.example/kilt/falco:0.32.2)

# --- help and usage
expect 0 "recipe --help" -- "$KILT" recipe --help
grep_in out "kilt recipe check" "recipe help names check"
expect 0 "check --help" -- "$KILT" recipe check --help
expect 0 "render --help" -- "$KILT" recipe render --help
grep_in out -- "--entrypoint JSON" "render help lists --entrypoint"
expect 2 "recipe without subcommand" -- "$KILT" recipe
expect 2 "unknown subcommand" -- "$KILT" recipe frobnicate
expect 2 "check without files" -- "$KILT" recipe check
expect 2 "check bad option" -- "$KILT" recipe check --bogus x
expect 2 "render without --image" -- "$KILT" recipe render "$R/falco.kilt.conf"
expect 2 "render without file" -- "$KILT" recipe render --image x
expect 2 "render bad --entrypoint" -- "$KILT" recipe render "$R/falco.kilt.conf" --image x --entrypoint '/bin/sh'
grep_in err "JSON array of strings" "bad --entrypoint explained"
expect 2 "render bad --output" -- "$KILT" recipe render "$R/falco.kilt.conf" "${NGINX[@]}" --output xml
expect 2 "render bad --set" -- "$KILT" recipe render "$R/falco.kilt.conf" "${NGINX[@]}" --set novalue
expect 2 "render bad --env" -- "$KILT" recipe render "$R/falco.kilt.conf" "${NGINX[@]}" --env =x
# Invalid UTF-8 used to be dropped silently (--env, --metadata) or, in a dotted --set key, to
# free the object being built and then write into it.
expect 2 "render --set with invalid UTF-8 key" -- "$KILT" recipe render "$R/falco.kilt.conf" "${NGINX[@]}" --set $'\xff.b=c'
grep_in err "not valid UTF-8" "--set invalid UTF-8 explained"
expect 2 "render --set with invalid UTF-8 value" -- "$KILT" recipe render "$R/falco.kilt.conf" "${NGINX[@]}" --set $'a.b=\xff'
expect 2 "render --env with invalid UTF-8 value" -- "$KILT" recipe render "$R/falco.kilt.conf" "${NGINX[@]}" --env $'A=\xff'
grep_in err "not valid UTF-8" "--env invalid UTF-8 explained"
expect 2 "render --metadata with invalid UTF-8 key" -- "$KILT" recipe render "$R/falco.kilt.conf" "${NGINX[@]}" --metadata $'\xff=1'

# --- check
expect 0 "check shipped recipes" -- "$KILT" recipe check "$R/falco.kilt.conf" "$R/falco.original-syntax.conf"
grep_in out "falco.kilt.conf: ok \(recipe falco, sha256 [0-9a-f]{64}\)" "check reports name and hash"
# deploy/recipes/ holds only recipes that check clean.
expect 0 "every recipe in deploy/recipes checks clean" -- "$KILT" recipe check "$R"/*.conf
# The seed's example is illustration (docs/examples/): docs/recipe.md shows exactly its errors.
expect 1 "check seed example (URL without sha256, placeholder payload)" -- sh -c 'cd "$1" && "$2" recipe check docs/examples/seed-example.kilt.conf' sh "$SRC" "$KILT"
grep_in err "seed-example.kilt.conf:7:15: patch.upload\[0\]: a URL upload needs sha256" "seed: located sha256 error"
grep_in err "seed-example.kilt.conf:9:26: patch.upload\[2\].payload: the payload is not valid base64 \(for the file's content as literal text, write text" "seed: second error names the text field"
if python3 - "$SRC/docs/recipe.md" "$tmp/err" <<'PY'; then echo "ok:   docs/recipe.md shows the seed's errors as kilt prints them"; else echo "FAIL: docs/recipe.md seed errors differ from kilt's"; fails=$((fails + 1)); fi
import sys
doc = open(sys.argv[1]).read()
got = open(sys.argv[2]).read().strip()
sys.exit(0 if "```\n" + got + "\n```" in doc and len(got.splitlines()) == 2 else 1)
PY
cat >"$tmp/bad.conf" <<'CONF'
deploy {
  entrypiont: [ /x ]
  mount: [ { volume: /v } ]
}
CONF
expect 1 "check a bad recipe among good ones" -- "$KILT" recipe check "$R/falco.kilt.conf" "$tmp/bad.conf"
grep_in err "bad.conf:2:15: deploy.entrypiont: unknown key 'entrypiont' in deploy \(did you mean 'entrypoint'\?\)" "did-you-mean"
grep_in err "bad.conf:3:12: deploy.mount\[0\]: image is missing" "every error, not just the first"
grep_in out "falco.kilt.conf: ok" "the good file is still reported"
expect 1 "check a missing file" -- "$KILT" recipe check "$tmp/nope.conf"
grep_in err "nope.conf: cannot read" "missing file named"
printf 'deploy { entrypoint: [ /a\n' >"$tmp/syntax.conf"
expect 1 "check a syntax error" -- "$KILT" recipe check "$tmp/syntax.conf"
grep_in err "syntax.conf:2:1: " "syntax error located"

# --- render
expect 0 "render the demo" -- "$KILT" recipe render "$R/falco.kilt.conf" "${NGINX[@]}"
cp "$tmp/out" "$tmp/demo.json"
grep_in out '"/kilt/bin/kilt-launch"' "launcher in entrypoint"
grep_in out '"daemon off;"' "original command kept"
grep_in out '"SYS_PTRACE"' "capability"
expect 0 "render yaml" -- "$KILT" recipe render "$R/falco.kilt.conf" "${NGINX[@]}" --output yaml
cp "$tmp/out" "$tmp/demo.yaml"
grep_in out "^entrypoint:$" "yaml block style"
grep_in out "^  - /kilt/bin/kilt-launch$" "yaml: the library emitter (sequences indented under their key)"
if /usr/bin/python3 -c 'import yaml' 2>/dev/null; then
  if /usr/bin/python3 - "$tmp/demo.json" "$tmp/demo.yaml" <<'PY'
import json, sys, yaml
j = json.load(open(sys.argv[1])); y = yaml.safe_load(open(sys.argv[2]))
sys.exit(0 if j == y else 1)
PY
  then echo "ok:   yaml reads back as the json plan"; else echo "FAIL: yaml differs from json"; fails=$((fails + 1)); fi
else
  echo "SKIP: python3-yaml is not installed, cannot read the YAML back (tests/infra/install-deps.sh installs it)"
fi

# No made-up default image: the recipe needs config.agent_image and says how to make one.
expect 1 "render without agent_image" -- "$KILT" recipe render "$R/falco.kilt.conf" --image nginx --name web --entrypoint '["/e"]'
grep_in err "recipe falco needs config.agent_image, which was not given: .*build-agent-image.sh --falco" "missing agent_image explained"
expect 1 "render with a misspelled --set" -- "$KILT" recipe render "$R/falco.kilt.conf" --image nginx --name web --entrypoint '["/e"]' --set agent_imag=r/x:1
grep_in err "config.agent_imag is not a parameter of recipe falco \(did you mean 'agent_image'\?\); its parameters are: agent_image, on_timeout, wait_timeout" "misspelled key: did you mean, and the list"
expect 1 "render without entrypoint names the flag" -- "$KILT" recipe render "$R/falco.kilt.conf" --image nginx --name web "${AI[@]}"
grep_in err "original.entrypoint is not known for container web" "unknown entrypoint named"
grep_in err "pass --entrypoint JSON" "flag to pass"
# Docker's rule: --entrypoint alone means an empty command.
expect 0 "render with --entrypoint only" -- "$KILT" recipe render "$R/falco.kilt.conf" --image nginx --name web --entrypoint '["/bin/app","x"]' "${AI[@]}"
/usr/bin/python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); sys.exit(0 if p["entrypoint"][-3:]==["--","/bin/app","x"] and p["command"]==[] else 1)' "$tmp/out" \
  && echo "ok:   entrypoint-only gives an empty original command" || { echo "FAIL: Docker rule"; fails=$((fails + 1)); }
expect 1 "render with --command only (entrypoint unknown)" -- "$KILT" recipe render "$R/falco.kilt.conf" --image nginx --command '["x"]' "${AI[@]}"
grep_in err "original.entrypoint is not known" "command-only still needs the entrypoint"
expect 1 "render on arm64" -- "$KILT" recipe render "$R/falco.kilt.conf" "${NGINX[@]}" --platform linux/arm64
grep_in err "does not support platform linux/arm64" "platform refused"
expect 0 "render --set" -- "$KILT" recipe render "$R/falco.kilt.conf" "${NGINX[@]}" --set wait_timeout=90 --set on_timeout=exit
grep_in out '"registry.example/kilt/falco:0.32.2"' "config.agent_image used"
grep_in out '"--wait-timeout",\s*$' "wait timeout passed"
grep_in out '^\s*"90",' "config.wait_timeout used"
grep_in out '^\s*"exit",' "config.on_timeout used"
cat >"$tmp/env.conf" <<'CONF'
deploy { environment { B: recipe, NEW: "x"${config.a.b} } }
CONF
expect 0 "render --env order and dotted --set" -- "$KILT" recipe render "$tmp/env.conf" --image i --entrypoint '[]' --env C=c --env B=b --set a.b=Y -o json
/usr/bin/python3 - "$tmp/out" <<'PY' && echo "ok:   env order" || { echo "FAIL: env order"; fails=$((fails + 1)); }
import json, sys
p = json.load(open(sys.argv[1]))
sys.exit(0 if p["environment"] == [{"name": "C", "value": "c"}, {"name": "B", "value": "recipe"}, {"name": "NEW", "value": "xY"}] else 1)
PY
expect 1 "render a bad recipe" -- "$KILT" recipe render "$tmp/bad.conf" --image i
grep_in err "^kilt: .*bad.conf:2:15: " "render reports the load error"

# Rendering is deterministic.
"$KILT" recipe render "$R/falco.kilt.conf" "${NGINX[@]}" >"$tmp/again.json"
cmp -s "$tmp/demo.json" "$tmp/again.json" && echo "ok:   deterministic" || { echo "FAIL: output differs between runs"; fails=$((fails + 1)); }

if [ "$fails" -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
echo "all recipe CLI checks passed"
