#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""kilt exec against a real cluster (tests/infra/k8s_cluster.py): the real kubectl, API server,
kubelet, containerd and runc. strace stands in for pdig (a real ptrace tracer; a real pdig cannot
be built here): the recipe uploads strace (by URL, from a loopback HTTP server, sha256 checked),
its libraries and loader (local files) and starts `strace -f -p 1` through kilt-launch.

- exec strategy in a busybox pod (root): strace runs inside the container's files and traces the
  app, checked from the node's /proc (the app's TracerPid is strace, whose root is the app's);
  the pod annotation (naming the container's instance) and marker are written; a second run
  (through `kubectl kilt exec`, the plugin) changes nothing and runs no `kubectl exec` (the
  annotation shows the same container instance got the recipe); --verify enters and finds the
  marker; --dry-run changes nothing;
- the container restarted (its process killed from the node): the next run installs again, and
  one `kubectl annotate` writes the annotations;
- a pod that vanishes after its exec, before its annotation: partial, with kubectl's error;
- a URL whose sha256 is wrong is refused before anything is uploaded (no request to any pod);
- a pod that vanishes between listing and exec gets its error while the other pod is patched;
- a non-root pod (runAsUser 1000) with --dir /tmp/kilt;
- a scratch image with one static program: the exec strategy says to use debug; the debug
  strategy (ephemeral container from a helper image: busybox + static kilt-launch, kilt-wait)
  starts strace in the target's files, tracing the app;
- RBAC: --as a user who may exec in one namespace only: that pod is patched, the other refused;
- a full disk (a 1 MiB memory emptyDir): the per-pod error and nothing left behind.
"""
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import k8s_cluster

KILT = os.environ["KILT"]
SRC = os.environ["KILT_SOURCE_DIR"]
failures = []


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def sh(*argv, **kw):
    return subprocess.run(list(argv), check=True, capture_output=True, text=True, **kw)


# ---- prepared before the cluster starts (it is shared: hold it briefly) -----------------------

def build_helpers(d):
    """Static kilt-launch and kilt-wait (musl), as the `static` preset builds them."""
    out = {}
    for name in ("kilt-launch", "kilt-wait"):
        path = os.path.join(d, name)
        sh("musl-gcc", "-static", "-Os", "-s", "-o", path, os.path.join(SRC, "runtime", f"{name}.c"))
        out[name] = path
    return out


APP_C = r"""
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
int main(void)
{
	/* the only program of a scratch image: it opens a file now and then */
	struct timespec ts = { 0, 300 * 1000 * 1000 };
	for (;;) {
		int fd = open("/proc/self/stat", O_RDONLY);
		if (fd >= 0)
			close(fd);
		nanosleep(&ts, 0);
	}
}
"""


def build_images(d, helpers):
    """kilt.test/scratch-app:1 (one static program, no shell, no tar) and kilt.test/helpers:1
    (busybox, /kilt/bin/kilt-launch and kilt-wait), as docker archives for ctr import."""
    c = k8s_cluster.Cluster.__new__(k8s_cluster.Cluster)  # only its image packer is used here
    layout = os.path.join(d, "oci")
    sh("umoci", "init", "--layout", layout)
    app_c = os.path.join(d, "app.c")
    with open(app_c, "w") as f:
        f.write(APP_C)
    app = os.path.join(d, "app")
    sh("cc", "-static", "-Os", "-s", "-o", app, app_c)
    k8s_cluster.Cluster._umoci_image(c, layout, "scratch-app", {"/app": app}, [],
                                     ["--config.entrypoint", "/app"])
    busybox = shutil.which("busybox")
    links = [a for a in sh(busybox, "--list").stdout.split() if a != "busybox"]
    k8s_cluster.Cluster._umoci_image(
        c, layout, "helpers", {"/bin/busybox": busybox, "/kilt/bin/kilt-launch": helpers["kilt-launch"],
                               "/kilt/bin/kilt-wait": helpers["kilt-wait"]}, links,
        ["--config.entrypoint", "/kilt/bin/kilt-wait"])
    archives = {}
    for tag in ("scratch-app", "helpers"):
        archives[tag] = os.path.join(d, f"{tag}.tar")
        sh("skopeo", "--insecure-policy", "copy", "-q", f"oci:{layout}:{tag}",
           f"docker-archive:{archives[tag]}:kilt.test/{tag}:1")
    return archives


def strace_files(d):
    """/usr/bin/strace, every library ldd lists and the loader: (strace path, {lib name: path}, loader)."""
    libs, loader = {}, None
    for line in sh("ldd", "/usr/bin/strace").stdout.splitlines():
        for word in line.split():
            if word.startswith("/"):
                libs[os.path.basename(word)] = os.path.realpath(word)
                if "ld-linux" in word:
                    loader = os.path.basename(word)
    return "/usr/bin/strace", libs, loader


def recipe(path, url, sha, libs, loader, prefix, uid=0):
    """strace by URL, its libraries by file, started as `strace -f -p 1 -o PREFIX/trace`."""
    ups = [f'{{ url: "{url}", sha256: "{sha}", as: "{prefix}/bin/strace", uid: {uid}, gid: {uid} }}']
    for name, src in sorted(libs.items()):
        ups.append(f'{{ file: "{src}", as: "{prefix}/lib/{name}", uid: {uid}, gid: {uid} }}')
    ups.append(f'{{ text: "traced by kilt exec\\n", as: "{prefix}/README", mode: "0644", uid: {uid}, gid: {uid} }}')
    prog = json.dumps([f"{prefix}/lib/{loader}", "--library-path", f"{prefix}/lib", f"{prefix}/bin/strace",
                       "-f", "-p", "1", "-o", f"{prefix}/trace"])
    with open(path, "w") as f:
        f.write("patch {\n  upload: [\n    " + "\n    ".join(ups) + "\n  ]\n"
                f"  background_exec: [ {prog} ]\n}}\n")
    return path


class Server:
    """A loopback HTTP server for the recipe's URL; it records the paths asked for."""

    def __init__(self, root):
        seen = self.seen = []

        class H(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=root, **kw)

            def log_message(self, *a):
                seen.append(self.path)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()


# ---- on the cluster ------------------------------------------------------------------------------

def pod(name, image, command=None, ns="default", user=None, labels=None, volumes=None):
    c = {"name": "app", "image": image, "imagePullPolicy": "Never"}
    if command:
        c["command"] = command
    spec = {"terminationGracePeriodSeconds": 1, "containers": [c]}
    if user:
        spec["securityContext"] = {"runAsUser": user, "runAsGroup": user}
    if volumes:
        spec["volumes"] = [{"name": "small", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}]
        c["volumeMounts"] = [{"name": "small", "mountPath": "/small"}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {"app": name}},
            "spec": spec}


