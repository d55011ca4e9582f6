#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A run that dies with its cluster up (SIGKILL, as a ctest timeout does) leaves containers, their
shims, mounts and network namespaces behind; the control plane and kubelet die with it. The next
run cleans all of that up under the machine-wide lock, starts its own cluster and runs a pod, and
stopping it leaves nothing behind.
"""
import fcntl
import json
import os
import signal
import subprocess
import sys
import time

import k8s_cluster
from checks import check, result

HARNESS = os.path.join(os.path.dirname(os.path.abspath(k8s_cluster.__file__)), "k8s_cluster.py")


def processes_of(run_dir):
    return {pid: k8s_cluster._cmdline(pid) for pid in k8s_cluster._pids()
            if run_dir in k8s_cluster._cmdline(pid)}


POD = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "victim"},
    "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
        "name": "main", "image": k8s_cluster.IMAGES["busybox"], "imagePullPolicy": "Never",
        "command": ["sleep", "3600"]}]},
}


def main():
    missing = k8s_cluster.missing_programs()
    if missing:
        print(f"SKIPPED: missing {', '.join(missing)} (run tests/infra/peer-k8s.sh)", flush=True)
        return 77
    # The test holds the machine-wide lock from before the first run until the end: another
    # run waiting for the lock would otherwise take it when the first run dies and clean up the
    # leftovers this test is about before it looks at them.
    os.makedirs(os.path.dirname(k8s_cluster.LOCK_PATH), exist_ok=True)
    lock = os.open(k8s_cluster.LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        os.environ["KILT_K8S_LOCK_FD"] = str(lock)
        return crash_and_recover(lock)
    finally:
        os.environ.pop("KILT_K8S_LOCK_FD", None)
        os.close(lock)


def crash_and_recover(lock):
    script = ("set -e; echo \"DIR $KILT_K8S_DIR\"; kubectl apply -f - >/dev/null; "
              "kubectl wait --for=condition=Ready pod/victim --timeout=90s >/dev/null; "
              "echo READY; exec sleep 3600")
    first = subprocess.Popen([sys.executable, HARNESS, "run", "--", "sh", "-c", script],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             start_new_session=True, pass_fds=(lock,))
    first.stdin.write(json.dumps(POD))
    first.stdin.close()
    run_dir = None
    for line in first.stdout:
        if line.startswith("DIR "):
            run_dir = line.split(None, 1)[1].strip()
        if line.strip() == "READY":
            break
    if not check(run_dir is not None and first.poll() is None, "the first run started a pod"):
        first.kill()
        return 1
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    os.killpg(first.pid, signal.SIGKILL)  # the test's own `sleep`, not part of the cluster

    # The daemons die with the harness (PR_SET_PDEATHSIG); the pod's shim and container do not.
    time.sleep(2)
    left = processes_of(run_dir)
    for name in ("etcd", "kube-apiserver", "kubelet", "containerd --config"):
        check(not any(name in cmd for cmd in left.values()), f"{name} outlived its harness")
    check(any("containerd-shim" in cmd for cmd in left.values()),
          f"a shim was left behind to clean up (left: {list(left.values())})")
    check(k8s_cluster._mounts_under(run_dir), f"mounts were left under {run_dir}")
    check(os.path.isdir(run_dir), f"{run_dir} was left behind")

    c = k8s_cluster.Cluster()
    try:
        c.start()
        check(not processes_of(run_dir), "the next run stopped what the dead run left")
        check(not os.path.exists(run_dir), f"the next run removed {run_dir}")
        c.kubectl("apply", "-f", "-", input=json.dumps(POD))
        c.kubectl("wait", "--for=condition=Ready", "pod/victim", "--timeout=90s", timeout=120)
        print(f"second cluster up in {c.timings['start_s']} s after cleaning up")
    finally:
        c.stop()
    second = c.dir
    check(not processes_of(second), "processes left after a clean stop")
    check(not k8s_cluster._mounts_under(second), "mounts left after a clean stop")
    check(not os.path.exists(second), f"{second} left after a clean stop")
    return result()


if __name__ == "__main__":
    sys.exit(main())
