#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The images of deploy/images/, built with umoci and skopeo (no Docker engine) and run with runc:
#  - build-webhook-image.sh: the image's config (entrypoint kilt, user 65532), and `kilt webhook
#    serve` run from it as user 65532 on a read-only root filesystem, with the certificate and
#    recipe of `kilt webhook manifests` mounted where the Deployment mounts them, answering
#    /readyz over TLS verified with the manifests' CA; libcurl, opened at run time, loads in it.
#  - build-strace-agent-image.sh: the agent image's config (kilt-wait, VOLUMEs /kilt and
#    /vendor/strace), and its files mounted read-only into a busybox container with no libc:
#    kilt-launch runs the app under the image's strace, which sees the app's execve; the app's
#    output and exit status come through.
import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "infra"))
from checks import check, failures, result  # noqa: E402

KILT = os.environ["KILT"]
SRC = os.environ["KILT_SOURCE_DIR"]
HELPERS = os.environ.get("KILT_STATIC_HELPERS", "")


def skip(why):
    print(f"SKIPPED: {why}", flush=True)
    sys.exit(77)


def sh(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def image_config(layout, tag):
    return json.loads(sh("skopeo", "inspect", "--config", f"oci:{layout}:{tag}").stdout)


def runc(bundle, config, name, timeout=30):
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    cid = f"kilt-deploy-{name}-{os.getpid()}"
    p = subprocess.Popen(["runc", "run", "--bundle", bundle, cid], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    return cid, p


def stop(cid, p, sig="TERM", timeout=30):
    subprocess.run(["runc", "kill", cid, sig], capture_output=True)
    try:
        return p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        subprocess.run(["runc", "kill", cid, "KILL"], capture_output=True)
        return p.communicate()
    finally:
        subprocess.run(["runc", "delete", "-f", cid], capture_output=True)


def webhook_image(d):
    layout = os.path.join(d, "webhook-oci")
    sh(os.path.join(SRC, "deploy", "images", "build-webhook-image.sh"), "--kilt", KILT,
       "--dest", f"oci:{layout}:webhook")
    cfg = image_config(layout, "webhook")
    check(cfg["config"].get("Entrypoint") == ["/usr/bin/kilt"], f"entrypoint: {cfg['config'].get('Entrypoint')}")
    check(cfg["config"].get("User") == "65532:65532", f"user: {cfg['config'].get('User')}")
    check(not cfg["config"].get("Cmd"), "no CMD: the Deployment gives the arguments")
    bundle = os.path.join(d, "webhook-bundle")
    sh("umoci", "unpack", "--image", f"{layout}:webhook", bundle)
    root = os.path.join(bundle, "rootfs")
    with open(KILT, "rb") as a, open(os.path.join(root, "usr", "bin", "kilt"), "rb") as b:
        check(a.read() == b.read(), "the image's /usr/bin/kilt is the built kilt")
    libs = set()
    for dirpath, _, names in os.walk(root):
        libs.update(n for n in names if ".so" in n)
    check({"libmicrohttpd.so.12", "libgnutls.so.30", "libcurl.so.4"} <= libs,
          "the libraries kilt opens at run time are in the image")

    # The certificate and recipe of `kilt webhook manifests`, mounted as the Deployment does.
    recipe = os.path.join(d, "web.conf")
    with open(recipe, "w") as f:
        f.write('deploy { entrypoint: [ /kilt/bin/kilt-launch, "--" ] ${original.entrypoint} }\n')
    out = subprocess.run([KILT, "webhook", "manifests", "--image", "kilt.test/webhook:1", "-r", recipe],
                         capture_output=True, text=True, check=True).stdout
    docs = {x["kind"]: x for x in yaml.safe_load_all(out)}
    tls, recipes = os.path.join(d, "tls"), os.path.join(d, "recipes")
    os.makedirs(tls)
    os.makedirs(recipes)
    for k, v in docs["Secret"]["data"].items():
        with open(os.path.join(tls, k), "wb") as f:
            f.write(base64.b64decode(v))
    for k, v in docs["ConfigMap"]["data"].items():
        with open(os.path.join(recipes, k), "w") as f:
            f.write(v)
    for p in (tls, recipes):
        os.chmod(p, 0o755)
        for n in os.listdir(p):
            os.chmod(os.path.join(p, n), 0o644)
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    args = list(container["args"])
    port = free_port()
    args[args.index("--listen") + 1] = f"127.0.0.1:{port}"
    with open(os.path.join(bundle, "config.json")) as f:
        config = json.load(f)
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/usr/bin/kilt", *args]
    check(config["process"]["user"].get("uid") == 65532, f"runs as uid 65532: {config['process']['user']}")
    config["root"]["readonly"] = True  # readOnlyRootFilesystem
    config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"] if n["type"] != "network"]
    for m in container["volumeMounts"]:
        src = {"tls": tls, "recipes": recipes}.get(m["name"])
        if src:
            config["mounts"].append({"destination": m["mountPath"], "type": "bind", "source": src,
                                     "options": ["rbind", "ro"]})
        else:
            config["mounts"].append({"destination": m["mountPath"], "type": "tmpfs", "source": "tmpfs",
                                     "options": ["nosuid", "nodev", "mode=1777"]})
    cid, p = runc(bundle, config, "webhook")
    ctx = ssl.create_default_context(cafile=os.path.join(tls, "ca.crt"))
    status, deadline = None, time.monotonic() + 20
    while time.monotonic() < deadline and p.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="kilt-webhook.kilt-system.svc") as s:
                    s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    status = s.recv(64).split(b" ")[1]
            break
        except (OSError, IndexError):
            time.sleep(0.1)
    out, err = stop(cid, p)
    check(status == b"200", f"the webhook in its image answers /readyz 200 over TLS (as uid 65532, "
          f"read-only root): {status} {err[-800:]!r}")
    check(p.returncode == 0 and '"msg":"stopped"' in err, f"and stops cleanly on SIGTERM ({p.returncode})")

    # libcurl loads in the image: a lookup fails on the connection, not on loading the library.
    config["process"]["args"] = ["/usr/bin/kilt", "image", "inspect", "127.0.0.1:1/x:1"]
    cid, p = runc(bundle, config, "curl")
    try:
        out, err = p.communicate(timeout=30)
    finally:
        subprocess.run(["runc", "delete", "-f", cid], capture_output=True)
    check(p.returncode == 1 and "127.0.0.1" in err and "libcurl" not in err,
          f"kilt image inspect in the image reaches libcurl: {err.strip()!r}")


def agent_image(d):
    layout = os.path.join(d, "agent-oci")
    sh(os.path.join(SRC, "deploy", "images", "build-strace-agent-image.sh"), "--helpers", HELPERS,
       "--dest", f"oci:{layout}:agent")
    cfg = image_config(layout, "agent")
    check(cfg["config"].get("Entrypoint") == ["/kilt/bin/kilt-wait"], "agent entrypoint kilt-wait")
    check(sorted(cfg["config"].get("Volumes", {})) == ["/kilt", "/vendor/strace"], "agent VOLUMEs")
    agent = os.path.join(d, "agent-bundle")
    sh("umoci", "unpack", "--image", f"{layout}:agent", agent)
    agent_root = os.path.join(agent, "rootfs")
    # A busybox app container: no libc, no loader of its own.
    app = os.path.join(d, "app")
    os.makedirs(os.path.join(app, "rootfs", "bin"))
    for sub in ("tmp", "proc", "dev", "sys", "kilt", "vendor/strace"):
        os.makedirs(os.path.join(app, "rootfs", sub), exist_ok=True)
    shutil.copy2("/bin/busybox", os.path.join(app, "rootfs", "bin", "busybox"))
    os.symlink("busybox", os.path.join(app, "rootfs", "bin", "sh"))
    sh("runc", "spec", cwd=app)
    with open(os.path.join(app, "config.json")) as f:
        config = json.load(f)
    config["process"]["terminal"] = False
    for v in ("/kilt", "/vendor/strace"):
        config["mounts"].append({"destination": v, "type": "bind", "source": agent_root + v,
                                 "options": ["rbind", "ro"]})
    work = os.path.join(d, "work")
    os.makedirs(work)
    os.makedirs(os.path.join(app, "rootfs", "work"))
    config["mounts"].append({"destination": "/work", "type": "bind", "source": work,
                             "options": ["rbind", "rw"]})
    for kind in ("bounding", "effective", "permitted"):
        config["process"]["capabilities"][kind].append("CAP_SYS_PTRACE")
    tracer = ["/vendor/strace/bin/strace", "-f", "-o", "/work/trace"]
    config["process"]["args"] = ["/kilt/bin/kilt-launch", "-t", str(len(tracer)), *tracer, "--",
                                 "/bin/sh", "-c", "echo traced; exit 7"]
    cid, p = runc(app, config, "agent")
    try:
        out, err = p.communicate(timeout=60)
    finally:
        subprocess.run(["runc", "delete", "-f", cid], capture_output=True)
    check(p.returncode == 7, f"the app's exit status comes through strace and kilt-launch: {p.returncode}")
    check(out == "traced\n", f"the app's output: {out!r}")
    trace = open(os.path.join(work, "trace")).read() if os.path.exists(os.path.join(work, "trace")) else ""
    check('execve("/bin/sh", ["/bin/sh", "-c", "echo traced; exit 7"]' in trace and
          "+++ exited with 7 +++" in trace, f"the image's strace traced the app: {trace[-600:]!r}")


if __name__ == "__main__":
    if os.geteuid() != 0:
        skip("runc containers need root here")
    for tool in ("runc", "umoci", "skopeo", "strace", "patchelf", "ldd"):
        if not shutil.which(tool):
            skip(f"{tool} is not installed (run tests/infra/install-deps.sh)")
    if not os.path.exists(os.path.join(HELPERS, "kilt-launch")):
        skip(f"no static helpers in {HELPERS!r} (the runtime/build-static fixture builds them)")
    d = tempfile.mkdtemp(prefix="kilt-images-")
    try:
        webhook_image(d)
        agent_image(d)
    finally:
        if failures:
            print(f"kept {d}")
        else:
            shutil.rmtree(d, ignore_errors=True)
    sys.exit(result("image checks passed"))
