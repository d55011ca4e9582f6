# SPDX-License-Identifier: Apache-2.0
"""The static helpers as PID 1 of real runc containers (busybox-static rootfs, no libc).

Usage: container_cases.py exit-codes|pid1|wait|agent-ready|static-check
"""
import json
import os
import subprocess
import sys
import time

from harness import (Bundle, check, check_eq, finish, helper, kill_container, log, need, runc_kill,
                     sig_num, skip, wait_for)

KL = "/kilt/bin/kilt-launch"
KW = "/kilt/bin/kilt-wait"


def read_words(path):
    return open(path).read().split() if os.path.exists(path) else []


def wait_app_started(cid, timeout=10.0):
    """True once the container's PID 1 has a child: kilt-launch blocks signals before forking."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        pid = host_pid(cid)
        if pid:
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    if f.read().strip():
                        return True
            except OSError:
                pass
        time.sleep(0.02)
    return False


def wait_exe(cid, exe, timeout=10.0):
    """True once the container's PID 1 runs exe (before that it is runc's init)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        pid = host_pid(cid)
        try:
            if pid and os.readlink(f"/proc/{pid}/exe") == exe:
                return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def need_root():
    if os.geteuid() != 0:
        skip("runc containers need root here (rootless runc is not set up)")
    need("runc")


def case_static_check():
    """Every helper is statically linked (no INTERP, no NEEDED); amd64 kilt-launch <= 128 KiB."""
    need("readelf")
    for kind, machine in (("static", "X86-64"), ("static-arm64", "AArch64")):
        for name in ("kilt-launch", "kilt-wait"):
            p = helper(kind, name)
            hdr = subprocess.run(["readelf", "-h", p], capture_output=True, text=True).stdout
            check(machine in hdr, f"{kind}/{name} is {machine}")
            ph = subprocess.run(["readelf", "-lW", p], capture_output=True, text=True).stdout
            dyn = subprocess.run(["readelf", "-dW", p], capture_output=True, text=True).stdout
            check("INTERP" not in ph, f"{kind}/{name} has no program interpreter")
            check("(NEEDED)" not in dyn, f"{kind}/{name} needs no shared library")
            check("DYNAMIC" not in ph, f"{kind}/{name} has no dynamic section")
            log(f"{kind}/{name}: {os.path.getsize(p)} bytes")
    size = os.path.getsize(helper("static", "kilt-launch"))
    check(size <= 128 * 1024, f"static amd64 kilt-launch is {size} bytes, limit 131072")


def case_exit_codes():
    need_root()
    b = Bundle("exit")
    try:
        for code in range(256):
            rc, out, err = b.run([KL, "--", "/bin/sh", "-c", f"exit {code}"])
            check_eq(rc, code, f"exit {code} as PID 1")
            check_eq(err, "", f"exit {code} is silent")
        # (busybox sh ignores SIGQUIT, so it is tested through runc kill below.)
        for name in ("HUP", "INT", "ABRT", "KILL", "USR1", "SEGV", "USR2", "PIPE", "ALRM", "TERM"):
            n = sig_num(name)
            rc, out, err = b.run([KL, "--", "/bin/sh", "-c", f"kill -{n} $$; sleep 5"])
            check_eq(rc, 128 + n, f"app killed by SIG{name} as PID 1")
        # Signals sent by the runtime to PID 1 kill the app; the status says which.
        for name in ("QUIT", "TERM", "INT", "HUP", "USR1", "RTMIN+2"):
            n = sig_num(name) if "+" not in name else sig_num("RTMIN") + int(name.split("+")[1])
            cid, p = b.start([KL, "--", "/bin/sleep", "30"])
            # Before kilt-launch runs, PID 1 is runc's own init, which drops most signals.
            check(wait_app_started(cid), f"app started for SIG{name}")
            runc_kill(cid, str(n))
            try:
                rc = p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                kill_container(cid)
                rc = p.wait()
            check_eq(rc, 128 + n, f"runc kill SIG{name}: app dies of it")
        # Exec failures inside the container.
        rc, out, err = b.run([KL, "--", "/nonexistent/app", "x"])
        check_eq(rc, 127, "not found as PID 1")
        check("/nonexistent/app" in err, "message names the missing app")
        rc, out, err = b.run([KL, "--", "/bin"])
        check_eq(rc, 126, "a directory is not executable")
        check("cannot execute /bin" in err, "message names the directory")
        open(b.work_file("plain"), "w").write("data\n")
        rc, out, err = b.run([KL, "--", "/work/plain"])
        check_eq(rc, 126, "not executable as PID 1")
        rc, out, err = b.run([KL])
        check_eq(rc, 2, "usage error as PID 1")
    finally:
        b.cleanup()


