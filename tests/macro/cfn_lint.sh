#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Lints with the real cfn-lint (tests/infra/peer-cfn-lint.sh): the macro's installer template, the
# example application template, and that example as the macro processes it (the template
# CloudFormation would deploy). No errors and no warnings allowed.
set -euo pipefail
: "${KILT:?KILT must name the kilt binary}"
src=${KILT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
cfn_lint=$(bash "$src/tests/infra/peer-cfn-lint.sh")
venv_python=$(dirname "$cfn_lint")/python
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kilt-macro-lint.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The event CloudFormation sends for the example: the template as JSON (short tags expanded, the
# language extensions already applied: the example uses none), with its parameter values.
"$venv_python" - "$src/deploy/cloudformation/example-app.yaml" >"$tmp/event.json" <<'PY'
import json, sys
from cfnlint.decode import decode
tpl, errs = decode(sys.argv[1])
assert not errs, errs
tpl = json.loads(json.dumps(tpl))  # plain dicts and lists
print(json.dumps({"region": "eu-west-1", "accountId": "123456789012",
                  "transformId": "123456789012::Kilt", "requestId": "lint-1", "params": {},
                  "templateParameterValues": {"AppImage": "public.ecr.aws/nginx/nginx:1.27",
                                              "Subnets": ["subnet-0123456789abcdef0"]},
                  "fragment": tpl}))
PY
# The function as the installer makes it: AgentImage set (KILT_CONFIG_agent_image).
KILT_CONFIG_agent_image=123456789012.dkr.ecr.eu-west-1.amazonaws.com/kilt/falco:0.32.2 \
  "$KILT" cfn-macro --event "$tmp/event.json" >"$tmp/reply.json"
python3 - "$tmp/reply.json" "$tmp/processed.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "success", r
frag = r["fragment"]
web = frag["Resources"]["WebTask"]["Properties"]["ContainerDefinitions"]
mig = frag["Resources"]["MigrateTask"]["Properties"]["ContainerDefinitions"]
assert len(web) == 2 and web[0]["EntryPoint"][0] == "/kilt/bin/kilt-launch", web
assert len(mig) == 1 and mig[0]["EntryPoint"] == ["/bin/sh", "-c"], mig
frag.pop("Transform", None)  # already applied
json.dump(frag, open(sys.argv[2], "w"), indent=1)
PY

set +e
"$cfn_lint" --format parseable -- "$src/deploy/cloudformation/kilt-macro.yaml" \
  "$src/deploy/cloudformation/example-app.yaml" "$tmp/processed.json" >"$tmp/report"
rc=$?
set -e
cat "$tmp/report"
if (( rc != 0 )); then
  echo "cfn_lint: cfn-lint reported problems (status $rc)" >&2
  exit 1
fi
echo "cfn_lint: installer, example and processed example are clean"
