#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The Kubernetes golden cases (tests/golden/k8s/<case>/, the folder `kilt inject` runs in
tests/k8s-inject/golden.py) through the webhook's door: a real `kilt webhook serve` on loopback
gets an AdmissionReview for every pod of the case's input (a Pod, or the pod a workload's template
makes), and its JSON Patch, applied with Python's jsonpatch (an RFC 6902 implementation
independent of kilt), must give that pod as the case's expected output has it. The answer is
then sent back as the API server does under reinvocationPolicy IfNeeded: the patch of an
injected pod is empty.

How a case's `kilt inject` arguments become the webhook's: -r recipes alike; --mode,
--pod-security, --volume-source, --copy-helper, --copy-user alike; facts.json is --image-facts; `kilt inject` is strict unless
--fail-open, the webhook is fail-open unless --strict (so a case without --fail-open runs with
--strict, and a want-error case must be denied with that message); the case's Namespace
documents and --namespace-label give the namespace facts, through --namespaces (the API server's
watched cache gives the same facts in tests/k8s/webhook.py). `--remove` cases are not the
webhook's business (it never removes), and are reported as such.

Usage: golden.py CASE_DIR     Environment: KILT, KILT_SOURCE_DIR.
The module's load_case() and review_case() are used by tests/k8s/webhook.py too.
"""
import base64
import copy
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

SRC = os.environ.get("KILT_SOURCE_DIR",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
RECIPES = os.path.join(SRC, "tests", "k8s-inject", "recipes")
KILT = os.environ.get("KILT", "kilt")
sys.path.insert(0, os.path.join(SRC, "tests", "infra"))
from docstream import load_docs, run_in_peer  # noqa: E402

# Workload kinds with a pod template, by API group (a kind of another group is not a workload).
TEMPLATES = {
    ("", "ReplicationController"): ["spec", "template"],
    ("", "PodTemplate"): ["template"],
    ("apps", "Deployment"): ["spec", "template"],
    ("apps", "StatefulSet"): ["spec", "template"],
    ("apps", "DaemonSet"): ["spec", "template"],
    ("apps", "ReplicaSet"): ["spec", "template"],
    ("extensions", "Deployment"): ["spec", "template"],
    ("extensions", "DaemonSet"): ["spec", "template"],
    ("extensions", "ReplicaSet"): ["spec", "template"],
    ("batch", "Job"): ["spec", "template"],
    ("batch", "CronJob"): ["spec", "jobTemplate", "spec", "template"],
}


def lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [l.rstrip("\n") for l in f if l.strip()]


def group_of(doc):
    av = doc.get("apiVersion", "")
    return av.split("/")[0] if "/" in av else ""


def pods_of(doc, path=()):
    """(path, kind, pod-holding object) for every pod of a document, as kilt's walker finds them."""
    if not isinstance(doc, dict):
        return []
    kind = doc.get("kind")
    if isinstance(doc.get("items"), list) and isinstance(kind, str) and kind.endswith("List"):
        out = []
        for i, item in enumerate(doc["items"]):
            out += pods_of(item, path + ("items", i))
        return out
    if kind == "Pod" and group_of(doc) == "":
        return [(path, kind, doc)]
    ptr = TEMPLATES.get((group_of(doc), kind))
    if ptr:
        t = doc
        for k in ptr:
            t = t.get(k) if isinstance(t, dict) else None
        if isinstance(t, dict):
            return [(path + tuple(ptr), kind, t)]
    return []


def at(doc, path):
    for k in path:
        doc = doc[k]
    return doc


