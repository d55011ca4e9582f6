#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One behaviour, several doors: every CloudFormation golden case that `kilt inject` runs with
# default options goes through the CloudFormation macro (`kilt cfn-macro --event`, the same engine
# behind the Lambda runtime) too, with the case's recipe given inline. The macro's fragment must
# equal the golden output but for the recipe's name and hash labels (the macro names an inline
# recipe "inline"); a want-error case must be a `failure` reply. A case's `--param NAME=VALUE`
# arguments become the event's templateParameterValues (`--explain` changes nothing); cases with
# other arguments are the CLI's own. YAML cases go in as the JSON CloudFormation hands a macro
# (short-form tags read as their long forms, tests/ecs/cfn_yaml.py).
set -euo pipefail
: "${KILT:?KILT must name the kilt binary}"
src=${KILT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kilt-ecs-macro.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export PYTHONPATH="$src/tests/ecs${PYTHONPATH:+:$PYTHONPATH}"
n=0
for dir in "$src"/tests/golden/ecs/*/; do
  name=$(basename "$dir")
  input=$(ls "$dir"/input.json "$dir"/input.yaml 2>/dev/null | head -n1 || true)
  [ -n "$input" ] || continue
  [ -f "$dir/pre-recipe" ] && continue
  grep -q 'Resources' "$input" || continue
  # (nor a YAML document CloudFormation would refuse: an error located in the input file)
  [ -f "$dir/want-error" ] && grep -q '^input\.yaml:' "$dir/want-error" && continue
  recipe=falco
  [ -f "$dir/recipe" ] && recipe=$(tr -d '[:space:]' <"$dir/recipe")
  # (malformed JSON cannot reach the macro: CloudFormation hands it parsed templates)
  python3 - "$input" "$tmp/event.json" "$dir/args" <<'PY' || continue
import json, os, sys
import cfn_yaml
try:
    frag = cfn_yaml.load(sys.argv[1])
except ValueError:
    sys.exit(1)
values = {}
if os.path.exists(sys.argv[3]):
    args = [a for a in open(sys.argv[3]).read().split("\n") if a]
    i = 0
    while i < len(args):
        if args[i] == "--explain":
            i += 1
        elif args[i] == "--param" and i + 1 < len(args) and "=" in args[i + 1]:
            k, v = args[i + 1].split("=", 1)
            values[k] = v
            i += 2
        else:
            sys.exit(1)  # an option only the CLI has
json.dump({"region": "us-east-1", "accountId": "123456789012", "fragment": frag,
           "transformId": "123456789012::Kilt", "params": {}, "requestId": "golden",
           "templateParameterValues": values}, open(sys.argv[2], "w"))
PY
  set +e
  KILT_RECIPE=$(cat "$src/tests/ecs/recipes/$recipe.conf") \
    "$KILT" cfn-macro --event "$tmp/event.json" >"$tmp/reply.json" 2>"$tmp/log"
  set -e
  want=$(ls "$dir"/want.json "$dir"/want.yaml 2>/dev/null | head -n1 || true)
  [ -f "$dir/want-error" ] && want=error
  python3 - "$tmp/reply.json" "$want" "$name" <<'PY'
import json, sys
import cfn_yaml
reply = json.load(open(sys.argv[1]))
name = sys.argv[3]
if sys.argv[2] == "error":
    if reply.get("status") != "failure" or not reply.get("errorMessage"):
        sys.exit(f"{name}: the macro answered {reply.get('status')} where kilt inject fails")
    sys.exit(0)
if reply.get("status") != "success":
    sys.exit(f"{name}: macro failure: {reply.get('errorMessage')}")
def norm(v):
    if isinstance(v, dict):
        return {k: ("*" if k in ("kilt.recipe", "kilt.recipe-hash") else norm(x)) for k, x in v.items()}
    if isinstance(v, list):
        return [norm(x) for x in v]
    if isinstance(v, str):
        return v.replace("injected recipe inline", "injected recipe *")
    return v
want = cfn_yaml.load(sys.argv[2])
if norm(reply["fragment"]) != norm(want):
    sys.exit(f"{name}: the macro's fragment differs from the golden output")
PY
  n=$((n + 1))
done
[ "$n" -ge 20 ] || { echo "macro parity: only $n cases" >&2; exit 1; }
echo "macro parity: $n CloudFormation cases give the same result through kilt cfn-macro"
