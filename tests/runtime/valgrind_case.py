# SPDX-License-Identifier: Apache-2.0
"""kilt-launch and kilt-wait under valgrind memcheck (a dynamic, unsanitised build): no errors,
no leaks, in the plain form, with agents restarting, with signals, in the tracer form (shim
included) and on usage and exec errors."""
import os
import signal
import subprocess
import time

from harness import check, check_eq, finish, helper, need, tmpdir, wait_for

VG = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full", "--show-leak-kinds=all",
      "--errors-for-leak-kinds=all", "--child-silent-after-fork=yes"]


def vg(args, what, want, send=None, ready=None, timeout=60):
    env = dict(os.environ)
    env.pop("KILT_DEBUG", None)
    p = subprocess.Popen(VG + args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    if send:
        check(wait_for(ready, 30), f"{what}: app ready")
        time.sleep(0.2)
        p.send_signal(send)
    try:
        rc = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    err = p.stderr.read()
    check_eq(rc, want, f"{what}: status under valgrind")
    check("==" not in err, f"{what}: valgrind reported something: {err}")


if __name__ == "__main__":
    need("valgrind", "strace")
    kl = helper("plain", "kilt-launch")
    kw = helper("plain", "kilt-wait")
    d = tmpdir("valgrind")
    vg([kl, "--", "sh", "-c", "exit 3"], "plain", 3)
    vg([kl, "--", "/nonexistent/app"], "exec failure", 127)
    vg([kl, "-a", "0", "x", "--", "true"], "usage error", 2)
    vg([kl, "-a", "3", "sh", "-c", "exit 1", "--", "sh", "-c", "sleep 1.5; exit 4"], "agent restart", 4)
    vg([kl, "--policy", "stop", "-a", "3", "sh", "-c", "sleep 0.5; exit 1", "--", "sleep", "20"], "policy stop", 143)
    r = os.path.join(d, "ready")
    vg([kl, "-a", "2", "sleep", "60", "--", "sh", "-c", f"trap 'exit 42' TERM; touch {r}; while :; do sleep 0.02; done"],
       "TERM forwarding with an agent", 42, send=signal.SIGTERM, ready=r)
    vg([kl, "-t", "4", "strace", "-f", "-o", os.path.join(d, "trace"), "--", "sh", "-c", "exit 6"], "tracer form", 6)
    # The shim on its own (normally the tracer starts it): it reports pid and status on fd 3.
    vg(["sh", "-c", f'exec 3>{os.path.join(d, "status")}; exec "$@"', "sh", kl, "--shim-status-fd", "3", "--",
        "sh", "-c", "exit 7"], "shim", 7)
    check_eq(os.path.getsize(os.path.join(d, "status")), 16, "shim wrote two 8-byte messages")
    p = subprocess.Popen(VG + [kw], stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    p.send_signal(signal.SIGTERM)
    rc = p.wait(timeout=20)
    check_eq(rc, 0, "kilt-wait under valgrind")
    check("==" not in p.stderr.read(), "kilt-wait: valgrind is quiet")
    finish()