def load_case(case_dir, workdir):
    """Reads a golden case: the webhook's arguments, the Namespace objects it should know, and
    the pods to review with what each must become. Returns a dict, or a string saying why the
    case is not the webhook's business."""
    inputs = [f for f in sorted(os.listdir(case_dir)) if f.startswith("input.")]
    inp = os.path.join(case_dir, inputs[0])
    ext = inputs[0].split(".", 1)[1]
    recipes = lines(os.path.join(case_dir, "recipe")) or ["falco"]
    args = lines(os.path.join(case_dir, "args"))
    if "--remove" in args:
        return "--remove: the webhook never removes an injection (kilt inject --remove does)"
    facts = os.path.join(case_dir, "facts.json")
    hook = []
    for n in recipes:
        hook += ["-r", os.path.join(RECIPES, n + ".conf")]
    ns_labels = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("--mode", "--pod-security", "--volume-source", "--copy-user", "--copy-helper"):
            hook += [a, args[i + 1]]
            i += 2
        elif a == "--namespace-label":
            k, _, v = args[i + 1].partition("=")
            ns_labels[k] = v
            i += 2
        elif a in ("--explain", "--fail-open"):
            i += 1
        else:
            raise RuntimeError(f"{case_dir}/args: {a} has no webhook counterpart in this test")
    if "--fail-open" not in args:
        hook.append("--strict")
    if os.path.exists(facts):
        hook += ["--image-facts", facts]
    hook.append("--no-image-lookup")

    doc_path = inp
    if os.path.exists(os.path.join(case_dir, "pre-recipe")) or \
            os.path.exists(os.path.join(case_dir, "pre-args")):
        pre = []
        for n in lines(os.path.join(case_dir, "pre-recipe")) or ["falco"]:
            pre += ["-r", os.path.join(RECIPES, n + ".conf")]
        pre += lines(os.path.join(case_dir, "pre-args")) + ["--no-image-lookup"]
        if os.path.exists(facts):
            pre += ["--image-facts", facts]
        p = subprocess.run([KILT, "inject", *pre, inp], capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"the pre-run failed: {p.stderr}")
        doc_path = os.path.join(workdir, "pre." + ext)
        with open(doc_path, "w") as f:
            f.write(p.stdout)
    docs = load_docs(doc_path)
    want_error = None
    if os.path.exists(os.path.join(case_dir, "want-error")):
        want_error = open(os.path.join(case_dir, "want-error")).read().strip()
        wants = [None] * len(docs)
    else:
        wants = load_docs(os.path.join(case_dir, "want." + ext))
        if len(wants) != len(docs):
            raise RuntimeError(f"{len(docs)} input documents, {len(wants)} wanted")

    namespaces = {}
    for d in docs:
        if isinstance(d, dict) and d.get("kind") == "Namespace" and group_of(d) == "":
            name = d.get("metadata", {}).get("name")
            if name:
                namespaces[name] = copy.deepcopy(d)
    pods = []
    for di, (d, w) in enumerate(zip(docs, wants)):
        for path, kind, obj in pods_of(d):
            meta = obj.get("metadata") or {}
            if kind == "Pod":
                pod = copy.deepcopy(obj)
                want = copy.deepcopy(at(w, path)) if w is not None else None
            else:
                # the pod a controller makes from the template
                pod = {"apiVersion": "v1", "kind": "Pod", "metadata": copy.deepcopy(meta),
                       "spec": copy.deepcopy(obj.get("spec"))}
                want = None
                if w is not None:
                    t = at(w, path)
                    want = {"apiVersion": "v1", "kind": "Pod",
                            "metadata": copy.deepcopy(t.get("metadata") or {}),
                            "spec": copy.deepcopy(t.get("spec"))}
                    if "metadata" not in obj:
                        # A pod always has metadata, a template may not: the status of the
                        # template's injection records that kilt made it (for --remove), the
                        # pod's cannot. That is the one difference between the two doors.
                        ann = want["metadata"].get("annotations") or {}
                        if "kilt.dev/status" in ann:
                            st = json.loads(ann["kilt.dev/status"])
                            st.pop("metadata_created", None)
                            ann["kilt.dev/status"] = json.dumps(st, separators=(",", ":"))
            # the pod's namespace: its own, else that of the object holding it (the workload,
            # a List's item), else "default"
            ns = None
            holder = d
            for k in path:
                if isinstance(holder, dict) and holder.get("kind"):
                    ns = (holder.get("metadata") or {}).get("namespace") or ns
                holder = holder[k]
            ns = meta.get("namespace") or ns or "default"
            pods.append({"doc": di, "path": path, "kind": kind, "namespace": ns, "pod": pod,
                         "want": want})
    if ns_labels:
        for p in pods:
            if p["namespace"] not in namespaces:
                namespaces[p["namespace"]] = {"apiVersion": "v1", "kind": "Namespace",
                                              "metadata": {"name": p["namespace"],
                                                           "labels": dict(ns_labels)}}
    return {"args": hook, "namespaces": list(namespaces.values()), "pods": pods,
            "want_error": want_error}


def admission_review(uid, namespace, pod, dry_run=False):
    return json.dumps({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
                    "resource": {"group": "", "version": "v1", "resource": "pods"},
                    "namespace": namespace, "operation": "CREATE", "object": pod,
                    "dryRun": dry_run,
                    "userInfo": {"username": "golden"}}})


