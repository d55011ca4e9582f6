#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The webhook installed as pods on a real cluster (tests/infra/k8s_cluster.py), from
`kilt webhook manifests`, with the images of deploy/images/ imported into containerd:

1. Two replicas behind their Service become ready, and the API server calls them through the
   Service (kube-apiserver --enable-aggregator-routing dials the endpoints' pod IPs).
2. An injected pod really runs on the node: the recipe's init container fills the volumes from
   the strace agent image, kilt-launch is PID 1 of the app container and strace (from the agent
   image) traces the app (seen in the node's /proc: TracerPid, the trace file), the app's output
   and exit status come through, and `kubectl delete` stops a traced app well within its grace
   period (the app sees SIGTERM). The pods are created with kubectl and injected by the webhook.
3. Two replicas, one deleted while a loop creates pods (server-side dry run, failurePolicy Fail,
   so a failed call would refuse a creation): no creation fails. Then one replica's server is
   SIGKILLed from the node: the count of failed creations is printed, not asserted (the API
   server keeps dialling the dead server until it leaves the Service's endpoints).
4. The Helm chart installs the same webhook, which admits a pod under failurePolicy Fail; an
   upgrade keeps the certificate the install made.
"""
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import k8s_cluster

KILT = os.environ.get("KILT", "kilt")
SRC = os.environ["KILT_SOURCE_DIR"]
HELPERS = os.environ.get("KILT_STATIC_HELPERS", "")
HELM = os.path.join(k8s_cluster.BIN, "helm")
HERE = os.path.dirname(os.path.abspath(__file__))
RECIPE = os.path.join(HERE, "strace.kilt.conf")
WEBHOOK_IMAGE = "kilt.test/webhook:1"
AGENT_IMAGE = "kilt.test/strace-agent:1"
NS = "kilt-system"
failures = []


def check(cond, what):
    print(("ok:   " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def log(msg):
    print(msg, flush=True)


def build_images(d):
    """Both images as docker archives for `ctr images import` (before the cluster starts)."""
    web = os.path.join(d, "webhook.tar")
    agent = os.path.join(d, "agent.tar")
    subprocess.run([os.path.join(SRC, "deploy", "images", "build-webhook-image.sh"), "--kilt", KILT,
                    "--dest", f"docker-archive:{web}:{WEBHOOK_IMAGE}"], check=True)
    subprocess.run([os.path.join(SRC, "deploy", "images", "build-strace-agent-image.sh"),
                    "--helpers", HELPERS, "--dest", f"docker-archive:{agent}:{AGENT_IMAGE}"],
                   check=True, stdout=subprocess.DEVNULL)
    return web, agent


def pod_json(c, name, ns="default"):
    p = c.kubectl("-n", ns, "get", "pod", name, "-o", "json", check=False)
    return json.loads(p.stdout) if p.returncode == 0 else None


def webhook_pods(c):
    out = c.kubectl("-n", NS, "get", "pods", "-l", "app.kubernetes.io/name=kilt-webhook", "-o", "json")
    return json.loads(out.stdout)["items"]


def node_pids_of_pod(uid):
    """Host PIDs whose cgroup names the pod (cgroupfs driver: .../pod<uid>/<container>)."""
    found = []
    for pid in k8s_cluster._pids():
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                if f"pod{uid}" in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


def proc_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except OSError:
        pass
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
    except OSError:
        return []


def app_processes(uid):
    """(kilt-launch as its container's PID 1, strace, traced app shells): host PIDs of the
    pod's app container."""
    launch = strace = None
    apps = []
    for pid in node_pids_of_pod(uid):
        argv = cmdline(pid)
        if not argv:
            continue
        if argv[0] == "/kilt/bin/kilt-launch":
            nspid = proc_status(pid).get("NSpid", "").split()
            if nspid and nspid[-1] == "1":
                launch = pid  # not the shim it runs under the tracer
        elif argv[0] == "/vendor/strace/bin/strace":
            strace = pid
        elif argv[0] in ("sh", "/bin/sh") and len(argv) > 2 and argv[1] == "-c":
            apps.append(pid)
    return launch, strace, apps


def create_injected(c, name, command, grace=30):
    """Creates the pod with kubectl; the webhook injects it. Returns the stored pod, or None."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": grace,
                    "containers": [{"name": "app", "image": k8s_cluster.IMAGES["busybox"],
                                    "imagePullPolicy": "Never", "command": command}]}}
    r = c.kubectl("apply", "-f", "-", input=json.dumps(pod))
    got = pod_json(c, name)
    if not check("kilt.dev/status" in got["metadata"].get("annotations", {}),
                 f"{name}: the webhook, called through its Service, injected the pod "
                 f"({r.stderr.strip()!r})"):
        return None
    return got


def injected_pod_runs(c):
    cmd = ["sh", "-c", "echo app-started; while [ ! -e /tmp/stop ]; do sleep 0.2; done; "
           "echo app-done; exit 3"]
    pod = create_injected(c, "traced", cmd)
    if not pod:
        return
    ann = json.loads(pod["metadata"]["annotations"]["kilt.dev/status"])
    check(ann["recipe"] == "strace" and ann["initContainers"] == ["kilt-copy-strace"],
          f"status annotation: recipe strace, init container kilt-copy-strace: {ann}")
    c.kubectl("wait", "--for=condition=Ready", "pod/traced", "--timeout=90s", timeout=120)
    pod = pod_json(c, "traced")
    init = pod["status"].get("initContainerStatuses", [{}])[0]
    term = init.get("state", {}).get("terminated", {})
    check(init.get("name") == "kilt-copy-strace" and term.get("exitCode") == 0 and
          init.get("image", "").endswith(AGENT_IMAGE), f"the init container from the agent image "
          f"completed: {init}")
    ls = c.kubectl("exec", "traced", "-c", "app", "--", "ls", "/vendor/strace/bin/strace",
                   "/kilt/bin/kilt-launch", check=False)
    check(ls.returncode == 0, f"it filled the volumes the app container mounts: {ls.stdout}{ls.stderr}")

    uid = pod["metadata"]["uid"]
    launch, strace, apps = app_processes(uid)
    check(launch is not None, f"kilt-launch is PID 1 of the app container of pod {uid}")
    if check(strace is not None and apps, f"strace and the app run on the node: {strace} {apps}"):
        tracers = {proc_status(a).get("TracerPid") for a in apps}
        check(tracers == {str(strace)}, f"the app is traced by the agent image's strace "
              f"(TracerPid {tracers}, strace {strace})")
        trace = ""
        try:
            with open(f"/proc/{launch}/root/tmp/kilt-trace") as f:
                trace = f.read()
        except OSError as e:
            trace = repr(e)
        check("execve(" in trace and "echo app-started;" in trace,
              f"strace's trace (read from the node's /proc) holds the app's execve: {trace[:300]!r}")
    c.kubectl("exec", "traced", "-c", "app", "--", "touch", "/tmp/stop")
    state, deadline = {}, time.monotonic() + 60
    while time.monotonic() < deadline:
        st = (pod_json(c, "traced")["status"].get("containerStatuses") or [{}])[0]
        state = st.get("state", {}).get("terminated")
        if state:
            break
        time.sleep(0.5)
    check(state and state.get("exitCode") == 3, f"the app's exit status comes through: {state}")
    logs = c.kubectl("logs", "traced", "-c", "app").stdout
    check(logs == "app-started\napp-done\n", f"the app's output comes through: {logs!r}")

    # kubectl delete: TERM reaches the traced app, which exits well within the grace period.
    cmd = ["sh", "-c", "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.2; done"]
    if not create_injected(c, "stopper", cmd, grace=30):
        return
    c.kubectl("wait", "--for=condition=Ready", "pod/stopper", "--timeout=90s", timeout=120)
    launch, strace, apps = app_processes(pod_json(c, "stopper")["metadata"]["uid"])
    if not check(launch and strace, "the second pod runs traced"):
        return
    # Opened before the delete: the open file outlives the container's root.
    trace = open(f"/proc/{launch}/root/tmp/kilt-trace")
    t0 = time.monotonic()
    c.kubectl("delete", "pod", "stopper", "--wait=true", "--timeout=90s", timeout=120)
    elapsed = time.monotonic() - t0
    text = trace.read()
    trace.close()
    seen = {"term": "--- SIGTERM" in text and "+++ exited with 0 +++" in text}
    check(elapsed < 15, f"kubectl delete stopped the traced pod in {elapsed:.1f} s (grace period 30 s)")
    check(seen["term"], f"strace saw the SIGTERM delivered to the app, which exited 0: {text[-400:]!r}")
    log(f"figure: kubectl delete of an injected, traced pod took {elapsed:.1f} s")


def load(c, seconds_before, action, seconds_after, what):
    """Dry-run pod creations from 3 threads; `action` runs mid-load. Returns the status counts."""
    stop = threading.Event()
    codes, lock = {}, threading.Lock()
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "dry-"},
            "spec": {"containers": [{"name": "main", "image": k8s_cluster.IMAGES["busybox"],
                                     "command": ["sleep", "1"]}]}}

    def run():
        while not stop.is_set():
            try:
                st, resp = c.api("POST", "/api/v1/namespaces/default/pods?dryRun=All", body)
                if st != 201:
                    st = f"{st} {str(resp)[:200]}"
            except Exception as e:  # a failure of any kind counts
                st = repr(e)[:200]
            with lock:
                codes[st] = codes.get(st, 0) + 1
    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(seconds_before)
        action()
        time.sleep(seconds_after)
    finally:
        stop.set()
        for t in threads:
            t.join()
    log(f"{what}: pod creations {codes}")
    return codes


def replicas_under_load(c):
    c.kubectl("patch", "mutatingwebhookconfiguration", "kilt-webhook", "--type=json", "-p",
              '[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Fail"}]')
    pods = [p["metadata"]["name"] for p in webhook_pods(c)]
    check(len(pods) == 2, f"two webhook replicas: {pods}")
    served = {}

    def kill_one():
        for p in pods:
            logs = c.kubectl("-n", NS, "logs", p, check=False).stdout
            served[p] = logs.count('"msg":"review"')
        c.kubectl("-n", NS, "delete", "pod", pods[0], "--wait=false")
    codes = load(c, 3, kill_one, 14, "one replica deleted mid-load")
    check(all(n > 0 for n in served.values()) and len(served) == 2,
          f"both replicas served reviews before one was deleted: {served}")
    check(set(codes) == {201} and codes[201] >= 20,
          f"no failed admission while a replica was deleted (failurePolicy Fail): {codes}")
    c.kubectl("-n", NS, "rollout", "status", "deployment/kilt-webhook", "--timeout=120s", timeout=150)

    # A hard kill of one server, from the node: measured, not asserted.
    pods = webhook_pods(c)
    victim = None
    for pid in node_pids_of_pod(pods[0]["metadata"]["uid"]):
        argv = cmdline(pid)
        if argv[:3] == ["/usr/bin/kilt", "webhook", "serve"]:
            victim = pid
    if check(victim is not None, "found a webhook server's process on the node"):
        codes = load(c, 2, lambda: os.kill(victim, signal.SIGKILL), 12, "one server SIGKILLed mid-load")
        failed = sum(n for k, n in codes.items() if k != 201)
        log(f"figure: {failed} of {sum(codes.values())} dry-run creations failed while one of two "
            f"replicas was SIGKILLed (not asserted: the API server dials the dead server until it leaves the Service's endpoints)")
    c.kubectl("patch", "mutatingwebhookconfiguration", "kilt-webhook", "--type=json", "-p",
              '[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Ignore"}]')


def helm_install(c, d):
    if not os.access(HELM, os.X_OK):
        log(f"SKIPPED (part 4): {HELM} is missing (run tests/infra/peer-k8s.sh)")
        return
    # The cluster-scoped objects have one name per cluster: the manifests' install goes first.
    for kind in ("mutatingwebhookconfiguration", "clusterrolebinding", "clusterrole"):
        c.kubectl("delete", kind, "kilt-webhook")
    env = dict(c.env(), HELM_CACHE_HOME=f"{d}/helm", HELM_CONFIG_HOME=f"{d}/helm",
               HELM_DATA_HOME=f"{d}/helm")
    chart = os.path.join(SRC, "deploy", "helm", "kilt")
    sets = ["--set", "image.repository=kilt.test/webhook", "--set", "image.tag=1", "--set", "replicas=1",
            "--set", f"recipeConfig.agent_image={AGENT_IMAGE}", "--set", "failurePolicy=Fail"]
    if sanitized():
        sets += ["--set", "resources.limits.memory=2Gi"]

    def helm(*args):
        p = subprocess.run([HELM, *args], capture_output=True, text=True, env=env, timeout=200)
        if not check(p.returncode == 0, f"helm {args[0]}: {p.stdout.strip()[-300:]} {p.stderr.strip()[-500:]}"):
            log(c.kubectl("-n", "kilt-helm", "describe", "pods", check=False).stdout[-3000:])
            log(c.kubectl("-n", "kilt-helm", "logs", "-l", "app.kubernetes.io/name=kilt-webhook",
                          "--tail=20", check=False).stdout)
        return p
    helm("install", "kilt", chart, "--namespace", "kilt-helm", "--create-namespace", *sets,
         "--wait", "--timeout", "150s")

    def secret_ca():
        p = c.kubectl("-n", "kilt-helm", "get", "secret", "kilt-webhook-tls", "-o", "json", check=False)
        return json.loads(p.stdout)["data"].get("ca.crt") if p.returncode == 0 else None
    ca = secret_ca()
    mwc = json.loads(c.kubectl("get", "mutatingwebhookconfiguration", "kilt-webhook", "-o", "json").stdout)
    check(ca and mwc["webhooks"][0]["clientConfig"]["caBundle"] == ca,
          "helm install: the caBundle is the CA of the Secret Helm made")
    codes = load(c, 3, lambda: None, 0, "the Helm-installed webhook, failurePolicy Fail")
    check(set(codes) == {201}, f"the Helm-installed webhook admits pods: {codes}")
    helm("upgrade", "kilt", chart, "--namespace", "kilt-helm", *sets, "--set", "replicas=2",
         "--wait", "--timeout", "150s")
    check(secret_ca() == ca, "helm upgrade keeps the certificate the install made")


def sanitized():
    """Whether the kilt under test is built with AddressSanitizer (the asan preset)."""
    with open(KILT, "rb") as f:
        return b"libasan.so" in f.read()


def main():
    if not os.path.exists(os.path.join(HELPERS, "kilt-launch")):
        print(f"SKIPPED: no static helpers in {HELPERS!r} (the runtime/build-static fixture builds them)")
        return 77
    d = tempfile.mkdtemp(prefix="kilt-webhook-pods-")
    c = None
    try:
        web, agent = build_images(d)
        out = subprocess.run([KILT, "webhook", "manifests", "--image", WEBHOOK_IMAGE, "-r", RECIPE,
                              "--set", f"agent_image={AGENT_IMAGE}"], capture_output=True, text=True,
                             check=True).stdout
        if sanitized():
            # An AddressSanitizer build's shadow memory and quarantine outgrow the server's 256Mi
            # under this load: it was OOM-killed. Give it room; the uninstrumented build keeps the
            # manifests' limit.
            check(out.count("memory: '256Mi'") == 1, "the manifests' memory limit is 256Mi")
            out = out.replace("memory: '256Mi'", "memory: '2Gi'")
            log("the kilt under test is built with AddressSanitizer: the webhook's memory limit is 2Gi")
        manifests = os.path.join(d, "kilt.yaml")
        with open(manifests, "w") as f:
            f.write(out)
        c = k8s_cluster.Cluster()
        try:
            c.start()
        except k8s_cluster.Unavailable as e:
            print(f"SKIPPED: {e}", flush=True)
            return 77
        t0 = time.monotonic()
        c.import_image(web)
        c.import_image(agent)
        c.kubectl("apply", "-f", manifests)
        r = c.kubectl("-n", NS, "rollout", "status", "deployment/kilt-webhook", "--timeout=120s",
                      timeout=150, check=False)
        if not check(r.returncode == 0, f"the webhook's Deployment rolls out: {r.stdout}{r.stderr}"):
            log(c.kubectl("-n", NS, "describe", "pods", check=False).stdout[-3000:])
            return 1
        ready = [p for p in webhook_pods(c) if any(
            cond["type"] == "Ready" and cond["status"] == "True" for cond in p["status"].get("conditions", []))]
        check(len(ready) == 2, f"two webhook replicas ready: {[p['metadata']['name'] for p in ready]}")
        eps = json.loads(c.kubectl("-n", NS, "get", "endpointslices", "-l",
                                   "kubernetes.io/service-name=kilt-webhook", "-o", "json").stdout)
        addrs = [a for s in eps["items"] for e in s.get("endpoints") or [] for a in e["addresses"]]
        check(len(addrs) == 2 and all(a.startswith("10.244.0.") for a in addrs),
              f"the Service has both pods as endpoints: {addrs}")
        log(f"figure: webhook images imported and 2 replicas ready in {time.monotonic() - t0:.1f} s")
        injected_pod_runs(c)
        replicas_under_load(c)
        helm_install(c, d)
    finally:
        if c:
            c.stop()
            log(f"cluster timings {json.dumps(c.timings)}")
        shutil.rmtree(d, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
