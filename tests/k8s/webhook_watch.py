# SPDX-License-Identifier: Apache-2.0
"""The webhook's namespace watch against a real API server when its connection breaks (used by
tests/k8s/webhook.py, on its cluster). `kilt webhook serve --kubeconfig` runs on the host and
reaches the API server through a TCP proxy of this test, which can cut every connection and
refuse new ones for a while:

1. Cut, the namespace's labels changed while the webhook cannot connect, then let through again:
   the watch resumes from the last resourceVersion it saw (no second list: the list counter
   stays at 1), the change arrives as a watch event, and the next review follows the new labels.
2. Cut, the labels changed again, and etcd compacted past the watch's resourceVersion (etcd's
   own compaction call), then let through: the API server answers the resumed watch with 410
   Gone (this test asks it too, with the same resourceVersion, and shows which form the answer
   takes), the webhook lists again (`namespace watch expired (410)` in its log, the list and
   relist counters) and the next review follows the newest labels. The watch that broke had
   delivered events: it is retried after the shortest wait (250 ms, as logged), not after a
   wait grown by the previous outage.
3. An ERROR event that is not a 410 (error_event below): the webhook lists again.

The cluster runs with the API server's watch cache off for namespaces
(--watch-cache-sizes=namespaces#0, WATCH_CACHE_ARGS below), so a namespace watch is served from
etcd and an etcd compaction expires it; with the watch cache on, a watch expires when its
resourceVersion leaves the cache's window instead, which takes a long-running cluster.
"""
import base64
import http.client
import json
import shutil
import ssl
import tempfile
import time

import k8s_cluster
import webhook_api
from webhook_api import golden, metric, set_namespace

WATCH_CACHE_ARGS = ["--watch-cache-sizes=namespaces#0"]
NS = "watched"


def etcd(c, path, body):
    host, port = c.etcd_url.rsplit("//", 1)[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"{}")
    finally:
        conn.close()


def compact(c):
    """Compacts etcd at its current revision: every older revision is gone. Returns it."""
    key = base64.b64encode(f"/registry/namespaces/{NS}".encode()).decode()
    st, out = etcd(c, "/v3/kv/range", {"key": key})
    if st != 200:
        raise RuntimeError(f"etcd range: {st} {out}")
    rev = int(out["header"]["revision"])
    st, out = etcd(c, "/v3/kv/compaction", {"revision": rev, "physical": True})
    if st != 200:
        raise RuntimeError(f"etcd compaction at {rev}: {st} {out}")
    return rev


def watch_answer(c, rv):
    """What the API server answers a namespace watch from `rv` (as the cluster admin): its
    HTTP status and the first event line, if any."""
    conn = http.client.HTTPSConnection("127.0.0.1", c.ports["apiserver"], timeout=10,
                                       context=c._ssl_context())
    try:
        conn.request("GET", f"/api/v1/namespaces?watch=1&resourceVersion={rv}&timeoutSeconds=2",
                     headers={"Accept": "application/json"})
        r = conn.getresponse()
        line = r.readline().decode(errors="replace").strip() if r.status == 200 else \
            r.read().decode(errors="replace")[:300]
        return r.status, line
    finally:
        conn.close()


def review(hook, ctx, uid):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["/a"]}]}}
    return golden.post_review(hook.port, ctx, golden.admission_review(uid, NS, pod))


def failures_logged(hook):
    out = []
    for line in hook.settled_lines():
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if j.get("msg") == "namespace watch failed; retrying":
            out.append(j)
    return out


def injected(r):
    return "patch" in r


def opted_out(r):
    return "patch" not in r and any("says kilt.dev/inject: disabled" in w
                                    for w in r.get("warnings", []))


def watch_rv(hook):
    """The resourceVersion the webhook's watch resumes from, as its log says: the last list's."""
    rv = None
    for line in hook.settled_lines():
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if j.get("msg") == "namespaces listed":
            rv = int(j["resourceVersion"])
    return rv


