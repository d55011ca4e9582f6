#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# `kilt webhook manifests`: the static copy in deploy/kubernetes/ is what the command prints
# today (no drift); the objects are the ones the webhook needs (2 replicas, anti-affinity, PDB,
# requests, non-root, read-only root, probes, grace, RBAC, the MutatingWebhookConfiguration's
# policies); the generated CA and serving certificate verify with openssl for the Service's
# names and the caBundle is that CA; the real `kilt webhook serve`, started with the Deployment's
# own arguments, the Secret's files and the ConfigMap's recipes, becomes ready over TLS with that
# CA; bad input (a recipe that does not validate, one that includes a file, a missing required
# parameter, bad options) gives a located error and prints nothing.
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "infra"))
from checks import check, result  # noqa: E402

KILT = os.environ["KILT"]
SRC = os.environ["KILT_SOURCE_DIR"]

IMAGE = "registry.example.com/kilt/webhook:0.1.0"
AGENT = "agent_image=registry.example.com/kilt/falco:0.32.2"
# The command that made deploy/kubernetes/kilt-webhook.yaml (also in its README.md).
STATIC = {"kilt-webhook.yaml": ["--image", IMAGE, "--cert-manager", "--set", AGENT]}


def kilt(*args, cwd=None):
    return subprocess.run([KILT, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def manifests(*args, cwd=None):
    p = kilt("webhook", "manifests", *args, cwd=cwd)
    if p.returncode != 0:
        raise SystemExit(f"kilt webhook manifests {' '.join(args)}: exit {p.returncode}: {p.stderr}")
    return p.stdout


def by_kind(docs):
    out = {}
    for d in docs:
        out.setdefault(d["kind"], []).append(d)
    return out


tmp = tempfile.mkdtemp(prefix="kilt-manifests-")
try:
    # --- 1. The static copies are what the command prints now.
    for name, args in STATIC.items():
        want = open(os.path.join(SRC, "deploy", "kubernetes", name)).read()
        got = manifests(*args)
        check(got == want, f"deploy/kubernetes/{name} is what `kilt webhook manifests "
              f"{' '.join(args)}` prints (regenerate it with that command)")
        check("PRIVATE KEY" not in want and "kind: Secret" not in want,
              f"deploy/kubernetes/{name} holds no private key")
    readme = open(os.path.join(SRC, "deploy", "kubernetes", "README.md")).read()
    check(" ".join(STATIC["kilt-webhook.yaml"]) in readme,
          "deploy/kubernetes/README.md gives the command that made the copy")

    # --- 2. The objects (Secret form, default namespace and recipe).
    out = manifests("--image", IMAGE, "--set", AGENT)
    check(out.startswith("# The kilt admission webhook"), "YAML output starts with a comment")
    docs = list(yaml.safe_load_all(out))
    k = by_kind(docs)
    kinds = [d["kind"] for d in docs]
    check(kinds == ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Secret",
                    "ConfigMap", "Service", "Deployment", "PodDisruptionBudget",
                    "MutatingWebhookConfiguration"], f"objects in apply order: {kinds}")
    ns = "kilt-system"
    check(all(d["metadata"].get("namespace") == ns for d in docs
              if d["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding",
                                   "MutatingWebhookConfiguration")),
          "every namespaced object is in kilt-system")
    dep = k["Deployment"][0]
    spec = dep["spec"]["template"]["spec"]
    c = spec["containers"][0]
    check(dep["spec"]["replicas"] == 2, "2 replicas")
    aff = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    check(aff["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname" and
          aff["podAffinityTerm"]["labelSelector"]["matchLabels"] == dep["spec"]["selector"]["matchLabels"],
          "pod anti-affinity across nodes on the Deployment's own pods")
    pdb = k["PodDisruptionBudget"][0]["spec"]
    check(pdb["maxUnavailable"] == 1 and pdb["selector"] == dep["spec"]["selector"],
          "PodDisruptionBudget over the same pods")
    check(c["resources"]["requests"] == {"cpu": "100m", "memory": "64Mi"}, "resource requests")
    check(spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] != 0,
          "non-root")
    check(c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                   "capabilities": {"drop": ["ALL"]}},
          "read-only root filesystem, no privilege escalation, no capabilities")
    check(c["readinessProbe"]["httpGet"]["path"] == "/readyz" and
          c["livenessProbe"]["httpGet"]["path"] == "/healthz" and
          c["readinessProbe"]["httpGet"]["scheme"] == "HTTPS", "probes on /readyz and /healthz")
    args = c["args"]
    delay = int(args[args.index("--shutdown-delay") + 1])
    drain = int(args[args.index("--drain-timeout") + 1])
    check(delay + drain < spec["terminationGracePeriodSeconds"] * 1000,
          f"shutdown delay + drain ({delay}+{drain} ms) within the grace period")
    check(args[args.index("--namespace") + 1] == ns, "the server is told its namespace")
    mwc_timeout = by_kind(docs)["MutatingWebhookConfiguration"][0]["webhooks"][0]["timeoutSeconds"]
    budget = int(args[args.index("--image-budget") + 1])
    check(budget * 2 <= mwc_timeout * 1000,
          f"a review's lookup budget ({budget} ms) is well within timeoutSeconds ({mwc_timeout} s)")
    cm = k["ConfigMap"][0]
    recipe_text = open(os.path.join(SRC, "deploy", "recipes", "falco.kilt.conf")).read()
    check(cm["data"] == {"falco.kilt.conf": recipe_text}, "ConfigMap holds the built-in Falco recipe")
    check("/etc/kilt/recipes/falco.kilt.conf" in args, "the server reads it from the ConfigMap's mount")
    role = k["ClusterRole"][0]["rules"]
    granted = sorted((r["resources"][0], v) for r in role for v in r["verbs"])
    check(granted == [("namespaces", "get"), ("namespaces", "list"), ("namespaces", "watch"),
                      ("secrets", "get"), ("serviceaccounts", "get")], f"least-privilege RBAC: {granted}")
    mwc = k["MutatingWebhookConfiguration"][0]["webhooks"][0]
    check(mwc["failurePolicy"] == "Ignore" and mwc["reinvocationPolicy"] == "IfNeeded" and
          mwc["sideEffects"] == "None" and mwc["admissionReviewVersions"] == ["v1"] and
          1 <= mwc["timeoutSeconds"] <= 30, "webhook policies")
    sel = mwc["namespaceSelector"]["matchExpressions"][0]
    check(sel["operator"] == "NotIn" and {ns, "kube-system"} <= set(sel["values"]),
          "namespaceSelector leaves out its own namespace and kube-system")
    svc = mwc["clientConfig"]["service"]
    check(svc == {"name": k["Service"][0]["metadata"]["name"], "namespace": ns, "path": "/mutate",
                  "port": 443}, "called through its Service")

    # --- 3. The certificates: openssl verifies them for the Service's name; caBundle is the CA.
    secret = k["Secret"][0]
    files = {}
    for key, val in secret["data"].items():
        files[key] = os.path.join(tmp, key)
        with open(files[key], "wb") as f:
            f.write(base64.b64decode(val))
    check(mwc["clientConfig"]["caBundle"] == secret["data"]["ca.crt"], "caBundle is the Secret's CA")
    v = subprocess.run(["openssl", "verify", "-purpose", "sslserver", "-CAfile", files["ca.crt"],
                        files["tls.crt"]], capture_output=True, text=True)
    check(v.returncode == 0, f"openssl verifies the serving certificate with the CA: {v.stdout}{v.stderr}")
    text = subprocess.run(["openssl", "x509", "-in", files["tls.crt"], "-noout", "-text"],
                          capture_output=True, text=True).stdout
    check(f"DNS:kilt-webhook.{ns}.svc" in text, "SAN names the Service")
    pub1 = subprocess.run(["openssl", "pkey", "-in", files["tls.key"], "-pubout"], capture_output=True).stdout
    pub2 = subprocess.run(["openssl", "x509", "-in", files["tls.crt"], "-pubkey", "-noout"], capture_output=True).stdout
    check(pub1 and pub1 == pub2, "the key belongs to the certificate")
    end = subprocess.run(["openssl", "x509", "-in", files["tls.crt"], "-noout", "-checkend",
                          str(729 * 86400)], capture_output=True)
    check(end.returncode == 0, "valid for 730 days by default")
    again = list(yaml.safe_load_all(manifests("--image", IMAGE, "--set", AGENT)))
    check(by_kind(again)["Secret"][0]["data"]["ca.crt"] != secret["data"]["ca.crt"],
          "each run makes a new CA")
    short = list(yaml.safe_load_all(manifests("--image", IMAGE, "--set", AGENT, "--cert-days", "2")))
    with open(os.path.join(tmp, "short.crt"), "wb") as f:
        f.write(base64.b64decode(by_kind(short)["Secret"][0]["data"]["tls.crt"]))
    r1 = subprocess.run(["openssl", "x509", "-in", os.path.join(tmp, "short.crt"), "-noout",
                         "-checkend", str(86400)], capture_output=True).returncode
    r3 = subprocess.run(["openssl", "x509", "-in", os.path.join(tmp, "short.crt"), "-noout",
                         "-checkend", str(3 * 86400)], capture_output=True).returncode
    check(r1 == 0 and r3 != 0, "--cert-days 2: valid for a day, not for three")

    # JSON output: the same objects.
    js = kilt("webhook", "manifests", "--image", IMAGE, "--set", AGENT, "-o", "json").stdout
    dec, i, jdocs = json.JSONDecoder(), 0, []
    while js[i:].strip():
        while js[i].isspace():
            i += 1
        o, i = dec.raw_decode(js, i)
        jdocs.append(o)
    for d in jdocs:
        if d["kind"] == "Secret":
            d["data"] = secret["data"]
        if d["kind"] == "MutatingWebhookConfiguration":
            d["webhooks"][0]["clientConfig"]["caBundle"] = mwc["clientConfig"]["caBundle"]
    check(jdocs == docs, "-o json prints the same objects")

    # --- 4. The real server starts with the Deployment's arguments and these files.
    recipes_dir = os.path.join(tmp, "recipes")
    os.makedirs(recipes_dir)
    for key, val in cm["data"].items():
        with open(os.path.join(recipes_dir, key), "w") as f:
            f.write(val)
    real = [a.replace("/etc/kilt/tls", tmp).replace("/etc/kilt/recipes", recipes_dir) for a in args]
    real[real.index("--listen") + 1] = "127.0.0.1:0"
    real[real.index("--shutdown-delay") + 1] = "0"
    check(real[:2] == ["webhook", "serve"], "the container runs `kilt webhook serve`")
    p = subprocess.Popen([KILT, *real], stderr=subprocess.PIPE, text=True)
    port = None
    deadline = time.monotonic() + 20
    lines = []
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        lines.append(line)
        try:
            j = json.loads(line)
        except ValueError:
            continue
        if j.get("msg") == "listening":
            port = int(j["address"].rsplit(":", 1)[1])
            break
    if check(port is not None, f"kilt webhook serve starts with the Deployment's arguments: {lines}"):
        ctx = ssl.create_default_context(cafile=files["ca.crt"])
        status = None
        for _ in range(50):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                    with ctx.wrap_socket(raw, server_hostname=f"kilt-webhook.{ns}.svc") as s:
                        s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        status = s.recv(64).split(b" ")[1]
                break
            except (OSError, IndexError):
                time.sleep(0.1)
        check(status == b"200", f"/readyz answers 200 over TLS verified with the caBundle's CA for "
              f"kilt-webhook.{ns}.svc: {status}")
        p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = p.wait()
    check(port is None or rc == 0, f"and exits 0 on SIGTERM ({rc})")
    p.stderr.close()

    # --- 5. Settings: namespace, recipes, parameters, replicas, failure policy, cert-manager.
    with open(os.path.join(tmp, "a.conf"), "w") as f:
        f.write('parameters { mode { default: x } }\n'
                'deploy { entrypoint: [ /kilt/bin/kilt-launch, "--" ] ${original.entrypoint} }\n')
    with open(os.path.join(tmp, "b.conf"), "w") as f:
        f.write('parameters { mode { default: x } }\n'
                'deploy { environment: { MODE: ${config.mode} } }\n')
    out = manifests("--image", "r.example/kilt:2", "-n", "security", "-r", "a.conf", "-r", "b.conf",
                    "-s", "mode=y", "--replicas", "3", "--failure-policy", "Fail", "--cert-manager",
                    cwd=tmp)
    k = by_kind(list(yaml.safe_load_all(out)))
    dep = k["Deployment"][0]
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    check(dep["metadata"]["namespace"] == "security" and dep["spec"]["replicas"] == 3,
          "--namespace and --replicas")
    check(list(k["ConfigMap"][0]["data"]) == ["a.conf", "b.conf"] and
          args[args.index("--recipe") + 1] == "/etc/kilt/recipes/a.conf" and
          args[args.index("--recipe", args.index("--recipe") + 1) + 1] == "/etc/kilt/recipes/b.conf",
          "recipes in order, in the ConfigMap and the arguments")
    check(args[args.index("--set") + 1] == "mode=y", "--set passed to the server")
    check("--mode" not in args, "the server's default mode (opt-out) is not spelled out")
    optin = by_kind(list(yaml.safe_load_all(manifests("--image", IMAGE, "-r", "a.conf", "-m", "opt-in",
                                                      "--cert-manager", cwd=tmp))))
    a2 = optin["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]["args"]
    check(a2[a2.index("--mode") + 1] == "opt-in", "--mode opt-in passed to the server")
    mwc = k["MutatingWebhookConfiguration"][0]
    check(mwc["webhooks"][0]["failurePolicy"] == "Fail", "--failure-policy Fail")
    check("caBundle" not in mwc["webhooks"][0]["clientConfig"] and
          mwc["metadata"]["annotations"] == {"cert-manager.io/inject-ca-from": "security/kilt-webhook"},
          "--cert-manager: caBundle left to cert-manager's CA injector")
    certs = {d["metadata"]["name"]: d["spec"] for d in k["Certificate"]}
    check(certs["kilt-webhook"]["secretName"] == "kilt-webhook-tls" and
          "kilt-webhook.security.svc" in certs["kilt-webhook"]["dnsNames"] and
          certs["kilt-webhook"]["issuerRef"]["name"] == "kilt-webhook-ca" and
          certs["kilt-webhook-ca"]["isCA"] is True, "cert-manager: a CA issues the serving certificate")
    check("Secret" not in k, "--cert-manager: no Secret printed")
    h1 = dep["spec"]["template"]["metadata"]["annotations"]["kilt.dev/recipes-sha256"]
    with open(os.path.join(tmp, "b.conf"), "a") as f:
        f.write("# changed\n")
    out2 = manifests("--image", "r.example/kilt:2", "-n", "security", "-r", "a.conf", "-r", "b.conf",
                     "-s", "mode=y", "--cert-manager", cwd=tmp)
    h2 = by_kind(list(yaml.safe_load_all(out2)))["Deployment"][0]["spec"]["template"]["metadata"]["annotations"]["kilt.dev/recipes-sha256"]
    check(re.fullmatch(r"[0-9a-f]{64}", h1) and h1 != h2, "a changed recipe changes the pod template")

    # --- 6. Bad input: a located error, nothing printed.
    with open(os.path.join(tmp, "bad.conf"), "w") as f:
        f.write("deploy {\n  entrypoint: [ /a ] ${original.entrypoint}\n  capabilities: 7\n}\n")
    with open(os.path.join(tmp, "inc.conf"), "w") as f:
        f.write('include "a.conf"\ndeploy { entrypoint: [ /a ] }\n')
    with open(os.path.join(tmp, "inc2.conf"), "w") as f:
        f.write("deploy { entrypoint: [ /a ] }\n")
    shutil.copy(os.path.join(tmp, "a.conf"), os.path.join(tmp, "a b.conf"))
    os.makedirs(os.path.join(tmp, "other"))
    shutil.copy(os.path.join(tmp, "a.conf"), os.path.join(tmp, "other", "a.conf"))
    cases = [
        (["-r", "bad.conf"], 1, "bad.conf:3:17: deploy.capabilities: expected a list"),
        (["-r", "inc.conf"], 1, "inc.conf:1:1: the webhook reads this recipe alone from a ConfigMap"),
        ([], 1, "needs config.agent_image, which was not given"),
        (["-r", "a.conf", "-s", "nope=1"], 1, "config.nope is not a parameter of recipe a"),
        # the server gives every recipe the same parameters
        (["-r", "a.conf", "-r", "inc2.conf", "-s", "mode=1"], 1,
         "config.mode is not a parameter of recipe inc2: it reads no config.* keys"),
        (["-r", "missing.conf"], 1, "missing.conf: cannot read"),
        (["-r", "a b.conf"], 1, "a b.conf: the file name 'a b.conf' cannot be a ConfigMap key"),
        (["-r", "a.conf", "-r", "other/a.conf"], 1, "another recipe has the file name 'a.conf'"),
        (["-r", "a.conf", "-n", "default"], 2, "needs one of its own"),
        (["-r", "a.conf", "-n", "kube-system"], 2, "needs one of its own"),
        (["-r", "a.conf", "-n", "Bad_NS"], 2, "expected a DNS label"),
        (["-r", "a.conf", "--replicas", "0"], 2, "--replicas: expected a number from 1 to 100"),
        (["-r", "a.conf", "--failure-policy", "ignore"], 2, "expected Ignore or Fail"),
        (["-r", "a.conf", "--cert-days", "-1"], 2, "--cert-days: expected a number"),
        (["-r", "a.conf", "--mode", "optin"], 2, "--mode: expected opt-in or opt-out"),
        (["-r", "a.conf", "-o", "text"], 2, "--output must be json or yaml"),
        (["-r", "a.conf", "extra"], 2, "unexpected argument 'extra'"),
    ]
    for extra, code, msg in cases:
        p = kilt("webhook", "manifests", "--image", IMAGE, *extra, cwd=tmp)
        check(p.returncode == code and msg in p.stderr and p.stdout == "",
              f"{' '.join(extra) or '(no recipe, no agent_image)'}: exit {code}, '{msg}', nothing "
              f"printed (got {p.returncode}: {p.stderr.strip()!r}, {len(p.stdout)} bytes out)")
    p = kilt("webhook", "manifests", "-r", "a.conf", cwd=tmp)
    check(p.returncode == 2 and "--image is required" in p.stderr and p.stdout == "", "--image is required")
    p = kilt("webhook", "manifests", "--image", "Bad Ref", "-r", "a.conf", cwd=tmp)
    check(p.returncode == 2 and "--image: " in p.stderr and p.stdout == "", "a bad --image is refused")
    # A write error is reported, not ignored.
    if os.path.exists("/dev/full"):
        with open("/dev/full", "w") as full:
            p = subprocess.run([KILT, "webhook", "manifests", "--image", IMAGE, "-r", "a.conf"],
                               cwd=tmp, stdout=full, stderr=subprocess.PIPE, text=True)
        check(p.returncode == 1 and "cannot write" in p.stderr, f"/dev/full: exit 1 ({p.stderr.strip()})")
finally:
    shutil.rmtree(tmp, ignore_errors=True)

sys.exit(result("all webhook manifests checks passed"))
