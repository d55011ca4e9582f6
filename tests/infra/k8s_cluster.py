#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A real single-node Kubernetes cluster on 127.0.0.1 for the tests: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, containerd + runc and a kubelet with a CNI bridge, all in
a private temporary directory, with certificates made by the openssl CLI and local images (no
registry: a static pause program and busybox, packed with umoci and imported with ctr).

The programs come from tests/infra/peer-k8s.sh (/opt/kilt/bin) and Debian (containerd, runc, CNI
plugins). The node is named `localhost`; pods get 10.244.0.0/24 on the bridge `kiltk8s0`.

With `Cluster(service_network=True)` (`run --service-network`) pods also reach Services through
their cluster IPs: kube-proxy (iptables mode) runs, and the `kubernetes` Service (10.96.0.1:443)
gets an endpoint, so a pod's in-cluster configuration (KUBERNETES_SERVICE_HOST/PORT, its service
account's token and CA) reaches the API server. The API server listens on 127.0.0.1 only, and an
endpoint may not be a loopback address (the API server refuses it: "may not be in the loopback
range"), so the endpoint is a relay: a pod in kube-system (`kilt-apiserver-relay`) whose network
namespace holds a listening socket of this process, which forwards each connection's bytes, TLS
and all, to the API server on 127.0.0.1 (pod -> 10.96.0.1:443 -> kube-proxy's DNAT -> relay pod
-> kube-apiserver). Nothing listens outside loopback and network namespaces of the cluster's own.

One cluster runs on the machine at a time: a machine-wide lock (flock) is taken before anything
starts and held until everything is gone. A run that died without stopping its cluster (killed
test, crash) leaves processes, mounts and network namespaces behind; the next run cleans them up
under the lock before it starts its own.

Use from Python:

    from k8s_cluster import Cluster
    with Cluster() as c:
        c.kubectl("run", "x", "--image", c.images["busybox"], ...)

or from a shell, which runs a command with KUBECONFIG set and stops the cluster afterwards:

    tests/infra/k8s_cluster.py run -- kubectl get nodes
    tests/infra/k8s_cluster.py cleanup     # stop what a dead run left behind

Environment: KILT_PEER_BIN (default /opt/kilt/bin), KILT_CACHE (default /var/cache/kilt, image
cache), KILT_K8S_LOCK_TIMEOUT (seconds to wait for another run's cluster, default 1800),
KILT_K8S_KEEP=1 (keep the run directory and its logs after stopping), KILT_K8S_LOCK_FD (a
descriptor, inherited from the caller, of the lock file the caller has already locked: the run
uses that lock instead of waiting for its own, and the lock outlives the run).
"""
import argparse
import contextlib
import ctypes
import fcntl
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("KILT_PEER_BIN", "/opt/kilt/bin")
CACHE = os.environ.get("KILT_CACHE", "/var/cache/kilt")
CNI_BIN = "/usr/lib/cni"
LOCK_PATH = "/run/lock/kilt-k8s-cluster.lock"
RUN_PREFIX = "kilt-k8s."
RUN_BASE = "/tmp"  # short: containerd's and the kubelet's unix sockets live under the run dir
NETWORK = "kilt-k8s"
BRIDGE = "kiltk8s0"
POD_SUBNET = "10.244.0.0/24"
SERVICE_RANGE = "10.96.0.0/16"
NODE = "localhost"
IMAGES = {"pause": "kilt.test/pause:1", "busybox": "kilt.test/busybox:1"}
# Bumped when the way the images are made changes, so a cached archive is not reused.
IMAGE_RECIPE = "2"

KUBE_PROGRAMS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet",
                 "kubectl"]
KUBERNETES_SERVICE_IP = "10.96.0.1"  # the first address of SERVICE_RANGE
RELAY_POD = "kilt-apiserver-relay"  # kube-system
RELAY_PORT = 443
CLONE_NEWNET = 0x40000000
HOST_PROGRAMS = ["containerd", "ctr", "runc", "openssl", "umoci", "skopeo", "busybox", "ip", "cc",
                 "mount", "umount"]


class ClusterError(RuntimeError):
    pass


class Unavailable(ClusterError):
    """The cluster cannot run on this machine (a program is missing): tests skip, loudly."""


def log(msg):
    print(f"k8s-cluster: {msg}", file=sys.stderr, flush=True)


def missing_programs(service_network=False):
    kube = KUBE_PROGRAMS + (["kube-proxy"] if service_network else [])
    missing = [os.path.join(BIN, p) for p in kube if not os.access(os.path.join(BIN, p), os.X_OK)]
    if service_network and not shutil.which("iptables"):
        missing.append("iptables")
    missing += [p for p in HOST_PROGRAMS if not shutil.which(p)]
    missing += [os.path.join(CNI_BIN, p) for p in ("bridge", "host-local", "loopback")
                if not os.access(os.path.join(CNI_BIN, p), os.X_OK)]
    return missing


def free_port():
    """A free loopback port below the kernel's ephemeral range, so that neither an outgoing
    connection nor another test's bind to port 0 can take it between now and the daemon's bind."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low) if low > 2024 else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise ClusterError("no free loopback port found")


def sh(*argv, check=True, **kw):
    p = subprocess.run(list(argv), capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise ClusterError(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()[-2000:]}")
    return p


def _die_with_parent():
    # Daemons die with the harness (SIGKILL of a test run); the next run cleans up the rest.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _kill_and_wait(pids, sig, timeout):
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    end = time.monotonic() + timeout
    left = list(pids)
    while left and time.monotonic() < end:
        time.sleep(0.05)
        for pid in list(left):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if not _alive(pid) or _zombie(pid):
                left.remove(pid)
    return left


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


def _ancestors():
    """This process and its parents: never stopped by the clean-up, whatever their arguments."""
    found, pid = set(), os.getpid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            break
    return found


def _mounts_under(path):
    """Mount points at or below path, deepest first."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].encode().decode("unicode_escape")
            if mp == path or mp.startswith(path + "/"):
                found.append(mp)
    return sorted(set(found), key=len, reverse=True)


def _unmount_under(path):
    for _ in range(5):
        mps = _mounts_under(path)
        if not mps:
            return
        for mp in mps:
            if sh("umount", mp, check=False).returncode != 0:
                sh("umount", "-l", mp, check=False)


def _remove_tree(path):
    _unmount_under(path)
    shutil.rmtree(path, ignore_errors=True)
    if os.path.exists(path):
        # A busy mount that a lazy unmount just detached can take a moment to go.
        time.sleep(0.5)
        _unmount_under(path)
        shutil.rmtree(path, ignore_errors=True)


def clean_leftovers(own=None):
    """Removes everything a previous run left behind (and what is left of `own`, the run dir of
    a cluster just stopped). Call only with the cluster lock held: then no live cluster owns any
    of it."""
    runs = [os.path.join(RUN_BASE, d) for d in os.listdir(RUN_BASE) if d.startswith(RUN_PREFIX)]
    marker = os.path.join(RUN_BASE, RUN_PREFIX)
    spare = _ancestors()
    # 1. Daemons and shims of old runs (their command lines name their run dir), then containers.
    stale = [p for p in _pids() if p not in spare and marker in _cmdline(p)]
    if stale:
        log(f"stopping {len(stale)} process(es) left by " +
            ("this run" if own and all(own in _cmdline(p) for p in stale) else "an earlier run"))
        _kill_and_wait(stale, signal.SIGKILL, 5)
    for run in runs:
        for root in (os.path.join(run, "runc", "k8s.io"), os.path.join(run, "runc", "default")):
            if not os.path.isdir(root):
                continue
            ids = sh("runc", "--root", root, "list", "-q", check=False).stdout.split()
            for cid in ids:
                sh("runc", "--root", root, "delete", "--force", cid, check=False)
    # Shims re-parented away from a killed containerd still name the old socket.
    stale = [p for p in _pids() if p not in spare and "containerd-shim" in _cmdline(p)
             and marker in _cmdline(p)]
    _kill_and_wait(stale, signal.SIGKILL, 5)
    # 2. Network: namespaces no process uses any more, CNI results of our network, the bridge.
    netns_dir = "/run/netns"
    if os.path.isdir(netns_dir):
        for n in os.listdir(netns_dir):
            if not n.startswith("cni-"):
                continue
            if sh("ip", "netns", "pids", n, check=False).stdout.strip():
                continue
            path = os.path.join(netns_dir, n)
            sh("umount", path, check=False)
            with contextlib.suppress(OSError):
                os.unlink(path)
    results = "/var/lib/cni/results"
    if os.path.isdir(results):
        for n in os.listdir(results):
            if n.startswith(NETWORK + "-"):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(results, n))
    if os.path.exists(f"/sys/class/net/{BRIDGE}"):
        sh("ip", "link", "delete", BRIDGE, check=False)
    # kube-proxy's rules (a service network): its chains in the host's iptables.
    kube_proxy = os.path.join(BIN, "kube-proxy")
    if os.access(kube_proxy, os.X_OK) and shutil.which("iptables") and \
            "KUBE-SERVICES" in sh("iptables", "-t", "nat", "-S", check=False).stdout:
        sh(kube_proxy, "--cleanup", "--proxy-mode=iptables", check=False)
    # 3. Mounts and files.
    for run in runs:
        if run != own:
            log(f"removing {run} left by an earlier run")
        _remove_tree(run)


def _read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


class Relay:
    """Forwards each TCP connection it accepts to `target` in this process's own network
    namespace. It listens on 0.0.0.0:`port` in another network namespace (`netns`, a
    /proc/PID/ns/net path), or on 127.0.0.1 at a free port (self.port) when netns is None.
    cut() breaks every open connection; while `blocked`, a new connection is closed as soon as
    it is accepted."""

    def __init__(self, target, netns=None, port=0):
        self.target = target
        self.stopping = False
        self.blocked = False
        self.conns = set()
        self.lock = threading.Lock()
        self.accepted = 0
        self.connections = 0
        if netns is None:
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", port))
            self.sock.listen(64)
        else:
            self.sock = self._bind_in(netns, port)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @staticmethod
    def _bind_in(netns, port):
        libc = ctypes.CDLL(None, use_errno=True)
        ready = {}

        def bind_there():
            # setns moves only the calling thread; the socket stays in the namespace it was
            # made in, and this short-lived thread takes the namespace with it.
            try:
                with open(netns) as f:
                    if libc.setns(f.fileno(), CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns {netns}")
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", port))
                s.listen(64)
                ready["sock"] = s
            except OSError as e:
                ready["error"] = e
        t = threading.Thread(target=bind_there)
        t.start()
        t.join()
        if "error" in ready:
            raise ClusterError(f"relay: {ready['error']}")
        return ready["sock"]

    def _accept(self):
        while not self.stopping:
            try:
                a, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            if self.blocked:
                a.close()
                continue
            try:
                b = socket.create_connection(self.target, timeout=5)
                b.settimeout(None)
            except OSError:
                a.close()
                continue
            with self.lock:
                self.conns.update((a, b))
                self.connections += 1
            pair = {"open": 2}
            for src, dst in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(src, dst, pair), daemon=True).start()

    def _pump(self, src, dst, pair):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
        with self.lock:
            pair["open"] -= 1
            if pair["open"] == 0:  # both directions ended
                for s in (src, dst):
                    self.conns.discard(s)
                    s.close()

    def cut(self):
        """Breaks every open connection; returns how many sockets were open."""
        with self.lock:
            conns = list(self.conns)
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        return len(conns)

    def stop(self):
        self.stopping = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        with self.lock:
            for s in self.conns:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self.conns.clear()


class Cluster:
    """A running cluster: start() (or `with`) brings it up, stop() tears it all down."""

    def __init__(self, lock_timeout=None, keep=None, service_network=False, apiserver_args=()):
        """service_network: kube-proxy and the `kubernetes` Service's endpoint (see above).
        apiserver_args: more kube-apiserver flags (e.g. --watch-cache-sizes)."""
        self.service_network = service_network
        self.apiserver_args = list(apiserver_args)
        self.relay = None
        self.lock_timeout = float(lock_timeout if lock_timeout is not None
                                  else os.environ.get("KILT_K8S_LOCK_TIMEOUT", "1800"))
        self.keep = keep if keep is not None else os.environ.get("KILT_K8S_KEEP") == "1"
        self.images = dict(IMAGES)
        self.procs = {}  # name -> Popen, in start order
        self.dir = None
        self.lock_fd = None
        self.timings = {}

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        missing = missing_programs(self.service_network)
        if missing:
            raise Unavailable("missing " + ", ".join(missing) +
                              " (run tests/infra/install-deps.sh and tests/infra/peer-k8s.sh)")
        if os.geteuid() != 0:
            raise Unavailable("the kubelet and containerd need root")
        t0 = time.monotonic()
        self._lock()
        self.timings["lock_wait_s"] = round(time.monotonic() - t0, 2)
        try:
            for attempt in range(3):
                try:
                    self._start_once()
                    break
                except ClusterError as e:
                    if "address already in use" not in str(e) or attempt == 2:
                        raise
                    why = [ln for ln in str(e).splitlines() if "address already in use" in ln]
                    log(f"a port was taken while starting, starting again: {why[0].strip()}")
                    self._teardown()
                    clean_leftovers(own=self.dir)
        except BaseException:
            self.stop()
            raise

    def _start_once(self):
        clean_leftovers()
        t1 = time.monotonic()
        self.dir = tempfile.mkdtemp(prefix=RUN_PREFIX, dir=RUN_BASE)
        os.chmod(self.dir, 0o755)
        self._paths()
        self._make_certs()
        self._make_images()
        self._start_etcd()
        self._start_apiserver()
        self._start_controllers()
        self._start_containerd()
        self._import_images()
        self._start_kubelet()
        self._wait_ready()
        if self.service_network:
            self._start_service_network()
        self.timings["start_s"] = round(time.monotonic() - t1, 2)
        log(f"cluster up in {self.timings['start_s']} s ({self.dir})")

    def stop(self):
        if self.lock_fd is None:
            return
        try:
            if self.dir and self.procs:
                self._teardown()
        finally:
            if self.dir:
                if self.keep:
                    log(f"kept {self.dir} (KILT_K8S_KEEP=1); the next run removes it")
                else:
                    clean_leftovers(own=self.dir)
            os.close(self.lock_fd)
            self.lock_fd = None

    def _lock(self):
        held = os.environ.get("KILT_K8S_LOCK_FD")
        if held:
            # The caller holds the lock on this open file: a duplicate shares it (flock belongs
            # to the open file), and closing the duplicate in stop() does not release it.
            fd = os.dup(int(held))
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise ClusterError(f"KILT_K8S_LOCK_FD={held} does not hold {LOCK_PATH}")
            self.lock_fd = fd
            return
        os.makedirs(os.path.dirname(LOCK_PATH), exist_ok=True)
        fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        end = time.monotonic() + self.lock_timeout
        said = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not said:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
                    log(f"waiting for the cluster of another run ({holder or 'unknown'}) to stop")
                    said = True
                if time.monotonic() > end:
                    os.close(fd)
                    raise ClusterError(f"another run held {LOCK_PATH} for {self.lock_timeout:.0f} s")
                time.sleep(0.5)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        self.lock_fd = fd

    # -- pieces ---------------------------------------------------------------------------

    def _paths(self):
        d = self.dir
        self.pki = os.path.join(d, "pki")
        self.logs = os.path.join(d, "logs")
        for sub in ("pki", "logs", "etcd", "kubelet", "pod-logs", "cni/net.d", "cni/ipam",
                    "containerd/root", "containerd/state", "runc", "images", "volume-plugins"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        self.kubeconfig = os.path.join(d, "admin.kubeconfig")
        self.containerd_sock = os.path.join(d, "containerd.sock")
        self.ports = {k: free_port() for k in ("etcd", "etcd_peer", "apiserver", "kubelet",
                                               "proxy_metrics", "proxy_healthz")}
        self.api_url = f"https://127.0.0.1:{self.ports['apiserver']}"

    def _spawn(self, name, argv, env=None):
        out = open(os.path.join(self.logs, f"{name}.log"), "ab")
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             cwd=self.dir, env=env, preexec_fn=_die_with_parent)
        out.close()
        self.procs[name] = p
        return p

    def _check_alive(self, name):
        p = self.procs[name]
        if p.poll() is not None:
            raise ClusterError(f"{name} exited with {p.returncode}:\n{self.log_tail(name)}")

    def log_tail(self, name, lines=30):
        try:
            with open(os.path.join(self.logs, f"{name}.log"), errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def _wait(self, what, cond, timeout, procs=()):
        end = time.monotonic() + timeout
        while True:
            for name in procs:
                self._check_alive(name)
            try:
                if cond():
                    return
            except (OSError, ssl.SSLError, http.client.HTTPException, ValueError):
                pass
            if time.monotonic() > end:
                tails = "\n".join(f"--- {n}\n{self.log_tail(n)}" for n in procs)
                raise ClusterError(f"timed out after {timeout} s waiting for {what}\n{tails}")
            time.sleep(0.2)

    def _openssl(self, *args):
        sh("openssl", *args, cwd=self.pki)

    def make_cert(self, name, cn, org=None, sans=(), server=False, client=False):
        """A key and certificate signed by the cluster's CA; returns (cert path, key path)."""
        key = os.path.join(self.pki, f"{name}.key")
        crt = os.path.join(self.pki, f"{name}.crt")
        subj = f"/CN={cn}" + (f"/O={org}" if org else "")
        self._openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                      "-subj", subj, "-out", f"{name}.csr")
        usages = [u for u, on in (("serverAuth", server), ("clientAuth", client)) if on]
        ext = ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment",
               "extendedKeyUsage=" + ",".join(usages)]
        if sans:
            ext.append("subjectAltName=" + ",".join(sans))
        with open(os.path.join(self.pki, f"{name}.ext"), "w") as f:
            f.write("\n".join(ext) + "\n")
        self._openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                      "-CAcreateserial", "-days", "2", "-sha256", "-extfile", f"{name}.ext",
                      "-out", crt)
        return crt, key

    def _make_certs(self):
        self.ca_cert = os.path.join(self.pki, "ca.crt")
        self.ca_key = os.path.join(self.pki, "ca.key")
        self._openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
                      "-subj", "/CN=kilt-test-cluster-ca", "-days", "2", "-sha256",
                      "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.crt")
        self.certs = {
            "apiserver": self.make_cert(
                "apiserver", "kube-apiserver", server=True,
                sans=("DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default",
                      "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local",
                      "IP:127.0.0.1", "IP:10.96.0.1")),
            "admin": self.make_cert("admin", "kilt-admin", org="system:masters", client=True),
            "apiserver-kubelet": self.make_cert("apiserver-kubelet", "kube-apiserver-kubelet-client",
                                                org="system:masters", client=True),
            "kubelet-client": self.make_cert("kubelet-client", f"system:node:{NODE}",
                                             org="system:nodes", client=True),
            "kubelet-serving": self.make_cert("kubelet-serving", NODE, server=True,
                                              sans=("DNS:localhost", "IP:127.0.0.1")),
        }
        self._openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                      "-out", "sa.key")
        self._openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub")
        self._kubeconfig(self.kubeconfig, *self.certs["admin"])
        self.kubelet_kubeconfig = os.path.join(self.dir, "kubelet.kubeconfig")
        self._kubeconfig(self.kubelet_kubeconfig, *self.certs["kubelet-client"])

    def _kubeconfig(self, path, crt, key):
        # JSON is valid YAML; kubectl reads either.
        cfg = {
            "apiVersion": "v1", "kind": "Config", "current-context": "kilt-test",
            "clusters": [{"name": "kilt-test", "cluster": {
                "server": self.api_url, "certificate-authority": self.ca_cert}}],
            "users": [{"name": "kilt-test", "user": {
                "client-certificate": crt, "client-key": key}}],
            "contexts": [{"name": "kilt-test", "context": {
                "cluster": "kilt-test", "user": "kilt-test", "namespace": "default"}}],
        }
        with open(path, "w") as f:
            json.dump(cfg, f, indent=1)

    # Images: built once per (pause.c, busybox binary, recipe) and kept in the cache.
    def _make_images(self):
        busybox = shutil.which("busybox")
        h = hashlib.sha256(IMAGE_RECIPE.encode())
        for path in (os.path.join(HERE, "k8s", "pause.c"), busybox):
            with open(path, "rb") as f:
                h.update(f.read())
        cache = os.path.join(CACHE, "k8s-images", h.hexdigest()[:16])
        self.image_archives = {k: os.path.join(cache, f"{k}.tar") for k in IMAGES}
        if all(os.path.exists(p) for p in self.image_archives.values()):
            return
        t0 = time.monotonic()
        work = os.path.join(self.dir, "images")
        layout = os.path.join(work, "oci")
        sh("umoci", "init", "--layout", layout)
        # pause: one static program.
        pause_bin = os.path.join(work, "pause")
        sh("cc", "-static", "-Os", "-s", "-o", pause_bin, os.path.join(HERE, "k8s", "pause.c"))
        self._umoci_image(layout, "pause", {"/pause": pause_bin}, [], ["--config.entrypoint", "/pause"])
        # busybox: the static binary and a link for each applet.
        applets = sh(busybox, "--list").stdout.split()
        links = [a for a in applets if a != "busybox"]
        self._umoci_image(layout, "busybox", {"/bin/busybox": busybox}, links,
                          ["--config.cmd", "sh", "--config.env",
                           "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
        os.makedirs(cache, exist_ok=True)
        for k, ref in IMAGES.items():
            tmp = self.image_archives[k] + f".{os.getpid()}.tmp"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            sh("skopeo", "--insecure-policy", "copy", "-q", f"oci:{layout}:{k}",
               f"docker-archive:{tmp}:{ref}")
            os.replace(tmp, self.image_archives[k])
        self.timings["images_s"] = round(time.monotonic() - t0, 2)

    def _umoci_image(self, layout, tag, files, busybox_links, config):
        bundle = os.path.join(os.path.dirname(layout), f"bundle-{tag}")
        sh("umoci", "new", "--image", f"{layout}:{tag}")
        sh("umoci", "unpack", "--image", f"{layout}:{tag}", bundle)
        rootfs = os.path.join(bundle, "rootfs")
        for dest, src in files.items():
            target = rootfs + dest
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy(src, target)
            os.chmod(target, 0o755)
        for a in busybox_links:
            os.symlink("/bin/busybox", os.path.join(rootfs, "bin", a))
        if busybox_links:
            os.makedirs(os.path.join(rootfs, "etc"), exist_ok=True)
            with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
                f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
            with open(os.path.join(rootfs, "etc", "group"), "w") as f:
                f.write("root:x:0:\nnobody:x:65534:\n")
            for d in ("tmp", "root", "proc", "sys", "dev"):
                os.makedirs(os.path.join(rootfs, d), exist_ok=True)
            os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
        sh("umoci", "repack", "--image", f"{layout}:{tag}", bundle)
        sh("umoci", "config", "--image", f"{layout}:{tag}", "--os", "linux", "--architecture",
           "amd64" if os.uname().machine == "x86_64" else "arm64", *config)

    def _start_etcd(self):
        p, pp = self.ports["etcd"], self.ports["etcd_peer"]
        self.etcd_url = f"http://127.0.0.1:{p}"
        self._spawn("etcd", [
            os.path.join(BIN, "etcd"), "--name", "kilt", "--data-dir", os.path.join(self.dir, "etcd"),
            "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{pp}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{pp}",
            "--initial-cluster", f"kilt=http://127.0.0.1:{pp}",
            "--unsafe-no-fsync", "--log-level", "warn"])

        def healthy():
            c = http.client.HTTPConnection("127.0.0.1", p, timeout=2)
            c.request("GET", "/health")
            r = c.getresponse()
            return r.status == 200 and json.loads(r.read()).get("health") == "true"
        self._wait("etcd /health", healthy, 30, ["etcd"])

    def _ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.ca_cert)
        ctx.load_cert_chain(*self.certs["admin"])
        return ctx

    def api(self, method, path, body=None, timeout=10):
        """One request to the API server as the cluster admin: (status, decoded JSON or text)."""
        c = http.client.HTTPSConnection("127.0.0.1", self.ports["apiserver"], timeout=timeout,
                                        context=self._ssl_context())
        try:
            headers = {"Accept": "application/json"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            c.request(method, path, body=data, headers=headers)
            r = c.getresponse()
            raw = r.read().decode(errors="replace")
            try:
                return r.status, json.loads(raw)
            except ValueError:
                return r.status, raw
        finally:
            c.close()

    def _start_apiserver(self):
        apiserver, kubelet_client = self.certs["apiserver"], self.certs["apiserver-kubelet"]
        self._spawn("kube-apiserver", [
            os.path.join(BIN, "kube-apiserver"),
            "--etcd-servers", self.etcd_url,
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={self.ports['apiserver']}",
            "--tls-cert-file", apiserver[0], "--tls-private-key-file", apiserver[1],
            "--client-ca-file", self.ca_cert,
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-account-key-file", os.path.join(self.pki, "sa.pub"),
            "--service-account-signing-key-file", os.path.join(self.pki, "sa.key"),
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            "--endpoint-reconciler-type=none",
            "--authorization-mode=Node,RBAC", "--allow-privileged=true",
            "--kubelet-client-certificate", kubelet_client[0],
            "--kubelet-client-key", kubelet_client[1],
            "--kubelet-certificate-authority", self.ca_cert,
            "--kubelet-preferred-address-types=Hostname",
            # No kube-proxy here: a webhook registered by Service (kilt webhook manifests) is
            # dialled at its endpoints' pod IPs, which the host reaches on the CNI bridge.
            "--enable-aggregator-routing=true",
            "--profiling=false", "--v=1", *self.apiserver_args])
        self._wait("kube-apiserver /readyz", lambda: self.api("GET", "/readyz")[0] == 200, 90,
                   ["etcd", "kube-apiserver"])

    def _start_controllers(self):
        self._spawn("kube-controller-manager", [
            os.path.join(BIN, "kube-controller-manager"),
            "--kubeconfig", self.kubeconfig, "--controllers=*", "--leader-elect=false",
            "--bind-address=127.0.0.1", "--secure-port=0",
            "--service-account-private-key-file", os.path.join(self.pki, "sa.key"),
            "--root-ca-file", self.ca_cert,
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            "--use-service-account-credentials=false", "--profiling=false", "--v=1"])
        self._spawn("kube-scheduler", [
            os.path.join(BIN, "kube-scheduler"),
            "--kubeconfig", self.kubeconfig, "--leader-elect=false",
            "--bind-address=127.0.0.1", "--secure-port=0", "--profiling=false", "--v=1"])

    def _start_containerd(self):
        d = self.dir
        cni = {
            "cniVersion": "1.0.0", "name": NETWORK,
            "plugins": [{
                "type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
                "hairpinMode": True,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_SUBNET}]],
                         "routes": [{"dst": "0.0.0.0/0"}],
                         "dataDir": os.path.join(d, "cni", "ipam")}}],
        }
        with open(os.path.join(d, "cni", "net.d", "10-kilt.conflist"), "w") as f:
            json.dump(cni, f, indent=1)
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = f"""version = 2
root = "{d}/containerd/root"
state = "{d}/containerd/state"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{self.containerd_sock}"
[ttrpc]
  address = ""
[debug]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/containerd/opt"
[{cri}]
  sandbox_image = "{IMAGES['pause']}"
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  max_container_log_line_size = 16384
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "{d}/runc"
[{cri}.cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{d}/cni/net.d"
"""
        path = os.path.join(d, "containerd.toml")
        with open(path, "w") as f:
            f.write(config)
        self._spawn("containerd", ["containerd", "--config", path, "--log-level", "warn"])
        self._wait("containerd", lambda: self.ctr("version", check=False).returncode == 0, 30,
                   ["containerd"])

    def ctr(self, *args, check=True, namespace="k8s.io"):
        return sh("ctr", "--address", self.containerd_sock, "-n", namespace, *args, check=check)

    def import_image(self, archive):
        """Loads a docker-archive tar into the node's image store (pods use imagePullPolicy Never
        or IfNotPresent with a tag other than latest)."""
        self.ctr("images", "import", archive)

    def _import_images(self):
        for k in IMAGES:
            self.import_image(self.image_archives[k])

    def _start_kubelet(self):
        d = self.dir
        kserve = self.certs["kubelet-serving"]
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "address": "127.0.0.1", "port": self.ports["kubelet"], "readOnlyPort": 0,
            "healthzPort": 0,
            "tlsCertFile": kserve[0], "tlsPrivateKeyFile": kserve[1],
            "authentication": {"x509": {"clientCAFile": self.ca_cert}, "webhook": {"enabled": False},
                               "anonymous": {"enabled": False}},
            "authorization": {"mode": "AlwaysAllow"},
            # This machine: cgroup v1, and no CAP_SYS_RESOURCE for a negative oom_score_adj.
            "failCgroupV1": False, "cgroupDriver": "cgroupfs", "oomScoreAdj": 0,
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.containerd_sock}",
            "podLogsDir": os.path.join(d, "pod-logs"),
            "volumePluginDir": os.path.join(d, "volume-plugins"),
            "resolvConf": "/etc/resolv.conf",
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%",
                             "nodefs.inodesFree": "1%", "imagefs.available": "1%"},
            "serializeImagePulls": False, "registerNode": True,
            "nodeStatusUpdateFrequency": "2s", "syncFrequency": "5s",
            "fileCheckFrequency": "5s", "shutdownGracePeriod": "0s",
        }
        path = os.path.join(d, "kubelet.yaml")
        with open(path, "w") as f:
            json.dump(config, f, indent=1)
        self._spawn("kubelet", [
            os.path.join(BIN, "kubelet"), "--config", path,
            "--kubeconfig", self.kubelet_kubeconfig,
            "--root-dir", os.path.join(d, "kubelet"), "--cert-dir", os.path.join(d, "kubelet", "pki"),
            f"--hostname-override={NODE}", "--v=1"])

    def _wait_ready(self):
        daemons = list(self.procs)

        def node_ready():
            st, node = self.api("GET", f"/api/v1/nodes/{NODE}")
            if st != 200:
                return False
            return any(c["type"] == "Ready" and c["status"] == "True"
                       for c in node.get("status", {}).get("conditions", []))
        self._wait(f"node {NODE} Ready", node_ready, 120, daemons)
        # Pods are refused until the controllers made these in the namespace.
        self._wait("serviceaccount default/default",
                   lambda: self.api("GET", "/api/v1/namespaces/default/serviceaccounts/default")[0] == 200,
                   60, daemons)
        self._wait("configmap default/kube-root-ca.crt",
                   lambda: self.api("GET", "/api/v1/namespaces/default/configmaps/kube-root-ca.crt")[0] == 200,
                   60, daemons)

    def kubectl(self, *args, check=True, input=None, timeout=120):
        """Runs the built kubectl against this cluster; returns the CompletedProcess."""
        argv = [os.path.join(BIN, "kubectl"), "--kubeconfig", self.kubeconfig, *args]
        p = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout)
        if check and p.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
        return p

    def env(self):
        """Environment for a child process that talks to this cluster."""
        e = dict(os.environ)
        e.update({"KUBECONFIG": self.kubeconfig, "KILT_K8S_DIR": self.dir,
                  "KILT_K8S_CA_CERT": self.ca_cert, "KILT_K8S_CA_KEY": self.ca_key,
                  "KILT_K8S_API": self.api_url, "KILT_K8S_CONTAINERD": self.containerd_sock,
                  "KILT_K8S_BUSYBOX_IMAGE": IMAGES["busybox"],
                  "KILT_K8S_PAUSE_IMAGE": IMAGES["pause"],
                  "PATH": BIN + os.pathsep + os.environ.get("PATH", "")})
        return e

    # -- the service network (kube-proxy, the kubernetes Service's endpoint) -----------------

    def _start_service_network(self):
        t0 = time.monotonic()
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "mode": "iptables", "hostnameOverride": NODE, "clusterCIDR": POD_SUBNET,
            "clientConnection": {"kubeconfig": self.kubeconfig},
            "metricsBindAddress": f"127.0.0.1:{self.ports['proxy_metrics']}",
            "healthzBindAddress": f"127.0.0.1:{self.ports['proxy_healthz']}",
            # No CAP_SYS_RESOURCE: no negative oom_score_adj. Leave the machine's conntrack
            # table size and timeouts as they are (global settings of a shared machine).
            "oomScoreAdj": 0,
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s",
                          "tcpCloseWaitTimeout": "0s"},
            # NodePorts on 127.0.0.1 would need route_localnet, another global setting.
            "iptables": {"localhostNodePorts": False, "syncPeriod": "30s", "minSyncPeriod": "0s"},
            "nodePortAddresses": ["primary"],
        }
        path = os.path.join(self.dir, "kube-proxy.yaml")
        with open(path, "w") as f:
            json.dump(config, f, indent=1)
        self._spawn("kube-proxy", [os.path.join(BIN, "kube-proxy"), "--config", path, "--v=1"])
        # The relay pod: a network namespace on the bridge for the endpoint.
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": RELAY_POD, "namespace": "kube-system"},
               "spec": {"terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False,
                        "containers": [{"name": "netns", "image": IMAGES["busybox"],
                                        "imagePullPolicy": "Never",
                                        "command": ["sleep", "2147483647"]}]}}
        st, out = self.api("POST", "/api/v1/namespaces/kube-system/pods", pod)
        if st != 201:
            raise ClusterError(f"create pod kube-system/{RELAY_POD}: {st} {out}")
        got = {}

        def running():
            st, p = self.api("GET", f"/api/v1/namespaces/kube-system/pods/{RELAY_POD}")
            if st == 200 and p.get("status", {}).get("phase") == "Running" and \
                    p["status"].get("podIP"):
                got.update(p)
                return True
            return False
        self._wait(f"pod kube-system/{RELAY_POD} running", running, 60, list(self.procs))
        uid, ip = got["metadata"]["uid"], got["status"]["podIP"]
        pids = [pid for pid in _pids() if f"pod{uid}" in _read(f"/proc/{pid}/cgroup")]
        if not pids:
            raise ClusterError(f"no process of pod {RELAY_POD} ({uid}) found on the node")
        self.relay = Relay(("127.0.0.1", self.ports["apiserver"]),
                           netns=f"/proc/{pids[0]}/ns/net", port=RELAY_PORT)
        # The Service exists (the API server makes it); with --endpoint-reconciler-type=none
        # nothing gives it an endpoint: this EndpointSlice does.
        st, svc = self.api("GET", "/api/v1/namespaces/default/services/kubernetes")
        if st != 200:
            raise ClusterError(f"service default/kubernetes: {st} {svc}")
        port_name = svc["spec"]["ports"][0].get("name", "")
        eps = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "kubernetes", "namespace": "default",
                            "labels": {"kubernetes.io/service-name": "kubernetes",
                                       "endpointslice.kubernetes.io/managed-by": "kilt-test-cluster"}},
               "addressType": "IPv4",
               "endpoints": [{"addresses": [ip], "conditions": {"ready": True}}],
               "ports": [{"name": port_name, "port": RELAY_PORT, "protocol": "TCP"}]}
        st, out = self.api("POST", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", eps)
        if st != 201:
            raise ClusterError(f"create the kubernetes Service's EndpointSlice: {st} {out}")

        # Through the cluster IP from the node: kube-proxy's rules are in place.
        def through_service():
            ctx = ssl.create_default_context(cafile=self.ca_cert)
            c = http.client.HTTPSConnection(KUBERNETES_SERVICE_IP, 443, timeout=2, context=ctx)
            try:
                c.request("GET", "/readyz")
                return c.getresponse().status in (200, 401, 403)
            finally:
                c.close()
        self._wait(f"https://{KUBERNETES_SERVICE_IP}:443 through kube-proxy and the relay",
                   through_service, 60, list(self.procs))
        self.relay_ip = ip
        self.timings["service_network_s"] = round(time.monotonic() - t0, 2)

    def _teardown(self):
        """Pods first, through the API (the kubelet unmounts volumes and runs CNI DEL), then
        whatever containers remain, then the node, then the control plane."""
        t0 = time.monotonic()
        if self.relay:
            self.relay.stop()
            self.relay = None
        self._stop_proc("kube-proxy")
        for name in ("kube-controller-manager", "kube-scheduler"):
            self._stop_proc(name)  # nothing recreates the pods deleted below
        if self._running("kube-apiserver") and self._running("kubelet"):
            with contextlib.suppress(subprocess.TimeoutExpired, ClusterError):
                self.kubectl("delete", "pods", "--all", "--all-namespaces", "--grace-period=1",
                             "--wait=true", "--timeout=60s", check=False, timeout=90)
        if self._running("containerd"):
            tasks = self.ctr("tasks", "ls", "-q", check=False).stdout.split()
            for t in tasks:
                self.ctr("tasks", "kill", "-s", "SIGKILL", t, check=False)
            for t in tasks:
                self.ctr("tasks", "delete", "-f", t, check=False)
        self._stop_proc("kubelet")
        self._stop_proc("containerd")
        for name in ("kube-apiserver", "etcd"):
            self._stop_proc(name)
        self.timings["stop_s"] = round(time.monotonic() - t0, 2)
        self.procs = {}

    def _running(self, name):
        p = self.procs.get(name)
        return p is not None and p.poll() is None

    def _stop_proc(self, name, timeout=15):
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def main():
    ap = argparse.ArgumentParser(description="Start the test cluster, or clean up after a dead run.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="start the cluster, run a command against it, stop it")
    run.add_argument("--service-network", action="store_true",
                     help="kube-proxy and an endpoint for the kubernetes Service")
    run.add_argument("command", nargs=argparse.REMAINDER)
    sub.add_parser("cleanup", help="stop and remove whatever a dead run left behind")
    args = ap.parse_args()

    # A terminated harness still tears its cluster down.
    def on_term(sig, _frame):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    if args.cmd == "cleanup":
        c = Cluster()
        c._lock()
        try:
            clean_leftovers()
        finally:
            os.close(c.lock_fd)
        return 0
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("run: no command given")
    try:
        c = Cluster(service_network=args.service_network)
        c.start()
    except Unavailable as e:
        log(f"SKIPPED: {e}")
        return 77
    try:
        return subprocess.run(cmd, env=c.env()).returncode
    finally:
        c.stop()
        log(f"timings {json.dumps(c.timings)}")


if __name__ == "__main__":
    sys.exit(main())
