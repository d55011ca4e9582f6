#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Image-lookup benchmark, run by hand: starts a local registry over TLS (as the registry tests
# do), pushes N distinct images (distinct configs and manifests, written straight through the
# registry API), then measures with the kilt binary:
#   - N cold lookups with concurrency 1 and with concurrency 16 (fresh process each: empty cache),
#     and their ratio;
#   - cached lookups per second (the same N references looked up again and again in one process).
# The registry runs on the same machine, so cold lookups are bound by its CPU; the cold runs are
# repeated through a TCP proxy that adds LATENCY_MS (default 20) each way, which is what a remote
# registry looks like and where concurrency pays.
# Usage: KILT=build/dev/kilt bench/image/run.sh [N]   (N defaults to 200)
set -euo pipefail
N=${1:-200}
KILT=${KILT:-$(cd "$(dirname "$0")/../.." && pwd)/build/dev/kilt}
export KILT
source "$(dirname "$0")/../../tests/registry/lib.sh"

make_ca
start_registry bench ""
python3 - "$REG" "$CA" "$N" <<'EOP'
import hashlib, http.client, json, ssl, sys
reg, ca, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
host, port = reg.split(":")
ctx = ssl.create_default_context(cafile=ca)
conn = http.client.HTTPSConnection(host, int(port), context=ctx)
def req(method, path, body=b"", headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse(); data = r.read()
    if r.status >= 300:
        raise SystemExit("%s %s: %d %s" % (method, path, r.status, data[:200]))
    return r
def blob(repo, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    r = req("POST", "/v2/%s/blobs/uploads/" % repo)
    loc = r.getheader("Location")
    loc = loc[loc.index("/v2/"):] if "://" in loc else loc
    req("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + d, data,
        {"Content-Type": "application/octet-stream"})
    return d, len(data)
layer = b""
for i in range(n):
    repo = "bench/img%03d" % i
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                      "config": {"Entrypoint": ["/bin/app%d" % i], "Cmd": ["--id", str(i)],
                                 "Env": ["IMAGE=%d" % i]}}).encode()
    d, size = blob(repo, cfg)
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                 "digest": d, "size": size}, "layers": []}).encode()
    req("PUT", "/v2/%s/manifests/v1" % repo, man,
        {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
EOP
LATENCY_MS=${LATENCY_MS:-20}
PPORT=$(free_port)
python3 - "$PPORT" "${REG##*:}" "$LATENCY_MS" <<'EOP' &
import asyncio, sys, time
listen, target, delay = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 1000.0
async def pipe(reader, writer):
    # Each chunk leaves `delay` after it arrived: a link with that latency, not a throttle.
    q = asyncio.Queue()
    async def pump():
        while True:
            data = await reader.read(65536)
            await q.put((time.monotonic() + delay, data))
            if not data:
                return
    asyncio.ensure_future(pump())
    while True:
        due, data = await q.get()
        wait = due - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        if not data:
            writer.close()
            return
        writer.write(data)
        await writer.drain()
async def handle(cr, cw):
    sr, sw = await asyncio.open_connection("127.0.0.1", target)
    await asyncio.gather(pipe(cr, sw), pipe(sr, cw), return_exceptions=True)
async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with srv:
        await srv.serve_forever()
asyncio.run(main())
EOP
PIDS+=($!)
sleep 0.5
refs=()
far=()
for i in $(seq 0 $((N - 1))); do
  refs+=("$(printf '%s/bench/img%03d:v1' "$REG" "$i")")
  far+=("$(printf '127.0.0.1:%s/bench/img%03d:v1' "$PPORT" "$i")")
done

ms() { date +%s%3N; }
run() { # run CONCURRENCY REPEAT -> prints elapsed ms
  local t0 t1
  t0=$(ms)
  "$KILT" image inspect --ca-file "$CA" --concurrency "$1" --repeat "$2" -o json "${refs[@]}" >"$WORK/out.json"
  t1=$(ms)
  echo $((t1 - t0))
}
run 16 1 >/dev/null # warm the registry's own caches and the page cache once
c1=$(run 1 1)
c16=$(run 16 1)
local_refs=("${refs[@]}")
refs=("${far[@]}")
f1=$(run 1 1)
f16=$(run 16 1)
refs=("${local_refs[@]}")
base=$(run 16 1)
many=$(run 16 51)
cached=$((N * 50))
python3 - "$N" "$c1" "$c16" "$base" "$many" "$cached" "$f1" "$f16" "$LATENCY_MS" <<'EOP'
import sys
n, c1, c16, base, many, cached, f1, f16, lat = map(int, sys.argv[1:])
print("image lookups: %d distinct images, local registry over TLS (2 requests each)" % n)
print("  cold, concurrency 1 : %6d ms  (%.1f lookups/s)" % (c1, n * 1000.0 / c1))
print("  cold, concurrency 16: %6d ms  (%.1f lookups/s)" % (c16, n * 1000.0 / c16))
print("  speed-up 16 vs 1    : %.2fx   (registry on the same CPUs: CPU-bound)" % (c1 / c16))
print("  with %d ms latency each way:" % lat)
print("  cold, concurrency 1 : %6d ms  (%.1f lookups/s)" % (f1, n * 1000.0 / f1))
print("  cold, concurrency 16: %6d ms  (%.1f lookups/s)" % (f16, n * 1000.0 / f16))
print("  speed-up 16 vs 1    : %.2fx" % (f1 / f16))
dt = max(many - base, 1)
print("  cached lookups      : %d in %d ms  (%.0f lookups/s)" % (cached, dt, cached * 1000.0 / dt))
EOP
