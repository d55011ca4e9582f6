# SPDX-License-Identifier: Apache-2.0
"""The Kubernetes golden runner (tests/k8s-inject/golden.py) leaves nothing in the temporary
directory, whether its case passes or fails: it runs with TMPDIR set to an empty directory on a
case that passes (recipe-change, which writes the pre-run's output there too), on the same case
with a wrong expected output, and on a case whose pre-run fails; the runner's exit status is
checked each time, then that nothing is left in TMPDIR.
"""
import os
import shutil
import subprocess
import sys
import tempfile

SRC = os.environ.get("KILT_SOURCE_DIR",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
RUNNER = os.path.join(SRC, "tests", "k8s-inject", "golden.py")
CASE = os.path.join(SRC, "tests", "golden", "k8s", "recipe-change")
failures = []


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(case_dir, tmpdir):
    p = subprocess.run([sys.executable, RUNNER, case_dir], capture_output=True, text=True,
                       env={**os.environ, "TMPDIR": tmpdir})
    return p.returncode, p.stdout + p.stderr


def main():
    work = tempfile.mkdtemp(prefix="kilt-k8s-runner-cleanup-")
    try:
        tmpdir = os.path.join(work, "tmp")
        os.mkdir(tmpdir)
        rc, out = run(CASE, tmpdir)
        check(rc == 0, f"recipe-change passes ({rc}): {out.strip()}")
        check(os.listdir(tmpdir) == [], f"nothing left after a pass: {os.listdir(tmpdir)}")

        wrong = os.path.join(work, "wrong-want")
        shutil.copytree(CASE, wrong)
        with open(os.path.join(wrong, "want.yaml"), "a") as f:
            f.write("# not what kilt writes\n")
        rc, out = run(wrong, tmpdir)
        check(rc == 1 and "output differs" in out, f"a wrong want.yaml fails ({rc}): {out[:300]}")
        check(os.listdir(tmpdir) == [], f"nothing left after a failure: {os.listdir(tmpdir)}")

        bad_pre = os.path.join(work, "bad-pre")
        shutil.copytree(CASE, bad_pre)
        with open(os.path.join(bad_pre, "pre-args"), "w") as f:
            f.write("--no-such-option\n")
        rc, out = run(bad_pre, tmpdir)
        check(rc == 1 and "pre-run failed" in out, f"a failing pre-run fails ({rc}): {out[:300]}")
        check(os.listdir(tmpdir) == [], f"nothing left after a failed pre-run: {os.listdir(tmpdir)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