def case_pid1():
    need_root()
    b = Bundle("pid1")
    try:
        # kilt-launch really is PID 1 and the app its child.
        rc, out, err = b.run([KL, "--", "/bin/sh", "-c", "echo $$ $PPID; cat /proc/1/cmdline"])
        words = out.split()
        check(rc == 0 and len(words) >= 3 and words[0] != "1" and words[1] == "1"
              and words[2].startswith(KL + "\0--\0"), f"app is a child of PID 1 = kilt-launch: {out!r}")

        # Arguments containing -- and ---- reach the app untouched.
        rc, out, err = b.run([KL, "--", "/bin/printf", "[%s]", "--", "----", "-a", "2", "--policy", "stop", "-t"])
        check_eq(out, "[--][----][-a][2][--policy][stop][-t]", "app argv as PID 1")

        # Orphaned grandchildren are reparented to PID 1 and reaped.
        script = ("(sleep 0.3 & echo $! > /work/o1); (sleep 0.3 & echo $! > /work/o2); sleep 0.1; "
                  "for o in o1 o2; do grep '^PPid:' /proc/$(cat /work/$o)/status | tr -d '\\t' >> /work/ppids; done; "
                  "sleep 1; z=0; for s in /proc/[0-9]*/stat; do case \"$(cat $s 2>/dev/null)\" in *') Z '*) z=$((z+1));; esac; done; "
                  "echo $z > /work/zombies; exit 3")
        rc, out, err = b.run([KL, "--", "/bin/sh", "-c", script])
        check_eq(rc, 3, "orphan script status")
        check_eq(open(b.work_file("ppids")).read().split(), ["PPid:1", "PPid:1"], "orphans reparented to PID 1")
        check_eq(open(b.work_file("zombies")).read().strip(), "0", "no zombies left in the container")

        # SIGTERM from the runtime reaches the app; the status is the app's.
        for trap, want in (("trap 'exit 42' TERM;", 42), ("", 143)):
            ready = b.work_file("ready")
            if os.path.exists(ready):
                os.unlink(ready)
            cid, p = b.start([KL, "--", "/bin/sh", "-c", f"{trap} touch /work/ready; while :; do sleep 0.02; done"])
            check(wait_for(ready), "app ready for TERM")
            runc_kill(cid, "TERM")
            try:
                rc = p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                kill_container(cid)
                rc = p.wait()
            check_eq(rc, want, f"runc kill TERM with {'a trap' if trap else 'no trap'}")

        # Every other catchable signal too. (Not URG: the foreground `runc run` forwards the
        # SIGURGs of its own Go runtime to the container, so the count would be runc's.)
        names = ["HUP", "INT", "QUIT", "USR1", "USR2", "WINCH", "CONT", "ALRM"]
        for f in ("ready", "log"):
            if os.path.exists(b.work_file(f)):
                os.unlink(b.work_file(f))
        traps = "".join(f"trap 'echo {n} >> /work/log' {n}; " for n in names)
        cid, p = b.start([KL, "--", "/bin/sh", "-c", traps + "trap 'exit 44' TERM; touch /work/ready; while :; do sleep 0.02; done"])
        check(wait_for(b.work_file("ready")), "app ready for the signal list")
        for n in names:
            runc_kill(cid, n)
            end = time.monotonic() + 5
            while time.monotonic() < end and n not in read_words(b.work_file("log")):
                time.sleep(0.01)
        runc_kill(cid, "TERM")
        check_eq(p.wait(timeout=20), 44, "TERM after the signal list")
        got = read_words(b.work_file("log"))
        check_eq(got, names, "every signal reached the app in the container")

        # An agent restarted with backoff while the app runs; silence otherwise.
        rc, out, err = b.run([KL, "-a", "3", "/bin/sh", "-c", "echo x >> /work/agent; exit 1", "--", "/bin/sleep", "3.5"])
        check_eq(rc, 0, "app status with a crashing agent")
        check_eq(open(b.work_file("agent")).read().split(), ["x"] * 3, "agent ran at 0, 1 and 3 s")
        check_eq(err.count("restarting in"), 3, f"one line per agent death: {err!r}")
    finally:
        b.cleanup()


