#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`kilt webhook serve` called by a real kube-apiserver (tests/infra/k8s_cluster.py): registered
by URL with its CA in caBundle, it receives the reviews of pods created with kubectl and of the
pods a Deployment's ReplicaSet creates, answers them, and its warnings reach the user. With the
webhook down, failurePolicy Ignore still admits pods (and Fail refuses them, which shows the
registration is live).

First, with API access (tests/k8s/webhook_api.py): the golden cases with the cluster's
namespaces, the watch, golden pods and workloads created with kubectl, and the namespaces kilt
leaves alone; then the watch's connection cut and resumed, and expired by an etcd compaction
(tests/k8s/webhook_watch.py). Then, without: the recipe here only adds an environment variable, so that the injected pods run on the test
node's busybox image; what the API server stores is read back with kubectl.
"""
import base64
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time

import k8s_cluster
import webhook_api
import webhook_watch

KILT = os.environ.get("KILT", "kilt")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}", flush=True)
    return cond


class Webhook:
    def __init__(self, c, cert, key, recipe):
        self.proc = subprocess.Popen(
            [KILT, "webhook", "serve", "--listen", "127.0.0.1:0", "--tls-cert", cert,
             "--tls-key", key, "--recipe", recipe, "--namespace", "kilt-system"],
            stderr=subprocess.PIPE, text=True)
        self.lines, self.port = [], None
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                try:
                    j = json.loads(line)
                except ValueError:
                    j = {"unparsed": line}
                self.lines.append(j)
                if j.get("msg") == "listening":
                    self.port = int(j["address"].rsplit(":", 1)[1])
                    ready.set()
            ready.set()
        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(20) or not self.port:
            raise RuntimeError(f"webhook did not start: {self.lines}")

    def reviews(self):
        return [j for j in webhook_api.golden.settle(self.lines, self.proc)
                if j.get("msg") == "review"]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


def registration(url, ca_bundle, policy, exclude=("kube-system", "kilt-system")):
    return json.dumps({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "kilt"},
        "webhooks": [{
            "name": "pods.kilt.dev",
            "clientConfig": {"url": url, "caBundle": ca_bundle},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                       "resources": ["pods"], "scope": "Namespaced"}],
            "failurePolicy": policy, "sideEffects": "None", "timeoutSeconds": 5,
            "admissionReviewVersions": ["v1"], "reinvocationPolicy": "IfNeeded",
            "namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name", "operator": "NotIn",
                "values": list(exclude)}]},
        }],
    })


def pod(name):
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "main", "image": k8s_cluster.IMAGES["busybox"], "imagePullPolicy": "Never",
            "command": ["sh", "-c", "echo started; exec sleep 3600"]}]},
    })


def rotate_under_load(c, hook, cert, key):
    stop = threading.Event()
    codes, lock = {}, threading.Lock()
    body = json.loads(pod("dry"))
    del body["metadata"]["name"]
    body["metadata"]["generateName"] = "dry-"

    def load():
        while not stop.is_set():
            try:
                st, _ = c.api("POST", "/api/v1/namespaces/default/pods?dryRun=All", body)
            except Exception as e:  # a failure of any kind counts
                st = repr(e)
            with lock:
                codes[st] = codes.get(st, 0) + 1

    def reloads():
        return len([j for j in hook.lines if j.get("msg") == "certificate reloaded"])

    def wait_reloads(n):
        deadline = time.monotonic() + 15
        while reloads() < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return reloads() >= n

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        # by rename, as a Secret volume updates
        new_cert, new_key = c.make_cert("webhook2", "kilt-webhook", server=True,
                                        sans=("IP:127.0.0.1",))
        shutil.copy(new_cert, cert + ".tmp")
        shutil.copy(new_key, key + ".tmp")
        os.rename(key + ".tmp", key)
        os.rename(cert + ".tmp", cert)
        check(wait_reloads(1), "the webhook reloaded the renamed certificate")
        time.sleep(1.5)
        # in place, the certificate first and the key a moment later
        new_cert, new_key = c.make_cert("webhook3", "kilt-webhook", server=True,
                                        sans=("IP:127.0.0.1",))
        shutil.copyfile(new_cert, cert)
        time.sleep(0.5)
        shutil.copyfile(new_key, key)
        check(wait_reloads(2), "the webhook reloaded the certificate written in place")
        time.sleep(1.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    print(f"dry-run pod creations during the rotations: {codes}")
    check(set(codes) == {201} and codes[201] >= 20,
          f"every creation admitted during the rotations: {codes}")
    dry = [j for j in hook.reviews() if j.get("dryRun")]
    check(len(dry) == codes.get(201, 0), f"each was reviewed as a dry run: {len(dry)}")


def main():
    try:
        import jsonpatch  # noqa: F401
        import yaml  # noqa: F401
    except ImportError:  # the golden cases need them: tests/infra/peer-jsonpatch.sh
        py = subprocess.run(["bash", os.path.join(webhook_api.SRC, "tests", "infra",
                                                  "peer-jsonpatch.sh")],
                            capture_output=True, text=True, check=True).stdout.strip()
        os.execv(py, [py, *sys.argv])
    c = k8s_cluster.Cluster(apiserver_args=webhook_watch.WATCH_CACHE_ARGS)
    try:
        c.start()
    except k8s_cluster.Unavailable as e:
        print(f"SKIPPED: {e}", flush=True)
        return 77
    hook = None
    try:
        first = c.make_cert("webhook", "kilt-webhook", server=True, sans=("IP:127.0.0.1",))
        cert, key = os.path.join(c.dir, "live.crt"), os.path.join(c.dir, "live.key")
        shutil.copy(first[0], cert)
        shutil.copy(first[1], key)
        recipe = os.path.join(c.dir, "recipe.conf")
        with open(recipe, "w") as f:
            f.write("deploy { environment: { KILT_SEEN: \"1\" } }\n")
        # With API access (a service account's token): namespace facts from the watched cache,
        # the golden cases, pods and workloads created for real (tests/k8s/webhook_api.py).
        webhook_api.run(c, cert, key, registration, check, failures)
        webhook_watch.run(c, cert, key, check)

        hook = Webhook(c, cert, key, recipe)
        url = f"https://127.0.0.1:{hook.port}/mutate"
        ca_bundle = base64.b64encode(open(c.ca_cert, "rb").read()).decode()
        c.kubectl("apply", "-f", "-", input=registration(url, ca_bundle, "Ignore"))

        # A pod created with kubectl: the webhook sees it; its warning reaches the user.
        created = c.kubectl("apply", "-f", "-", input=pod("one"))
        check("Warning: kilt: injected: injected recipe recipe into 1 container(s)" in
              created.stderr, f"kubectl shows the webhook's warning: {created.stderr!r}")
        stored = json.loads(c.kubectl("get", "pod", "one", "-o", "json").stdout)
        env = stored["spec"]["containers"][0].get("env", [])
        check({"name": "KILT_SEEN", "value": "1"} in env and
              "kilt.dev/status" in stored["metadata"].get("annotations", {}),
              f"the API server stored the injected pod: {env}")
        seen = [j for j in hook.reviews() if j.get("name") == "one"]
        check(len(seen) == 1 and seen[0]["namespace"] == "default" and
              seen[0]["operation"] == "CREATE" and seen[0]["kind"] == "Pod" and seen[0]["uid"],
              f"the webhook logged the review of pod one: {seen}")
        c.kubectl("wait", "--for=condition=Ready", "pod/one", "--timeout=90s", timeout=120)
        check(c.kubectl("logs", "one").stdout == "started\n", "the admitted pod runs")

        # The pods of a Deployment (created by the ReplicaSet controller) are reviewed too.
        dep = {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                                      "name": "web", "image": k8s_cluster.IMAGES["busybox"],
                                      "command": ["sleep", "3600"]}]}}},
        }
        c.kubectl("apply", "-f", "-", input=json.dumps(dep))
        c.kubectl("rollout", "status", "deployment/web", "--timeout=90s", timeout=120)
        web = [j for j in hook.reviews() if j.get("name", "").startswith("web-") or
               (j.get("name") == "" and j.get("namespace") == "default")]
        check(len(web) >= 2, f"the ReplicaSet's pods were reviewed: {web}")
        pods = json.loads(c.kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)
        check(len(pods["items"]) == 2 and all(
            {"name": "KILT_SEEN", "value": "1"} in p["spec"]["containers"][0].get("env", [])
            for p in pods["items"]), "the Deployment's pods were stored injected")
        # A namespace the selector excludes is never sent to the webhook (kilt-system exists).
        before = len(hook.reviews())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = c.kubectl("-n", "kilt-system", "apply", "-f", "-", input=pod("own"), check=False)
            if r.returncode == 0:
                break
            time.sleep(0.5)  # the namespace's service account is made by a controller
        check(r.returncode == 0 and "kilt" not in r.stderr, f"own namespace: {r.stderr!r}")
        check(len(hook.reviews()) == before, "no review for the excluded namespace")
        ctx = ssl.create_default_context(cafile=c.ca_cert)
        conn = http.client.HTTPSConnection("127.0.0.1", hook.port, context=ctx, timeout=10)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        n = len(hook.reviews())
        want = f'kilt_webhook_review_duration_seconds_count {n}'
        check(want in text.splitlines(), f"metrics count the {n} reviews: {want!r}")

        # The certificate rotated twice while pods are created (server-side dry run: reviewed,
        # not stored) with failurePolicy Fail, so a failed call would refuse a pod: none is.
        c.kubectl("apply", "-f", "-", input=registration(url, ca_bundle, "Fail"))
        rotate_under_load(c, hook, cert, key)
        c.kubectl("apply", "-f", "-", input=registration(url, ca_bundle, "Ignore"))

        # The webhook down: Ignore admits, Fail refuses (the call really is made).
        check(hook.stop() == 0, "the webhook exits 0 on SIGTERM")
        hook = None
        r = c.kubectl("apply", "-f", "-", input=pod("while-down"), check=False)
        check(r.returncode == 0 and "Warning: kilt" not in r.stderr,
              f"webhook down, failurePolicy Ignore: admitted ({r.returncode} {r.stderr!r})")
        c.kubectl("apply", "-f", "-", input=registration(url, ca_bundle, "Fail"))
        r = c.kubectl("apply", "-f", "-", input=pod("refused"), check=False)
        check(r.returncode != 0 and "failed calling webhook" in r.stderr,
              f"webhook down, failurePolicy Fail: refused ({r.returncode} {r.stderr!r})")
        check(c.kubectl("get", "pod", "refused", check=False).returncode != 0,
              "the refused pod does not exist")
        c.kubectl("wait", "--for=condition=Ready", "pod/while-down", "--timeout=90s", timeout=120)
    finally:
        if hook:
            hook.stop()
        c.stop()
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
