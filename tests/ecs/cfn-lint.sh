#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Lints, with the real cfn-lint, every CloudFormation template the ECS golden cases expect kilt to
# produce (they are byte-compared with kilt's output by the golden tests) and the injected sample
# template: no errors allowed (warnings are printed).
set -euo pipefail
: "${KILT:?KILT must name the kilt binary}"
src=${KILT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cfn_lint=$(bash "$src/tests/infra/peer-cfn-lint.sh")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kilt-cfn-lint.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

files=()
for want in "$src"/tests/golden/ecs/*/want.json "$src"/tests/golden/ecs/*/want.yaml; do
  [ -f "$want" ] || continue
  grep -q '"Resources"\|^Resources:' "$want" || continue
  files+=("$want")
done
for sample in "$src"/samples/*.yaml "$src"/samples/*.json; do
  [ -f "$sample" ] || continue
  out="$tmp/$(basename "$sample")"
  "$KILT" inject "$sample" --output-file "$out" 2>/dev/null ||
    "$KILT" inject -r "$src/tests/ecs/recipes/falco.conf" "$sample" --output-file "$out"
  files+=("$out")
done
if [ "${#files[@]}" -lt 30 ]; then
  echo "cfn-lint: only ${#files[@]} templates found; the golden corpus is missing" >&2
  exit 1
fi
set +e
"$cfn_lint" --format parseable -- "${files[@]}" >"$tmp/report"
rc=$?
set -e
cat "$tmp/report"
# cfn-lint's exit status is a bit mask: 2 errors, 4 warnings, 8 informational.
if (( rc & 2 )) || (( rc & 1 )); then
  echo "cfn-lint: errors in kilt's output (status $rc)" >&2
  exit 1
fi
echo "cfn-lint: ${#files[@]} templates, no errors (status $rc)"
