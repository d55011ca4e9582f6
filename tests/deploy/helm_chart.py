#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The Helm chart deploy/helm/kilt against `kilt webhook manifests`, with the real helm built by
# tests/infra/peer-k8s.sh: `helm lint --strict` passes; `helm template` renders, for the same
# settings, the same objects the command prints (compared as data, object by object), with
# cert-manager and with certificates made by Helm (whose CA and serving certificate openssl
# verifies for the Service's name, the caBundle being that CA); an existing Secret is mounted
# with the caBundle given; wrong values fail with a message; the chart's copy of the Falco recipe
# is the shipped one.
import base64
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "infra"))
from checks import check, result  # noqa: E402

KILT = os.environ["KILT"]
SRC = os.environ["KILT_SOURCE_DIR"]
HELM = os.path.join(os.environ.get("KILT_PEER_BIN", "/opt/kilt/bin"), "helm")
CHART = os.path.join(SRC, "deploy", "helm", "kilt")


if not os.access(HELM, os.X_OK):
    print(f"SKIPPED: {HELM} is missing (run tests/infra/peer-k8s.sh)", flush=True)
    sys.exit(77)

work = tempfile.mkdtemp(prefix="kilt-helm-")
env = dict(os.environ, HELM_CACHE_HOME=f"{work}/cache", HELM_CONFIG_HOME=f"{work}/config",
           HELM_DATA_HOME=f"{work}/data")


def helm(*args):
    return subprocess.run([HELM, *args], capture_output=True, text=True, env=env, timeout=120)


def template(ns, *sets, values=None):
    argv = ["template", "kilt", CHART, "--namespace", ns]
    if values:
        argv += ["--values", values]
    for s in sets:
        argv += ["--set", s]
    p = helm(*argv)
    if p.returncode != 0:
        return p, None
    return p, [d for d in yaml.safe_load_all(p.stdout) if d]


def manifests(*args, cwd=None):
    p = subprocess.run([KILT, "webhook", "manifests", *args], capture_output=True, text=True,
                       cwd=cwd, timeout=60)
    if p.returncode != 0:
        raise SystemExit(f"kilt webhook manifests: {p.stderr}")
    return [d for d in yaml.safe_load_all(p.stdout) if d]