def error_event(c, hook, ctx, proxy, m, check):
    """3. The API server answers the resumed watch with an ERROR event that is not a 410: etcd
    compacted at exactly the revision of the change the watch resumes to, so the change's
    previous value is gone ("etcd event received with PrevKv=nil", code 500), and the API
    server says so for every watch from that resourceVersion. The webhook lists again instead
    of asking again from the same version for ever. Made when no other write of the cluster
    comes between the version the webhook holds and the change (tried up to 6 times)."""
    lists = m("kilt_webhook_namespace_lists_total")
    held = watch_rv(hook)  # right after a list: no namespace event since
    for attempt in range(6):
        proxy.blocked = True
        proxy.cut()
        set_namespace(c, NS, {"kilt.dev/inject": "disabled" if attempt % 2 == 0 else "enabled"})
        st, ns = c.api("GET", f"/api/v1/namespaces/{NS}")
        changed = int(ns["metadata"]["resourceVersion"])
        want = "disabled" if attempt % 2 == 0 else "enabled"
        if changed == held + 1:
            break
        # Another write came between: let the watch catch up (it holds `changed` then).
        proxy.blocked = False
        wait_for(lambda: (opted_out if want == "disabled" else injected)(
            review(hook, ctx, f"catch-up-{attempt}")), 20)
        held = changed
    else:
        print(f"NOT RUN (part 3): in 6 tries another write of the cluster always came between "
              f"the webhook's resourceVersion and the change", flush=True)
        proxy.blocked = False
        return
    etcd_rev = compact_at(c, changed)
    answer = watch_answer(c, held)
    check(answer[0] == 200 and '"ERROR"' in answer[1] and '"code":410' not in answer[1],
          f"compacted at {etcd_rev}, the API server answers a watch from {held} with an ERROR "
          f"event that is not a 410: {answer[1][:300]}")
    print(f"the API server's answer to a watch from {held} after compacting at {etcd_rev}: "
          f"HTTP {answer[0]}, {answer[1][:300]}", flush=True)
    proxy.blocked = False
    t0 = time.monotonic()
    follow = opted_out if want == "disabled" else injected
    ok = wait_for(lambda: m("kilt_webhook_namespace_lists_total") > lists, 20)
    check(ok and follow(review(hook, ctx, "w-3")),
          f"after the ERROR event the webhook listed again and follows the label ({want}) "
          f"({time.monotonic() - t0:.1f} s; lists {lists} -> "
          f"{m('kilt_webhook_namespace_lists_total')})")


def compact_at(c, rev):
    st, out = etcd(c, "/v3/kv/compaction", {"revision": rev, "physical": True})
    if st != 200:
        raise RuntimeError(f"etcd compaction at {rev}: {st} {out}")
    return rev


