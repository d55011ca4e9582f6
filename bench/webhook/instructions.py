#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bench/webhook/instructions.py: what a review costs `kilt webhook serve`, counted in
instructions under valgrind's callgrind, so that the figure does not move with the machine's
load (run.py's times do).

Each server answers bench/webhook's reviews (reviews.py) in turn on one kept-alive TLS
connection:

- the request handler: kilt with callgrind collecting only inside the handler of one review
  (decoding it, the Pod engine, the answer, the log line), with the split of that among the
  handler's parts;
- with --whole, also the whole process, kilt and the floor (`--fixed-response`): each counted
  answering N and then 3N reviews, the difference divided by 2N (the start, loading the
  certificate and the recipe, falls out), and the ratio kilt / floor.

Usage: bench/webhook/instructions.py [--kilt build/dev/kilt] [--reviews 60] [--whole]
Needs valgrind (Debian: valgrind; tests/infra/install-deps.sh installs it).
"""
import argparse
import http.client
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import reviews  # noqa: E402
import run  # noqa: E402

# The handler's parts, in the order printed (functions of kilt, the first found of a part's
# names; a part that is inlined or gone is left out of the split).
PARTS = [
    ("decoding the review", "kilt_admission_review_parse"),
    ("the Pod engine", "kilt_k8s_mutate_owned"),
    ("  its walk of the pod", "process_pod"),
    ("  its env merge", "merge_env"),
    ("  the JSON Patch", ("kilt_journal_patch_text", "kilt_journal_patch")),
    ("the answer", "kilt_admission_answer_encode"),
    ("the log line", "log_review"),
    ("letting the review go", "kilt_admission_review_done"),
]


def count(kilt, d, n, bodies, extra, handler_only):
    out = os.path.join(d, f"callgrind.{n}.{'floor' if extra else 'kilt'}.{int(handler_only)}")
    s = run.Server(kilt, d, "cg", os.path.join(d, "tls.crt"), os.path.join(d, "tls.key"), extra)
    toggle = ["--collect-atstart=no", "--toggle-collect=review*"] if handler_only else []
    s.argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *toggle] + s.argv
    with s:
        host, port = s.addr.rsplit(":", 1)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=300)
        for i in range(n):
            c.request("POST", "/mutate", body=bodies[i % len(bodies)],
                      headers={"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            if r.status != 200 or (not extra and b'"patch"' not in data):
                raise SystemExit(f"review {i}: HTTP {r.status} {data[:300]!r}")
        c.close()
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out], capture_output=True,
                          text=True, check=True).stdout
    total = int(re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", text).group(1).replace(",", ""))
    funcs = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S+)", line)
        if m and "'" not in m.group(2):  # callee'2: a recursion's count, counted twice
            name = m.group(2).rsplit(":", 1)[-1]
            funcs.setdefault(name, int(m.group(1).replace(",", "")))
            # a clone the compiler made (log_review.constprop.0) under its function's name
            funcs.setdefault(name.split(".", 1)[0], int(m.group(1).replace(",", "")))
    return total, funcs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kilt", default=os.path.join(SRC, "build", "dev", "kilt"))
    ap.add_argument("--reviews", type=int, default=60)
    ap.add_argument("--whole", action="store_true")
    a = ap.parse_args()
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    d = tempfile.mkdtemp(prefix="kilt-bench-instructions-")
    try:
        run.make_cert(d)
        bodies = reviews.make(12)
        n = a.reviews
        total, funcs = count(a.kilt, d, n, bodies, [], True)
        print(f"request handler, {n} reviews: {total / n / 1000:.1f} K instructions per review")
        for what, names in PARTS:
            fn = next((f for f in ([names] if isinstance(names, str) else names) if f in funcs),
                      None)
            if fn:
                print(f"  {what:28} {funcs[fn] / n / 1000:7.1f} K  {100 * funcs[fn] / total:5.1f} %")
        if a.whole:
            per = {}
            for name, extra in (("floor", ["--fixed-response"]), ("kilt", [])):
                small, _ = count(a.kilt, d, n, bodies, extra, False)
                large, _ = count(a.kilt, d, 3 * n, bodies, extra, False)
                per[name] = (large - small) / (2 * n)
                print(f"whole process, {name:5}: {per[name] / 1000:7.1f} K instructions per review")
            print(f"  ratio kilt / floor: {per['kilt'] / per['floor']:.2f}x")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
