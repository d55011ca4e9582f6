# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for the runtime tests: builds of the helpers, runc bundles, assertions.

Every test gets its own temporary directory and unique container ids, so ctest -j can run
them side by side.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("KILT_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("RT_BUILD_DIR", os.path.join(SRC, "build", "runtime-tests"))

# Applets the test rootfs exposes as symlinks to busybox.
APPLETS = ["sh", "sleep", "cat", "echo", "ls", "kill", "printf", "true", "false", "grep", "ps",
           "touch", "wc", "env", "mkdir", "rm", "test", "[", "tr", "cut"]

_failures = []


def log(msg):
    print(msg, flush=True)


def check(cond, what):
    """Records a failed assertion and carries on, so one run reports every broken case."""
    if cond:
        return True
    _failures.append(what)
    log(f"FAIL: {what}")
    return False


def check_eq(got, want, what):
    return check(got == want, f"{what}: got {got!r}, want {want!r}")


_tmpdirs = []


def finish():
    """Exit status for ctest; temporary directories are kept only when something failed."""
    if _failures:
        log(f"{len(_failures)} check(s) failed; kept {' '.join(_tmpdirs)}")
        sys.exit(1)
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)
    log("ok")
    sys.exit(0)


def skip(why):
    """ctest maps exit code 77 to 'skipped' (SKIP_RETURN_CODE); say why, loudly."""
    log(f"SKIPPED: {why}")
    sys.exit(77)


def need(*programs):
    for p in programs:
        if not shutil.which(p) and not os.path.exists(p):
            skip(f"{p} is not installed (run tests/infra/install-deps.sh)")


def tmpdir(tag):
    base = os.path.join(BUILD, "tmp")
    os.makedirs(base, exist_ok=True)
    d = tempfile.mkdtemp(prefix=f"{tag}-", dir=base)
    _tmpdirs.append(d)
    return d


# ---------------------------------------------------------------------------------------------
# Builds

def build_dir(kind):
    return os.path.join(BUILD, kind)


def helper(kind, name):
    """Path of a helper from one of the test builds: 'static', 'static-arm64' or 'plain'."""
    p = os.path.join(build_dir(kind), "runtime", name)
    if not os.path.exists(p):
        raise SystemExit(f"{p} is missing: the runtime/build-{kind} fixture did not run")
    return p


