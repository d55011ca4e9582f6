#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Benchmark: the static kilt-launch against Debian's static tini, measured in the same run.

Prints binary size, peak RSS of the supervisor while it supervises, and the overhead of
launching a trivial program N times, each as a ratio to tini. Goals (docs/runtime.md): RSS <=
tini, overhead <= 1.2x tini, static amd64 kilt-launch <= 128 KiB. Run by hand or through the
`bench-launcher` target; never a ctest test.

Usage: run.py [--launcher PATH] [--tini PATH] [--runs N]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def build_static():
    out = os.path.join(SRC, "build", "static")
    subprocess.run(["cmake", "-S", SRC, "--preset", "static"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", out], check=True, stdout=subprocess.DEVNULL)
    return os.path.join(out, "runtime", "kilt-launch")


def peak_rss_kib(argv):
    """VmHWM of the supervisor (not its child) while the child sleeps."""
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    time.sleep(0.5)
    hwm = None
    with open(f"/proc/{p.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    p.wait()
    return hwm


def spawn_many(argv, n):
    """Wall time of n sequential spawn+wait of argv."""
    env = {"PATH": "/usr/bin:/bin"}
    t0 = time.perf_counter()
    for _ in range(n):
        pid = os.posix_spawn(argv[0], argv, env)
        os.waitpid(pid, 0)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--launcher", help="static kilt-launch (default: build the static preset)")
    ap.add_argument("--tini", default="/usr/bin/tini-static")
    ap.add_argument("--runs", type=int, default=1000)
    a = ap.parse_args()
    kl = a.launcher or build_static()
    tini = a.tini
    if not os.path.exists(tini):
        sys.exit(f"{tini} is missing (Debian package tini)")
    true = "/bin/true"

    size_k, size_t = os.path.getsize(kl), os.path.getsize(tini)
    sleep = ["/bin/sleep", "1"]
    rss_k = statistics.median(peak_rss_kib([kl, "--", *sleep]) for _ in range(3))
    rss_t = statistics.median(peak_rss_kib([tini, "-s", "--", *sleep]) for _ in range(3))

    # Interleaved rounds, so that drift of a busy machine hits every variant alike; the median
    # round is reported.
    rounds = 20
    per = max(1, a.runs // rounds)
    direct, kilt, tin = [], [], []
    for _ in range(rounds):
        direct.append(spawn_many([true], per) / per)
        kilt.append(spawn_many([kl, "--", true], per) / per)
        tin.append(spawn_many([tini, "-s", "--", true], per) / per)
    n = rounds * per
    d_med, k_med, t_med = (statistics.median(x) for x in (direct, kilt, tin))
    t_kilt, t_tini, t_direct = k_med * n, t_med * n, d_med * n
    ov_k, ov_t = k_med - d_med, t_med - d_med

    print(f"kilt-launch: {kl}\ntini:        {tini}\n")
    print(f"{'metric':<34}{'kilt-launch':>14}{'tini-static':>14}{'ratio':>9}")
    print(f"{'binary size (bytes)':<34}{size_k:>14}{size_t:>14}{size_k / size_t:>9.3f}")
    print(f"{'peak RSS supervising (KiB)':<34}{rss_k:>14}{rss_t:>14}{rss_k / rss_t:>9.3f}")
    print(f"{f'{n} x launch /bin/true (s, median)':<34}{t_kilt:>14.3f}{t_tini:>14.3f}{t_kilt / t_tini:>9.3f}")
    print(f"{'overhead per launch vs direct (us)':<34}{ov_k * 1e6:>14.1f}{ov_t * 1e6:>14.1f}{ov_k / ov_t:>9.3f}")
    print(f"\n(direct spawn of /bin/true: {t_direct / n * 1e6:.1f} us each)")
    goals = [("size <= 128 KiB", size_k <= 128 * 1024), ("RSS <= tini", rss_k <= rss_t),
             ("overhead <= 1.2x tini", ov_k <= 1.2 * ov_t)]
    for name, ok in goals:
        print(f"goal {name}: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
