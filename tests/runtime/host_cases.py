# SPDX-License-Identifier: Apache-2.0
"""kilt-launch on the host (not PID 1, so it runs as a child subreaper): argv grammar, exec
failures, signal forwarding, orphan reaping, fd hygiene, agent policies and the tracer form.

Usage: host_cases.py grammar|signals|agents|tracer|detach   (KILT_LAUNCH = the binary under test)
"""
import os
import re
import signal
import subprocess
import sys
import time

from harness import (check, check_eq, finish, log, need, run_host, skip, tmpdir, wait_for)

KL = os.environ.get("KILT_LAUNCH")
SANITIZED = os.environ.get("RT_SANITIZE", "OFF").upper() in ("ON", "1", "TRUE")


def zombie_children(ppid):
    """Pids of zombies whose parent is ppid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rfind(")") + 2:].split()
        if rest[0] == "Z" and int(rest[1]) == ppid:
            out.append(int(d))
    return out


def children(pid):
    """Child pids of pid (the launcher's only direct child in the tracer form is the tracer)."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return f.read().split()


def case_grammar():
    # Everything after the first top-level -- is the app's, untouched.
    rc, out, err = run_host([KL, "--", "printf", "[%s]", "--", "----", "-a", "1", "--policy", ""])
    check_eq(rc, 0, "printf through the launcher")
    check_eq(out, "[--][----][-a][1][--policy][]", "app argv with -- and ---- passes through")
    check_eq(err, "", "a clean run is silent")

    # Agent and tracer groups are counted, so they may hold -- as well.
    d = tmpdir("grammar")
    f = os.path.join(d, "agent-argv")
    agent = ["sh", "-c", 'printf "[%s]" "$@" > "$0"', f, "--", "----", "-t"]
    rc, out, err = run_host([KL, "-a", str(len(agent)), *agent, "--", "sh", "-c", "sleep 0.5; exit 3"])
    check_eq(rc, 3, "app status with an agent")
    check(wait_for(f, 5), "agent wrote its argv")
    if os.path.exists(f):
        check_eq(open(f).read(), "[--][----][-t]", "agent argv with -- passes through")
    # A tracer argv that contains -- ("env --" runs what follows it).
    rc, out, err = run_host([KL, "-t", "2", "env", "--", "--", "sh", "-c", 'printf "[%s]" "$@"; exit 9', "x", "--", "a b"])
    check_eq(rc, 9, "app status through a tracer whose argv ends in --")
    check_eq(out, "[--][a b]", "app argv through the tracer form")
    # Long option names.
    rc, out, err = run_host([KL, "--policy", "ignore", "--agent", "1", "true", "--tracer", "1", "env", "--", "sh", "-c", "exit 4"])
    check_eq(rc, 4, "long options")

    usage_cases = [
        [],
        ["sh"],
        ["--"],
        ["-a"],
        ["-a", "0", "x", "--", "true"],
        ["-a", "-1", "x", "--", "true"],
        ["-a", "1x", "x", "--", "true"],
        ["-a", "99999999999999999999", "x", "--", "true"],
        ["-a", " 1", "x", "--", "true"],  # strtol alone would take these two
        ["-a", "+1", "x", "--", "true"],
        ["-a", "01", "x", "--", "true"],
        ["-a", "3", "x", "--", "true"],  # the group would swallow -- and the app
        ["-a", "1", "x"],
        ["--policy", "sometimes", "--", "true"],
        ["--policy"],
        ["-t", "1", "a", "-t", "1", "b", "--", "true"],
        ["--wait-for", "", "--", "true"],
        ["--wait-for"],
        ["--wait-for", "/x", "--wait-timeout", "0", "--", "true"],
        ["--wait-for", "/x", "--wait-timeout", "1.5", "--", "true"],
        ["--wait-for", "/x", "--wait-timeout", "86401", "--", "true"],
        ["--wait-for", "/x", "--wait-timeout", "+5", "--", "true"],
        ["--wait-for", "/x", "--on-timeout", "maybe", "--", "true"],
        ["--wait-timeout", "5", "--", "true"],
        ["--on-timeout", "run", "--", "true"],
        ["--bogus", "--", "true"],
    ]
    for args in usage_cases:
        rc, out, err = run_host([KL, *args])
        check_eq(rc, 2, f"usage error for {args}")
        check("usage: kilt-launch" in err, f"usage text for {args}")
    # A count that swallows the -- is named as the cause, not "unknown option".
    rc, out, err = run_host([KL, "-a", "2", "x", "--", "app", "arg"])
    check_eq(rc, 2, "a group count one too large")
    check("app is not an option: the -a 2 group before it took the -- meant for the app" in err,
          f"the message names the group that took the --: {err!r}")
    rc, out, err = run_host([KL, "-a", "2", "x", "--", "app"])
    check(rc == 2 and "unknown option" not in err and "longer than the arguments" in err,
          f"a group that would take the app too: {err!r}")
    rc, out, err = run_host([KL, "--bogus", "--", "true"])
    check("unknown option --bogus" in err, f"the unknown option is named: {err!r}")
    rc, out, err = run_host([KL, *(["-a", "1", "true"] * 17), "--", "true"])
    check_eq(rc, 2, "too many agents")

    # Exec failures: 127 not found, 126 not executable, with the path in the message.
    notexec = os.path.join(d, "not-executable")
    open(notexec, "w").write("#!/bin/sh\n")
    for args, want in ([["/nonexistent/app"], 127], [["no-such-command-kilt"], 127],
                       [[notexec], 126], [[d], 126]):
        rc, out, err = run_host([KL, "--", *args])
        check_eq(rc, want, f"exec failure code for {args[0]}")
        check(args[0] in err, f"exec failure names {args[0]}: {err!r}")
    rc, out, err = run_host([KL, "-t", "1", "/nonexistent/tracer", "--", "true"])
    check_eq(rc, 127, "tracer not found")
    check("/nonexistent/tracer" in err, "message names the tracer")
    rc, out, err = run_host([KL, "-t", "1", "env", "--", "/nonexistent/app"])
    check_eq(rc, 127, "app not found under a tracer")
    check("/nonexistent/app" in err, "message names the app under a tracer")

    # KILT_DEBUG turns the event lines on.
    rc, out, err = run_host([KL, "--", "true"], env={"KILT_DEBUG": "1"})
    check(rc == 0 and "app true started" in err and "exited with status 0" in err,
          f"KILT_DEBUG lines: {err!r}")
    rc, out, err = run_host([KL, "--", "true"], env={"KILT_DEBUG": "0"})
    check_eq(err, "", "KILT_DEBUG=0 is silent")

    # No descriptor of the launcher's reaches the app, an agent or the app under a tracer.
    # The shell lists its own descriptors (glob expanded in-process: no pipeline fds).
    fds = 'for f in /proc/$$/fd/*; do printf "%s " "${f##*/}"; done'
    base = subprocess.run(["sh", "-c", fds], capture_output=True, text=True, close_fds=True).stdout
    check(base.startswith("0 1 2 "), f"baseline fds: {base!r}")
    rc, out, err = run_host([KL, "--", "sh", "-c", fds])
    check_eq(out, base, "app fds (plain form)")
    rc, out, err = run_host([KL, "-t", "1", "env", "--", "sh", "-c", fds])
    check_eq(out, base, "app fds (tracer form)")
    rc, out, err = run_host([KL, "-a", "3", "sh", "-c", fds, "--", "sleep", "0.5"])
    check_eq(out, base, "agent fds")


def wait_reaps_inherited_zombie():
    """kilt-wait exec'd by a process whose child has already ended (its SIGCHLD was discarded
    before kilt-wait blocked signals) reaps that zombie at once, not at some later SIGCHLD."""
    kw = os.environ.get("KILT_WAIT")
    if not kw:
        log("KILT_WAIT is not set: the inherited-zombie check of kilt-wait is not run")
        return
    pid = os.fork()
    if pid == 0:
        try:
            if os.fork() == 0:
                os._exit(0)
            time.sleep(0.3)  # the child is a zombie now and its SIGCHLD is gone
            os.execv(kw, [kw])
        finally:
            os._exit(127)
    end = time.monotonic() + 10
    while time.monotonic() < end and os.path.realpath(f"/proc/{pid}/exe") != os.path.realpath(kw):
        time.sleep(0.02)
    time.sleep(0.3)
    check_eq(zombie_children(pid), [], "kilt-wait reaped the zombie it inherited")
    os.kill(pid, signal.SIGTERM)
    check_eq(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), 0, "kilt-wait exits 0 on TERM")


