#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `kilt inject` file handling: stdin/stdout, --output-file and -i write atomically and leave nothing behind on
# failure, usage errors exit 2, bad input exits 1 with a located message, the built-in recipe works
# without -r, and --explain/--remove behave.
set -euo pipefail
: "${KILT:?KILT must name the kilt binary}"
src=${KILT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kilt-ecs-cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
recipe=$src/tests/ecs/recipes/falco.conf
case_in=$src/tests/golden/ecs/cfn-basic/input.json
case_want=$src/tests/golden/ecs/cfn-basic/want.json
fail() { echo "FAIL: $*" >&2; exit 1; }

# stdin -> stdout equals the golden output
"$KILT" inject -r "$recipe" - <"$case_in" >"$tmp/out.json" 2>/dev/null
cmp -s "$tmp/out.json" "$case_want" || fail "stdin output differs from the golden file"

# a JSON template that starts with a UTF-8 byte order mark (as some editors write) is read as JSON
{ printf '\xef\xbb\xbf'; cat "$case_in"; } >"$tmp/bom.json"
"$KILT" inject -r "$recipe" "$tmp/bom.json" >"$tmp/bom-out.json" 2>"$tmp/bom-err" ||
  fail "a byte order mark before JSON: $(cat "$tmp/bom-err")"
cmp -s "$tmp/bom-out.json" "$case_want" || fail "a byte order mark changed the output"
rm -f "$tmp/bom.json" "$tmp/bom-out.json" "$tmp/bom-err"

# -o writes the same bytes, with no temporary file left
"$KILT" inject -r "$recipe" "$case_in" --output-file "$tmp/o.json" 2>/dev/null
cmp -s "$tmp/o.json" "$case_want" || fail "-o output differs"
[ "$(ls "$tmp" | grep -c kilt-)" -eq 0 ] || fail "temporary file left behind"
# a new -o file gets 0666 less the umask, like any file a command creates
(umask 027 && "$KILT" inject -r "$recipe" "$case_in" --output-file "$tmp/umask.json" 2>/dev/null)
[ "$(stat -c %a "$tmp/umask.json")" = 640 ] || fail "-o ignored the umask: $(stat -c %a "$tmp/umask.json")"
(umask 022 && "$KILT" inject -r "$recipe" "$case_in" --output-file "$tmp/umask2.json" 2>/dev/null)
[ "$(stat -c %a "$tmp/umask2.json")" = 644 ] || fail "-o with umask 022: $(stat -c %a "$tmp/umask2.json")"
rm -f "$tmp/umask.json" "$tmp/umask2.json"

# -i rewrites in place and keeps the file's mode
cp "$case_in" "$tmp/inplace.json"
chmod 0640 "$tmp/inplace.json"
"$KILT" inject -r "$recipe" -i "$tmp/inplace.json" 2>/dev/null
cmp -s "$tmp/inplace.json" "$case_want" || fail "-i output differs"
[ "$(stat -c %a "$tmp/inplace.json")" = 640 ] || fail "-i changed the file mode"

# a failure leaves an existing output untouched and writes nothing to stdout
echo '{"Resources": {]}' >"$tmp/bad.json"
echo keep >"$tmp/existing.json"
set +e
"$KILT" inject -r "$recipe" "$tmp/bad.json" --output-file "$tmp/existing.json" >"$tmp/stdout" 2>"$tmp/stderr"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "bad input: exit $rc, want 1"
[ "$(cat "$tmp/existing.json")" = keep ] || fail "bad input clobbered the output file"
[ ! -s "$tmp/stdout" ] || fail "bad input wrote to stdout"
grep -q "bad.json:1:" "$tmp/stderr" || fail "error not located: $(cat "$tmp/stderr")"

# -i on a file whose injection fails leaves it byte for byte
cp "$src/tests/golden/ecs/cfn-command-only-error/input.json" "$tmp/fails.json"
cp "$tmp/fails.json" "$tmp/fails.orig"
set +e
"$KILT" inject -r "$recipe" --no-image-lookup -i "$tmp/fails.json" 2>"$tmp/stderr"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "failing -i: exit $rc"
cmp -s "$tmp/fails.json" "$tmp/fails.orig" || fail "failing -i modified the file"
grep -q "Task: container app" "$tmp/stderr" || fail "error does not name resource and container"

# an unwritable destination is an error, not a partial file
set +e
"$KILT" inject -r "$recipe" "$case_in" --output-file "$tmp/no/such/dir/out.json" 2>"$tmp/stderr"
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "unwritable -o: exit $rc"

# usage errors exit 2
for args in "--mode sideways" "-i -" "--format nope" "-o a -i b" "--output-file a -i b" "--param novalue"; do
  set +e
  # shellcheck disable=SC2086
  "$KILT" inject -r "$recipe" $args "$case_in" >/dev/null 2>&1
  rc=$?
  set -e
  [ "$rc" -eq 2 ] || fail "usage '$args': exit $rc, want 2"
done
set +e
"$KILT" inject -r "$recipe" --sidecar-credentials '' "$case_in" >"$tmp/stdout" 2>"$tmp/stderr"
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "--sidecar-credentials '': exit $rc, want 2"
grep -q -- "--sidecar-credentials needs" "$tmp/stderr" || fail "--sidecar-credentials '': $(cat "$tmp/stderr")"
"$KILT" inject --help >"$tmp/help"  # not piped into grep -q: under pipefail kilt could die of SIGPIPE
grep -q -- "--explain" "$tmp/help" || fail "--help lacks --explain"

# --explain names every task and container with a reason
"$KILT" inject -r "$recipe" --explain "$src/tests/golden/ecs/cfn-tag-include-containers/input.json" \
  >/dev/null 2>"$tmp/explain"
for want in "Task: patched:" "Task / app: patched:" "Task / worker: patched:" \
  "Task / db: skipped: not listed in the kilt-include-containers tag"; do
  grep -qF "$want" "$tmp/explain" || fail "--explain lacks '$want': $(cat "$tmp/explain")"
done

# --remove undoes an injection (semantically equal to the input)
"$KILT" inject --remove "$case_want" >"$tmp/removed.json" 2>/dev/null
python3 - "$case_in" "$tmp/removed.json" <<'PY' || fail "--remove did not restore the input"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
sys.exit(0 if a == b else 1)
PY

# the built-in recipe needs no file, but an agent image: no made-up default
if "$KILT" inject "$case_in" --set agent_image=registry.example/kilt/falco:0.32.2 >"$tmp/builtin.json" 2>"$tmp/builtin.err"; then
  grep -q '"kilt.recipe": "falco"' "$tmp/builtin.json" || fail "built-in recipe not applied"
  grep -q '"registry.example/kilt/falco:0.32.2"' "$tmp/builtin.json" || fail "built-in recipe: agent image not used"
else
  fail "the built-in recipe failed: $(cat "$tmp/builtin.err")"
fi
if "$KILT" inject "$case_in" >"$tmp/builtin.json" 2>"$tmp/builtin.err"; then
  fail "the built-in recipe without agent_image succeeded"
else
  grep -q "recipe falco needs config.agent_image, which was not given: .*build-agent-image.sh" "$tmp/builtin.err" ||
    fail "the missing agent image is not explained: $(cat "$tmp/builtin.err")"
fi
if "$KILT" inject "$case_in" --set agent_imag=x/y:1 >"$tmp/builtin.json" 2>"$tmp/builtin.err"; then
  fail "a misspelled --set succeeded"
else
  grep -q "config.agent_imag is not a parameter of recipe falco (did you mean 'agent_image'?)" "$tmp/builtin.err" ||
    fail "a misspelled --set is not explained: $(cat "$tmp/builtin.err")"
fi
# the Terraform external data source of docs/ecs.md: a JSON object of strings in and out
printf '%s' '{"containers":"[{\"name\":\"web\",\"image\":\"nginx\",\"entryPoint\":[\"/e\"],\"mountPoints\":[],\"secrets\":null}]"}' |
  PATH="$(dirname "$KILT"):$PATH" sh -c "jq -r .containers | $(printf '%q' "$KILT") inject -r $(printf '%q' "$recipe") --format container-definitions - 2>/dev/null | jq -c '{containers: tojson}'" \
  >"$tmp/tf.json"
python3 - "$tmp/tf.json" <<'PY' || fail "the Terraform external-program protocol is broken: $(cat "$tmp/tf.json")"
import json, sys
out = json.load(open(sys.argv[1]))
assert list(out) == ["containers"] and isinstance(out["containers"], str)
defs = json.loads(out["containers"])
def clean(v):
    if isinstance(v, dict):
        return all(x is not None and x != [] and clean(x) for x in v.values())
    if isinstance(v, list):
        return all(clean(x) for x in v)
    return True
assert clean(defs), "nulls or empty lists left"
assert [d["name"] for d in defs] == ["web", "kilt-falco"]
assert defs[0]["dockerLabels"]["kilt.recipe"] == "falco"
PY
echo "ecs cli: ok"
