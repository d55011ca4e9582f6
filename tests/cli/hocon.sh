#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `kilt hocon`: a file, standard input, --compact, located errors (exit 1) and usage errors
# (exit 2), with the built binary ($KILT).
set -euo pipefail
: "${KILT:?set KILT to the kilt binary}"
KILT=$(realpath "$KILT")
tmp=$(mktemp -d /tmp/kilt-cli-hocon-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
check() { # name, condition
  if eval "$2"; then pass=$((pass + 1)); echo "ok   $1"; else fail=$((fail + 1)); echo "FAIL $1"; fi
}

mkdir -p "$tmp/sub"
cat >"$tmp/main.conf" <<'CONF'
# a comment
name = world
greeting = hello ${name}
list = [1, 2] [3]
include "sub/part.conf"
CONF
echo 'part { x = true }' >"$tmp/sub/part.conf"

out=$("$KILT" hocon "$tmp/main.conf")
check "file: pretty output" '[ "$(printf "%s" "$out" | head -n1)" = "{" ]'
check "file: values" 'printf "%s" "$out" | grep -q "\"greeting\": \"hello world\""'
check "file: include relative to the file" 'printf "%s" "$out" | grep -q "\"x\": true"'

out=$("$KILT" hocon --compact "$tmp/main.conf")
check "--compact: one line" '[ "$out" = "{\"name\":\"world\",\"greeting\":\"hello world\",\"list\":[1,2,3],\"part\":{\"x\":true}}" ]'
out=$("$KILT" hocon -c "$tmp/main.conf")
check "-c: one line" '[ "$(printf "%s\n" "$out" | wc -l)" -eq 1 ]'

out=$(printf 'a = 1\nb = ${a} two\n' | "$KILT" hocon --compact -)
check "stdin" '[ "$out" = "{\"a\":1,\"b\":\"1 two\"}" ]'
out=$(cd "$tmp" && printf 'include "sub/part.conf"\n' | "$KILT" hocon -c -)
check "stdin: includes relative to the current directory" '[ "$out" = "{\"part\":{\"x\":true}}" ]'

set +e
err=$(printf 'a = 1\nb = [1,\n' | "$KILT" hocon - 2>&1 >/dev/null); rc=$?
check "syntax error: exit 1" '[ $rc -eq 1 ]'
check "syntax error: located" '[ "$err" = "kilt: <stdin>:3:1: expected '"'"']'"'"' to close the array opened at 2:5, found end of input" ]'

printf 'x = ${nope}\n' >"$tmp/bad.conf"
err=$("$KILT" hocon "$tmp/bad.conf" 2>&1 >/dev/null); rc=$?
check "unresolved: exit 1" '[ $rc -eq 1 ]'
check "unresolved: names file, place and path" '[ "$err" = "kilt: $tmp/bad.conf:1:5: unresolved substitution \${nope}: nope is not set in the document" ]'

HOME_SECRET=leak err=$(printf 'x = ${HOME_SECRET}\n' | HOME_SECRET=leak "$KILT" hocon - 2>&1 >/dev/null); rc=$?
check "no environment fallback" '[ $rc -eq 1 ] && ! printf "%s" "$err" | grep -q leak'

err=$("$KILT" hocon "$tmp/does-not-exist.conf" 2>&1 >/dev/null); rc=$?
check "missing file: exit 1 with the OS reason" '[ $rc -eq 1 ] && printf "%s" "$err" | grep -q "No such file or directory"'

# A read error on standard input (here: it is a directory) used to print {} as if it were empty.
err=$("$KILT" hocon - <"$tmp" 2>&1 >/dev/null); rc=$?
check "stdin read error: exit 1 with the OS reason" '[ $rc -eq 1 ] && printf "%s" "$err" | grep -q "<stdin>: cannot read: Is a directory"'

"$KILT" hocon >/dev/null 2>&1; rc=$?
check "no argument: exit 2" '[ $rc -eq 2 ]'
"$KILT" hocon a b >/dev/null 2>&1; rc=$?
check "two arguments: exit 2" '[ $rc -eq 2 ]'
"$KILT" hocon --bogus "$tmp/main.conf" >/dev/null 2>&1; rc=$?
check "unknown option: exit 2" '[ $rc -eq 2 ]'
out=$("$KILT" hocon --help); rc=$?
check "--help: exit 0 and usage" '[ $rc -eq 0 ] && printf "%s" "$out" | grep -q "Usage: kilt hocon"'
set -e

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