def case_signals():
    wait_reaps_inherited_zombie()
    d = tmpdir("signals")
    log_f = os.path.join(d, "log")
    ready = os.path.join(d, "ready")
    names = ["HUP", "INT", "QUIT", "USR1", "USR2", "WINCH", "CONT", "ALRM", "PIPE", "TSTP", "TTIN", "TTOU", "URG"]
    traps = "".join(f"trap 'echo {n} >> {log_f}' {n}; " for n in names)
    script = traps + f"trap 'echo TERM >> {log_f}; exit 42' TERM; touch {ready}; while :; do sleep 0.02; done"
    p = subprocess.Popen([KL, "--", "sh", "-c", script], stderr=subprocess.PIPE, text=True)
    check(wait_for(ready), "app ready")
    for n in names:
        os.kill(p.pid, getattr(signal, "SIG" + n))
        end = time.monotonic() + 5
        while time.monotonic() < end:
            if os.path.exists(log_f) and open(log_f).read().split().count(n) == 1:
                break
            time.sleep(0.01)
    os.kill(p.pid, signal.SIGTERM)
    rc = p.wait(timeout=10)
    err = p.stderr.read()
    check_eq(rc, 42, "exit status after the app's TERM trap")
    check_eq(open(log_f).read().split() if os.path.exists(log_f) else [], names + ["TERM"],
             "every signal reached the app, in order")
    check_eq(err, "", "forwarding is silent")

    # Death by signal n gives 128+n, including real-time signals.
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGABRT, signal.SIGKILL,
                signal.SIGUSR1, signal.SIGSEGV, signal.SIGPIPE, signal.SIGTERM, signal.SIGSYS):
        rc, out, err = run_host([KL, "--", "sh", "-c", f"kill -{int(sig)} $$; sleep 5"])
        check_eq(rc, 128 + int(sig), f"app killed by {sig.name}")
    rt = signal.SIGRTMIN + 3
    p = subprocess.Popen([KL, "--", "sleep", "30"])
    time.sleep(0.3)
    os.kill(p.pid, rt)
    check_eq(p.wait(timeout=10), 128 + rt, "real-time signal forwarded; 128+n")

    # Orphans are reparented to the launcher (child subreaper) and reaped.
    out_f = os.path.join(d, "orphans")
    script = ("(sleep 0.3 & echo $! > " + d + "/o1) ; (sleep 0.3 & echo $! > " + d + "/o2); "
              "sleep 0.1; for o in o1 o2; do p=$(cat " + d + "/$o); "
              "grep '^PPid:' /proc/$p/status | tr -d '\\t' | cut -d: -f2 >> " + out_f + "; done; "
              "sleep 1; exit 7")
    p = subprocess.Popen([KL, "--", "sh", "-c", script])
    time.sleep(0.9)
    z = zombie_children(p.pid)
    rc = p.wait(timeout=10)
    check_eq(rc, 7, "orphan script status")
    ppids = open(out_f).read().split() if os.path.exists(out_f) else []
    check_eq(ppids, [str(p.pid)] * 2, "orphans were reparented to the launcher")
    check_eq(z, [], "no zombie children of the launcher after the orphans died")

    # The supervisor's memory does not grow while it forwards thousands of signals.
    if SANITIZED:
        log("memory growth check skipped: ASan build (its allocator changes VmData on its own)")
        return
    ready2 = os.path.join(d, "ready2")
    p = subprocess.Popen([KL, "--", "sh", "-c", f"trap ':' USR1; touch {ready2}; while :; do sleep 1; done"])
    check(wait_for(ready2), "app ready for the memory check")

    def mem():
        vals = {}
        for line in open(f"/proc/{p.pid}/status"):
            k, _, v = line.partition(":")
            if k in ("RssAnon", "VmData"):
                vals[k] = int(v.split()[0])
        return vals

    # Warm up (first-touch of code and stack pages), then measure around 3000 more signals.
    for i in range(200):
        os.kill(p.pid, signal.SIGWINCH)
    time.sleep(0.3)
    before = mem()
    for i in range(3000):
        os.kill(p.pid, signal.SIGUSR1 if i % 2 else signal.SIGWINCH)
        if i % 100 == 0:
            time.sleep(0.005)
    time.sleep(0.3)
    after = mem()
    os.kill(p.pid, signal.SIGTERM)
    check_eq(p.wait(timeout=10), 143, "app ended by TERM after the memory check")
    check_eq(after["VmData"], before["VmData"], "VmData after 3000 forwarded signals")
    check_eq(after["RssAnon"], before["RssAnon"], "anonymous RSS after 3000 forwarded signals")


