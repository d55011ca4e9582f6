#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bench/macro: the CloudFormation macro under aws-lambda-rie against an echo runtime (the floor).

Both runtimes start the same way: the zip's bundled loader and libraries (the macro through its
`bootstrap`, the echo runtime through the same loader and lib/), so the comparison is the
macro's own work. A third runtime, `macro-curl`, is the macro with KILT_RUNTIME_API_CLIENT=curl:
the libcurl transport the socket one replaced, measured in the same run.

- cold start: a fresh emulator per sample; the time from the first Invoke request (the emulator
  starts the runtime process on it) to its reply, and the emulator's own INIT duration (process
  start until the runtime asks for its first event). Samples of the runtimes are interleaved
  (round robin, rotating the order) so load from other processes spreads evenly over them.
- warm: the latency of one invocation of a ~1 MB template on a warm instance (one instance per
  runtime, invocations interleaved the same way).

The machine may be shared: compare minimums (the floor) and medians over many samples.

Goals (issue): cold start <= 10 ms; warm <= 3x the echo floor.

Usage: bench/macro/run.py --build build/dev   (builds kilt-macro-zip and kilt-echo-runtime there)
       [--cold N] [--warm N] [--only macro,echo] [--json FILE] [--baseline-zip ZIP]
"""
import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RIE = os.path.join(os.environ.get("KILT_PEER_BIN", "/opt/kilt/bin"), "aws-lambda-rie")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Rie:
    def __init__(self, cmd, cwd, extra_env=None):
        self.cmd, self.cwd, self.extra_env = cmd, cwd, extra_env or {}

    def __enter__(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KILT_", "AWS_"))}
        env["LOG_LEVEL"] = "info"
        env.update(self.extra_env)
        # A free port may be taken again before the emulator binds it: then it exits, and a
        # new pair of ports is tried.
        for _ in range(5):
            self.port, api = free_port(), free_port()
            self.log = tempfile.TemporaryFile("w+")
            self.proc = subprocess.Popen(
                [RIE, "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}",
                 "--runtime-api-address", f"127.0.0.1:{api}", *self.cmd],
                cwd=self.cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
            end = time.monotonic() + 30
            while time.monotonic() < end and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    return self
                except OSError:
                    time.sleep(0.01)
            self.__exit__()
            self.log.seek(0)
            print(f"emulator did not start: {self.log.read()[-500:]}", file=sys.stderr)
        raise RuntimeError("emulator did not start")

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait()

    def invoke(self, body):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/2015-03-31/functions/function/invocations",
            data=body, method="POST")
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=60) as r:
            out = r.read()
        return (time.perf_counter() - t0) * 1000, out

    def init_ms(self):
        self.log.seek(0)
        m = re.search(r"INIT REPORT\(durationMs: ([0-9.]+)\)", self.log.read())
        return float(m.group(1)) if m else float("nan")


def task(i):
    return {"Type": "AWS::ECS::TaskDefinition", "Properties": {
        "Family": f"svc{i}", "Cpu": "256", "Memory": "512", "NetworkMode": "awsvpc",
        "RequiresCompatibilities": ["FARGATE"],
        "ContainerDefinitions": [{
            "Name": "app", "Image": f"example.com/app{i}:1.0", "Essential": True,
            "EntryPoint": ["/bin/app"], "Command": ["serve", "--port", "8080"],
            "Environment": [{"Name": f"K{j}", "Value": f"value-{j}"} for j in range(10)],
            "LogConfiguration": {"LogDriver": "awslogs", "Options": {
                "awslogs-group": "app", "awslogs-region": {"Ref": "AWS::Region"},
                "awslogs-stream-prefix": f"svc{i}"}}}]}}


def one_mb_event():
    """About 1 MB of template: 40 Fargate tasks plus ordinary resources; the processed template
    stays under CloudFormation's 1 MB limit."""
    res = {f"Task{i}": task(i) for i in range(40)}
    i = 0
    while len(json.dumps(res, separators=(",", ":"))) < 960 * 1024:
        res[f"Param{i}"] = {"Type": "AWS::SSM::Parameter", "Properties": {
            "Type": "String", "Name": f"/bench/param/{i}",
            "Value": {"Fn::Sub": "${AWS::StackName}-" + "v" * 200 + str(i)}}}
        i += 1
    ev = {"region": "us-east-1", "accountId": "123456789012", "transformId": "1::Kilt",
          "requestId": "bench", "params": {}, "templateParameterValues": {},
          "fragment": {"AWSTemplateFormatVersion": "2010-09-09", "Resources": res}}
    return json.dumps(ev).encode()


