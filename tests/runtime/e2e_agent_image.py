# SPDX-License-Identifier: Apache-2.0
"""End to end: deploy/images/build-agent-image.sh builds an agent image whose agent is strace (a
real ptrace tracer standing in for pdig, with its libraries and loader: self-contained), pushes
it to a real registry (Debian's docker-registry on loopback), the image is pulled back and
unpacked with umoci, and a plain busybox app container gets its VOLUMEs as read-only bind mounts
(what ECS volumesFrom does). kilt-launch then runs the app under strace: strace must see the
app's syscalls and the container must exit with the app's status, also when TERM arrives.
The agent image's own entrypoint (kilt-wait) is run as a sidecar container too.
"""
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request

from harness import (SRC, busybox_app_bundle, check, check_eq, finish, helper, kill_container, log,
                     need, run_config, skip, tmpdir)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sh(*args, **kw):
    return subprocess.run(list(args), check=True, **kw)


def start_registry(d):
    port = free_port()
    cfg = os.path.join(d, "registry.yml")
    with open(cfg, "w") as f:
        f.write("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                f"    rootdirectory: {d}/registry-data\nhttp:\n  addr: 127.0.0.1:{port}\n")
    p = subprocess.Popen(["docker-registry", "serve", cfg], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(d, "registry.log"), "w"))
    end = time.monotonic() + 20
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1) as r:
                if r.status == 200:
                    return p, port
        except OSError:
            time.sleep(0.1)
    p.kill()
    raise SystemExit("docker-registry did not come up")


def strace_agent_dir(d):
    """/usr/bin/strace with every library ldd lists and the dynamic loader, flattened."""
    agent = os.path.join(d, "agent")
    os.makedirs(os.path.join(agent, "bin"))
    os.makedirs(os.path.join(agent, "lib"))
    shutil.copy2("/usr/bin/strace", os.path.join(agent, "bin", "strace"))
    loader = None
    for line in subprocess.run(["ldd", "/usr/bin/strace"], capture_output=True, text=True, check=True).stdout.splitlines():
        for word in line.split():
            if word.startswith("/"):
                shutil.copy2(os.path.realpath(word), os.path.join(agent, "lib", os.path.basename(word)))
                if "ld-linux" in word:
                    loader = os.path.basename(word)
    return agent, loader


def image_config(layout, tag):
    out = subprocess.run(["skopeo", "inspect", "--config", f"oci:{layout}:{tag}"], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out)


def bundle_config(bundle):
    with open(os.path.join(bundle, "config.json")) as f:
        c = json.load(f)
    c["process"]["terminal"] = False
    return c


