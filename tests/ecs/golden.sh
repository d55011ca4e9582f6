#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs one ECS golden case (tests/golden/ecs/<case>/) through `kilt inject`:
#   input.json|input.yaml  the document
#   recipe                 recipe name in tests/ecs/recipes/ (default falco; "builtin" = no -r)
#   pre-recipe             optional: a recipe applied first (re-application cases)
#   args                   optional: extra arguments, one per line
#   want.json|want.yaml    the expected output, or
#   want-error             a text the error message must contain (exit status 1, no output)
#   want-stderr            optional: lines that must appear on stderr
# Also checks: the output is deterministic, and applying the recipe to the output changes nothing.
# KILT_UPDATE_GOLDEN=1 rewrites want.* (review the diff).
set -euo pipefail
case_dir=$1
: "${KILT:?KILT must name the kilt binary}"
src=${KILT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
name=$(basename "$case_dir")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kilt-golden-$name.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

input=$(ls "$case_dir"/input.* 2>/dev/null | head -n1)
[ -n "$input" ] || { echo "$name: no input.* file" >&2; exit 1; }
ext=${input##*.}

recipe_args() {
  local r=$1
  if [ "$r" = builtin ]; then return; fi
  printf '%s\n' -r "$src/tests/ecs/recipes/$r.conf"
}
recipe=falco
[ -f "$case_dir/recipe" ] && recipe=$(tr -d '[:space:]' <"$case_dir/recipe")
mapfile -t rargs < <(recipe_args "$recipe")
# Golden cases are hermetic: no registry lookups.
extra=(--no-image-lookup)
[ -f "$case_dir/args" ] && mapfile -t extra < <(grep -v '^$' "$case_dir/args")

doc=$input
if [ -f "$case_dir/pre-recipe" ]; then
  mapfile -t pargs < <(recipe_args "$(tr -d '[:space:]' <"$case_dir/pre-recipe")")
  "$KILT" inject "${pargs[@]}" --no-image-lookup "$input" >"$tmp/pre.$ext" 2>"$tmp/pre.err" ||
    { cat "$tmp/pre.err" >&2; echo "$name: the pre-recipe failed" >&2; exit 1; }
  doc=$tmp/pre.$ext
fi

set +e
"$KILT" inject "${rargs[@]}" "${extra[@]}" "$doc" >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e

if [ -f "$case_dir/want-error" ]; then
  if [ "$rc" -ne 1 ]; then
    echo "$name: expected exit status 1, got $rc" >&2; cat "$tmp/err" >&2; exit 1
  fi
  if [ -s "$tmp/out" ]; then echo "$name: output written despite the error" >&2; exit 1; fi
  want=$(cat "$case_dir/want-error")
  if ! grep -qF -- "$want" "$tmp/err"; then
    echo "$name: error message lacks: $want" >&2; echo "got:" >&2; cat "$tmp/err" >&2; exit 1
  fi
  echo "$name: ok (error)"
  exit 0
fi

if [ "$rc" -ne 0 ]; then
  echo "$name: kilt inject failed ($rc)" >&2; cat "$tmp/err" >&2; exit 1
fi
if [ -f "$case_dir/want-stderr" ]; then
  while IFS= read -r line; do
    [ -z "$line" ] && continue
    grep -qF -- "$line" "$tmp/err" || { echo "$name: stderr lacks: $line" >&2; cat "$tmp/err" >&2; exit 1; }
  done <"$case_dir/want-stderr"
fi

want="$case_dir/want.$ext"
if [ "${KILT_UPDATE_GOLDEN:-}" = 1 ]; then
  cp "$tmp/out" "$want"
  echo "$name: updated $want"
fi
[ -f "$want" ] || { echo "$name: no $want (run with KILT_UPDATE_GOLDEN=1)" >&2; exit 1; }
if ! cmp -s "$tmp/out" "$want"; then
  echo "$name: output differs from $want:" >&2
  diff -u "$want" "$tmp/out" >&2 || true
  exit 1
fi

# Deterministic: the same run again gives the same bytes.
"$KILT" inject "${rargs[@]}" "${extra[@]}" "$doc" >"$tmp/again" 2>/dev/null
cmp -s "$tmp/out" "$tmp/again" || { echo "$name: output is not deterministic" >&2; exit 1; }

# Idempotent: applying the recipe to its own output changes nothing.
cp "$tmp/out" "$tmp/once.$ext"
"$KILT" inject "${rargs[@]}" "${extra[@]}" "$tmp/once.$ext" >"$tmp/twice" 2>"$tmp/twice.err" ||
  { cat "$tmp/twice.err" >&2; echo "$name: second application failed" >&2; exit 1; }
if ! cmp -s "$tmp/out" "$tmp/twice"; then
  echo "$name: applying twice differs from once:" >&2
  diff -u "$tmp/out" "$tmp/twice" >&2 || true
  exit 1
fi
echo "$name: ok"
