#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kilt under a real OpenTofu: the documented data source (docs/terraform.md) with its output,
# init, apply, and a second plan that shows no change. Needs `tofu` (PATH or /opt/kilt/bin/tofu;
# it builds from the Go module proxy: go build ./cmd/tofu inside github.com/opentofu/opentofu)
# and the hashicorp/external provider from a mirror named by TF_CLI_CONFIG_FILE (the provider is
# not on the Go module proxy, so kilt's test machines cannot fetch it). Skipped, saying which is
# missing, otherwise; terraform/protocol always runs the protocol itself.
set -uo pipefail
KILT=${KILT:?path of the kilt binary}
# The provider is the piece that cannot be had here, so it is checked first.
if [ -z "${TF_CLI_CONFIG_FILE:-}" ] || ! grep -q "mirror" "$TF_CLI_CONFIG_FILE" 2>/dev/null; then
  echo "SKIPPED: no provider mirror for hashicorp/external (set TF_CLI_CONFIG_FILE to a CLI config with a filesystem_mirror or network_mirror). It cannot be built here: the Go module proxy lists no version of github.com/hashicorp/terraform-provider-external nor of github.com/terraform-providers/terraform-provider-external (the path its go.mod declares) and answers 403 to that path at v2.3.4 and at commit 751a8d8bcaf0 (pseudo-version)" >&2
  exit 77
fi
TOFU=$(command -v tofu || true)
[ -z "$TOFU" ] && [ -x /opt/kilt/bin/tofu ] && TOFU=/opt/kilt/bin/tofu
if [ -z "$TOFU" ]; then
  echo "SKIPPED: no OpenTofu binary (tofu on PATH or /opt/kilt/bin/tofu); terraform/protocol still checks the protocol" >&2
  exit 77
fi
tmp=$(mktemp -d /tmp/kilt-tofu.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin" && ln -s "$KILT" "$tmp/bin/kilt"
export PATH="$tmp/bin:$PATH"
cat >"$tmp/main.tf" <<'TF'
terraform {
  required_providers {
    external = { source = "hashicorp/external" }
  }
}
locals {
  containers = [{
    name       = "web"
    image      = "public.ecr.aws/nginx/nginx:1.27"
    essential  = true
    entryPoint = ["/docker-entrypoint.sh"]
    command    = ["nginx", "-g", "daemon off;"]
  }]
}
data "external" "kilt" {
  program = ["kilt", "inject", "--format", "terraform-external"]
  query = {
    container_definitions = jsonencode(local.containers)
    mode                  = "opt-out"
    config                = jsonencode({ agent_image = "registry.example.com/kilt/falco:0.32.2" })
  }
}
output "container_definitions" { value = data.external.kilt.result.container_definitions }
output "kilt_decisions" { value = jsondecode(data.external.kilt.result.decisions).decisions }
TF
cd "$tmp" || exit 1
fails=0
"$TOFU" version
"$TOFU" init -input=false >init.log 2>&1 || { cat init.log; echo "FAIL: tofu init"; exit 1; }
"$TOFU" apply -auto-approve -input=false >apply.log 2>&1 || { cat apply.log; echo "FAIL: tofu apply"; exit 1; }
defs=$("$TOFU" output -raw container_definitions)
if printf '%s' "$defs" | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d[0]["entryPoint"][0]=="/kilt/bin/kilt-launch" and len(d)==2'; then
  echo "ok: the output holds the patched definitions"; else echo "FAIL: output: $defs"; fails=$((fails+1)); fi
"$TOFU" plan -detailed-exitcode -input=false >plan.log 2>&1; rc=$?
if [ "$rc" -eq 0 ]; then echo "ok: a second plan shows no change"; else cat plan.log; echo "FAIL: second plan exit $rc"; fails=$((fails+1)); fi
# a kilt error reaches the user through tofu
sed -i 's/mode                  = "opt-out"/mdoe = "opt-out"/' main.tf
"$TOFU" plan -input=false >bad.log 2>&1
if grep -q "unknown key 'mdoe'" bad.log; then echo "ok: kilt's message shown by tofu"; else cat bad.log; echo "FAIL: kilt's message not shown"; fails=$((fails+1)); fi
exit $((fails > 0))
