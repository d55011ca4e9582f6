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
sys.path.insert(0, os.path.join(SRC, "tests", "infra"))
from checks import check, result  # noqa: E402


def wrong_want(case):
    with open(os.path.join(case, "want.yaml"), "a") as f:
        f.write("# not what kilt writes\n")


def failing_pre_run(case):
    with open(os.path.join(case, "pre-args"), "w") as f:
        f.write("--no-such-option\n")


def main():
    work = tempfile.mkdtemp(prefix="kilt-k8s-runner-cleanup-")
    try:
        tmpdir = os.path.join(work, "tmp")
        os.mkdir(tmpdir)
        # (what is done to the case, the runner's exit status, what its output says)
        for change, status, says in ((None, 0, "recipe-change: ok"),
                                     (wrong_want, 1, "output differs"),
                                     (failing_pre_run, 1, "the pre-run failed")):
            what = change.__name__.replace("_", " ") if change else "a pass"
            case = CASE
            if change:
                case = os.path.join(work, change.__name__)
                shutil.copytree(CASE, case)
                change(case)
            p = subprocess.run([sys.executable, RUNNER, case], capture_output=True, text=True,
                               env={**os.environ, "TMPDIR": tmpdir})
            out = p.stdout + p.stderr
            check(p.returncode == status and says in out,
                  f"{what}: exit status {p.returncode}, output: {out[:300]}")
            check(os.listdir(tmpdir) == [], f"{what}: nothing left in TMPDIR: {os.listdir(tmpdir)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result()


if __name__ == "__main__":
    sys.exit(main())