def case_agents():
    d = tmpdir("agents")
    # Restart with backoff: 1 s, 2 s, 4 s.
    stamps = os.path.join(d, "stamps")
    agent = ["sh", "-c", f"cut -d' ' -f1 /proc/uptime >> {stamps}; exit 3"]
    t0 = time.monotonic()
    rc, out, err = run_host([KL, "-a", str(len(agent)), *agent, "--", "sleep", "8.5"])
    check_eq(rc, 0, "app status with a crashing agent")
    ts = [float(x) for x in open(stamps).read().split()] if os.path.exists(stamps) else []
    check_eq(len(ts), 4, "agent started at 0, 1, 3 and 7 s")
    gaps = [b - a for a, b in zip(ts, ts[1:])]
    for got, want in zip(gaps, (1.0, 2.0, 4.0)):
        check(want - 0.05 < got < want + 0.6, f"backoff gap {got:.2f} s, want {want} s")
    lines = [line for line in err.splitlines() if line]
    check_eq(len(lines), 4, f"one line per agent death: {lines}")
    check(all(re.match(r"kilt-launch: agent sh \(pid \d+\) exited with status 3; restarting in \d+ ms$", x)
              for x in lines), f"restart lines: {lines}")
    check(time.monotonic() - t0 < 10.5, "launcher exits promptly after the app")

    # Policy ignore: the agent stays dead, the app goes on.
    rc, out, err = run_host([KL, "--policy", "ignore", "-a", "3", "sh", "-c", "exit 3", "--", "sh", "-c", "sleep 1.5; exit 5"])
    check_eq(rc, 5, "policy ignore keeps the app's status")
    check(err.count("\n") == 1 and "not restarted (policy ignore)" in err, f"ignore line: {err!r}")

    # Policy stop: the app gets SIGTERM.
    ready = os.path.join(d, "ready")
    rc, out, err = run_host([KL, "--policy", "stop", "-a", "3", "sh", "-c", f"while [ ! -e {ready} ]; do sleep 0.02; done; exit 3",
                             "--", "sh", "-c", f"trap 'exit 42' TERM; touch {ready}; while :; do sleep 0.02; done"])
    check_eq(rc, 42, "policy stop: app got TERM")
    check("stopping the app (policy stop)" in err, f"stop line: {err!r}")
    # ... and SIGKILL when it ignores TERM.
    t0 = time.monotonic()
    rc, out, err = run_host([KL, "--policy", "stop", "-a", "3", "sh", "-c", "sleep 0.3; exit 3", "--", "sh", "-c", "trap '' TERM; exec sleep 30"])
    check_eq(rc, 137, "policy stop: app ignoring TERM is killed")
    check(4.5 < time.monotonic() - t0 < 9, "after the grace period")
    check("ignored SIGTERM; killing it" in err, f"kill line: {err!r}")

    # When the app ends, agents (and their children: own process group) get SIGTERM.
    pids = os.path.join(d, "pids")
    rc, out, err = run_host([KL, "-a", "3", "sh", "-c", f"sleep 60 & echo $$ $! > {pids}; wait", "--", "sh", "-c", "sleep 0.5; exit 6"])
    check_eq(rc, 6, "app status with a long-running agent")
    check_eq(err, "", "stopping agents after the app is silent")
    for pid in (open(pids).read().split() if os.path.exists(pids) else ["missing"]):
        check(not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split(") ")[1][0] == "Z",
              f"agent process {pid} is gone")
    # A daemon an agent started with setsid (its own session and process group, so the group's
    # SIGTERM misses it) is ended too: the launcher adopted it and leaves no process behind.
    for agent_cmd in (f'setsid sh -c "echo \\$\\$ > {d}/daemon; exec sleep 60" & sleep 60',
                      f'setsid sh -c "echo \\$\\$ > {d}/daemon; exec sleep 60" & exit 0'):
        daemon = os.path.join(d, "daemon")
        if os.path.exists(daemon):
            os.unlink(daemon)
        rc, out, err = run_host([KL, "--policy", "ignore", "-a", "3", "sh", "-c", agent_cmd,
                                 "--", "sh", "-c", f"while [ ! -s {daemon} ]; do sleep 0.02; done; exit 6"])
        check_eq(rc, 6, f"app status with a setsid daemon ({agent_cmd})")
        dpid = open(daemon).read().strip() if os.path.exists(daemon) else "missing"
        gone = not os.path.exists(f"/proc/{dpid}") or open(f"/proc/{dpid}/stat").read().split(") ")[1][0] == "Z"
        if not gone:
            os.kill(int(dpid), signal.SIGKILL)
        check(gone, f"the agent's setsid daemon {dpid} is gone after the launcher exited")
    # ... and one that ignores SIGTERM is killed after the grace period, with a line saying so.
    t0 = time.monotonic()
    rc, out, err = run_host([KL, "--policy", "ignore", "-a", "3", "sh", "-c",
                             f"setsid sh -c \"trap '' TERM; echo \\$\\$ > {d}/daemon2; exec sleep 60\" &",
                             "--", "sh", "-c", f"while [ ! -s {d}/daemon2 ]; do sleep 0.02; done"])
    check_eq(rc, 0, "app status with a stubborn setsid daemon")
    check(4.5 < time.monotonic() - t0 < 9, "stubborn daemon killed after the grace period")
    check("orphaned process(es) ignored SIGTERM; killed them" in err, f"orphan kill line: {err!r}")

    # An agent that ignores TERM is killed after the grace period.
    t0 = time.monotonic()
    rc, out, err = run_host([KL, "-a", "3", "sh", "-c", "trap '' TERM; while :; do sleep 0.05; done", "--", "sh", "-c", "sleep 0.3; exit 8"])
    check_eq(rc, 8, "app status with a stubborn agent")
    check(4.5 < time.monotonic() - t0 < 9, "stubborn agent killed after the grace period")
    check("ignored SIGTERM; killing it" in err, f"agent kill line: {err!r}")

    # An agent that cannot be executed is reported and retried; the app is unaffected.
    rc, out, err = run_host([KL, "-a", "1", "/nonexistent/agent", "--", "sleep", "1.5"])
    check_eq(rc, 0, "app status with a missing agent")
    check("cannot execute /nonexistent/agent" in err and "exited with status 127; restarting in 1000 ms" in err,
          f"missing agent lines: {err!r}")