if __name__ == "__main__":
    if os.geteuid() != 0:
        skip("runc containers need root here")
    need("runc", "umoci", "skopeo", "strace", "docker-registry", "ldd")
    d = tmpdir("e2e")
    reg = None
    try:
        # 1. The agent image, pushed to a registry by the image script.
        agent, loader = strace_agent_dir(d)
        check(loader is not None, "strace's dynamic loader found")
        reg, port = start_registry(d)
        ref = f"127.0.0.1:{port}/kilt/agent-strace:e2e"
        sh(os.path.join(SRC, "deploy", "images", "build-agent-image.sh"), "--agent-dir", agent,
           "--agent-path", "/vendor/strace", "--helpers", os.path.dirname(helper("static", "kilt-launch")),
           "--dest", f"docker://{ref}", "--dest-tls-verify", "false", "--label", "io.kilt.test=e2e",
           stdout=subprocess.DEVNULL)

        # 2. Pull it back, check its config, unpack its files.
        pulled = os.path.join(d, "pulled")
        sh("skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{pulled}:agent",
           stdout=subprocess.DEVNULL)
        cfg = image_config(pulled, "agent")
        check_eq(cfg["config"].get("Entrypoint"), ["/kilt/bin/kilt-wait"], "agent image entrypoint")
        volumes = sorted(cfg["config"].get("Volumes", {}))
        check_eq(volumes, ["/kilt", "/vendor/strace"], "agent image VOLUMEs")
        check_eq(cfg.get("architecture"), "amd64", "agent image architecture")
        agent_bundle = os.path.join(d, "agent-bundle")
        sh("umoci", "unpack", "--image", f"{pulled}:agent", agent_bundle, stdout=subprocess.DEVNULL)
        agent_root = os.path.join(agent_bundle, "rootfs")

        # 3. A plain busybox app image, made and unpacked with umoci.
        app_bundle = busybox_app_bundle(d, entrypoint="/bin/sh")
        check(not os.path.exists(os.path.join(app_bundle, "rootfs", "lib")), "the app image has no libc")

        # 4. The app container: agent VOLUMEs bind-mounted read-only (volumesFrom), SYS_PTRACE.
        work = os.path.join(d, "work")
        os.makedirs(work)
        c = bundle_config(app_bundle)
        for v in volumes:
            c["mounts"].append({"destination": v, "type": "bind", "source": agent_root + v,
                                "options": ["rbind", "ro"]})
        c["mounts"].append({"destination": "/work", "type": "bind", "source": work, "options": ["rbind", "rw"]})
        for kind in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"].setdefault(kind, []).append("CAP_SYS_PTRACE")
        tracer = [f"/vendor/strace/lib/{loader}", "--library-path", "/vendor/strace/lib",
                  "/vendor/strace/bin/strace", "-f", "-s", "256", "-o", "/work/trace"]
        launch = ["/kilt/bin/kilt-launch", "-t", str(len(tracer)), *tracer, "--"]

        c["process"]["args"] = launch + ["/bin/sh", "-c", "echo hello > /work/hello; cat /work/hello; exit 7", "--"]
        rc, out, err = run_config(app_bundle, c, "e2e")
        check_eq(rc, 7, "container exit status is the app's (under strace)")
        check_eq(out, "hello\n", "app output")
        check_eq(err, "", "nothing on stderr")
        trace = open(os.path.join(work, "trace")).read() if os.path.exists(os.path.join(work, "trace")) else ""
        check('execve("/bin/sh", ["/bin/sh", "-c", "echo hello > /work/hello; cat /work/hello; exit 7", "--"]' in trace,
              "strace saw the app's execve, argv (with its --) intact")
        check('"/work/hello", O_WRONLY|O_CREAT|O_TRUNC' in trace, "strace saw the app open /work/hello")
        check("+++ exited with 7 +++" in trace, "strace saw the app exit 7")

        # 5. TERM from the runtime reaches the traced app.
        os.unlink(os.path.join(work, "trace"))
        ready = os.path.join(work, "ready")
        c["process"]["args"] = launch + ["/bin/sh", "-c", "trap 'exit 42' TERM; touch /work/ready; while :; do sleep 0.05; done"]
        rc, out, err = run_config(app_bundle, c, "e2e", signal_after=(ready, "TERM"))
        check_eq(rc, 42, "TERM forwarded to the traced app; its status returned")
        trace = open(os.path.join(work, "trace")).read() if os.path.exists(os.path.join(work, "trace")) else ""
        check("--- SIGTERM" in trace, "strace saw the SIGTERM delivered to the app")

        # 6. The agent image as a sidecar: kilt-wait from the image config, exits 0 on TERM.
        ac = bundle_config(agent_bundle)
        # umoci turns each image VOLUME into an empty tmpfs; Docker and ECS fill a new volume
        # from the image instead, so the sidecar sees the image's files there: drop the tmpfs.
        ac["mounts"] = [m for m in ac["mounts"] if not (m["destination"] in volumes and m["type"] == "tmpfs")]
        check_eq(ac["process"]["args"], ["/kilt/bin/kilt-wait"], "sidecar args from the image")
        marker = os.path.join(agent_root, "kilt", "bin", "kilt-wait")
        check(os.path.exists(marker), "kilt-wait in the agent image")
        with open(os.path.join(agent_bundle, "config.json"), "w") as f:
            json.dump(ac, f)
        cid = f"kilt-rt-e2e-{os.getpid()}-side"
        p = subprocess.Popen(["runc", "run", "--bundle", agent_bundle, cid], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        if not check(p.poll() is None, "sidecar keeps running"):
            log(p.stderr.read())
        subprocess.run(["runc", "kill", cid, "TERM"], capture_output=True)
        try:
            check_eq(p.wait(timeout=20), 0, "sidecar exits 0 on TERM")
        except subprocess.TimeoutExpired:
            kill_container(cid)
            check(False, "sidecar did not stop on TERM")
        log("agent image: " + ref)
    finally:
        if reg:
            reg.terminate()
            reg.wait()
        if os.environ.get("RT_KEEP"):
            log(f"kept {d}")
        else:
            shutil.rmtree(d, ignore_errors=True)
    finish()