def wait_for(cond, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def run(c, cert, key, check):
    d = tempfile.mkdtemp(prefix="kilt-k8s-webhook-watch-")
    kc = webhook_api.service_account_kubeconfig(c, d)
    with open(kc) as f:
        cfg = json.load(f)
    proxy = k8s_cluster.Relay(("127.0.0.1", c.ports["apiserver"]))
    cfg["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{proxy.port}"
    with open(kc, "w") as f:
        json.dump(cfg, f)
    ctx = ssl.create_default_context(cafile=c.ca_cert)
    set_namespace(c, NS, {})
    hook = golden.Server(cert, key, ["-r", webhook_api.RECIPE, "--kubeconfig", kc,
                                     "--no-image-lookup"])

    def m(name):
        return metric(hook.port, ctx, name) or 0
    try:
        check(injected(review(hook, ctx, "w-0")) and m("kilt_webhook_namespace_lists_total") == 1,
              "through the proxy: listed once, a pod in the unlabelled namespace is injected")

        # 1. Cut, relabelled while cut off, let through: resumed, not listed again.
        proxy.blocked = True
        cut = proxy.cut()
        set_namespace(c, NS, {"kilt.dev/inject": "disabled"})
        check(wait_for(lambda: m("kilt_webhook_namespace_watch_errors_total") >= 1, 10),
              f"the cut ({cut} connection(s)) broke the watch: "
              f"{m('kilt_webhook_namespace_watch_errors_total')} error(s)")
        time.sleep(0.5)
        proxy.blocked = False
        t0 = time.monotonic()
        ok = wait_for(lambda: opted_out(review(hook, ctx, "w-1")), 20)
        check(ok, f"after the reconnection the pod is skipped per the new label "
              f"({time.monotonic() - t0:.1f} s): {review(hook, ctx, 'w-1b')}")
        check(m("kilt_webhook_namespace_lists_total") == 1 and
              m("kilt_webhook_namespace_relists_total") == 0,
              f"resumed from its resourceVersion without listing again (lists "
              f"{m('kilt_webhook_namespace_lists_total')}, relists "
              f"{m('kilt_webhook_namespace_relists_total')})")
        st, ns = c.api("GET", f"/api/v1/namespaces/{NS}")
        seen_rv = ns["metadata"]["resourceVersion"]  # the last event the watch delivered

        # 2. Cut, relabelled, etcd compacted past that version, let through: 410, listed again.
        proxy.blocked = True
        errors = m("kilt_webhook_namespace_watch_errors_total")
        failed_before = len(failures_logged(hook))
        proxy.cut()
        set_namespace(c, NS, {"kilt.dev/inject": "enabled"})
        set_namespace(c, NS + "-other", {})  # a later revision: compacting there drops the change
        rev = compact(c)
        answer = watch_answer(c, seen_rv)
        check(answer[0] == 410 or ('"ERROR"' in answer[1] and '"code":410' in answer[1]),
              f"after compacting etcd at revision {rev}, the API server expires a watch from "
              f"{seen_rv}: HTTP {answer[0]}, {answer[1][:300]}")
        print(f"the API server's answer to a watch from a compacted resourceVersion: HTTP "
              f"{answer[0]}, {answer[1][:200]}", flush=True)
        check(wait_for(lambda: m("kilt_webhook_namespace_watch_errors_total") > errors, 10),
              "the second cut broke the watch")
        # The watch that broke had been working (it delivered the relabelling): the wait
        # before the next try starts again from the shortest, not where the last outage left it.
        fl = failures_logged(hook)[failed_before:]
        check(fl and fl[0].get("retryMs") == 250,
              f"a working watch that breaks is retried after 250 ms: {fl[:1]}")
        time.sleep(0.5)
        proxy.blocked = False
        t0 = time.monotonic()
        ok = wait_for(lambda: m("kilt_webhook_namespace_relists_total") == 1 and
                      m("kilt_webhook_namespace_lists_total") == 2, 20)
        check(ok,
              f"the resumed watch expired and the webhook listed again ({time.monotonic() - t0:.1f}"
              f" s; lists {m('kilt_webhook_namespace_lists_total')}, relists "
              f"{m('kilt_webhook_namespace_relists_total')})")
        r = review(hook, ctx, "w-2")
        check(injected(r) and m("kilt_webhook_namespace_cache_synced") == 1,
              f"after the list the pod is injected per the newest label (enabled): "
              f"{r.get('warnings')}")
        error_event(c, hook, ctx, proxy, m, check)
        lists = m("kilt_webhook_namespace_lists_total")
    finally:
        hook.stop()
        proxy.stop()
        set_namespace(c, NS, {})
    logs = "".join(hook.lines)
    check(logs.count('"msg":"namespace watch expired (410): listing again"') == 1 and
          logs.count('"msg":"namespaces listed"') == lists,
          f"the log says it: one expiry, {lists:.0f} lists: {logs[-3000:]}")
    shutil.rmtree(d, ignore_errors=True)
