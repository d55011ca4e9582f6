#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `kilt inject` on JSON templates goes through lib/cfn-stream.c (resource by resource) unless told
# otherwise: every golden case with JSON input, every ECS fuzz corpus input and a few crafted
# templates (errors after a failing resource, duplicate keys, atomic -o) must give the same exit
# status, the same stdout bytes, the same stderr and the same -o file through both paths
# (--json-path whole|auto), and every golden CloudFormation case that succeeds must really be
# streamed (--json-path stream refuses when it cannot).
set -euo pipefail
: "${KILT:?KILT must name the kilt binary}"
src=${KILT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kilt-stream-parity.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail=0
n_compared=0

# compare LABEL DOC ARGS...: both paths, to stdout and with -o, must agree.
compare() {
  local label=$1 doc=$2
  shift 2
  local rw=0 ra=0
  "$KILT" inject "$@" --json-path whole "$doc" >"$tmp/w.out" 2>"$tmp/w.err" || rw=$?
  "$KILT" inject "$@" --json-path auto "$doc" >"$tmp/a.out" 2>"$tmp/a.err" || ra=$?
  if [ "$rw" != "$ra" ] || ! cmp -s "$tmp/w.out" "$tmp/a.out" || ! cmp -s "$tmp/w.err" "$tmp/a.err"; then
    echo "$label: stdout paths differ (exit $rw whole, $ra streamed)" >&2
    diff -u "$tmp/w.err" "$tmp/a.err" >&2 || true
    diff -u "$tmp/w.out" "$tmp/a.out" | head -40 >&2 || true
    fail=1
  fi
  n_compared=$((n_compared + 1))
  [ "${STDOUT_ONLY:-}" = 1 ] && return
  rm -rf "$tmp/o" && mkdir "$tmp/o"
  rw=0 ra=0
  "$KILT" inject "$@" --json-path whole "$doc" --output-file "$tmp/o/result" >/dev/null 2>"$tmp/w.err" || rw=$?
  [ -e "$tmp/o/result" ] && mv "$tmp/o/result" "$tmp/w.file"
  "$KILT" inject "$@" --json-path auto "$doc" --output-file "$tmp/o/result" >/dev/null 2>"$tmp/a.err" || ra=$?
  [ -e "$tmp/o/result" ] && mv "$tmp/o/result" "$tmp/a.file"
  if [ -n "$(ls -A "$tmp/o")" ]; then
    echo "$label: -o left files behind: $(ls -A "$tmp/o")" >&2
    fail=1
  fi
  if [ "$rw" != "$ra" ] || ! cmp -s "$tmp/w.err" "$tmp/a.err"; then
    echo "$label: -o paths differ (exit $rw whole, $ra streamed)" >&2
    diff -u "$tmp/w.err" "$tmp/a.err" >&2 || true
    fail=1
  elif [ "$rw" = 0 ] && ! cmp -s "$tmp/w.file" "$tmp/a.file"; then
    echo "$label: -o files differ" >&2
    fail=1
  elif [ "$rw" = 0 ] && ! cmp -s "$tmp/w.file" "$tmp/w.out"; then
    echo "$label: -o file differs from stdout" >&2
    fail=1
  fi
  rm -f "$tmp/w.file" "$tmp/a.file"
}

# streams LABEL DOC ARGS...: the streaming path takes the input (no fallback).
streams() {
  local label=$1 doc=$2
  shift 2
  if ! "$KILT" inject "$@" --json-path stream "$doc" >/dev/null 2>"$tmp/s.err"; then
    echo "$label: not streamed:" >&2
    cat "$tmp/s.err" >&2
    fail=1
  fi
}

recipe_args() {
  [ "$1" = builtin ] || printf '%s\n' -r "$src/tests/ecs/recipes/$1.conf"
}

# ---- golden cases ----------------------------------------------------------------------------
n_golden=0 n_streamed=0
for dir in "$src"/tests/golden/ecs/*/; do
  [ -f "$dir/input.json" ] || continue
  name=$(basename "$dir")
  recipe=falco
  [ -f "$dir/recipe" ] && recipe=$(tr -d '[:space:]' <"$dir/recipe")
  mapfile -t rargs < <(recipe_args "$recipe")
  extra=(--no-image-lookup)
  [ -f "$dir/args" ] && mapfile -t extra < <(grep -v '^$' "$dir/args")
  doc=$dir/input.json
  if [ -f "$dir/pre-recipe" ]; then
    mapfile -t pargs < <(recipe_args "$(tr -d '[:space:]' <"$dir/pre-recipe")")
    "$KILT" inject "${pargs[@]}" --no-image-lookup --json-path whole "$doc" >"$tmp/pre.json" 2>/dev/null
    doc=$tmp/pre.json
    compare "$name (pre-recipe)" "$dir/input.json" "${pargs[@]}" --no-image-lookup
  fi
  compare "$name" "$doc" "${rargs[@]}" "${extra[@]}"
  n_golden=$((n_golden + 1))
  # a CloudFormation case that succeeds must have gone through the streaming path
  if "$KILT" inject "${rargs[@]}" "${extra[@]}" --json-path whole "$doc" 2>&1 >/dev/null |
    grep -q '^kilt inject: cloudformation:'; then
    streams "$name" "$doc" "${rargs[@]}" "${extra[@]}"
    n_streamed=$((n_streamed + 1))
  fi
done
[ "$n_streamed" -ge 30 ] || { echo "only $n_streamed golden cases streamed" >&2; fail=1; }

# ---- crafted templates -----------------------------------------------------------------------
task() { # task ID CONTAINERS-JSON
  printf '"%s": {"Type": "AWS::ECS::TaskDefinition", "Properties": {"RequiresCompatibilities": ["FARGATE"], "ContainerDefinitions": %s}}' "$1" "$2"
}
good='[{"Name": "app", "Image": "nginx", "EntryPoint": ["/e"], "Command": ["c"]}]'
bad='{"Fn::Nope": 1}'
falco=(-r "$src/tests/ecs/recipes/falco.conf" --no-image-lookup)
# an engine error in the first task, a syntax error in the second: the syntax error wins
printf '{"Resources": {%s, %s, "X": {"a": [1,}}}' "$(task A '"oops"')" "$(task B "$good")" >"$tmp/late-syntax.json"
# an engine error, then a duplicate resource
printf '{"Resources": {%s, %s, %s}}' "$(task A '"oops"')" "$(task B "$good")" "$(task B "$good")" >"$tmp/late-dup.json"
# an engine error, then a syntax error in a section after Resources
printf '{"Resources": {%s}, "Outputs": {"O": tru}}' "$(task A '"oops"')" >"$tmp/late-outputs.json"
# an engine error alone, after a task that was patched
printf '{"Resources": {%s, %s}}' "$(task B "$good")" "$(task A '"oops"')" >"$tmp/engine-error.json"
# duplicate top-level keys, duplicate keys inside a resource
printf '{"Resources": {%s}, "Resources": {}}' "$(task A "$good")" >"$tmp/top-dup.json"
printf '{"Resources": {"A": {"Type": "AWS::ECS::TaskDefinition", "Type": "x"}}}' >"$tmp/inner-dup.json"
# escapes in keys and strings, numbers, unicode, empty containers, odd spacing, sections after
printf '{ "Parameters" :{"P":{"Type":"String","Default":"img:1"}},"Resources":{"T\\u0061sk\\"1\\"":{"Type":"AWS::ECS::TaskDefinition","Properties":{"RequiresCompatibilities":["FARGATE"],"ContainerDefinitions":[{"Name":"a\\/b\\u00e9\\ud83d\\ude00","Image":{"Ref":"P"},"EntryPoint":["/e"],"Cpu":0.1,"Memory":1e3,"X":[],"Y":{},"Z":null}]}},"Empty":{},"N":3 } ,"Outputs":{"O":{"Value":"\\t\\n"}},"Z":[[[]]]}\r\n' >"$tmp/escapes.json"
printf '{"Resources": {}}' >"$tmp/empty-resources.json"
printf '{"AWSTemplateFormatVersion": "2010-09-09"}' >"$tmp/no-resources.json"
printf '{"Resources": {%s}} x' "$(task A "$good")" >"$tmp/trailing.json"
printf '{"Resources": {"A": %s}}' "$(printf '%.0s[' {1..1500})$(printf '%.0s]' {1..1500})" >"$tmp/deep.json"
printf '{"Resources": {"A": %s}}' "$(printf '%.0s[' {1..2100})$(printf '%.0s]' {1..2100})" >"$tmp/too-deep.json"
for f in "$tmp"/*.json; do
  case $f in */pre.json) continue ;; esac
  compare "crafted $(basename "$f")" "$f" "${falco[@]}"
  compare "crafted $(basename "$f") --fail-open" "$f" "${falco[@]}" --fail-open
