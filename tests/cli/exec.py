#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# kilt exec without a cluster: argument handling, planning with --dry-run from pods read from a
# file (every step, the script, nothing run), the launcher's architecture read from its ELF
# header, a missing kubectl reported clearly, and `kubectl kilt exec` found by the real kubectl
# as a plugin on PATH (when a kubectl is installed). tests/k8s/exec.py runs it on a cluster.
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

KILT = os.environ["KILT"]
SRC = os.environ["KILT_SOURCE_DIR"]
failures = 0


def check(cond, what):
    global failures
    print(("ok:   " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures += 1


def kilt(*args, cwd=None, env=None):
    return subprocess.run([KILT, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env=env)


def pod(name, ns="shop", running=True, command=True):
    c = {"name": "app", "image": "busybox:1"}
    if command:
        c["command"] = ["sleep", "3600"]
    return {"kind": "Pod", "metadata": {"name": name, "namespace": ns},
            "spec": {"nodeName": "n1", "containers": [c, {"name": "side", "image": "nginx"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "state": {"running": {}} if running else {"waiting": {}}},
                {"name": "side", "state": {"running": {}}}]}}


def elf(machine, interp=False):
    """A minimal 64-bit little-endian ELF header with one program header."""
    h = bytearray(64 + 56)
    h[0:4] = b"\x7fELF"
    h[4], h[5], h[6] = 2, 1, 1
    h[16:18] = (2).to_bytes(2, "little")
    h[18:20] = machine.to_bytes(2, "little")
    h[32:40] = (64).to_bytes(8, "little")
    h[54:56] = (56).to_bytes(2, "little")
    h[56:58] = (1).to_bytes(2, "little")
    h[64:68] = (3 if interp else 1).to_bytes(4, "little")
    return bytes(h)


with tempfile.TemporaryDirectory() as d:
    pods = os.path.join(d, "pods.json")
    with open(pods, "w") as f:
        json.dump({"kind": "List", "items": [
            pod("web-1"), pod("web-2", running=False),
            {"kind": "Node", "metadata": {"name": "n1"},
             "status": {"nodeInfo": {"architecture": "amd64"}}}]}, f)
    recipe = os.path.join(d, "r.conf")
    with open(recipe, "w") as f:
        f.write('deploy { entrypoint: [ /falco/pdig ] ${original.entrypoint} }\n'
                'patch {\n'
                '  upload: [ { url: "http://127.0.0.1:9/falco", sha256: '
                '"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", as: /falco/falco }\n'
                '            { text: "x = 1\\n", as: /falco/falco.cfg, mode: "0644" } ]\n'
                '  background_exec: [ "/falco/falco -c /falco/falco.cfg" ]\n'
                '}\n')
    amd = os.path.join(d, "kilt-launch-amd64")
    arm = os.path.join(d, "kilt-launch-arm64")
    dyn = os.path.join(d, "kilt-launch-dyn")
    odd = os.path.join(d, "kilt-launch-riscv")
    for path, data in ((amd, elf(62)), (arm, elf(183)), (dyn, elf(62, True)), (odd, elf(243))):
        with open(path, "wb") as f:
            f.write(data)

    # --- usage errors: exit 2, said once
    usage = [
        ([], "-r RECIPE is required"),
        (["-r", recipe, "-A", "-n", "x"], "-A and -n exclude each other"),
        (["-r", recipe, "-A", "web-1"], "name pods, or select them with -A or -l, not both"),
        (["-r", recipe, "-l", "app=web", "web-1"], "not both"),
        (["-r", recipe, "--pods", pods], "--pods plans from a file and changes nothing: it needs --dry-run"),
        (["-r", recipe, "--strategy", "ssh"], "--strategy must be exec or debug, not 'ssh'"),
        (["-r", recipe, "--parallel", "0"], "--parallel: expected 1 to 64, not '0'"),
        (["-r", recipe, "-o", "yaml"], "--output must be text or json, not 'yaml'"),
        (["-r", recipe, "--paralel", "2"], "did you mean '--parallel'?"),
        (["-r", recipe, "--dryrun"], "did you mean '--dry-run'?"),
    ]
    for args, want in usage:
        p = kilt("exec", *args)
        check(p.returncode == 2 and want in p.stderr,
              f"kilt exec {' '.join(args)}: exit 2, {want!r} (got {p.returncode} {p.stderr!r})")
    p = kilt("exec", "--help")
    check(p.returncode == 0 and "kubectl-kilt" in p.stdout and "Exit status" in p.stdout,
          "kilt exec --help")

    # --- launchers: architecture from the ELF header, static only
    p = kilt("exec", "-r", recipe, "--launcher", dyn)
    check(p.returncode == 1 and "a dynamically linked program" in p.stderr,
          f"a dynamic launcher is refused: {p.stderr!r}")
    p = kilt("exec", "-r", recipe, "--launcher", odd)
    check(p.returncode == 1 and "built for ELF machine 243, neither amd64 nor arm64" in p.stderr,
          f"a launcher for another machine is refused: {p.stderr!r}")
    p = kilt("exec", "-r", recipe, "--launcher", recipe)
    check(p.returncode == 1 and "not a 64-bit little-endian ELF" in p.stderr,
          f"a launcher that is no program is refused: {p.stderr!r}")

    # --- dry run from a file: every step, nothing run (no kubectl on PATH at all)
    env = {"PATH": d, "HOME": d}
    base = ["exec", "-r", recipe, "--pods", pods, "--dry-run", "--launcher", amd, "--launcher", arm]
    p = kilt(*base, "-c", "app", env=env)
    check(p.returncode == 1, f"dry run: exit 1 since web-2's app is not running ({p.returncode})")
    out = p.stdout
    check("shop/web-1 app (exec):\n  1. read the marker /kilt/marker" in out, f"dry run lists the steps:\n{out}")
    check("2. upload /falco/falco from http://127.0.0.1:9/falco (fetched once here, sha256 "
          "9f86d081884c… checked before anything is sent), mode 0755, owner 0:0" in out,
          "dry run: URL step with its sha256")
    check("3. upload /falco/falco.cfg from the recipe's inline content" in out and "mode 0644" in out,
          "dry run: inline content with its mode")
    check(f"4. upload kilt-launch for amd64 from {amd} to /kilt/bin/kilt-launch" in out,
          "dry run: the launcher for the node's architecture")
    check("5. start /falco/falco -c /falco/falco.cfg detached through /kilt/bin/kilt-launch" in out,
          "dry run: the background program")
    check("7. write the marker /kilt/marker, then the pod annotation kilt.dev/exec" in out,
          "dry run: the marker last")
    check("shop/web-1  app        exec      planned" in out and
          "shop/web-2  app        exec      failed     container app of pod shop/web-2 is not running" in out,
          f"dry run: the summary table")
    p = kilt(*base, "-o", "json", "web-1", env=env)
    j = json.loads(p.stdout)
    check(p.returncode == 0 and j["planned"] == 2 and j["failed"] == 0,
          f"dry run -o json: both containers planned ({p.returncode} {p.stderr!r})")
    c0 = j["containers"][0]
    check(c0["container"] == "app" and c0["script"].startswith("R=''\nD='/kilt'\n") and
          "place 0 '/falco/falco' 0755 0 0\n" in c0["script"],
          "dry run -o json: the script that would run")
    p = kilt(*base, "--arch", "aarch64", "-c", "app", "web-1", env=env)
    check(p.returncode == 0 and f"upload kilt-launch for arm64 from {arm}" in p.stdout,
          "--arch picks the other launcher")
    p = kilt("exec", "-r", recipe, "--pods", pods, "--dry-run", "-c", "app", "web-1", env=env)
    check(p.returncode == 1 and "no --launcher for amd64 was given" in p.stdout,
          f"a recipe with programs needs a launcher: {p.stdout!r}")
    p = kilt(*base, "--strategy", "debug", "--debug-image", "kilt.test/helpers:1", "-c", "app",
             "web-1", env=env)
    check(p.returncode == 0 and "add the ephemeral container kilt-" in p.stdout and
          "cannot remove it afterwards" in p.stdout and
          "Ephemeral containers cannot be removed from a pod" in p.stdout and
          "upload kilt-launch" not in p.stdout and "--root /proc/1/root" in p.stdout,
          f"debug strategy dry run:\n{p.stdout}")
    p = kilt(*base, "-c", "app", "web-9", env=env)
    check(p.returncode == 1 and "web-9" in p.stdout and "not in the --pods file" in p.stdout,
          f"a named pod that is not there: {p.stdout!r}")
    p = kilt(*base, "-n", "other", env=env)
    check(p.returncode == 1 and "no pod matched" in p.stderr, f"no pod: {p.stderr!r}")

    # --- kubectl missing: a clear error, not a crash
    p = kilt("exec", "-r", recipe, "--launcher", amd, env=env)
    check(p.returncode == 1 and "kubectl not found ('kubectl' in PATH): install it or give "
          "--kubectl PATH" in p.stderr, f"no kubectl in PATH: {p.stderr!r}")
    p = kilt("exec", "-r", recipe, "--kubectl", os.path.join(d, "no-kubectl"), env=env)
    check(p.returncode == 1 and "kubectl not found" in p.stderr, f"--kubectl missing: {p.stderr!r}")

    # --- the kubectl plugin: the real kubectl runs kubectl-kilt found on PATH
    real = shutil.which("kubectl", path="/opt/kilt/bin") or shutil.which("kubectl")
    if real:
        bindir = os.path.join(d, "bin")
        os.makedirs(bindir)
        os.symlink(KILT, os.path.join(bindir, "kubectl-kilt"))
        penv = {"PATH": bindir + ":/usr/bin:/bin", "HOME": d, "KUBECONFIG": os.path.join(d, "none")}
        p = subprocess.run([real, "plugin", "list"], capture_output=True, text=True, env=penv, timeout=60)
        check(os.path.join(bindir, "kubectl-kilt") in p.stdout, f"kubectl plugin list finds kubectl-kilt: {p.stdout!r} {p.stderr!r}")
        p = subprocess.run([real, "kilt", "exec", "-r", recipe, "--pods", pods, "--dry-run",
                            "--launcher", amd, "-c", "app", "web-1"], capture_output=True,
                           text=True, env=penv, timeout=60)
        check(p.returncode == 0 and "shop/web-1 app (exec):" in p.stdout,
              f"kubectl kilt exec runs kilt exec ({real}): {p.returncode} {p.stderr!r}")
    else:
        print("NOT RUN: the kubectl plugin case: no kubectl installed (tests/infra/peer-k8s.sh)")

print(f"{failures} failure(s)")
sys.exit(1 if failures else 0)