def case_tracer():
    need("strace")
    d = tmpdir("tracer")
    trace = os.path.join(d, "trace")
    st = ["strace", "-f", "-o", trace]
    rc, out, err = run_host([KL, "-t", str(len(st)), *st, "--", "sh", "-c", "echo traced-app; exit 5"])
    check_eq(rc, 5, "app status under strace")
    check_eq(out, "traced-app\n", "app output under strace")
    t = open(trace).read() if os.path.exists(trace) else ""
    check(re.search(r'execve\("[^"]*/sh", \["sh", "-c", "echo traced-app; exit 5"\]', t) is not None,
          "strace saw the app's execve")
    check('write(1, "traced-app\\n"' in t, "strace saw the app's write")

    # Signals reach the app through the tracer; status is the app's.
    ready = os.path.join(d, "ready")
    p = subprocess.Popen([KL, "-t", str(len(st)), *st, "--", "sh", "-c",
                          f"trap 'exit 42' TERM; touch {ready}; while :; do sleep 0.02; done"])
    check(wait_for(ready), "traced app ready")
    os.kill(p.pid, signal.SIGTERM)
    check_eq(p.wait(timeout=20), 42, "TERM forwarded to the traced app")
    check("SIGTERM" in open(trace).read(), "strace saw the SIGTERM")
    rc, out, err = run_host([KL, "-t", str(len(st)), *st, "--", "sh", "-c", "kill -USR2 $$; sleep 5"])
    check_eq(rc, 128 + signal.SIGUSR2, "traced app killed by a signal")

    # A pdig-like tracer: does nothing on TERM and always exits 0. The app's status still comes
    # back. (A handler, not SIG_IGN: an ignored disposition would be inherited by the app.)
    pdig_like = ["sh", "-c", 'trap ":" TERM; "$@"; exit 0', "pdig-like"]
    rc, out, err = run_host([KL, "-t", "4", *pdig_like, "--", "sh", "-c", "exit 9"])
    check_eq(rc, 9, "app status through a tracer that always exits 0")
    ready2 = os.path.join(d, "ready2")
    p = subprocess.Popen([KL, "-t", "4", *pdig_like, "--", "sh", "-c",
                          f"trap 'exit 43' TERM; touch {ready2}; while :; do sleep 0.02; done"])
    check(wait_for(ready2), "app under the pdig-like tracer ready")
    os.kill(p.pid, signal.SIGTERM)
    check_eq(p.wait(timeout=20), 43, "TERM reaches the app, not the TERM-ignoring tracer")

    # The tracer dies while the app runs: one line, the app goes on, its status is returned.
    ready3 = os.path.join(d, "ready3")
    p = subprocess.Popen([KL, "-t", str(len(st)), *st, "--", "sh", "-c",
                          f"touch {ready3}; sleep 1.5; exit 11"], stderr=subprocess.PIPE, text=True)
    check(wait_for(ready3), "app ready (tracer death)")
    kids = children(p.pid)
    check_eq(len(kids), 1, "one strace child")
    if kids:
        os.kill(int(kids[0]), signal.SIGKILL)
    rc = p.wait(timeout=20)
    err = p.stderr.read()
    check_eq(rc, 11, "app status after the tracer died")
    check("the app is no longer traced" in err, f"tracer death line: {err!r}")
    # ... with policy stop the app is stopped instead.
    ready4 = os.path.join(d, "ready4")
    p = subprocess.Popen([KL, "--policy", "stop", "-t", str(len(st)), *st, "--", "sh", "-c",
                          f"touch {ready4}; exec sleep 30"], stderr=subprocess.PIPE, text=True)
    check(wait_for(ready4), "app ready (tracer death, policy stop)")
    kids = children(p.pid)
    if kids:
        os.kill(int(kids[0]), signal.SIGKILL)
    rc = p.wait(timeout=20)
    err = p.stderr.read()
    check_eq(rc, 143, "policy stop after the tracer died stops the app")
    check("stopping it (policy stop)" in err, f"tracer stop line: {err!r}")


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def case_detach():
    """--detach: the caller's pipe is released at once, the pid printed is a supervisor in its
    own session that runs the app and reaps it; exec failures are reported to the caller."""
    d = tmpdir("detach")
    log_path = os.path.join(d, "log")
    ready = os.path.join(d, "ready")
    t0 = time.monotonic()
    # Output through a pipe: run() returns only when every writer closed it, so a detached
    # supervisor that kept the caller's stdout would hang here until the timeout.
    p = subprocess.run([KL, "--detach", log_path, "--", "sh", "-c",
                        f"echo out; echo err >&2; touch {ready}; sleep 1; exit 3"],
                       capture_output=True, text=True, timeout=30)
    took = time.monotonic() - t0
    check_eq(p.returncode, 0, "detach: status of the caller")
    check(took < 0.9, f"detach: the caller returned at once ({took:.2f} s, the app runs 1 s)")
    pid = int(p.stdout.strip() or "0")
    check(pid > 0 and p.stderr == "", f"detach: prints the supervisor's pid only: {p.stdout!r} {p.stderr!r}")
    st = proc_state(pid)
    check(st is not None and int(st[3]) == pid, f"detach: supervisor {pid} leads its own session: {st}")
    check(wait_for(ready), "detach: the app ran")
    end = time.monotonic() + 10
    while time.monotonic() < end and proc_state(pid) and proc_state(pid)[0] != "Z":
        time.sleep(0.05)
    st = proc_state(pid)
    check(st is None or st[0] == "Z", f"detach: supervisor ended with its app: {st}")
    with open(log_path) as f:
        out = f.read()
    check_eq(sorted(out.split()), ["err", "out"], "detach: the app's output is in the log")
    # The app's orphans are reaped by the supervisor (a child subreaper), not left as zombies.
    p = subprocess.run([KL, "--detach", log_path, "--", "sh", "-c", "sleep 0.2 & exec sleep 2"],
                       capture_output=True, text=True, timeout=30)
    pid = int(p.stdout.strip() or "0")
    time.sleep(0.8)
    check_eq(zombie_children(pid), [], "detach: orphans reaped by the supervisor")
    os.kill(pid, signal.SIGTERM)  # forwarded to the app
    # An app that cannot be executed: 127 to the caller, with the reason on its stderr.
    p = subprocess.run([KL, "--detach", log_path, "--", "/nonexistent/prog"], capture_output=True,
                       text=True, timeout=30)
    check_eq(p.returncode, 127, "detach: missing app")
    check("cannot execute /nonexistent/prog: No such file or directory" in p.stderr,
          f"detach: missing app reported to the caller: {p.stderr!r}")
    p = subprocess.run([KL, "--detach", log_path, "--", d], capture_output=True, text=True, timeout=30)
    check_eq(p.returncode, 126, "detach: app that is a directory")
    # The log cannot be opened: the supervisor ends before starting anything.
    p = subprocess.run([KL, "--detach", os.path.join(d, "no", "log"), "--", "true"],
                       capture_output=True, text=True, timeout=30)
    check_eq(p.returncode, 1, "detach: log not writable")
    check("cannot open" in p.stderr, f"detach: log error: {p.stderr!r}")
    # --root: the app sees DIR as / (root only: chroot needs CAP_SYS_CHROOT).
    rc, _, err = run_host([KL, "--root", "/", "--", "true"])
    check_eq(rc, 2, "--root without --detach is a usage error")
    if os.geteuid() == 0:
        root = os.path.join(d, "root")
        os.makedirs(os.path.join(root, "bin"))
        os.makedirs(os.path.join(root, "dev"))
        subprocess.run(["cp", "/bin/busybox", os.path.join(root, "bin", "busybox")], check=True)
        os.symlink("busybox", os.path.join(root, "bin", "sh"))
        p = subprocess.run([KL, "--detach", "/log", "--root", root, "--", "/bin/sh", "-c",
                            "echo in-root > /seen"], capture_output=True, text=True, timeout=30)
        check_eq(p.returncode, 0, f"--root: started ({p.stderr!r})")
        check(wait_for(os.path.join(root, "seen")), "--root: the app wrote /seen inside DIR")
    else:
        log("--root case not run: chroot needs root")


if __name__ == "__main__":
    if not KL or not os.path.exists(KL):
        skip("KILT_LAUNCH is not set to a built kilt-launch")
    cases = {"grammar": case_grammar, "signals": case_signals, "agents": case_agents, "tracer": case_tracer,
             "detach": case_detach}
    cases[sys.argv[1]]()
    finish()
