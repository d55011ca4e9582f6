#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Proves the Lambda zip needs nothing from the host image: its `bootstrap` runs in a runc container
# whose root filesystem holds only the zip's contents (no /etc, no /usr, no libc of its own), first
# on one event (--event -), then as the real runtime loop driven by aws-lambda-rie on the host
# (the container shares the host's network namespace to reach the runtime API on loopback).
# Needs root and runc; exits 77 (skip) loudly otherwise.
set -euo pipefail
: "${KILT_MACRO_ZIP:?KILT_MACRO_ZIP must name the zip}"
src=${KILT_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$src/tests/macro/rie.sh"

if [ "$(id -u)" -ne 0 ] || ! command -v runc >/dev/null; then
  echo "SKIP runc_bare: needs root and runc (tests/infra/install-deps.sh installs runc)" >&2
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kilt-macro-runc.XXXXXX")
id="kilt-macro-$$-$RANDOM"
state="$tmp/state"
cleanup() {
  runc --root "$state" delete -f "$id" >/dev/null 2>&1 || true
  runc --root "$state" delete -f "$id-loop" >/dev/null 2>&1 || true
  [ -n "${rie_pid:-}" ] && kill "$rie_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

bundle="$tmp/bundle"
mkdir -p "$bundle/rootfs"
python3 - "$KILT_MACRO_ZIP" "$bundle/rootfs" <<'EOF'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for info in z.infolist():
        os.chmod(z.extract(info, sys.argv[2]), (info.external_attr >> 16) & 0o777)
EOF
echo "rootfs: $(cd "$bundle/rootfs" && ls -A | tr '\n' ' ')"
if [ "$(cd "$bundle/rootfs" && ls -A | sort | tr '\n' ' ')" != "bin bootstrap lib " ]; then
  echo "runc_bare: the rootfs must hold only the zip's contents" >&2
  exit 1
fi
(cd "$bundle" && runc spec)

# config.json: no terminal, read-only root, the given argv and environment; $1 = "host" keeps the
# host network namespace.
configure() {
  python3 - "$bundle/config.json" "$@" <<'EOF'
import json, os, sys
path, net, *argv = sys.argv[1:]
c = json.load(open(path))
p = c["process"]
p["terminal"] = False
p["args"] = argv
p["cwd"] = "/"
env = ["PATH=/bin", "KILT_CONFIG_agent_image=123456789012.dkr.ecr.eu-west-1.amazonaws.com/kilt/falco:0.32.2"]
for k in ("AWS_LAMBDA_RUNTIME_API", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
          "AWS_LAMBDA_FUNCTION_VERSION", "AWS_REGION", "_HANDLER", "LAMBDA_TASK_ROOT"):
    if k in os.environ:
        env.append(f"{k}={os.environ[k]}")
p["env"] = env
c["root"]["readonly"] = True
if net == "host":
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
json.dump(c, open(path, "w"), indent=1)
EOF
}

# 1. One event through stdin.
python3 - "$src" >"$tmp/event.json" <<'EOF'
import json, sys
frag = {"Resources": {"Web": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
    "RequiresCompatibilities": ["FARGATE"], "NetworkMode": "awsvpc", "Cpu": "256",
    "Memory": "512", "ContainerDefinitions": [{"Name": "app", "Image": "nginx:1.27",
    "Essential": True, "EntryPoint": ["/docker-entrypoint.sh"], "Command": ["nginx"]}]}}}}
print(json.dumps({"requestId": "runc-1", "region": "us-east-1", "accountId": "1",
                  "fragment": frag, "params": {}, "templateParameterValues": {}}))
EOF
configure none /bootstrap --event -
runc --root "$state" run --bundle "$bundle" "$id" <"$tmp/event.json" >"$tmp/reply.json" 2>"$tmp/stderr" || {
  echo "runc_bare: the bootstrap failed in the bare container:" >&2
  cat "$tmp/stderr" >&2
  exit 1
}
python3 - "$tmp/reply.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "success", r
ep = r["fragment"]["Resources"]["Web"]["Properties"]["ContainerDefinitions"][0]["EntryPoint"]
assert ep[0] == "/kilt/bin/kilt-launch", ep
print("bare container, --event: success, app patched")
EOF

# 2. The runtime loop, with aws-lambda-rie on the host starting the container as its bootstrap.
cat >"$tmp/run-in-runc" <<EOF
#!/usr/bin/env bash
# Started by aws-lambda-rie with AWS_LAMBDA_RUNTIME_API set: run the zip's bootstrap in the bare
# container, on the host network so it reaches the runtime API on loopback.
set -e
$(declare -f configure)
bundle="$bundle"
configure host /bootstrap
exec runc --root "$state" run --bundle "$bundle" "$id-loop"
EOF
chmod +x "$tmp/run-in-runc"
start_rie "$tmp/run-in-runc" "$tmp/rie.log"
for i in 1 2 3; do
  curl -sS -m 60 -X POST "$RIE_INVOKE" \
    --data-binary @"$tmp/event.json" >"$tmp/reply$i.json"
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == "success", r
print("bare container, runtime loop: invocation", sys.argv[2], "success")' "$tmp/reply$i.json" "$i" || {
    echo "runc_bare: runtime loop failed; emulator log:" >&2
    cat "$tmp/rie.log" >&2
    exit 1
  }
done
grep -c '"status":"success"' "$tmp/rie.log" | grep -qx 3 || { cat "$tmp/rie.log" >&2; exit 1; }
echo "runc_bare: ok"
