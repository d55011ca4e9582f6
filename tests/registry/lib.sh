# SPDX-License-Identifier: Apache-2.0
# Shared by the registry tests: a test CA, a real registry (Debian's docker-registry, distribution
# v2) on a free loopback port in a private temp dir, test images built with umoci and pushed with
# skopeo, and small assertion helpers. Sourced by tests/registry/*.sh; everything started here is
# stopped by the EXIT trap.
set -euo pipefail

: "${KILT:?KILT must name the kilt binary}"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kilt-registry.XXXXXX")
PIDS=()
FAILS=0

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$FAILS" -eq 0 ] && [ -z "${KEEP_WORK:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

need() {
  local t
  for t in "$@"; do
    if ! command -v "$t" >/dev/null 2>&1; then
      echo "SKIP: $t is not installed (tests/infra/install-deps.sh installs it)" >&2
      exit 77
    fi
  done
}
need docker-registry umoci skopeo openssl python3

say() { printf '%s\n' "$*" >&2; }
fail() {
  say "FAIL: $*"
  FAILS=$((FAILS + 1))
}
pass() { say "ok: $*"; }

# expect_eq WHAT GOT WANT
expect_eq() {
  if [ "$2" == "$3" ]; then pass "$1"; else fail "$1: got [$2], want [$3]"; fi
}
# expect_contains WHAT TEXT NEEDLE
expect_contains() {
  if [[ "$2" == *"$3"* ]]; then pass "$1"; else fail "$1: [$2] lacks [$3]"; fi
}
finish() {
  if [ "$FAILS" -ne 0 ]; then
    say "$FAILS check(s) failed"
    exit 1
  fi
  say "all checks passed"
}

# jget JSON PYTHON-EXPR: evaluates EXPR with `d` bound to the parsed JSON, prints it as JSON.
jget() {
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(json.dumps(eval(sys.argv[2]), separators=(",", ":")))' "$1" "$2"
}

# wait_port PORT: waits (up to 10 s) until something listens on 127.0.0.1:PORT.
wait_port() {
  python3 - "$1" <<'PY'
import socket, sys, time
end = time.time() + 10
while time.time() < end:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PY
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# make_ca: $WORK/pki/{ca.crt,ca.key,server.crt,server.key} for 127.0.0.1 and localhost (and
# $EXTRA_SAN, e.g. DNS:name).
make_ca() {
  local d=$WORK/pki
  mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kilt test CA" \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost%s\nextendedKeyUsage=serverAuth\n' \
    "${EXTRA_SAN:+,$EXTRA_SAN}" >"$d/ext.cnf"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 2 -extfile "$d/ext.cnf" -out "$d/server.crt" 2>/dev/null
  mkdir -p "$d/certdir"
  cp "$d/ca.crt" "$d/certdir/ca.crt"
  CA=$d/ca.crt
}

# start_registry NAME AUTH-YAML [tls|plain]: starts a registry; sets REG (host:port), REG_LOG.
start_registry() {
  local name=$1 auth=$2 mode=${3:-tls} port dir
  port=$(free_port)
  dir=$WORK/$name
  mkdir -p "$dir/data"
  {
    printf 'version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n'
    printf 'storage:\n  filesystem:\n    rootdirectory: %s/data\n' "$dir"
    printf 'http:\n  addr: 127.0.0.1:%s\n' "$port"
    if [ "$mode" = tls ]; then
      printf '  tls:\n    certificate: %s\n    key: %s\n' "$WORK/pki/server.crt" "$WORK/pki/server.key"
    fi
    printf '%s\n' "$auth"
  } >"$dir/config.yml"
  docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  PIDS+=($!)
  REG=127.0.0.1:$port
  REG_LOG=$dir/registry.log
  if wait_port "$port"; then
    return 0
  fi
  cat "$dir/registry.log" >&2
  fail "registry $name did not start"
  exit 1
}

# start_htpasswd_registry NAME USER PASSWORD: start_registry NAME (TLS: make_ca first) with basic
# auth, USER its one account (htpasswd, bcrypt).
start_htpasswd_registry() {
  need htpasswd
  htpasswd -Bbn "$2" "$3" >"$WORK/htpasswd"
  start_registry "$1" "auth:
  htpasswd:
    realm: kilt-$1
    path: $WORK/htpasswd"
}

# push_images REPOSITORY TAG... [-- SKOPEO-OPTION...]: the test images (build_images), each TAG
# pushed to the TLS registry as $REG/REPOSITORY/TAG:1, with the skopeo options given.
push_images() {
  local repo=$1 tags=() t
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    tags+=("$1")
    shift
  done
  [ $# -gt 0 ] && shift
  build_images
  for t in "${tags[@]}"; do
    push "$t" "$REG/$repo/$t:1" --dest-cert-dir "$WORK/pki/certdir" "$@"
  done
}

# start_stall: a TCP server that accepts connections and never answers; sets STALL (host:port)
# and STALL_LOG, a file that gets one line per connection accepted (see stall_connections).
start_stall() {
  local port
  port=$(free_port)
  STALL_LOG=$WORK/stall-$port.log
  : >"$STALL_LOG"
  python3 - "$port" "$STALL_LOG" <<'PY' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(64)
log = open(sys.argv[2], "a", buffering=1)
held = []
while True:
    c, _ = s.accept()
    held.append(c)  # accepted, never answered
    log.write("connection\n")
PY
  PIDS+=($!)
  wait_port "$port"
  # wait_port's own probe is not a lookup: wait until the server has logged it, then forget it
  local i
  for i in $(seq 100); do [ -s "$STALL_LOG" ] && break; sleep 0.05; done
  : >"$STALL_LOG"
  STALL=127.0.0.1:$port
}

# stall_connections: connections the stalling server accepted since start_stall (each lookup
# that reaches it opens one and waits there until its budget ends).
stall_connections() {
  wc -l <"$STALL_LOG" | tr -d ' '
}

# requests_to_v2: how many manifest/blob GETs the registry has logged so far.
requests_to_v2() {
  grep -cE '"(GET|HEAD) /v2/[^ ]+/(manifests|blobs)/' "$REG_LOG" || true
}

# build_images: an OCI layout $WORK/oci with tags ep, cmd, both, neither, env, user, amd, arm and
# multi (an index over amd and arm, assembled by hand).
build_images() {
  local L=$WORK/oci
  umoci init --layout "$L"
  umoci new --image "$L:base"
  umoci config --image "$L:base" --tag ep --config.entrypoint /bin/app --config.entrypoint --flag
  umoci config --image "$L:base" --tag cmd --config.cmd /bin/sh --config.cmd -c --config.cmd 'echo hi'
  umoci config --image "$L:base" --tag both --config.entrypoint /init --config.cmd serve
  umoci config --image "$L:base" --tag neither
  umoci config --image "$L:base" --tag env --config.entrypoint /bin/env \
    --config.env A=1 --config.env 'B=x y=z'
  umoci config --image "$L:base" --tag user --config.cmd /app --config.user 1000:1000 \
    --config.workingdir /srv/app
  umoci config --image "$L:base" --tag amd --os linux --architecture amd64 --config.cmd amd-cmd
  umoci config --image "$L:base" --tag arm --os linux --architecture arm64 --config.cmd arm-cmd
  python3 - "$L" <<'EOF'
import hashlib, json, os, sys
L = sys.argv[1]
idx = json.load(open(os.path.join(L, "index.json")))
by = {m["annotations"]["org.opencontainers.image.ref.name"]: m for m in idx["manifests"]}
def desc(tag, arch, variant=None):
    m = dict(by[tag]); m.pop("annotations", None)
    m["platform"] = {"os": "linux", "architecture": arch}
    if variant: m["platform"]["variant"] = variant
    return m
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": [desc("amd", "amd64"), desc("arm", "arm64", "v8")]}
body = json.dumps(index, separators=(",", ":")).encode()
d = hashlib.sha256(body).hexdigest()
open(os.path.join(L, "blobs", "sha256", d), "wb").write(body)
idx["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json",
                         "digest": "sha256:" + d, "size": len(body),
                         "annotations": {"org.opencontainers.image.ref.name": "multi"}})
json.dump(idx, open(os.path.join(L, "index.json"), "w"))
EOF
}

# push TAG DEST [skopeo dest options...]
push() {
  local tag=$1 dest=$2
  shift 2
  local all=()
  [ "$tag" = multi ] && all=(--all)
  skopeo --insecure-policy copy -q "${all[@]}" "$@" "oci:$WORK/oci:$tag" "docker://$dest" >/dev/null
}

# layout_digest TAG: the digest of a tag's manifest (or index) in the layout.
layout_digest() {
  python3 -c 'import json,sys; print([m["digest"] for m in json.load(open(sys.argv[1]))["manifests"] if m.get("annotations",{}).get("org.opencontainers.image.ref.name")==sys.argv[2]][0])' "$WORK/oci/index.json" "$1"
}
