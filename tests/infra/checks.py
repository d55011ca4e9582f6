# SPDX-License-Identifier: Apache-2.0
"""The checks of the Python tests: each prints what it checked, "ok:" or "FAIL:", and the run
carries on, so one run reports every broken case; result() gives the exit status.

Import it with tests/infra on sys.path (the Kubernetes tests' PYTHONPATH has it).
"""
import sys

failures = []  # what failed, in order


def check(cond, what):
    """Records whether `cond` holds, saying `what`; returns `cond`."""
    print(("ok:   " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def result(passed="ok"):
    """The exit status: 0 when every check held (says `passed`), else 1 (says how many failed)."""
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr, flush=True)
        return 1
    print(passed, flush=True)
    return 0
