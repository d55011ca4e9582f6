#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Lints, with the real cfn-lint, the CloudFormation templates of the YAML golden cases: the input,
# and kilt's YAML and JSON renderings of it (want.yaml / want.json, byte-compared with kilt's
# output by unit/test_yaml). All must be clean: if cfn-lint reads kilt's short forms, quoting and
# scalars the way it reads the original, it reports nothing new.
set -euo pipefail
src=${KILT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cfn_lint=$(bash "$src/tests/infra/peer-cfn-lint.sh")
cases=(cfn-ecs-taskdef cfn-conditions)
files=()
for c in "${cases[@]}"; do
  for f in input.yaml want.yaml want.json; do
    p="$src/tests/golden/yaml/$c/$f"
    [ -f "$p" ] || { echo "yaml/cfn-lint: missing $p" >&2; exit 1; }
    files+=("$p")
  done
done
set +e
"$cfn_lint" --format parseable -- "${files[@]}"
rc=$?
set -e
# cfn-lint's exit status is a bit mask: 2 errors, 4 warnings, 8 informational.
if [ "$rc" -ne 0 ]; then
  echo "yaml/cfn-lint: findings (status $rc) in ${#files[@]} templates" >&2
  exit 1
fi
# Control: the same peer must see through kilt's short forms, so a dangling `!Ref` in kilt's
# output is an error (E3005/E1020...), not silently accepted.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kilt-yaml-lint.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
sed 's/!Ref LogGroup$/!Ref NoSuchLogGroup/' "$src/tests/golden/yaml/cfn-ecs-taskdef/want.yaml" >"$tmp/broken.yaml"
grep -q 'NoSuchLogGroup' "$tmp/broken.yaml" || { echo "yaml/cfn-lint: control edit failed" >&2; exit 1; }
set +e
"$cfn_lint" --format parseable -- "$tmp/broken.yaml" >"$tmp/report"
rc=$?
set -e
if ! (( rc & 2 )) || ! grep -q NoSuchLogGroup "$tmp/report"; then
  cat "$tmp/report" >&2
  echo "yaml/cfn-lint: control template with a dangling !Ref was not flagged (status $rc)" >&2
  exit 1
fi
echo "yaml/cfn-lint: ${#files[@]} templates clean ($("$cfn_lint" --version 2>&1))"
