#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""kilt exec on 50 pods of the test cluster (tests/infra/k8s_cluster.py), all measured in the
same run on the same pods:

  bare      `kubectl exec POD -- true` on each pod, one after the other (the baseline: what any
            per-pod kubectl round trip costs here)
  serial    `kilt exec --parallel 1` applying a recipe (one inline file, one background program
            started through kilt-launch) to the 50 pods
  parallel  `kilt exec --parallel 8`, the same recipe, on the same pods (another --dir, so it is
            a full application again, not a no-op)
  again     `kilt exec --parallel 8` once more: every container unchanged (the pod annotation
            shows it, so kilt enters none), then the same with --verify (each is entered)

The three are measured in turn, twice (bare, serial, parallel, bare, serial, parallel: the
machine's load drifts), each kilt run with its own --dir so that it installs. Prints the sums,
the load average before and after, and the ratios: serial / parallel (goal >= 5) and serial per pod / bare
per pod (goal <= 3).

Where the CPU goes: around each measured run, the CPU time of the client (kilt and the kubectl
processes it starts, from getrusage of this process's children) and of each cluster process
(/proc/PID/stat: user + system time, with that of the children they reaped, so the containerd
shims count runc and what runs in the containers), per pod. With C the CPU time of a pod summed
over all of them and W the serial wall time of a pod, N cores can at best run W / (C / N) times
faster than serially: that bound is printed beside the ratio. Usage: bench/exec/run.py [PODS]
(KILT = the kilt binary)
"""
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import k8s_cluster

KILT = os.environ["KILT"]
SRC = os.environ.get("KILT_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid):
    """user + system time of pid and of the children it reaped, in seconds (0 when gone)"""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return 0.0
    fields = text[text.rindex(")") + 2:].split()
    return sum(int(x) for x in fields[11:15]) / TICK


def cluster_cpu(c):
    """component -> CPU seconds so far: the cluster's daemons, and its containerd shims"""
    out = {name: cpu_of(p.pid) for name, p in c.procs.items()}
    shims = 0.0
    sock = c.containerd_sock.encode()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if b"containerd-shim" in cmd and sock in cmd:
                shims += cpu_of(pid)
    out["shims (runc, in the containers)"] = shims
    return out


class Cpu:
    """CPU seconds per component, summed over the runs measured with it"""

    def __init__(self, c):
        self.c = c
        self.by = {}

    def measure(self, fn):
        r0, s0 = resource.getrusage(resource.RUSAGE_CHILDREN), cluster_cpu(self.c)
        out = fn()
        r1, s1 = resource.getrusage(resource.RUSAGE_CHILDREN), cluster_cpu(self.c)
        d = {k: v - s0.get(k, 0.0) for k, v in s1.items()}
        d["client (kilt, kubectl)"] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        for k, v in d.items():
            self.by[k] = self.by.get(k, 0.0) + v
        return out

    def total(self):
        return sum(self.by.values())


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    work = tempfile.mkdtemp(prefix="kilt-bench-exec-")
    launcher = os.path.join(work, "kilt-launch")
    subprocess.run(["musl-gcc", "-static", "-Os", "-s", "-o", launcher,
                    os.path.join(SRC, "runtime", "kilt-launch.c")], check=True)
    recipe = os.path.join(work, "bench.conf")
    with open(recipe, "w") as f:
        f.write('patch {\n  upload: [ { text: "agent settings\\n", as: /etc/agent.cfg, mode: "0644" } ]\n'
                '  background_exec: [ "/bin/sleep 2147483647" ]\n}\n')
    c = k8s_cluster.Cluster()
    c.start()
    t_start = time.monotonic()
    try:
        env = c.env()
        items = [{"apiVersion": "v1", "kind": "Pod",
                  "metadata": {"name": f"b{i:02d}", "labels": {"bench": "exec"}},
                  "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
                      "name": "app", "image": k8s_cluster.IMAGES["busybox"],
                      "imagePullPolicy": "Never", "command": ["sleep", "2147483647"]}]}}
                 for i in range(n)]
        c.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        c.kubectl("wait", "--for=condition=Ready", "pod", "-l", "bench=exec", "--timeout=300s", timeout=330)
        names = [it["metadata"]["name"] for it in items]
        kubectl = os.path.join(k8s_cluster.BIN, "kubectl")

        cpu = {k: Cpu(c) for k in ("bare", "serial", "parallel", "again", "verify")}

        def bare_round():
            t0 = time.monotonic()
            for name in names:
                subprocess.run([kubectl, "exec", name, "--", "true"], check=True, env=env,
                               capture_output=True)
            return time.monotonic() - t0

        def run(*args):
            t = time.monotonic()
            p = subprocess.run([KILT, "exec", "-r", recipe, "-l", "bench=exec", "--launcher", launcher,
                                "-o", "json", *args], capture_output=True, text=True, env=env)
            took = time.monotonic() - t
            res = json.loads(p.stdout) if p.stdout.strip() else {}
            return took, res, p

        load0 = os.getloadavg()[0]
        bare = serial = parallel = 0.0
        for rnd in range(2):
            bare += cpu["bare"].measure(bare_round)
            took, r1, p1 = cpu["serial"].measure(lambda: run("--parallel", "1", "--dir", f"/kilt-s{rnd}"))
            serial += took
            took, r8, p8 = cpu["parallel"].measure(lambda: run("--parallel", "8", "--dir", f"/kilt-p{rnd}"))
            parallel += took
            for what, r, p in (("serial", r1, p1), ("parallel", r8, p8)):
                if r["applied"] != n or p.returncode != 0:
                    print(f"{what}: {r['applied']} of {n} applied, exit {p.returncode}: {p.stderr[-2000:]}")
                    return 1
        again, ra, pa = cpu["again"].measure(lambda: run("--parallel", "8", "--dir", "/kilt-p1"))
        if ra["unchanged"] != n:
            print(f"again: {ra['unchanged']} of {n} unchanged")
            return 1
        verify, rv, pv = cpu["verify"].measure(lambda: run("--parallel", "8", "--dir", "/kilt-p1", "--verify"))
        if pv.returncode != 2 and rv.get("unchanged") != n:
            print(f"again --verify: {rv['unchanged']} of {n} unchanged")
            return 1
        load1 = os.getloadavg()[0]
    finally:
        c.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"kilt exec on {n} pods (one node, {os.cpu_count()} cores shared with everything else; "
          f"cluster time {time.monotonic() - t_start:.0f} s)")
    print(f"  load average (1 min) before / after     : {load0:.1f} / {load1:.1f}")
    print(f"  two rounds of each, summed ({2 * n} pod applications each):")
    print(f"  bare kubectl exec POD -- true, serially : {bare:7.2f} s  ({bare / n / 2 * 1000:6.0f} ms/pod)")
    print(f"  kilt exec --parallel 1                  : {serial:7.2f} s  ({serial / n / 2 * 1000:6.0f} ms/pod)")
    print(f"  kilt exec --parallel 8                  : {parallel:7.2f} s  ({parallel / n / 2 * 1000:6.0f} ms/pod)")
    print(f"  kilt exec --parallel 8, all unchanged   : {again:7.2f} s  (one round)")
    if pv.returncode == 2:
        print("  kilt exec --parallel 8 --verify         : (this kilt has no --verify)")
    else:
        print(f"  kilt exec --parallel 8 --verify, same   : {verify:7.2f} s  (one round)")
    print(f"  ratio serial / parallel 8               : {serial / parallel:5.2f}x  (goal >= 5)")
    print(f"  ratio serial per pod / bare exec        : {serial / bare:5.2f}x  (goal <= 3)")
    print("  CPU time per pod (ms), summed over every process involved:")
    runs = [("bare", 2 * n), ("serial", 2 * n), ("parallel", 2 * n), ("again", n), ("verify", n)]
    comps = sorted(cpu["serial"].by, key=lambda k: -cpu["serial"].by[k])
    print("  " + f"{'':32s}" + "".join(f"{r:>10s}" for r, _ in runs))
    for k in comps:
        print(f"  {k:32s}" + "".join(f"{cpu[r].by.get(k, 0) / m * 1000:10.1f}" for r, m in runs))
    print(f"  {'all (C)':32s}" + "".join(f"{cpu[r].total() / m * 1000:10.1f}" for r, m in runs))
    cores = os.cpu_count()
    w = serial / n / 2
    cs = cpu["serial"].total() / n / 2
    print(f"  bound on {cores} cores, serial W / (C / {cores}) = {w * 1000:.0f} / ({cs * 1000:.0f} / "
          f"{cores}) = {w / (cs / cores):.2f}x  (the ratio serial / parallel 8 cannot exceed it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
