# SPDX-License-Identifier: Apache-2.0
"""The webhook with API server access on a real cluster (used by tests/k8s/webhook.py, on its
cluster):

- It reads the API server as a service account bound to exactly the ClusterRole docs/webhook.md
  gives (namespaces get/list/watch, serviceaccounts get, secrets get), through a kubeconfig that
  holds that account's token.
- Every golden case of tests/golden/k8s through the webhook, the case's namespaces created in the
  cluster with the case's labels: the namespace facts come from the webhook's watched cache
  (not from a file), and the JSON Patch of each pod, applied with jsonpatch, gives the case's
  output (tests/webhook/golden.py does the same with --namespaces and no cluster).
- The watch: a namespace labelled after the webhook started is seen by the next review.
- A subset of the golden cases created for real with kubectl (Pods, a Deployment, a Job, a
  StatefulSet): what the API server stored holds exactly what kilt injected.
- An opted-out namespace, kube-system and a namespace enforcing Pod Security baseline: pods
  created there are admitted untouched, with kilt's warning saying why.
"""
import copy
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("KILT_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
sys.path.insert(0, os.path.join(SRC, "tests", "webhook"))
import golden  # noqa: E402

GOLDEN = os.path.join(SRC, "tests", "golden", "k8s")
RECIPE = os.path.join(SRC, "tests", "k8s-inject", "recipes", "falco.conf")
ROLE = [
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]},
]
# Cases created for real: (case, kind of the object to create).
# (A StatefulSet's pods get the volumes of its claim templates from the controller before the
# webhook sees them, so the webhook's pod is not the template: not a case for this comparison.)
CREATED = ["pod-basic", "env-valuefrom", "capabilities-drop-all", "deployment-managed-fields",
           "job", "replicaset"]


def service_account_kubeconfig(c, d):
    """A kubeconfig for the kilt-webhook service account, bound to the documented role only."""
    objs = [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "kilt-webhook", "namespace": "kilt-system"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "kilt-webhook"}, "rules": ROLE},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "kilt-webhook"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "kilt-webhook"},
         "subjects": [{"kind": "ServiceAccount", "name": "kilt-webhook",
                       "namespace": "kilt-system"}]},
    ]
    c.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                    "items": objs}))
    token = c.kubectl("-n", "kilt-system", "create", "token", "kilt-webhook",
                      "--duration=1h").stdout.strip()
    kc = os.path.join(d, "kilt-webhook.kubeconfig")
    with open(kc, "w") as f:
        json.dump({"apiVersion": "v1", "kind": "Config", "current-context": "kilt",
                   "contexts": [{"name": "kilt", "context": {"cluster": "test", "user": "kilt"}}],
                   "clusters": [{"name": "test", "cluster": {"server": c.api_url,
                                                             "certificate-authority": c.ca_cert}}],
                   "users": [{"name": "kilt", "user": {"token": token}}]}, f)
    return kc


def set_namespace(c, name, labels):
    """Namespace `name` exists with exactly `labels` (and the API server's own name label)."""
    st, ns = c.api("GET", f"/api/v1/namespaces/{name}")
    if st == 404:
        st, ns = c.api("POST", "/api/v1/namespaces",
                       {"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": name, "labels": labels}})
        if st != 201:
            raise RuntimeError(f"create namespace {name}: {st} {ns}")
        return
    want = dict(labels)
    auto = "kubernetes.io/metadata.name"
    if auto in ns["metadata"].get("labels", {}):
        want[auto] = ns["metadata"]["labels"][auto]
    if ns["metadata"].get("labels", {}) == want:
        return
    ns["metadata"]["labels"] = want
    st, out = c.api("PUT", f"/api/v1/namespaces/{name}", ns)
    if st != 200:
        raise RuntimeError(f"label namespace {name}: {st} {out}")