SMALL = json.dumps({"region": "us-east-1", "accountId": "1", "requestId": "cold",
                    "transformId": "1::Kilt", "params": {}, "templateParameterValues": {},
                    "fragment": {"Resources": {"Task0": task(0)}}}).encode()


def report_error(name, e, rie):
    rie.log.seek(0)
    tail = rie.log.read()[-1500:]
    what = (f"emulator answered HTTP {e.code}: {e.read()[:200]!r}"
            if isinstance(e, urllib.error.HTTPError) else f"invoke failed: {e!r}")
    print(f"{name}: {what}\n{tail}", file=sys.stderr)


def stats(xs):
    xs = sorted(xs)
    return {"min": xs[0], "median": statistics.median(xs), "p90": xs[int(len(xs) * 0.9) - 1]}


def fmt(s):
    return f"min {s['min']:6.2f}  median {s['median']:6.2f}  p90 {s['p90']:6.2f} ms"


def cold_sample(name, cmd, env, tmp):
    """(first invoke ms, RIE init ms), or None when the emulator answered with an error."""
    with Rie(cmd, tmp, env) as rie:
        try:
            ms, out = rie.invoke(SMALL)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            report_error(name, e, rie)
            return None
        assert json.loads(out)["status"] == "success", out[:300]
        return ms, rie.init_ms()