LOOP = ["sh", "-c", "while true; do cat /proc/self/stat >/dev/null; sleep 0.3; done"]

RBAC = [
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "exec-ok"}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
     "metadata": {"name": "kilt-eve-read"},
     "rules": [{"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
     "metadata": {"name": "kilt-eve-read"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "kilt-eve-read"},
     "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "eve"}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
     "metadata": {"name": "kilt-exec", "namespace": "exec-ok"},
     "rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]},
               {"apiGroups": [""], "resources": ["pods"], "verbs": ["patch"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
     "metadata": {"name": "kilt-exec", "namespace": "exec-ok"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kilt-exec"},
     "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "eve"}]},
]


def get_pod(c, name, ns="default"):
    p = c.kubectl("get", "pod", "-n", ns, name, "-o", "json", check=False)
    return json.loads(p.stdout) if p.returncode == 0 else None


def app_pid(c, name, ns="default"):
    """The host pid of the pod's app container (its PID 1), from containerd."""
    st = get_pod(c, name, ns)["status"]["containerStatuses"][0]
    cid = st["containerID"].split("://")[-1]
    for line in c.ctr("tasks", "ls").stdout.splitlines()[1:]:
        f = line.split()
        if f and f[0] == cid:
            return int(f[1])
    return None


def tracer_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return 0


def same_root(a, b):
    sa, sb = os.stat(f"/proc/{a}/root/"), os.stat(f"/proc/{b}/root/")
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def check_traced(c, name, what, ns="default", timeout=15):
    """From the node: the app is ptraced by strace, which sees the app's files as its root."""
    pid = app_pid(c, name, ns)
    end = time.monotonic() + timeout
    tracer = 0
    while time.monotonic() < end and pid:
        tracer = tracer_of(pid)
        if tracer:
            break
        time.sleep(0.2)
    check(tracer > 0, f"{what}: the app (host pid {pid}) is traced (TracerPid {tracer})")
    if not tracer:
        return None
    cmd = open(f"/proc/{tracer}/cmdline", "rb").read().split(b"\0")
    check(any(w.endswith(b"/bin/strace") for w in cmd), f"{what}: the tracer is strace: {cmd[:4]}")
    check(same_root(tracer, pid), f"{what}: strace runs in the container's files (same root as the app)")
    return tracer


def instances_of(pod):
    return pod["metadata"].get("annotations", {}).get("kilt.dev/exec-instances", "").split()


def instance_digest(pod, d, container="app"):
    """The digest kilt writes for the container's running instance (include/kilt/kilt-exec.h)."""
    st = [s for s in pod["status"]["containerStatuses"] if s["name"] == container][0]
    recipe_hash = json.loads(pod["metadata"]["annotations"]["kilt.dev/exec"])[container].split()[1]
    text = "\n".join([pod["metadata"]["uid"], container, st["containerID"], str(st["restartCount"]),
                      recipe_hash, d])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def container_exec(c, name, *cmd, ns="default", container=None):
    args = ["exec", "-n", ns, name] + (["-c", container] if container else []) + ["--", *cmd]
    return c.kubectl(*args, check=False)


def main():
    if not shutil.which("musl-gcc") or not shutil.which("strace") or not shutil.which("ldd"):
        print("SKIPPED: musl-gcc, strace and ldd are needed (tests/infra/install-deps.sh)")
        return 77
    work = tempfile.mkdtemp(prefix="kilt-exec-k8s-")
    helpers = build_helpers(work)
    archives = build_images(work, helpers)
    strace, libs, loader = strace_files(work)
    served = os.path.join(work, "www")
    os.makedirs(served)
    shutil.copy(strace, os.path.join(served, "strace"))
    sha = hashlib.sha256(open(strace, "rb").read()).hexdigest()
    srv = Server(served)
    url = f"http://127.0.0.1:{srv.port}/strace"
    r_root = recipe(os.path.join(work, "strace.conf"), url, sha, libs, loader, "/opt/strace")
    r_user = recipe(os.path.join(work, "strace-user.conf"), url, sha, libs, loader, "/tmp/strace", 1000)
    r_bad = recipe(os.path.join(work, "bad.conf"), url, "0" * 64, libs, loader, "/opt/strace")
    with open(os.path.join(work, "big.conf"), "w") as f:
        big = os.path.join(work, "big.bin")
        with open(big, "wb") as b:
            b.write(os.urandom(3 << 20))
        f.write(f'patch {{ upload: [ {{ text: "first\\n", as: /small/first }}\n'
                f'  {{ file: "{big}", as: /small/big }} ] }}\n')
    r_big = os.path.join(work, "big.conf")
    r_text = os.path.join(work, "text.conf")
    with open(r_text, "w") as f:
        f.write('patch { upload: [ { text: "x\\n", as: /tmp/x } ] }\n')

    c = k8s_cluster.Cluster()
    try:
        c.start()
    except k8s_cluster.Unavailable as e:
        print(f"SKIPPED: {e}", flush=True)
        return 77
    t_cluster = time.monotonic()
    env = c.env()
    bindir = os.path.join(work, "bin")
    os.makedirs(bindir)
    os.symlink(KILT, os.path.join(bindir, "kubectl-kilt"))
    env["PATH"] = bindir + os.pathsep + env["PATH"]

    def kilt(*args, **kw):
        p = subprocess.run([KILT, "exec", *args], capture_output=True, text=True, env=env,
                           timeout=600, **kw)
        print(f"$ kilt exec {' '.join(args)}\n{p.stdout}{p.stderr}[exit {p.returncode}]", flush=True)
        return p

    launcher = ["--launcher", helpers["kilt-launch"]]
    try:
        for a in archives.values():
            c.import_image(a)
        bb = k8s_cluster.IMAGES["busybox"]
        objs = RBAC + [
            pod("shell", bb, LOOP), pod("gone", bb, LOOP), pod("nonroot", bb, LOOP, user=1000),
            pod("scratch", "kilt.test/scratch-app:1"),
            pod("tiny", bb, LOOP, volumes=True),
            pod("eve-ok", bb, LOOP, ns="exec-ok", labels={"rbac": "eve"}),
            pod("vanish", bb, LOOP),
            pod("eve-denied", bb, LOOP, labels={"rbac": "eve"}),
        ]
        c.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))
        c.kubectl("wait", "--for=condition=Ready", "pod", "--all", "-A", "--timeout=120s", timeout=150)

        # -- a wrong sha256: refused before anything is sent
        p = kilt("-r", r_bad, "shell", *launcher)
        check(p.returncode == 1 and f"sha256 is {sha}, the recipe says {'0' * 64}: refused, nothing "
              "was uploaded" in p.stderr, "wrong sha256: refused with both digests")
        check("/strace" in srv.seen, "wrong sha256: the URL was fetched (once, here)")
        check(container_exec(c, "shell", "ls", "/opt/strace").returncode != 0 and
              container_exec(c, "shell", "ls", "/kilt").returncode != 0,
              "wrong sha256: nothing reached the pod")

        # -- a dry run changes nothing
        p = kilt("-r", r_root, "--dry-run", "shell", *launcher)
        check(p.returncode == 0 and "planned" in p.stdout, "dry run plans")
        check(container_exec(c, "shell", "ls", "/kilt").returncode != 0 and
              "kilt.dev/exec" not in get_pod(c, "shell")["metadata"].get("annotations", {}),
              "dry run: no file, no annotation")

        # -- the exec strategy; `gone` vanishes between the listing and its exec
        wrapper = os.path.join(work, "kubectl-deleting")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\n"
                    f"'{os.path.join(k8s_cluster.BIN, 'kubectl')}' \"$@\"; rc=$?\n"
                    "case \"$*\" in *'get pods'*)\n"
                    f"  '{os.path.join(k8s_cluster.BIN, 'kubectl')}' delete pod gone --grace-period=0 "
                    "--force --wait=true >/dev/null 2>&1;;\nesac\nexit $rc\n")
        os.chmod(wrapper, 0o755)
        fetches = len(srv.seen)
        p = kilt("-r", r_root, "shell", "gone", *launcher, "--kubectl", wrapper, "--parallel", "2",
                 "-o", "json")
        res = {x["pod"]: x for x in json.loads(p.stdout)["containers"]} if p.stdout else {}
        check(p.returncode == 1, "one pod vanished: exit 1")
        check(res.get("shell", {}).get("result") == "applied", f"shell applied: {res.get('shell')}")
        check(res.get("gone", {}).get("result") == "failed" and
              "the pod or container is gone" in res.get("gone", {}).get("detail", ""),
              f"gone: its own error: {res.get('gone')}")
        check(len(srv.seen) == fetches + 1, "the URL was fetched once for the run")
        tracer = check_traced(c, "shell", "exec strategy")
        shell = get_pod(c, "shell")
        ann = shell["metadata"].get("annotations", {}).get("kilt.dev/exec", "")
        cid = shell["status"]["containerStatuses"][0]["containerID"]
        check(json.loads(ann or "{}").get("app", "").startswith("strace "),
              f"the pod annotation names the recipe: {ann!r}")
        check(instance_digest(shell, "/kilt") in instances_of(shell),
              f"kilt.dev/exec-instances names the container's instance ({cid})")
        marker = container_exec(c, "shell", "cat", "/kilt/marker").stdout
        check(marker.split("\n")[1:2] == ["strace"], f"the marker file: {marker!r}")
        st = container_exec(c, "shell", "stat", "-c", "%a %u %g %s", "/opt/strace/README",
                            "/opt/strace/bin/strace").stdout.split("\n")
        check(st[0] == "644 0 0 20" and st[1].startswith("755 0 0 "), f"modes and owners: {st}")
        time.sleep(1)
        trace = container_exec(c, "shell", "cat", "/opt/strace/trace").stdout
        check("/proc/self/stat" in trace, "strace's output shows the app's work")

        # -- a second run, through the kubectl plugin: nothing changes
        rv = get_pod(c, "shell")["metadata"]["resourceVersion"]
        mtime = container_exec(c, "shell", "stat", "-c", "%Y", "/kilt/marker").stdout
        p = subprocess.run([os.path.join(k8s_cluster.BIN, "kubectl"), "kilt", "exec", "-r", r_root,
                            "shell", *launcher], capture_output=True, text=True, env=env, timeout=300)
        print(p.stdout + p.stderr, flush=True)
        check(p.returncode == 0 and "unchanged" in p.stdout and "not entered" in p.stdout,
              "kubectl kilt exec, again: unchanged, the container not entered")
        check(container_exec(c, "shell", "stat", "-c", "%Y", "/kilt/marker").stdout == mtime and
              get_pod(c, "shell")["metadata"]["resourceVersion"] == rv,
              "second run: marker and pod untouched")
        check(tracer_of(app_pid(c, "shell")) == tracer, "second run: the same strace traces the app")
        # which kubectl commands a run starts: none enters the container when the annotation
        # proves the recipe is there; --verify enters and finds the marker
        calls = os.path.join(work, "kubectl-calls")
        logging = os.path.join(work, "kubectl-logging")
        with open(logging, "w") as f:
            f.write(f"#!/bin/sh\nprintf '%s %s\\n' \"$1\" \"$2\" >> '{calls}'\n"
                    f"exec '{os.path.join(k8s_cluster.BIN, 'kubectl')}' \"$@\"\n")
        os.chmod(logging, 0o755)
        p = kilt("-r", r_root, "shell", *launcher, "--kubectl", logging)
        seen = open(calls).read().splitlines()
        check(p.returncode == 0 and "unchanged" in p.stdout and
              sorted(w.split()[1] for w in seen) == ["nodes", "pods"] and
              all(w.split()[0] == "get" for w in seen),
              f"unchanged: only the listing ran, no kubectl exec, no annotate: {seen}")
        os.unlink(calls)
        p = kilt("-r", r_root, "shell", *launcher, "--kubectl", logging, "--verify")
        seen = open(calls).read().splitlines()
        check(p.returncode == 0 and "recipe strace already applied" in p.stdout and
              "not entered" not in p.stdout and "exec -i" in seen and
              all(w.split()[0] in ("get", "exec") for w in seen) and
              get_pod(c, "shell")["metadata"]["resourceVersion"] == rv,
              f"--verify: entered, found the marker, the annotation untouched: {seen}")
        # --kubeconfig and --context reach kubectl (the environment's KUBECONFIG is wrong here);
        # on a terminal, a progress bar
        ctx = c.kubectl("config", "current-context").stdout.strip()
        penv = dict(env, KUBECONFIG=os.path.join(work, "no-such-kubeconfig"))
        cmd = [KILT, "exec", "-r", r_root, "shell", *launcher, "--kubeconfig", c.kubeconfig,
               "--context", ctx]
        p = subprocess.run(["script", "-qec", " ".join(cmd), "/dev/null"], capture_output=True,
                           text=True, env=penv, timeout=300)
        print(p.stdout, flush=True)
        check(p.returncode == 0 and "unchanged" in p.stdout,
              f"--kubeconfig and --context passed to kubectl ({ctx})")
        check("[##############################] 1/1 pods" in p.stdout, "a progress bar on a terminal")
        p = kilt("-r", r_root, "--dry-run", "shell", *launcher, "--force")
        check(p.returncode == 0 and tracer_of(app_pid(c, "shell")) == tracer,
              "dry run with --force: the same strace still runs")

        # -- another recipe is there: left alone (and kubectl is not left waiting to send the tar
        # the script never reads)
        p = kilt("-r", r_user, "shell", *launcher, "--timeout", "60")
        check(p.returncode == 1 and "carries another recipe (strace," in p.stdout and
              "--force replaces it" in p.stdout and tracer_of(app_pid(c, "shell")) == tracer,
              "another recipe: left alone, the same strace runs")

        # -- a non-root container
        p = kilt("-r", r_user, "nonroot", *launcher, "--dir", "/tmp/kilt")
        check(p.returncode == 0 and "applied" in p.stdout, "non-root: applied")
        tr = check_traced(c, "nonroot", "non-root")
        if tr:
            uid = [l for l in open(f"/proc/{tr}/status") if l.startswith("Uid:")][0].split()[1]
            check(uid == str(os.stat(f"/proc/{app_pid(c, 'nonroot')}").st_uid),
                  f"non-root: strace runs as the app's user ({uid})")
        p = kilt("-r", r_root, "nonroot", *launcher, "--timeout", "60")
        check(p.returncode == 1 and "rolled back" in p.stdout and
              container_exec(c, "nonroot", "ls", "/opt/strace").returncode != 0,
              "non-root: files for root where the user cannot write: error, rolled back")

        # -- scratch: exec cannot, debug can
        p = kilt("-r", r_root, "scratch", *launcher)
        check(p.returncode == 1 and "use --strategy debug" in p.stdout, "scratch + exec: names debug")
        p = kilt("-r", r_root, "scratch", "--strategy", "debug", "--debug-image", "kilt.test/helpers:1")
        check(p.returncode == 0 and "applied" in p.stdout, "scratch + debug: applied")
        check("cannot remove ephemeral containers" in p.stdout, "debug: says ephemeral containers stay")
        check_traced(c, "scratch", "debug strategy")
        eph = get_pod(c, "scratch")["spec"].get("ephemeralContainers", [])
        check(len(eph) == 1 and eph[0]["name"].startswith("kilt-"), f"one ephemeral container: {eph}")
        p = kilt("-r", r_root, "scratch", "--strategy", "debug", "--debug-image", "kilt.test/helpers:1")
        check(p.returncode == 0 and "unchanged" in p.stdout and
              len(get_pod(c, "scratch")["spec"].get("ephemeralContainers", [])) == 1,
              "debug, again: unchanged, no second ephemeral container")
        p = kilt("-r", r_root, "shell", "--strategy", "debug", "--debug-image", "kilt.test/helpers:1",
                 "--dry-run")
        check(p.returncode == 0, "debug dry run on a patched pod")

        # -- RBAC: eve may exec in exec-ok only
        p = kilt("-r", r_root, "-A", "-l", "rbac=eve", "--as", "eve", *launcher, "-o", "json")
        res = {x["pod"]: x for x in json.loads(p.stdout)["containers"]} if p.stdout else {}
        check(p.returncode == 1, "RBAC: exit 1")
        check(res.get("eve-ok", {}).get("result") == "applied", f"RBAC: allowed pod applied: {res.get('eve-ok')}")
        check(res.get("eve-denied", {}).get("result") == "failed" and
              "not allowed (RBAC)" in res.get("eve-denied", {}).get("detail", ""),
              f"RBAC: refused pod: {res.get('eve-denied')}")
        check(container_exec(c, "eve-denied", "ls", "/kilt").returncode != 0, "RBAC: nothing in the refused pod")

        # -- the container restarts (a new instance, without the files): the next run installs
        os.kill(app_pid(c, "shell"), 9)
        end = time.monotonic() + 90
        st = {}
        while time.monotonic() < end:
            st = get_pod(c, "shell")["status"]["containerStatuses"][0]
            if st.get("restartCount", 0) >= 1 and "running" in st.get("state", {}):
                break
            time.sleep(0.5)
        check(st.get("restartCount", 0) >= 1 and st.get("containerID") != cid,
              f"restart: a new instance of the container ({st.get('containerID')})")
        os.unlink(calls)
        p = kilt("-r", r_root, "shell", *launcher, "--kubectl", logging)
        check(p.returncode == 0 and "applied" in p.stdout, "restart: the next run installs again")
        seen = open(calls).read().splitlines()
        check(seen.count("annotate --overwrite") == 1 and "exec -i" in seen,
              f"restart: entered, one kubectl annotate: {seen}")
        shell = get_pod(c, "shell")
        check(instance_digest(shell, "/kilt") in instances_of(shell),
              f"restart: kilt.dev/exec-instances names the new instance: {instances_of(shell)}")
        check_traced(c, "shell", "after the restart")

        # -- the pod vanishes after its exec, before its annotation is written
        wrapper = os.path.join(work, "kubectl-vanishing")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\n"
                    "case \"$1\" in annotate)\n"
                    f"  '{os.path.join(k8s_cluster.BIN, 'kubectl')}' delete pod vanish --grace-period=0 "
                    "--force --wait=true >/dev/null 2>&1;;\nesac\n"
                    f"exec '{os.path.join(k8s_cluster.BIN, 'kubectl')}' \"$@\"\n")
        os.chmod(wrapper, 0o755)
        p = kilt("-r", r_text, "vanish", "--kubectl", wrapper, "-o", "json")
        res = json.loads(p.stdout)["containers"][0] if p.stdout else {}
        check(p.returncode == 1 and res.get("result") == "partial" and
              "the pod annotation was not written" in res.get("detail", ""),
              f"vanished before its annotation: partial, said: {res.get('detail')}")

        # -- a full disk
        p = kilt("-r", r_big, "tiny")
        check(p.returncode == 1 and "disk is full" in p.stdout and "rolled back" in p.stdout,
              "full disk: said, rolled back")
        ls = container_exec(c, "tiny", "ls", "-A", "/small").stdout
        check(ls.strip() == "", f"full disk: nothing left in /small ({ls!r})")
        check(container_exec(c, "tiny", "cat", "/kilt/marker").returncode != 0, "full disk: no marker")
        print(f"time on the cluster: {time.monotonic() - t_cluster:.0f} s")
    finally:
        c.stop()
        srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