def metric(hook_port, ctx, name):
    import http.client
    conn = http.client.HTTPSConnection("127.0.0.1", hook_port, context=ctx, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def golden_through_api(c, kc, cert, key, ctx, check, failures):
    cases = 0
    pods = 0
    touched = set()
    for name in sorted(os.listdir(GOLDEN)):
        d = scratch(f"kilt-k8s-webhook-{name}-")
        case = golden.load_case(os.path.join(GOLDEN, name), d)
        if isinstance(case, str):
            print(f"{name}: not a webhook case: {case}")
            continue
        labelled = {n["metadata"]["name"]: n["metadata"].get("labels") or {}
                    for n in case["namespaces"]}
        for p in case["pods"]:
            labelled.setdefault(p["namespace"], {})
        for ns, labels in labelled.items():
            set_namespace(c, ns, labels)
            touched.add(ns)
        hook = golden.Server(cert, key, case["args"] + ["--kubeconfig", kc])
        try:
            before = len(failures)
            pods += golden.review_case(name, case, hook.port, ctx, check)
            n = metric(hook.port, ctx, 'kilt_webhook_namespace_facts_total{source="api"}')
            unknown = metric(hook.port, ctx,
                             'kilt_webhook_namespace_facts_total{source="unknown"}')
            check(n is not None and n >= len(case["pods"]) and unknown == 0,
                  f"{name}: the namespace facts came from the API server ({n}, unknown {unknown})")
            if len(failures) == before:
                cases += 1
        finally:
            hook.stop()
    for ns in touched:  # what comes next starts from unlabelled namespaces
        set_namespace(c, ns, {})
    print(f"golden cases through the webhook with the API server's namespaces: {cases} ok, "
          f"{pods} pod(s)")
    return cases


def watch_is_live(c, kc, cert, key, ctx, check):
    """A namespace created and then opted out while the webhook runs: its next pod is skipped."""
    hook = golden.Server(cert, key, ["-r", RECIPE, "--kubeconfig", kc, "--no-image-lookup"])
    try:
        set_namespace(c, "late", {})
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["/a"]}]}}
        r = golden.post_review(hook.port, ctx, golden.admission_review("late-1", "late", pod))
        check("patch" in r, f"a pod in namespace late is injected: {r}")
        events = metric(hook.port, ctx, "kilt_webhook_namespace_watch_events_total") or 0
        set_namespace(c, "late", {"kilt.dev/inject": "disabled"})
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and \
                (metric(hook.port, ctx, "kilt_webhook_namespace_watch_events_total") or 0) <= events:
            time.sleep(0.05)
        r = golden.post_review(hook.port, ctx, golden.admission_review("late-2", "late", pod))
        check("patch" not in r and any("says kilt.dev/inject: disabled" in w
                                       for w in r.get("warnings", [])),
              f"the label set after the webhook started is seen through the watch: {r}")
        check(metric(hook.port, ctx, "kilt_webhook_namespace_lists_total") == 1,
              "one list, then the watch")
        check(metric(hook.port, ctx, "kilt_webhook_namespace_cache_synced") == 1, "synced")
    finally:
        hook.stop()
    logs = "".join(hook.lines)
    check("namespace watch failed" not in logs, f"no watch failure: {logs[-2000:]}")


def contains(stored, want, where, check):
    """`stored` holds everything of `want`: objects key by key, lists of named objects by name
    (the same names in the same order), other lists of objects entry by entry, other lists
    equal (the API server only adds its defaults, and leaves out empty
    lists: kilt's `args: []` is stored as no args, which means the same)."""
    if isinstance(want, dict):
        if not check(isinstance(stored, dict), f"{where}: an object"):
            return
        for k, v in want.items():
            if v == [] and k not in stored:
                continue
            if check(k in stored, f"{where}.{k}: stored"):
                contains(stored[k], v, f"{where}.{k}", check)
    elif isinstance(want, list):
        if not check(isinstance(stored, list), f"{where}: a list"):
            return
        if all(isinstance(w, dict) and "name" in w for w in want):
            check([s.get("name") for s in stored] == [w["name"] for w in want],
                  f"{where}: the same entries in the same order "
                  f"({[s.get('name') for s in stored]} vs {[w['name'] for w in want]})")
            for w in want:
                s = [x for x in stored if x.get("name") == w["name"]]
                if s:
                    contains(s[0], w, f"{where}[{w['name']}]", check)
        elif all(isinstance(w, dict) for w in want):
            # unnamed entries (ports, tolerations a controller adds to): each one is there
            for i, w in enumerate(want):
                found = False
                for st in stored:
                    probe = []
                    contains(st, w, where, lambda ok, what: probe.append(ok) or ok)
                    found = found or all(probe)
                check(found, f"{where}[{i}]: {w} stored (in {stored})")
        else:
            check(stored == want, f"{where}: {stored} == {want}")
    else:
        check(stored == want, f"{where}: {stored!r} == {want!r}")


def strip_server_fields(obj):
    obj = copy.deepcopy(obj)
    meta = obj.get("metadata", {})
    for k in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields",
              "selfLink"):
        meta.pop(k, None)
    obj.pop("status", None)
    return obj


def no_token_volume(spec):
    # The ServiceAccount admission plugin (before webhooks) would add the token's volume and
    # mounts: the golden input has neither, so the pods are made without them.
    spec["automountServiceAccountToken"] = False