done
for f in late-syntax late-dup late-outputs top-dup inner-dup trailing too-deep; do
  grep -q . "$tmp/$f.json"
  if "$KILT" inject "${falco[@]}" "$tmp/$f.json" 2>&1 >/dev/null | grep -q 'ContainerDefinitions is not a list'; then
    echo "crafted $f: the engine's error came before the syntax error" >&2
    fail=1
  fi
done
streams "crafted escapes" "$tmp/escapes.json" "${falco[@]}"
# an engine failure inside the stream is reported by the stream, not handed back
if "$KILT" inject "${falco[@]}" --json-path stream "$tmp/engine-error.json" 2>&1 >/dev/null |
  grep -q 'cannot be streamed'; then
  echo "crafted engine-error: handed back to the whole-document path" >&2
  fail=1
fi
streams "crafted empty-resources" "$tmp/empty-resources.json" "${falco[@]}"
# -o onto an existing file: a failure after a streamed task leaves it as it was
echo previous >"$tmp/keep"
if "$KILT" inject "${falco[@]}" "$tmp/engine-error.json" --output-file "$tmp/keep" 2>/dev/null; then
  echo "crafted engine-error: succeeded" >&2
  fail=1
fi
[ "$(cat "$tmp/keep")" = previous ] || { echo "-o: the target changed on failure" >&2; fail=1; }
ls "$tmp"/keep.kilt-* >/dev/null 2>&1 && { echo "-o: temporary file left behind" >&2; fail=1; }
# standard input takes the same path
"$KILT" inject "${falco[@]}" --json-path stream - <"$tmp/escapes.json" >"$tmp/stdin.out" 2>/dev/null
"$KILT" inject "${falco[@]}" --json-path whole "$tmp/escapes.json" >"$tmp/file.out" 2>/dev/null
cmp -s "$tmp/stdin.out" "$tmp/file.out" || { echo "stdin: output differs" >&2; fail=1; }