def post_review(port, ctx, body):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    c.request("POST", "/mutate", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    c.close()
    if r.status != 200:
        raise RuntimeError(f"/mutate answered HTTP {r.status}: {data[:300]!r}")
    return json.loads(data)["response"]


def review_case(name, case, port, ctx, check):
    """Reviews every pod of `case` (load_case) through the webhook on `port`; checks each patch."""
    import jsonpatch
    denied = []
    for i, p in enumerate(case["pods"]):
        uid = f"{name}-{i}"
        r = post_review(port, ctx, admission_review(uid, p["namespace"], p["pod"]))
        where = f"{name}: document {p['doc']} {p['kind']} {'/'.join(map(str, p['path']))}"
        check(r.get("uid") == uid, f"{where}: uid echoed ({r.get('uid')})")
        if case["want_error"] is not None:
            if r.get("allowed") is False:
                denied.append(r.get("status", {}).get("message", ""))
            continue
        check(r.get("allowed") is True, f"{where}: allowed ({r})")
        patch = []
        if "patch" in r:
            check(r.get("patchType") == "JSONPatch", f"{where}: patchType JSONPatch ({r})")
            patch = json.loads(base64.b64decode(r["patch"]))
        for op in patch:
            check(op.get("op") in ("add", "replace", "remove"), f"{where}: operation {op}")
        got = jsonpatch.apply_patch(p["pod"], patch)
        want = p["want"]
        if not check(json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True),
                     f"{where}: the webhook's patch applied by jsonpatch gives the golden output"):
            print("patch:", json.dumps(patch), "\ngot:  ", json.dumps(got, sort_keys=True),
                  "\nwant: ", json.dumps(want, sort_keys=True), flush=True)
            continue
        # reinvocation (IfNeeded): the injected pod comes back; nothing more to do
        r2 = post_review(port, ctx, admission_review(uid + "-again", p["namespace"], got))
        check(r2.get("allowed") is True and "patch" not in r2,
              f"{where}: reviewing the injected pod again patches nothing ({r2})")
    if case["want_error"] is not None:
        check(any(case["want_error"] in m for m in denied),
              f"{name}: --strict denies with '{case['want_error']}' ({denied})")
    return len(case["pods"])


def settle(lines, proc, quiet=0.1, limit=3.0):
    """A copy of `lines` (a webhook's log lines, appended by a reader thread) once none came for
    `quiet` seconds, at most `limit`: while it serves, the webhook writes its lines in batches,
    about 10 ms after they were logged."""
    n, since, end = len(lines), time.monotonic(), time.monotonic() + limit
    while proc.poll() is None and time.monotonic() < end:
        time.sleep(0.02)
        if len(lines) != n:
            n, since = len(lines), time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return list(lines)


class Server:
    """`kilt webhook serve` on a free loopback port."""

    def __init__(self, cert, key, args):
        self.proc = subprocess.Popen(
            [KILT, "webhook", "serve", "--listen", "127.0.0.1:0", "--tls-cert", cert,
             "--tls-key", key, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        self.lines, self.port = [], None
        started = threading.Event()

        def read():
            for line in self.proc.stderr:
                self.lines.append(line)
                try:
                    j = json.loads(line)
                except ValueError:
                    continue
                if j.get("msg") == "listening":
                    self.port = int(j["address"].rsplit(":", 1)[1])
                    started.set()
            started.set()
        self.reader = threading.Thread(target=read, daemon=True)
        self.reader.start()
        if not started.wait(20) or not self.port:
            raise RuntimeError(f"webhook did not start: {''.join(self.lines)}")

    def settled_lines(self):
        return settle(self.lines, self.proc)

    def stop(self):
        self.proc.terminate()
        rc = self.proc.wait(30)
        self.reader.join(10)  # every line read
        return rc


def main():
    run_in_peer()  # PyYAML and jsonpatch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import server
    import ssl
    case_dir = sys.argv[1]
    name = os.path.basename(os.path.normpath(case_dir))
    failures = []

    def check(cond, what):
        if not cond:
            failures.append(what)
            print(f"FAIL: {what}", flush=True)
        return cond

    d = tempfile.mkdtemp(prefix=f"kilt-webhook-golden-{name}-")
    try:
        case = load_case(case_dir, d)
        if isinstance(case, str):
            print(f"{name}: not a webhook case: {case}")
            return 0
        server.make_ca(d, "ca")
        cert, key = server.make_cert(d, "ca", "server")
        args = list(case["args"])
        if case["namespaces"]:
            nsfile = os.path.join(d, "namespaces.json")
            with open(nsfile, "w") as f:
                json.dump({"apiVersion": "v1", "kind": "List", "items": case["namespaces"]}, f)
            args += ["--namespaces", nsfile]
        s = Server(cert, key, args)
        try:
            ctx = ssl.create_default_context(cafile=os.path.join(d, "ca.crt"))
            n = review_case(name, case, s.port, ctx, check)
        finally:
            rc = s.stop()
            check(rc == 0, f"webhook exit status {rc}")
        check(n > 0 or not case["pods"], "reviewed")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    if failures:
        print(f"{name}: {len(failures)} check(s) failed")
        return 1
    print(f"{name}: ok ({n} pod(s) through the webhook)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