def created_for_real(c, kc, cert, key, ca_bundle, registration, check):
    hook = golden.Server(cert, key, ["-r", RECIPE, "--kubeconfig", kc, "--no-image-lookup",
                                     "--strict"])
    c.kubectl("apply", "-f", "-", input=registration(
        f"https://127.0.0.1:{hook.port}/mutate", ca_bundle, "Fail", exclude=["kilt-system"]))
    try:
        time.sleep(1)  # the API server picks the registration up
        for name in CREATED:
            case_dir = os.path.join(GOLDEN, name)
            d = scratch(f"kilt-k8s-create-{name}-")
            case = golden.load_case(case_dir, d)
            inputs = [f for f in os.listdir(case_dir) if f.startswith("input.")]
            docs = golden.load_docs(os.path.join(case_dir, inputs[0]))
            for p in case["pods"]:
                set_namespace(c, p["namespace"], {})
            for di, doc in enumerate(docs):
                if doc.get("kind") == "Namespace":
                    continue
                obj = strip_server_fields(doc)
                pods_here = [p for p in case["pods"] if p["doc"] == di]
                if not pods_here:
                    continue
                p = pods_here[0]
                holder = obj
                for k in p["path"]:
                    holder = holder[k]
                no_token_volume(holder["spec"])
                want = copy.deepcopy(p["want"])
                no_token_volume(want["spec"])
                ns = p["namespace"]
                r = c.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(obj), check=False)
                if not check(r.returncode == 0, f"{name}: kubectl create: {r.stderr}"):
                    continue
                kind = obj["kind"]
                if kind == "Pod":
                    check("Warning: kilt: injected: injected recipe falco" in r.stderr,
                          f"{name}: kubectl shows what kilt injected: {r.stderr!r}")
                    stored = [json.loads(c.kubectl("-n", ns, "get", "pod",
                                                   obj["metadata"]["name"], "-o",
                                                   "json").stdout)]
                else:
                    sel = ",".join(f"{k}={v}" for k, v in
                                   (p["pod"]["metadata"].get("labels") or {}).items())
                    if kind == "Job":
                        sel = f"job-name={obj['metadata']['name']}"
                    stored = []
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline and not stored:
                        got = json.loads(c.kubectl("-n", ns, "get", "pods", "-l", sel, "-o",
                                                   "json").stdout)
                        stored = got["items"]
                        if not stored:
                            time.sleep(0.3)
                    check(stored, f"{name}: the {kind}'s controller created pods")
                for s in stored:
                    where = f"{name}: stored {s['metadata']['name']}"
                    contains(s["spec"], want["spec"], f"{where} spec", check)
                    st = (s["metadata"].get("annotations") or {}).get("kilt.dev/status")
                    wst = want["metadata"]["annotations"]["kilt.dev/status"]
                    check(st is not None and json.loads(st) == json.loads(wst),
                          f"{where}: the status annotation is the golden one ({st})")
                c.kubectl("-n", ns, "delete", kind.lower(), obj["metadata"]["name"],
                          "--wait=false", check=False)
            print(f"{name}: created with kubectl, stored as injected")

        # Untouched, with the reason: opted out, kube-system, Pod Security baseline enforced.
        busy = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "plain"},
                "spec": {"containers": [{"name": "main", "image": "busybox",
                                         "imagePullPolicy": "Never", "command": ["true"]}]}}
        set_namespace(c, "optout", {"kilt.dev/inject": "disabled"})
        set_namespace(c, "baseline", {"pod-security.kubernetes.io/enforce": "baseline"})
        for ns, reason in [("optout", "namespace optout says kilt.dev/inject: disabled"),
                           ("kube-system", "kilt never injects into namespace kube-system"),
                           ("baseline", "enforces Pod Security level baseline")]:
            pod = copy.deepcopy(busy)
            pod["metadata"]["name"] = f"plain-{ns}"
            r = c.kubectl("-n", ns, "create", "-f", "-", input=json.dumps(pod), check=False)
            check(r.returncode == 0 and "Warning: kilt: skipped: " in r.stderr and
                  reason in r.stderr, f"{ns}: admitted, with kilt's reason: {r.stderr!r}")
            if r.returncode == 0:
                s = json.loads(c.kubectl("-n", ns, "get", "pod", f"plain-{ns}", "-o",
                                         "json").stdout)
                check("kilt.dev/status" not in (s["metadata"].get("annotations") or {}) and
                      s["spec"]["containers"][0]["command"] == ["true"],
                      f"{ns}: the stored pod is untouched")
                c.kubectl("-n", ns, "delete", "pod", f"plain-{ns}", "--wait=false",
                          check=False)
    finally:
        c.kubectl("delete", "mutatingwebhookconfiguration", "kilt", check=False)
        hook.stop()


SCRATCH = []


def scratch(prefix):
    """A temporary folder that run() removes when it ends, passed or not."""
    d = tempfile.mkdtemp(prefix=prefix)
    SCRATCH.append(d)
    return d


def run(c, cert, key, registration, check, failures):
    try:
        run_all(c, cert, key, registration, check, failures)
    finally:
        while SCRATCH:
            shutil.rmtree(SCRATCH.pop(), ignore_errors=True)


def run_all(c, cert, key, registration, check, failures):
    d = scratch("kilt-k8s-webhook-api-")
    c.kubectl("create", "namespace", "kilt-system")
    kc = service_account_kubeconfig(c, d)
    ctx = ssl.create_default_context(cafile=c.ca_cert)
    import base64
    ca_bundle = base64.b64encode(open(c.ca_cert, "rb").read()).decode()
    t0 = time.monotonic()
    golden_through_api(c, kc, cert, key, ctx, check, failures)
    t1 = time.monotonic()
    watch_is_live(c, kc, cert, key, ctx, check)
    created_for_real(c, kc, cert, key, ca_bundle, registration, check)
    print(f"API part: golden {t1 - t0:.1f} s, watch and kubectl {time.monotonic() - t1:.1f} s")