# ---- the fuzz corpus -------------------------------------------------------------------------
# Only what could be streamed (an object: '{' first); the rest never leaves the whole-document
# path. Standard output only: -o is the same code for both paths and is compared above.
n_corpus=0 n_corpus_streamed=0
STDOUT_ONLY=1
for f in "$src"/fuzz/corpus/ecs/*; do
  [ -f "$f" ] || continue
  [ "$(tr -d ' \t\r\n' <"$f" | head -c1)" = "{" ] || continue
  compare "corpus $(basename "$f")" "$f" "${falco[@]}"
  compare "corpus $(basename "$f") opt-in fail-open" "$f" "${falco[@]}" --mode opt-in --fail-open
  compare "corpus $(basename "$f") remove" "$f" --remove --no-image-lookup
  n_corpus=$((n_corpus + 1))
  "$KILT" inject "${falco[@]}" --json-path stream "$f" >/dev/null 2>&1 && n_corpus_streamed=$((n_corpus_streamed + 1))
done
[ "$n_corpus_streamed" -ge 50 ] || { echo "only $n_corpus_streamed corpus inputs streamed" >&2; fail=1; }

echo "stream-parity: $n_golden golden cases ($n_streamed streamed), $n_corpus corpus inputs ($n_corpus_streamed streamed), $n_compared comparisons"
exit $fail
