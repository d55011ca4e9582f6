#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The helm built by tests/infra/peer-k8s.sh runs: `helm version` names the pinned v3 release, and
# a chart made by `helm create` lints and renders (no cluster, no network).
set -euo pipefail
helm=${KILT_PEER_BIN:-/opt/kilt/bin}/helm
if ! [ -x "$helm" ]; then
  echo "SKIPPED: $helm is missing (run tests/infra/peer-k8s.sh)" >&2
  exit 77
fi
want=$(cat "$(dirname "$helm")/.helm.version")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export HELM_CACHE_HOME=$work/cache HELM_CONFIG_HOME=$work/config HELM_DATA_HOME=$work/data

got=$("$helm" version --template '{{.Version}}')
[ "$got" = "$want" ] || { echo "FAIL: helm version says '$got', want '$want'" >&2; exit 1; }
case $got in v3.*) ;; *) echo "FAIL: helm $got is not a v3 release" >&2; exit 1 ;; esac

"$helm" create "$work/demo" >/dev/null
"$helm" lint "$work/demo" >"$work/lint.out" || { cat "$work/lint.out" >&2; exit 1; }
grep -q '1 chart(s) linted, 0 chart(s) failed' "$work/lint.out" ||
  { echo "FAIL: unexpected lint output:" >&2; cat "$work/lint.out" >&2; exit 1; }
"$helm" template rel "$work/demo" --set replicaCount=3 >"$work/out.yaml"
grep -q '^kind: Deployment$' "$work/out.yaml" || { echo "FAIL: no Deployment rendered" >&2; exit 1; }
grep -q '^  replicas: 3$' "$work/out.yaml" || { echo "FAIL: --set replicaCount=3 not rendered" >&2; exit 1; }
echo "ok: helm $got"