def host_pid(cid):
    st = subprocess.run(["runc", "state", cid], capture_output=True, text=True)
    return json.loads(st.stdout)["pid"] if st.returncode == 0 else None


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])  # utime + stime


def case_wait():
    need_root()
    b = Bundle("wait")
    try:
        for sig in ("TERM", "INT"):
            cid, p = b.start([KW, "ignored", "args"])
            check(wait_exe(cid, KW), "kilt-wait is PID 1")
            time.sleep(0.2)
            check(p.poll() is None, f"kilt-wait keeps running before {sig}")
            pid = host_pid(cid)
            if sig == "TERM":
                # Other signals are ignored; no CPU is used while waiting; orphans are reaped.
                for other in ("HUP", "USR1", "WINCH", "QUIT"):
                    runc_kill(cid, other)
                subprocess.run(["runc", "exec", cid, "/bin/sh", "-c", "(sleep 0.1 &)"], check=False)
                t0 = cpu_ticks(pid) if pid else None
                time.sleep(1.0)
                check(p.poll() is None, "kilt-wait ignores HUP, USR1, WINCH, QUIT")
                if pid:
                    check_eq(cpu_ticks(pid) - t0, 0, "CPU ticks used while waiting for 1 s")
                z = subprocess.run(["runc", "exec", cid, "/bin/sh", "-c",
                                    "z=0; for s in /proc/[0-9]*/stat; do case \"$(cat $s 2>/dev/null)\" in *') Z '*) z=$((z+1));; esac; done; echo $z"],
                                   capture_output=True, text=True).stdout.strip()
                check_eq(z, "0", "kilt-wait reaped the orphan")
            runc_kill(cid, sig)
            try:
                rc = p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                kill_container(cid)
                rc = p.wait()
            check_eq(rc, 0, f"kilt-wait exits 0 on {sig}")
            check_eq(p.stderr.read(), "", "kilt-wait is silent")
    finally:
        b.cleanup()