def keyed(docs):
    return {(d["apiVersion"], d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d
            for d in docs}


def same_objects(a, b, what):
    ka, kb = keyed(a), keyed(b)
    check(len(ka) == len(a) and len(kb) == len(b), f"{what}: no object twice")
    if not check(set(ka) == set(kb), f"{what}: the same objects"):
        print(f"  only helm: {sorted(set(ka) - set(kb))}\n  only kilt: {sorted(set(kb) - set(ka))}")
    for k in sorted(set(ka) & set(kb)):
        if not check(ka[k] == kb[k], f"{what}: {k[1]} {k[3]} is the same"):
            print("  helm: " + yaml.safe_dump(ka[k])[:3000])
            print("  kilt: " + yaml.safe_dump(kb[k])[:3000])


def certificates(docs, ns, what):
    """Checks the Secret's certificates; blanks them (they differ on every run)."""
    k = keyed(docs)
    secret = k[("v1", "Secret", ns, "kilt-webhook-tls")]
    mwc = k[("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", None, "kilt-webhook")]
    files = {}
    for name, val in secret["data"].items():
        files[name] = os.path.join(work, f"{what}-{name}")
        with open(files[name], "wb") as f:
            f.write(base64.b64decode(val))
    cc = mwc["webhooks"][0]["clientConfig"]
    check(cc["caBundle"] == secret["data"]["ca.crt"], f"{what}: caBundle is the Secret's CA")
    v = subprocess.run(["openssl", "verify", "-purpose", "sslserver", "-CAfile", files["ca.crt"],
                        files["tls.crt"]], capture_output=True, text=True)
    check(v.returncode == 0, f"{what}: openssl verifies the serving certificate: {v.stderr.strip()}")
    text = subprocess.run(["openssl", "x509", "-in", files["tls.crt"], "-noout", "-text"],
                          capture_output=True, text=True).stdout
    check(f"DNS:kilt-webhook.{ns}.svc" in text, f"{what}: the certificate names the Service")
    pub1 = subprocess.run(["openssl", "pkey", "-in", files["tls.key"], "-pubout"], capture_output=True).stdout
    pub2 = subprocess.run(["openssl", "x509", "-in", files["tls.crt"], "-pubkey", "-noout"],
                          capture_output=True).stdout
    check(pub1 and pub1 == pub2, f"{what}: the key belongs to the certificate")
    for name in secret["data"]:
        secret["data"][name] = "(certificate)"
    cc["caBundle"] = "(certificate)"


try:
    # --- helm lint, strict, with the values a user must give.
    lint = helm("lint", "--strict", CHART, "--namespace", "kilt-system",
                "--set", "image.repository=r.example/kilt", "--set", "recipeConfig.agent_image=a/b:1")
    check(lint.returncode == 0 and "1 chart(s) linted, 0 chart(s) failed" in lint.stdout and
          "[ERROR]" not in lint.stdout and "[WARNING]" not in lint.stdout,
          f"helm lint --strict passes: {lint.stdout.strip()} {lint.stderr.strip()}")
    for source in ("cert-manager", "generate"):
        lint = helm("lint", "--strict", CHART, "--namespace", "kilt-system",
                    "--set", "image.repository=r.example/kilt", "--set", "recipeConfig.agent_image=a/b:1",
                    "--set", f"certificates.source={source}", "--set", "createNamespace=true")
        check(lint.returncode == 0 and "0 chart(s) failed" in lint.stdout,
              f"helm lint --strict with certificates.source={source}")

    # --- 1. Defaults with cert-manager: exactly what the command prints.
    p, helm_docs = template("kilt-system", "image.repository=registry.example.com/kilt/webhook",
                            "recipeConfig.agent_image=registry.example.com/kilt/falco:0.32.2",
                            "certificates.source=cert-manager", "createNamespace=true")
    if check(helm_docs is not None, f"helm template renders (cert-manager): {p.stderr.strip()}"):
        kilt_docs = manifests("--image", "registry.example.com/kilt/webhook:0.1.0", "--cert-manager",
                              "--set", "agent_image=registry.example.com/kilt/falco:0.32.2")
        same_objects(helm_docs, kilt_docs, "cert-manager, defaults")
        static = [d for d in yaml.safe_load_all(open(os.path.join(SRC, "deploy", "kubernetes",
                                                                   "kilt-webhook.yaml"))) if d]
        same_objects(helm_docs, static, "deploy/kubernetes/kilt-webhook.yaml")

    # --- 2. Every setting changed, certificates made by Helm and by kilt.
    with open(os.path.join(work, "a.conf"), "w") as f:
        f.write('parameters { mode { default: x }, level { default: 1 } }\n'
                'deploy { entrypoint: [ /kilt/bin/kilt-launch, "--" ] ${original.entrypoint}\n'
                '  environment: { MODE: ${config.mode}, LEVEL: ${config.level} } }\n')
    with open(os.path.join(work, "b.conf"), "w") as f:
        f.write('# <&> quoted "text"\nparameters { mode { default: y }, level { default: 2 } }\n'
                'deploy { environment: { B: ${config.mode}, L: ${config.level} } }\n')
    values = os.path.join(work, "values.yaml")
    with open(values, "w") as f:
        yaml.safe_dump({
            "image": {"repository": "r.example/kilt", "tag": "2"},
            "replicas": 3, "failurePolicy": "Fail", "createNamespace": True, "mode": "opt-in",
            "recipes": [{"name": "a.conf", "content": open(os.path.join(work, "a.conf")).read()},
                        {"name": "b.conf", "content": open(os.path.join(work, "b.conf")).read()}],
            "recipeConfig": {"level": "3", "mode": "z"},
        }, f)
    p, helm_docs = template("security", values=values)
    if check(helm_docs is not None, f"helm template renders (generated certificates): {p.stderr.strip()}"):
        kilt_docs = manifests("--image", "r.example/kilt:2", "-n", "security", "-r", "a.conf", "-r",
                              "b.conf", "-s", "level=3", "-s", "mode=z", "--replicas", "3",
                              "--failure-policy", "Fail", "--mode", "opt-in", cwd=work)
        certificates(helm_docs, "security", "helm")
        certificates(kilt_docs, "security", "kilt")
        same_objects(helm_docs, kilt_docs, "every setting, certificates made")

    # --- 3. An existing Secret.
    p, docs = template("kilt-system", "image.repository=r.example/kilt", "recipeConfig.agent_image=a/b:1",
                       "certificates.source=secret", "certificates.secretName=my-tls",
                       "certificates.caBundle=Q0E=")
    if check(docs is not None, f"helm template renders (existing Secret): {p.stderr.strip()}"):
        k = keyed(docs)
        dep = k[("apps/v1", "Deployment", "kilt-system", "kilt-webhook")]
        vols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        mwc = k[("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", None, "kilt-webhook")]
        check(vols["tls"]["secret"]["secretName"] == "my-tls" and
              mwc["webhooks"][0]["clientConfig"]["caBundle"] == "Q0E=" and
              not any(d["kind"] in ("Secret", "Certificate", "Issuer") for d in docs),
              "certificates.source=secret: that Secret mounted, the caBundle given, nothing made")

    # --- 4. Other values: resources, namespace selector.
    p, docs = template("kilt-system", "image.repository=r.example/kilt", "recipeConfig.agent_image=a/b:1",
                       "resources.requests.cpu=250m", "excludedNamespaces={kube-system,legacy}")
    if check(docs is not None, f"helm template renders (resources, excluded namespaces): {p.stderr.strip()}"):
        k = keyed(docs)
        c = k[("apps/v1", "Deployment", "kilt-system", "kilt-webhook")]["spec"]["template"]["spec"]["containers"][0]
        sel = k[("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", None,
                 "kilt-webhook")]["webhooks"][0]["namespaceSelector"]
        check(c["resources"]["requests"]["cpu"] == "250m", "resources.requests.cpu")
        check(sel["matchExpressions"][0]["values"] == ["kilt-system", "kube-system", "legacy"],
              f"excludedNamespaces, its own namespace always first: {sel}")

    # A tag that YAML reads as a number is still the tag.
    p, docs = template("kilt-system", "image.repository=r.example/kilt", "image.tag=2",
                       "recipeConfig.agent_image=a/b:1")
    if check(docs is not None, f"helm template renders (numeric tag): {p.stderr.strip()}"):
        dep = keyed(docs)[("apps/v1", "Deployment", "kilt-system", "kilt-webhook")]
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        check(image == "r.example/kilt:2", f"--set image.tag=2 gives r.example/kilt:2: {image}")

    # --- 5. Wrong values fail with a message.
    bad = [
        (("kilt-system", "recipeConfig.agent_image=a/b:1"), "image.repository is required"),
        (("kilt-system", "image.repository=r/k"), "needs recipeConfig.agent_image"),
        (("default", "image.repository=r/k", "recipeConfig.agent_image=a/b:1"), "needs one of its own"),
        (("kilt-system", "image.repository=r/k", "recipeConfig.agent_image=a/b:1", "failurePolicy=ignore"),
         "failurePolicy: expected Ignore or Fail"),
        (("kilt-system", "image.repository=r/k", "recipeConfig.agent_image=a/b:1",
          "certificates.source=vault"), "expected generate, cert-manager or secret"),
        (("kilt-system", "image.repository=r/k", "recipeConfig.agent_image=a/b:1", "mode=optin"),
         "mode: expected opt-in or opt-out"),
        (("kilt-system", "image.repository=r/k", "recipes[0].name=a b", "recipes[0].content=x"),
         "ConfigMap key"),
        (("kilt-system", "image.repository=r/k", "certificates.source=secret", "recipeConfig.agent_image=a/b:1",
          "certificates.secretName=s"), "certificates.caBundle"),
    ]
    for args, msg in bad:
        p, docs = template(*args)
        check(docs is None and msg in p.stderr, f"{' '.join(args[1:])} (namespace {args[0]}): fails "
              f"with '{msg}' ({p.stderr.strip()[-200:]!r})")

    # --- 6. The chart's Falco recipe is the shipped one.
    check(open(os.path.join(CHART, "files", "falco.kilt.conf")).read() ==
          open(os.path.join(SRC, "deploy", "recipes", "falco.kilt.conf")).read(),
          "deploy/helm/kilt/files/falco.kilt.conf is deploy/recipes/falco.kilt.conf")
finally:
    shutil.rmtree(work, ignore_errors=True)

sys.exit(result("helm chart checks passed"))