def warm_samples(runtimes, tmp, n, big):
    """One warm instance per runtime, all up at once; invocations interleaved like cold starts.
    Returns name -> (latencies, errors, reply bytes)."""
    names = list(runtimes)
    out = {name: ([], 0, 0) for name in names}
    with contextlib.ExitStack() as stack:
        ries = {name: stack.enter_context(Rie(cmd, tmp, env))
                for name, (cmd, env) in runtimes.items()}
        for i in range(n + 3):
            for name in names[i % len(names):] + names[:i % len(names)]:
                times, errors, size = out[name]
                try:
                    ms, reply = ries[name].invoke(big)
                except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
                    out[name] = (times, errors + 1, size)
                    report_error(name, e, ries[name])
                    continue
                r = json.loads(reply)
                assert r["status"] == "success", r.get("errorMessage")
                if i >= 3:  # the first ones warm caches up
                    times.append(ms)
                out[name] = (times, errors, len(reply))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(SRC, "build", "dev"))
    ap.add_argument("--cold", type=int, default=30, help="cold starts per runtime")
    ap.add_argument("--warm", type=int, default=40, help="warm invocations per runtime")
    ap.add_argument("--only", default="macro,macro-curl,echo",
                    help="runtimes to run (macro, macro-curl, echo)")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--baseline-zip",
                    help="another macro zip (e.g. built from an older commit) to run as the "
                         "runtime `baseline` in the same run")
    args = ap.parse_args()
    subprocess.run(["cmake", "--build", args.build, "--target", "kilt-macro-zip",
                    "kilt-echo-runtime"], check=True, stdout=subprocess.DEVNULL)
    if not os.access(RIE, os.X_OK):
        subprocess.run(["bash", os.path.join(SRC, "tests/infra/peer-lambda-rie.sh")], check=True)
    tmp = tempfile.mkdtemp(prefix="kilt-bench-macro.")
    try:
        with zipfile.ZipFile(os.path.join(args.build, "tests/macro/kilt-macro-amd64.zip")) as z:
            for info in z.infolist():
                os.chmod(z.extract(info, tmp), (info.external_attr >> 16) & 0o777)
        echo = os.path.join(tmp, "bin", "echo-runtime")
        shutil.copy(os.path.join(args.build, "bench/macro/kilt-echo-runtime"), echo)
        loader = [os.path.join(tmp, "lib", "ld-linux-x86-64.so.2"), "--inhibit-cache",
                  "--library-path", os.path.join(tmp, "lib")]
        boot = [os.path.join(tmp, "bootstrap")]
        known = {"macro": (boot, {}),
                 "macro-curl": (boot, {"KILT_RUNTIME_API_CLIENT": "curl"}),
                 "echo": (loader + [echo], {})}
        if args.baseline_zip:
            base = os.path.join(tmp, "baseline")
            with zipfile.ZipFile(args.baseline_zip) as z:
                for info in z.infolist():
                    os.chmod(z.extract(info, base), (info.external_attr >> 16) & 0o777)
            known["baseline"] = ([os.path.join(base, "bootstrap")], {})
            if "baseline" not in args.only.split(","):
                args.only += ",baseline"
        names = [n for n in args.only.split(",") if n]
        for n in names:
            if n not in known:
                ap.error(f"unknown runtime {n} (known: {', '.join(known)})")
        runtimes = {n: known[n] for n in names}
        big = one_mb_event()
        cold = {n: [] for n in runtimes}
        init = {n: [] for n in runtimes}
        errors = dict.fromkeys(runtimes, 0)
        for i in range(args.cold):
            order = names[i % len(names):] + names[:i % len(names)]
            for n in order:
                got = cold_sample(n, runtimes[n][0], runtimes[n][1], tmp)
                if got is None:
                    errors[n] += 1
                    continue
                cold[n].append(got[0])
                init[n].append(got[1])
        results = {}
        warm_all = warm_samples(runtimes, tmp, args.warm, big)
        for n in runtimes:
            warm, errs, reply_bytes = warm_all[n]
            errors[n] += errs
            if errors[n]:
                print(f"{n}: {errors[n]} invocations failed at the emulator (see above)",
                      file=sys.stderr)
            results[n] = {"cold": stats(cold[n]), "init": stats(init[n]), "warm": stats(warm),
                          "reply_bytes": reply_bytes, "samples": len(cold[n])}
        print(f"event: {len(big)} bytes; {args.cold} cold starts and {args.warm} warm "
              f"invocations per runtime; load average {os.getloadavg()[0]:.1f}")
        for n in runtimes:
            r = results[n]
            print(f"{n:10} cold start (first invoke) {fmt(r['cold'])}")
            print(f"{n:10} runtime init (RIE)        {fmt(r['init'])}")
            print(f"{n:10} warm, 1 MB template       {fmt(r['warm'])}")
        if "macro" in results and "echo" in results:
            m, e = results["macro"], results["echo"]
            print(f"warm ratio macro/echo: median {m['warm']['median'] / e['warm']['median']:.2f}x, "
                  f"min {m['warm']['min'] / e['warm']['min']:.2f}x (goal <= 3x)")
            print(f"cold start macro - echo: median "
                  f"{m['cold']['median'] - e['cold']['median']:+.2f} ms, min "
                  f"{m['cold']['min'] - e['cold']['min']:+.2f} ms")
        if "macro" in results:
            c = results["macro"]["cold"]
            print(f"macro cold start: min {c['min']:.2f} ms, median {c['median']:.2f} ms "
                  f"(goal <= 10 ms)")
        if "macro" in results and "macro-curl" in results:
            print(f"socket transport vs libcurl: cold start median "
                  f"{results['macro']['cold']['median'] - results['macro-curl']['cold']['median']:+.2f} ms, "
                  f"warm median {results['macro']['warm']['median'] - results['macro-curl']['warm']['median']:+.2f} ms")
        if "macro" in results and "baseline" in results:
            m, b = results["macro"]["cold"], results["baseline"]["cold"]
            print(f"macro vs baseline zip: cold start min {m['min'] - b['min']:+.2f} ms, "
                  f"median {m['median'] - b['median']:+.2f} ms")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
