#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bench/webhook: `kilt webhook serve` under load from Debian's wrk, against the same server
answering a fixed response (`--fixed-response`, the floor), measured in the same run.

Reviews: AdmissionReviews of pods a Deployment's ReplicaSet creates, with managedFields, about
10, 20 and 30 KB (reviews.py), sent in turn over TLS on kept-alive connections (reviews.lua).
Every review is first sent once to each server and the answer checked (the real server patches
each pod; the floor allows it).

Two loads, each run for both servers, interleaved (floor, kilt, floor, kilt...) for --rounds:
- throttled: R reviews/s (5,000 by default) on a fixed schedule over C connections: a connection
  that has its response takes the next free slot of the schedule and waits for it (wrk's delay()
  hook, timed with LuaJIT's FFI; Debian's wrk has no fixed-rate mode). Slots are whole
  milliseconds apart in wrk's timers, so requests start in small bursts. A slot already past is
  not made up for: when the server cannot keep up, the rate falls below R and the run says so;
  the percentiles are not corrected for coordinated omission as wrk2's would be.
- saturation: S connections without delay: reviews per second.

Goals (issue 14, on 2 cores): p99 <= 1 ms at 5,000 reviews/s; saturation >= 40 % of the floor's.
The server and wrk share the machine's CPUs (and other work on a shared machine): compare the
figures of one run, not across runs.

Usage: bench/webhook/run.py [--kilt build/dev/kilt] [--seconds 10] [--rounds 2]
       [--connections 50] [--rate 5000] [--saturation-connections 16] [--threads N]
Exit status 3 when a goal is missed.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import reviews  # noqa: E402

RECIPE = os.path.join(SRC, "tests", "k8s-inject", "recipes", "falco.conf")
NAMESPACES = """apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels:
    kubernetes.io/metadata.name: shop
"""


def make_cert(d):
    key, crt = os.path.join(d, "tls.key"), os.path.join(d, "tls.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "1", "-subj", "/CN=kilt-webhook",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return crt, key


class Server:
    def __init__(self, kilt, d, name, crt, key, extra):
        self.log = os.path.join(d, f"{name}.log")
        ns = os.path.join(d, "namespaces.yaml")
        with open(ns, "w") as f:
            f.write(NAMESPACES)
        self.argv = [kilt, "webhook", "serve", "--listen", "127.0.0.1:0", "--tls-cert", crt,
                     "--tls-key", key, "-r", RECIPE,
                     "-n", "kilt-system", "--namespaces", ns, "--no-image-lookup", *extra]
        self.name = name

    def __enter__(self):
        self.errf = open(self.log, "w")
        self.p = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=self.errf)
        end = time.monotonic() + 20
        self.addr = None
        while time.monotonic() < end and not self.addr:
            time.sleep(0.05)
            if self.p.poll() is not None:
                raise SystemExit(f"{self.name}: kilt webhook serve exited {self.p.returncode}:\n"
                                 + open(self.log).read())
            for line in open(self.log):
                try:
                    j = json.loads(line)
                except ValueError:
                    continue
                if j.get("msg") == "listening":
                    self.addr = j.get("address") or j.get("listen")
        if not self.addr:
            raise SystemExit(f"{self.name}: no 'listening' line:\n" + open(self.log).read())
        return self

    def __exit__(self, *exc):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.errf.close()


def post(addr, body):
    host, port = addr.rsplit(":", 1)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
    c.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data)