def case_agent_ready():
    """kilt-launch --wait-for as PID 1: the app is held until the agent made the path, with a
    timeout that either runs the app anyway (default) or exits 1; TERM while waiting ends it."""
    need_root()
    b = Bundle("agent-ready")
    ready = "/dev/shm/agent-ready"
    # The agent takes a second to become ready; the app must see the path when it starts.
    agent = ["/bin/sh", "-c", f"sleep 1; touch {ready}; exec sleep 60"]
    app = ["/bin/sh", "-c", f"if [ -e {ready} ]; then echo ready; else echo early; fi; exit 5"]
    try:
        t0 = time.monotonic()
        rc, out, err = b.run([KL, "-a", str(len(agent)), *agent, "--wait-for", ready, "--wait-timeout", "20", "--", *app])
        check_eq(rc, 5, "app status after waiting for the agent")
        check_eq(out, "ready\n", "the app started only once the agent was ready")
        check_eq(err, "", "a wait that succeeds is silent")
        check(0.9 < time.monotonic() - t0 < 8, "held for about the agent's start-up time")

        # The same in the tracer form: the tracer (and so the app) starts after the wait.
        rc, out, err = b.run([KL, "-a", str(len(agent)), *agent, "-t", "1", "/bin/env", "--wait-for", ready, "--", *app])
        check_eq((rc, out), (5, "ready\n"), "tracer form: the app waited for the agent")

        # Without --wait-for the app starts at once (what the wait is for).
        rc, out, err = b.run([KL, "-a", str(len(agent)), *agent, "--", *app])
        check_eq((rc, out), (5, "early\n"), "without --wait-for the app does not wait")

        # Timeout, default: run the app anyway, with one line saying so.
        never = ["/bin/sh", "-c", "exec sleep 60"]
        t0 = time.monotonic()
        rc, out, err = b.run([KL, "-a", "3", *never, "--wait-for", ready, "--wait-timeout", "1", "--", *app])
        took = time.monotonic() - t0
        check_eq((rc, out), (5, "early\n"), "timeout (run): the app runs anyway")
        check_eq(err, f"kilt-launch: {ready} did not appear within 1 s; starting the app anyway "
                      "(what it does before the agent is ready goes unseen)\n", "timeout (run) line")
        check(0.9 < took < 8, f"timeout after about 1 s ({took:.2f} s)")

        # Timeout with --on-timeout exit: the app never runs, status 1.
        rc, out, err = b.run([KL, "-a", "3", *never, "--wait-for", ready, "--wait-timeout", "1", "--on-timeout", "exit",
                              "--", "/bin/sh", "-c", "touch /work/ran; exit 5"])
        check_eq(rc, 1, "timeout (exit): status 1")
        check(not os.path.exists(b.work_file("ran")), "timeout (exit): the app was not started")
        check_eq(err, f"kilt-launch: {ready} did not appear within 1 s; not starting the app (--on-timeout exit)\n",
                 "timeout (exit) line")

        # TERM from the runtime while waiting: the app is not started, agents are stopped, 143.
        cid, p = b.start([KL, "-a", "3", "/bin/sh", "-c", "touch /work/agent-up; exec sleep 60", "--wait-for", ready,
                          "--", "/bin/sh", "-c", "touch /work/ran; exit 5"])
        check(wait_for(b.work_file("agent-up")), "agent up while the app is held")
        runc_kill(cid, "TERM")
        try:
            rc = p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            kill_container(cid)
            rc = p.wait()
        check_eq(rc, 143, "TERM while waiting: 128+15")
        check(not os.path.exists(b.work_file("ran")), "TERM while waiting: the app was not started")
        check_eq(p.stderr.read(), f"kilt-launch: signal 15 arrived while waiting for {ready}; the app is not started\n",
                 "TERM while waiting line")

        # Policy stop and the agent dies before it is ready: the app is not started, status 1.
        rc, out, err = b.run([KL, "--policy", "stop", "-a", "3", "/bin/sh", "-c", "exit 3", "--wait-for", ready,
                              "--", "/bin/sh", "-c", "touch /work/ran; exit 5"])
        check_eq(rc, 1, "policy stop while waiting: status 1")
        check(not os.path.exists(b.work_file("ran")), "policy stop while waiting: the app was not started")
        check("stopping the app (policy stop)" in err, f"policy stop line: {err!r}")
    finally:
        b.cleanup()


if __name__ == "__main__":
    cases = {"exit-codes": case_exit_codes, "pid1": case_pid1, "wait": case_wait, "agent-ready": case_agent_ready,
             "static-check": case_static_check}
    cases[sys.argv[1]]()
    finish()
