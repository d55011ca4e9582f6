# SPDX-License-Identifier: Apache-2.0
"""The arm64 static helpers under qemu-user (qemu-aarch64-static) as PID 1 of runc containers:
exit codes, signals, reaping, argv, exec failures, agent restart, kilt-wait.

qemu-user is the container's PID 1 and runs kilt-launch's arm64 code; the app is the amd64
busybox, which the kernel runs natively. qemu 7.2 rejects PR_SET_CHILD_SUBREAPER and cannot run
a ptrace tracer for arm64 code, so the subreaper mode and the tracer form are covered by the
amd64 tests only. No binfmt_misc registration is needed (or made).
"""
import os
import subprocess
import time

from harness import (Bundle, check, check_eq, finish, helper, kill_container, need, runc_kill,
                     skip, wait_for)

QEMU = "/usr/bin/qemu-aarch64-static"
KL = ["/qemu-aarch64", "/kilt/bin/kilt-launch"]
KW = ["/qemu-aarch64", "/kilt/bin/kilt-wait"]


def stop(cid, p, sig, timeout=20):
    runc_kill(cid, sig)
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_container(cid)
        return p.wait()


if __name__ == "__main__":
    if os.geteuid() != 0:
        skip("runc containers need root here")
    need("runc", QEMU)
    b = Bundle("arm64", helpers_kind="static-arm64", extra={QEMU: "/qemu-aarch64"})
    try:
        for code in list(range(0, 256, 3)) + [1, 2, 126, 127, 128, 254, 255]:
            rc, out, err = b.run([*KL, "--", "/bin/sh", "-c", f"exit {code}"])
            check_eq(rc, code, f"arm64 exit {code}")
        rc, out, err = b.run([*KL, "--", "/bin/sh", "-c", "kill -SEGV $$; sleep 5"])
        check_eq(rc, 139, "arm64: app killed by SIGSEGV")
        rc, out, err = b.run([*KL, "--", "/bin/printf", "[%s]", "--", "----", "-a"])
        check_eq(out, "[--][----][-a]", "arm64: app argv untouched")
        rc, out, err = b.run([*KL, "--", "/nonexistent"])
        check_eq(rc, 127, "arm64: not found")
        check("/nonexistent" in err, "arm64: message names the path")
        rc, out, err = b.run([*KL, "--", "/bin"])
        check_eq(rc, 126, "arm64: not executable")

        script = ("(sleep 0.3 &); (sleep 0.3 &); sleep 1.2; z=0; for s in /proc/[0-9]*/stat; do "
                  "case \"$(cat $s 2>/dev/null)\" in *') Z '*) z=$((z+1));; esac; done; echo $z > /work/zombies")
        rc, out, err = b.run([*KL, "--", "/bin/sh", "-c", script])
        check_eq(rc, 0, "arm64: orphan script")
        check_eq(open(b.work_file("zombies")).read().strip(), "0", "arm64: orphans reaped as PID 1")

        for trap, want in (("trap 'exit 42' TERM;", 42), ("", 143)):
            ready = b.work_file("ready")
            if os.path.exists(ready):
                os.unlink(ready)
            cid, p = b.start([*KL, "--", "/bin/sh", "-c", f"{trap} touch /work/ready; while :; do sleep 0.02; done"])
            check(wait_for(ready), "arm64: app ready")
            check_eq(stop(cid, p, "TERM"), want, f"arm64: runc kill TERM ({'trap' if trap else 'no trap'})")

        rc, out, err = b.run([*KL, "-a", "3", "/bin/sh", "-c", "echo x >> /work/agent; exit 1", "--", "/bin/sleep", "3.5"])
        check_eq(rc, 0, "arm64: app status with a crashing agent")
        check_eq(open(b.work_file("agent")).read().split(), ["x"] * 3, "arm64: agent restarted at 1 and 3 s")

        cid, p = b.start([*KW])
        time.sleep(1.0)
        check(p.poll() is None, "arm64: kilt-wait waits")
        runc_kill(cid, "HUP")
        time.sleep(0.2)
        check(p.poll() is None, "arm64: kilt-wait ignores HUP")
        check_eq(stop(cid, p, "TERM"), 0, "arm64: kilt-wait exits 0 on TERM")
    finally:
        b.cleanup()
    finish()