def wrk(addr, files, connections, seconds, threads, rate=None):
    env = dict(os.environ)
    env.pop("KILT_BENCH_RATE", None)
    if rate is not None:
        env["KILT_BENCH_RATE"] = str(rate / threads)
    argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s",
            "--timeout", "5s", "-s", os.path.join(HERE, "reviews.lua"), f"https://{addr}", "--", *files]
    p = subprocess.run(argv, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"wrk failed ({p.returncode}):\n{p.stdout}{p.stderr}")
    line = [l for l in p.stdout.splitlines() if l.startswith("{")][-1]
    r = json.loads(line)
    r["rate"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def cpu_ms(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kilt", default=os.path.join(SRC, "build", "dev", "kilt"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--rate", type=int, default=5000, help="reviews/s of the throttled load")
    ap.add_argument("--saturation-connections", type=int, default=16)
    ap.add_argument("--wrk-threads", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0, help="server threads (default: one per CPU)")
    a = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk; tests/infra/install-deps.sh)")
    # In memory when the machine has a tmpfs: the servers' logs (a line per review from kilt) go
    # where a container runtime's pipe would take them, not to a disk other work may be
    # writing to (a write(2) that waits for the disk is a review that waits).
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    d = tempfile.mkdtemp(prefix="kilt-bench-webhook-", dir=shm)
    crt, key = make_cert(d)
    bodies = reviews.make(12)
    files = []
    for i, b in enumerate(bodies):
        p = os.path.join(d, f"review-{i}.json")
        with open(p, "w") as f:
            f.write(b)
        files.append(p)
    sizes = sorted({len(b) for b in bodies})
    print(f"reviews: {len(bodies)}, {min(sizes)}..{max(sizes)} bytes; CPUs online: {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    extra = ["--threads", str(a.threads)] if a.threads else []
    with Server(a.kilt, d, "kilt", crt, key, extra) as real, \
            Server(a.kilt, d, "floor", crt, key, extra + ["--fixed-response"]) as floor:
        # Every review answered as it should be, by both.
        for b in bodies:
            st, ans = post(real.addr, b)
            resp = ans.get("response", {})
            uid = json.loads(b)["request"]["uid"]
            if st != 200 or resp.get("uid") != uid or resp.get("patchType") != "JSONPatch" or not resp.get("patch"):
                raise SystemExit(f"kilt did not patch a review: {st} {json.dumps(ans)[:600]}")
            st, ans = post(floor.addr, b)
            if st != 200 or ans.get("response", {}).get("allowed") is not True:
                raise SystemExit(f"the floor did not answer: {st} {ans}")
        print(f"every review patched by kilt (JSONPatch, uid echoed) and allowed by the floor")
        results = {("floor", "throttled"): [], ("kilt", "throttled"): [],
                   ("floor", "saturation"): [], ("kilt", "saturation"): []}
        cpu = {"floor": 0.0, "kilt": 0.0}
        reqs = {"floor": 0, "kilt": 0}
        for rnd in range(a.rounds):
            for load in ("throttled", "saturation"):
                for srv in (floor, real) if rnd % 2 == 0 else (real, floor):
                    c0 = cpu_ms(srv.p.pid)
                    if load == "throttled":
                        r = wrk(srv.addr, files, a.connections, a.seconds, a.wrk_threads, a.rate)
                    else:
                        r = wrk(srv.addr, files, a.saturation_connections, a.seconds, a.wrk_threads)
                    if load == "saturation":
                        cpu[srv.name] += cpu_ms(srv.p.pid) - c0
                        reqs[srv.name] += r["requests"]
                    results[(srv.name, load)].append(r)
                    print(f"round {rnd + 1} {load:10} {srv.name:5}: {r['rate']:8.0f} reviews/s  "
                          f"p50 {r['p50'] / 1000:6.3f} ms  p99 {r['p99'] / 1000:6.3f} ms  "
                          f"p99.9 {r['p999'] / 1000:6.3f} ms  errors {r['errors']} non-2xx {r['non2xx']}",
                          flush=True)
    med = {k: {f: statistics.median(x[f] for x in v) for f in ("rate", "p50", "p99", "p999", "errors", "non2xx")}
           for k, v in results.items()}
    t_f, t_k = med[("floor", "throttled")], med[("kilt", "throttled")]
    s_f, s_k = med[("floor", "saturation")], med[("kilt", "saturation")]
    print()
    print(f"throttled ({a.rate} reviews/s scheduled over {a.connections} connections; "
          f"median of {a.rounds}):")
    print(f"  floor: {t_f['rate']:.0f} reviews/s, p50 {t_f['p50'] / 1000:.3f} ms, p99 {t_f['p99'] / 1000:.3f} ms")
    print(f"  kilt:  {t_k['rate']:.0f} reviews/s, p50 {t_k['p50'] / 1000:.3f} ms, p99 {t_k['p99'] / 1000:.3f} ms")
    print(f"  ratio kilt/floor: p50 {t_k['p50'] / t_f['p50']:.2f}x, p99 {t_k['p99'] / t_f['p99']:.2f}x")
    print(f"saturation ({a.saturation_connections} connections; median of {a.rounds}):")
    print(f"  floor: {s_f['rate']:.0f} reviews/s (p99 {s_f['p99'] / 1000:.3f} ms); "
          f"server CPU {cpu['floor'] / max(reqs['floor'], 1) * 1000:.1f} us/review")
    print(f"  kilt:  {s_k['rate']:.0f} reviews/s (p99 {s_k['p99'] / 1000:.3f} ms); "
          f"server CPU {cpu['kilt'] / max(reqs['kilt'], 1) * 1000:.1f} us/review")
    ratio = s_k["rate"] / s_f["rate"]
    print(f"  ratio kilt/floor: throughput {ratio:.2f} (goal >= 0.40), server CPU per review "
          f"{(cpu['kilt'] / max(reqs['kilt'], 1)) / max(cpu['floor'] / max(reqs['floor'], 1), 1e-9):.2f}x")
    errors = sum(v["errors"] + v["non2xx"] for v in med.values())
    goals = [
        (f"p99 <= 1 ms in the throttled load ({t_k['p99'] / 1000:.3f} ms)", t_k["p99"] <= 1000),
        (f"throttled rate reached {a.rate:,} reviews/s ({t_k['rate']:.0f})", t_k["rate"] >= 0.98 * a.rate),
        ("saturation >= 40 % of the floor's", ratio >= 0.40),
        ("no errors", errors == 0),
    ]
    for what, ok in goals:
        print(f"goal {'met' if ok else 'MISSED'}: {what}")
    shutil.rmtree(d, ignore_errors=True)
    return 0 if all(ok for _, ok in goals) else 3


if __name__ == "__main__":
    sys.exit(main())