def build(kind):
    """Configures and builds the helpers in BUILD/<kind> (incremental after the first time)."""
    out = build_dir(kind)
    if kind in ("static", "static-arm64"):
        cfg = ["cmake", "-S", SRC, "--preset", kind, "-B", out]
    elif kind == "plain":
        # A dynamic, unsanitised build with debug info, for valgrind.
        cfg = ["cmake", "-S", SRC, "-B", out, "-G", "Ninja", "-DKILT_RUNTIME_ONLY=ON",
               "-DKILT_RUNTIME_STATIC=OFF", "-DCMAKE_BUILD_TYPE=Debug", "-DCMAKE_C_COMPILER=gcc"]
    else:
        raise SystemExit(f"unknown build {kind}")
    cfg.append("-DKILT_WERROR=ON")
    subprocess.run(cfg, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", out], check=True)


# ---------------------------------------------------------------------------------------------
# Containers (runc, as root, rootfs from busybox-static)

def make_rootfs(root, helpers_kind="static", extra=None):
    """A minimal rootfs: busybox-static, the static helpers under /kilt/bin, /work for results."""
    os.makedirs(os.path.join(root, "bin"), exist_ok=True)
    shutil.copy2("/bin/busybox", os.path.join(root, "bin", "busybox"))
    for a in APPLETS:
        os.symlink("busybox", os.path.join(root, "bin", a))
    for d in ("proc", "dev", "sys", "tmp", "work", "kilt/bin"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    if helpers_kind:
        for name in ("kilt-launch", "kilt-wait"):
            shutil.copy2(helper(helpers_kind, name), os.path.join(root, "kilt", "bin", name))
    for src, dst in (extra or {}).items():
        shutil.copy2(src, os.path.join(root, dst.lstrip("/")))


def busybox_app_bundle(d, entrypoint=None):
    """A busybox app image made with umoci (no libc, no loader: /bin holds busybox and its
    applets, /work is empty), with `entrypoint` in its config when given, unpacked into the
    runc bundle d/app-bundle, which is returned."""
    layout = os.path.join(d, "app-oci")
    subprocess.run(["umoci", "init", "--layout", layout], check=True)
    subprocess.run(["umoci", "new", "--image", f"{layout}:app"], check=True)
    staging = os.path.join(d, "app-staging")
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:app", staging], check=True,
                   stdout=subprocess.DEVNULL)
    os.makedirs(os.path.join(staging, "rootfs", "bin"))
    os.makedirs(os.path.join(staging, "rootfs", "work"))
    shutil.copy2("/bin/busybox", os.path.join(staging, "rootfs", "bin", "busybox"))
    for a in APPLETS:
        os.symlink("busybox", os.path.join(staging, "rootfs", "bin", a))
    subprocess.run(["umoci", "repack", "--image", f"{layout}:app", staging], check=True)
    if entrypoint:
        subprocess.run(["umoci", "config", "--image", f"{layout}:app", "--config.entrypoint",
                        entrypoint], check=True)
    bundle = os.path.join(d, "app-bundle")
    subprocess.run(["umoci", "unpack", "--image", f"{layout}:app", bundle], check=True,
                   stdout=subprocess.DEVNULL)
    return bundle


_seq = 0


class Bundle:
    """A runc bundle whose process args are rewritten for each run."""

    def __init__(self, tag, helpers_kind="static", bundle_dir=None, extra=None):
        self.dir = bundle_dir or tmpdir(tag)
        self.tag = tag
        self.work = os.path.join(self.dir, "work")
        os.makedirs(self.work, exist_ok=True)
        rootfs = os.path.join(self.dir, "rootfs")
        if not os.path.exists(os.path.join(rootfs, "bin", "busybox")):
            make_rootfs(rootfs, helpers_kind, extra)
        cfg = os.path.join(self.dir, "config.json")
        if not os.path.exists(cfg):
            subprocess.run(["runc", "spec"], cwd=self.dir, check=True)
        with open(cfg) as f:
            self.config = json.load(f)
        self.config["process"]["terminal"] = False
        self.config["mounts"].append({"destination": "/work", "type": "bind", "source": self.work,
                                      "options": ["rbind", "rw"]})

    def add_mount(self, src, dst, readonly=True):
        self.config["mounts"].append({"destination": dst, "type": "bind", "source": src,
                                      "options": ["rbind", "ro" if readonly else "rw"]})

    def add_caps(self, *caps):
        for kind in ("bounding", "effective", "permitted"):
            lst = self.config["process"]["capabilities"].setdefault(kind, [])
            for c in caps:
                if c not in lst:
                    lst.append(c)

    def new_id(self):
        global _seq
        _seq += 1
        return f"kilt-rt-{self.tag}-{os.getpid()}-{_seq}"

    def start(self, args, env=None, stdout=subprocess.PIPE, stderr=subprocess.PIPE):
        """Starts `runc run` in the foreground; returns (container id, Popen)."""
        self.config["process"]["args"] = list(args)
        envs = [e for e in self.config["process"]["env"] if not e.startswith("KILT_DEBUG=")]
        for k, v in (env or {}).items():
            envs.append(f"{k}={v}")
        self.config["process"]["env"] = envs
        with open(os.path.join(self.dir, "config.json"), "w") as f:
            json.dump(self.config, f)
        cid = self.new_id()
        p = subprocess.Popen(["runc", "run", "--bundle", self.dir, cid], stdout=stdout,
                             stderr=stderr, stdin=subprocess.DEVNULL, text=True)
        return cid, p

    def run(self, args, env=None, timeout=60):
        """Runs a container to completion: (exit status, stdout, stderr)."""
        cid, p = self.start(args, env)
        return wait_container(cid, p, timeout, f"container {args}")

    def work_file(self, name):
        return os.path.join(self.work, name)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_container(cid, p, timeout, what):
    """Waits for the `runc run` of container `cid` (Popen `p`): (exit status, stdout, stderr).
    One that outlives `timeout` seconds is killed, and that is a failed check."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_container(cid)
        out, err = p.communicate()
        check(False, f"{what} timed out")
    return p.returncode, out, err


def run_config(bundle_dir, config, tag, timeout=60, signal_after=None):
    """Runs the bundle in `bundle_dir` with `config` as its config.json, to completion: (exit
    status, stdout, stderr). signal_after=(FILE, SIGNAL): SIGNAL goes to the container once it
    has created FILE (a host path)."""
    global _seq
    with open(os.path.join(bundle_dir, "config.json"), "w") as f:
        json.dump(config, f)
    _seq += 1
    cid = f"kilt-rt-{tag}-{os.getpid()}-{_seq}"
    p = subprocess.Popen(["runc", "run", "--bundle", bundle_dir, cid], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    if signal_after:
        ready, sig = signal_after
        check(wait_for(ready, 30), f"{cid}: ready")
        runc_kill(cid, sig)
    return wait_container(cid, p, timeout, cid)


def runc_kill(cid, sig="TERM"):
    return subprocess.run(["runc", "kill", cid, sig], capture_output=True, text=True)


def kill_container(cid):
    subprocess.run(["runc", "kill", cid, "KILL"], capture_output=True)
    subprocess.run(["runc", "delete", "-f", cid], capture_output=True)


def wait_for(path, timeout=20.0):
    """The test side may poll: it waits for a container to say it is ready."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path):
            return True
        time.sleep(0.02)
    return False


def run_host(args, env=None, timeout=60, **kw):
    e = dict(os.environ)
    e.pop("KILT_DEBUG", None)
    e.update(env or {})
    p = subprocess.run(args, env=e, capture_output=True, text=True, timeout=timeout, **kw)
    return p.returncode, p.stdout, p.stderr


def sig_num(name):
    return int(getattr(signal, "SIG" + name))
