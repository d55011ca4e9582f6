#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The test cluster itself (tests/infra/k8s_cluster.py): the built versions answer, the node is
Ready, a pod from the local busybox image runs on the CNI bridge and its log is read back through
the API server and kubelet, `kubectl exec`, `kubectl cp` and `kubectl debug` (an ephemeral
container sharing the target's process namespace) work in it, a failing container's exit status
comes through, a Deployment's pod is scheduled and started by the controllers, and stopping the cluster
leaves no process, mount, network namespace or bridge behind.
"""
import json
import os
import sys
import time

import k8s_cluster
from checks import check, result


def wait_for(what, cond, timeout=90):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.3)
    check(False, f"timed out waiting for {what}")
    return None


def pod(name, command, restart="Always", extra=None):
    spec = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 2,
                 "containers": [{"name": "main", "image": k8s_cluster.IMAGES["busybox"],
                                 "imagePullPolicy": "Never", "command": command}]},
    }
    if extra:
        spec["spec"].update(extra)
    return json.dumps(spec)


def get(c, *args):
    p = c.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(p.stdout) if p.returncode == 0 else None


def main():
    c = k8s_cluster.Cluster()
    try:
        c.start()
    except k8s_cluster.Unavailable as e:
        print(f"SKIPPED: {e}", flush=True)
        return 77
    run_dir = c.dir
    try:
        print(f"cluster up in {c.timings['start_s']} s (waited {c.timings['lock_wait_s']} s for the lock)")
        want = open(os.path.join(k8s_cluster.BIN, ".kubernetes.version")).read().strip()
        v = json.loads(c.kubectl("version", "-o", "json").stdout)
        check(v["serverVersion"]["gitVersion"] == want,
              f"kube-apiserver says {v['serverVersion']['gitVersion']}, built {want}")
        check(v["clientVersion"]["gitVersion"] == want,
              f"kubectl says {v['clientVersion']['gitVersion']}, built {want}")
        node = get(c, "node", k8s_cluster.NODE)
        check(node and node["status"]["nodeInfo"]["kubeletVersion"] == want,
              f"kubelet version: {node and node['status']['nodeInfo']['kubeletVersion']}")
        check(node and node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://"),
              "node runs containerd")

        # A pod from the local image: Running on the bridge, its log read back.
        c.kubectl("apply", "-f", "-", input=pod(
            "hello", ["sh", "-c", "echo hello from $(hostname) uid $(id -u); exec sleep 3600"]))
        c.kubectl("wait", "--for=condition=Ready", "pod/hello", "--timeout=90s", timeout=120)
        p = get(c, "pod", "hello")
        ip = p["status"].get("podIP", "")
        check(ip.startswith("10.244.0."), f"pod IP {ip!r} is on the CNI bridge's subnet")
        check(p["spec"].get("nodeName") == k8s_cluster.NODE, "the scheduler bound the pod to the node")
        logs = wait_for("the pod's log", lambda: c.kubectl("logs", "hello", check=False).stdout)
        check(logs == "hello from hello uid 0\n", f"pod log: {logs!r}")

        # kubectl exec: the API server streams through the kubelet to containerd and back.
        out = c.kubectl("exec", "hello", "--", "sh", "-c", "echo $((6 * 7)) $HOSTNAME; cat /etc/hostname")
        check(out.stdout == "42 hello\nhello\n", f"kubectl exec output: {out.stdout!r}")
        rc = c.kubectl("exec", "hello", "--", "sh", "-c", "exit 5", check=False).returncode
        check(rc == 5, f"kubectl exec passes the exit status through: got {rc}")
        # stdin reaches the container
        out = c.kubectl("exec", "-i", "hello", "--", "wc", "-c", input="12345")
        check(out.stdout.strip() == "5", f"kubectl exec -i: {out.stdout!r}")

        # kubectl cp (tar through exec) into the container and back out.
        src = os.path.join(c.dir, "cp-in.txt")
        with open(src, "w") as f:
            f.write("copied\n")
        c.kubectl("cp", src, "hello:/tmp/cp-in.txt", "-c", "main")
        out = c.kubectl("exec", "hello", "--", "cat", "/tmp/cp-in.txt").stdout
        check(out == "copied\n", f"kubectl cp into the pod: {out!r}")

        # kubectl debug: an ephemeral container from the local image shares the target's
        # process namespace (the target's PID 1 is visible in it).
        c.kubectl("debug", "hello", "--image", k8s_cluster.IMAGES["busybox"],
                  "--image-pull-policy=Never", "--target=main", "-c", "dbg", "--", "sleep", "600")
        running = wait_for("the ephemeral container to run", lambda: any(
            s.get("name") == "dbg" and "running" in s.get("state", {})
            for s in (get(c, "pod", "hello") or {}).get("status", {}).get(
                "ephemeralContainerStatuses", [])))
        if running:
            out = c.kubectl("exec", "hello", "-c", "dbg", "--", "cat", "/proc/1/cmdline").stdout
            check(out.split("\0")[:2] == ["sleep", "3600"],
                  f"the ephemeral container sees the target's PID 1: {out!r}")

        # A container that fails: its exit code is recorded.
        c.kubectl("apply", "-f", "-", input=pod("fails", ["sh", "-c", "echo bye; exit 3"], "Never"))
        st = wait_for("pod fails to end", lambda: (get(c, "pod", "fails") or {}).get("status", {})
                      if (get(c, "pod", "fails") or {}).get("status", {}).get("phase") == "Failed"
                      else None)
        if st:
            term = st["containerStatuses"][0]["state"].get("terminated", {})
            check(term.get("exitCode") == 3, f"exit code of the failed container: {term}")
        check(c.kubectl("logs", "fails").stdout == "bye\n", "log of the ended container")

        # The controllers: a Deployment's ReplicaSet creates a pod, and it runs.
        dep = {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                                      "name": "web", "image": k8s_cluster.IMAGES["busybox"],
                                      "command": ["sleep", "3600"]}]}}},
        }
        c.kubectl("apply", "-f", "-", input=json.dumps(dep))
        c.kubectl("rollout", "status", "deployment/web", "--timeout=90s", timeout=120)
        pods = get(c, "pods", "-l", "app=web")
        check(pods and len(pods["items"]) == 1 and pods["items"][0]["status"]["phase"] == "Running",
              "the Deployment's pod runs")

        # Deleting a pod stops its container (sleep ignores SIGTERM as PID 1: the kubelet kills
        # it when the 2 s grace period ends).
        cid = p["status"]["containerStatuses"][0]["containerID"].split("://")[-1]
        check(cid in c.ctr("tasks", "ls", "-q").stdout.split(), "the pod's container is a containerd task")
        t0 = time.monotonic()
        c.kubectl("delete", "pod", "hello", "--wait=true", "--timeout=60s", timeout=90)
        took = time.monotonic() - t0
        check(took < 20, f"pod deleted in {took:.1f} s (grace period 2 s)")
        check(cid not in c.ctr("tasks", "ls", "-q").stdout.split(), "the deleted pod's container is gone")
    finally:
        c.stop()
    print(f"timings: {json.dumps(c.timings)}")

    # Nothing is left behind.
    leftovers = [pid for pid in k8s_cluster._pids() if run_dir in k8s_cluster._cmdline(pid)]
    check(not leftovers, f"processes still running from {run_dir}: {leftovers}")
    check(not k8s_cluster._mounts_under(run_dir), f"mounts left under {run_dir}")
    check(not os.path.exists(run_dir), f"{run_dir} still exists")
    check(not os.path.exists(f"/sys/class/net/{k8s_cluster.BRIDGE}"), "the CNI bridge is gone")
    netns = [n for n in os.listdir("/run/netns") if n.startswith("cni-")] if os.path.isdir("/run/netns") else []
    check(not netns, f"network namespaces left: {netns}")
    return result()


if __name__ == "__main__":
    sys.exit(main())
