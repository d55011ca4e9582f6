#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The arm64 Lambda zip: cross-builds kilt against Debian's arm64 multiarch libraries, packages
# kilt-macro-arm64.zip, checks every ELF in it is AArch64 (bootstrap static), then runs it under
# qemu-aarch64-static: one event with --event, and the runtime loop driven by aws-lambda-rie.
# (This machine has no binfmt_misc registration, so the zip's loader is started through qemu
# directly instead of through the bootstrap's exec.) Exits 77 (skip) loudly when the arm64
# libraries are not installed (tests/infra/peer-arm64-libs.sh installs them).
set -euo pipefail
src=${KILT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
out=${KILT_MACRO_ARM64_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/kilt-macro-arm64.XXXXXX")}
source "$src/tests/macro/rie.sh"
if ! [ -e /usr/lib/aarch64-linux-gnu/pkgconfig/libcurl.pc ] || ! command -v qemu-aarch64-static >/dev/null; then
  echo "SKIP arm64: arm64 libraries or qemu-aarch64-static missing; run tests/infra/peer-arm64-libs.sh" >&2
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kilt-macro-arm64-run.XXXXXX")
cleanup() {
  [ -n "${rie_pid:-}" ] && kill "$rie_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

KILT_LAMBDA_BUILD_DIR=${KILT_LAMBDA_BUILD_DIR:-$out/build} bash "$src/deploy/lambda/build-zip.sh" arm64 "$out" >"$tmp/build.log" 2>&1 || {
  cat "$tmp/build.log" >&2; exit 1; }
zip="$out/kilt-macro-arm64.zip"
task="$tmp/task"
mkdir -p "$task"
python3 - "$zip" "$task" <<'EOF'
import os, subprocess, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        os.chmod(z.extract(info, sys.argv[2]), (info.external_attr >> 16) & 0o777)
bad, n = [], 0
for root, _, files in os.walk(sys.argv[2]):
    for f in files:
        n += 1
        p = os.path.join(root, f)
        h = subprocess.run(["readelf", "-h", p], capture_output=True, text=True).stdout
        if "AArch64" not in h:
            bad.append(p)
boot = subprocess.run(["readelf", "-lW", os.path.join(sys.argv[2], "bootstrap")],
                      capture_output=True, text=True).stdout
assert "INTERP" not in boot, "bootstrap must be static"
assert not bad, f"not AArch64: {bad}"
print(f"arm64 zip: {n} files, every ELF AArch64, bootstrap static")
EOF

python3 -c '
import json
frag = {"Resources": {"Web": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
    "RequiresCompatibilities": ["FARGATE"], "NetworkMode": "awsvpc", "Cpu": "256",
    "Memory": "512", "ContainerDefinitions": [{"Name": "app", "Image": "nginx:1.27",
    "Essential": True, "EntryPoint": ["/docker-entrypoint.sh"], "Command": ["nginx"]}]}}}}
print(json.dumps({"requestId": "arm-1", "region": "us-east-1", "accountId": "1",
                  "fragment": frag, "params": {}, "templateParameterValues": {}}))' >"$tmp/event.json"
check() {
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "success", r
ep = r["fragment"]["Resources"]["Web"]["Properties"]["ContainerDefinitions"][0]["EntryPoint"]
assert ep[0] == "/kilt/bin/kilt-launch", ep
print("arm64:", sys.argv[2], "success, app patched")' "$@"
}

# The function as the installer makes it: AgentImage set.
export KILT_CONFIG_agent_image=123456789012.dkr.ecr.eu-west-1.amazonaws.com/kilt/falco:0.32.2
run=(qemu-aarch64-static "$task/lib/ld-linux-aarch64.so.1" --inhibit-cache --library-path "$task/lib" "$task/bin/kilt" cfn-macro)
"${run[@]}" --event "$tmp/event.json" >"$tmp/reply.json" 2>"$tmp/stderr" || { cat "$tmp/stderr" >&2; exit 1; }
check "$tmp/reply.json" "--event"

printf '#!/bin/sh\nexec %s\n' "${run[*]}" >"$tmp/bootstrap-qemu"
chmod +x "$tmp/bootstrap-qemu"
start_rie "$tmp/bootstrap-qemu" "$tmp/rie.log"
for i in 1 2; do
  curl -sS -m 120 -X POST "$RIE_INVOKE" \
    --data-binary @"$tmp/event.json" >"$tmp/reply$i.json"
  check "$tmp/reply$i.json" "runtime loop invocation $i" || { cat "$tmp/rie.log" >&2; exit 1; }
done
echo "arm64: ok ($zip)"
