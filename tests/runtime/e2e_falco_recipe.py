# SPDX-License-Identifier: Apache-2.0
"""End to end: the agent image and the shipped Falco recipe fit together.

A real Falco 0.32.2 and pdig cannot be fetched or built here, so two stand-ins (C programs in
standins/) take their place: a dynamically linked `falco` (so the image script must bundle its
loader and libraries) and a static `pdig`. They record their argv and environment; the pdig
stand-in runs the program as pdig does in spawn mode (its child; always exits 0). The test:

1. builds the image with deploy/images/build-agent-image.sh --falco <release tarball> --pdig ...
   (umoci, into an OCI layout), and checks the script refuses inputs it cannot use;
2. renders deploy/recipes/falco.kilt.conf with `kilt recipe render` for a busybox app container;
3. runs the result in runc the way ECS would: the sidecar's volumes bind-mounted read-only, the
   app container's entrypoint and command exactly as rendered, SYS_PTRACE added;
4. checks that the stand-ins ran at the recipe's paths with the expected flags and files, that
   pdig started only once Falco had created its ring (kilt-launch --wait-for), and that the app's
   output, Falco's JSON alert, the app's exit status and a TERM from the runtime come through.
"""
import json
import os
import subprocess
import tarfile
import time

from harness import (SRC, busybox_app_bundle, check, check_eq, finish, helper, log, need, run_config,
                     skip, tmpdir)

KILT = os.environ.get("KILT")
SCRIPT = os.path.join(SRC, "deploy", "images", "build-agent-image.sh")
RECIPE = os.path.join(SRC, "deploy", "recipes", "falco.kilt.conf")
STANDINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "standins")


def sh(*args, **kw):
    return subprocess.run(list(args), check=True, **kw)


def build_script(*args):
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True)


def falco_release(d):
    """A directory shaped like falco-0.32.2-x86_64.tar.gz, with the falco stand-in in it."""
    root = os.path.join(d, "release", "falco-0.32.2-x86_64")
    for sub in ("usr/bin", "etc/falco/rules.available"):
        os.makedirs(os.path.join(root, sub))
    # falco needs libkilt-outer.so, which needs libkilt-inner.so (given with --libs) and has a
    # RUNPATH of the machine that built it: the bundled falco must find the second through the
    # first in an image that has neither
    libs = os.path.join(d, "libs")
    os.makedirs(libs)
    chain = os.path.join(STANDINS, "chain.c")
    sh("gcc", "-O2", "-shared", "-fPIC", "-o", os.path.join(libs, "libkilt-inner.so"), chain)
    sh("gcc", "-O2", "-shared", "-fPIC", "-DKILT_OUTER", "-o", os.path.join(libs, "libkilt-outer.so"),
       chain, f"-L{libs}", "-Wl,--no-as-needed", "-lkilt-inner",
       "-Wl,--enable-new-dtags,-rpath,/opt/falco-build/lib")
    sh("gcc", "-O2", "-o", os.path.join(root, "usr/bin/falco"), os.path.join(STANDINS, "falco.c"),
       f"-L{libs}", f"-Wl,-rpath-link,{libs}", "-Wl,--no-as-needed", "-lkilt-outer")
    with open(os.path.join(root, "etc/falco/falco_rules.yaml"), "w") as f:
        f.write("- rule: stand-in\n  desc: the release's stable rules\n")
    with open(os.path.join(root, "etc/falco/k8s_audit_rules.yaml"), "w") as f:
        f.write("# needs the k8saudit plugin: must not be packed\n")
    with open(os.path.join(root, "etc/falco/falco.yaml"), "w") as f:
        f.write("rules_file: [/etc/falco/k8s_audit_rules.yaml]\nwebserver: {enabled: true}\n")
    tarball = os.path.join(d, "falco-0.32.2-x86_64.tar.gz")
    with tarfile.open(tarball, "w:gz") as t:
        t.add(root, arcname="falco-0.32.2-x86_64")
    return root, tarball, libs


def lines(path):
    return open(path).read().splitlines() if os.path.exists(path) else []


def render(entrypoint, command):
    out = subprocess.run([KILT, "recipe", "render", RECIPE, "--image", "registry.example/app:1",
                          "--name", "app", "--entrypoint", json.dumps(entrypoint),
                          "--command", json.dumps(command),
                          "--set", "agent_image=registry.example/kilt/falco:0.32.2"],
                         capture_output=True, text=True)
    check_eq(out.returncode, 0, f"kilt recipe render: {out.stderr}")
    return json.loads(out.stdout)


if __name__ == "__main__":
    if os.geteuid() != 0:
        skip("runc containers need root here")
    if not KILT or not os.path.exists(KILT):
        skip("KILT is not set to a built kilt")
    need("runc", "umoci", "skopeo", "gcc", "musl-gcc", "patchelf", "ldd", "readelf")
    d = tmpdir("e2e-falco")
    try:
        # 1. The stand-ins and the image.
        release, tarball, libs = falco_release(d)
        pdig = os.path.join(d, "pdig")
        sh("musl-gcc", "-static", "-O2", "-o", pdig, os.path.join(STANDINS, "pdig.c"))
        helpers = os.path.dirname(helper("static", "kilt-launch"))
        layout = os.path.join(d, "agent-oci")
        r = build_script("--falco", tarball, "--pdig", pdig, "--libs", libs, "--helpers", helpers,
                         "--dest", f"oci:{layout}:falco")
        check_eq(r.returncode, 0, f"image script with the release tarball: {r.stderr}")
        check("falco: dynamic; loader and" in r.stderr, f"the script bundled falco's libraries: {r.stderr!r}")
        check("pdig: static" in r.stderr, "the script saw a static pdig")
        # Inputs it cannot use are refused, naming why.
        arm = helper("static-arm64", "kilt-wait")
        for args, want in (
                (["--falco", release, "--pdig", arm], "is not an x86-64 program"),
                (["--falco", os.path.join(release, "etc"), "--pdig", pdig], "no usr/bin/falco or bin/falco"),
                (["--falco", release, "--pdig", os.path.join(release, "etc/falco/falco_rules.yaml")], "is not an ELF program"),
                (["--falco", release, "--pdig", pdig, "--arch", "arm64"], "pdig traces x86-64 only")):
            bad = build_script(*args, "--libs", libs, "--helpers", helpers, "--dest", f"oci:{d}/bad-oci:x")
            check(bad.returncode != 0 and want in bad.stderr, f"refused {args[:2]}: {bad.stderr!r}")
        # The directory form gives the same files.
        r = build_script("--falco", release, "--pdig", pdig, "--libs", libs, "--helpers", helpers,
                         "--dest", f"oci:{d}/dir-oci:falco")
        check_eq(r.returncode, 0, f"image script with the release directory: {r.stderr}")

        cfg = json.loads(subprocess.run(["skopeo", "inspect", "--config", f"oci:{layout}:falco"],
                                        capture_output=True, text=True, check=True).stdout)
        volumes = sorted(cfg["config"].get("Volumes", {}))
        check_eq(volumes, ["/kilt", "/vendor/falco"], "agent image VOLUMEs")
        check_eq(cfg["config"].get("Entrypoint"), ["/kilt/bin/kilt-wait"], "agent image entrypoint")
        check_eq(cfg.get("architecture"), "amd64", "agent image architecture")
        agent_bundle = os.path.join(d, "agent-bundle")
        sh("umoci", "unpack", "--image", f"{layout}:falco", agent_bundle, stdout=subprocess.DEVNULL)
        agent_root = os.path.join(agent_bundle, "rootfs")
        etc = os.path.join(agent_root, "vendor/falco/etc/falco")
        check_eq(sorted(os.listdir(etc)), ["falco_rules.local.yaml", "falco_rules.yaml", "rules.d"],
                 "rules packed (no k8s_audit_rules.yaml, no upstream falco.yaml)")
        packed_yaml = open(os.path.join(agent_root, "vendor/falco/falco.yaml")).read()
        for want in ("json_output: true", "stdout_output:\n  enabled: true", "webserver:\n  enabled: false",
                     "load_plugins: []", "grpc:\n  enabled: false"):
            check(want in packed_yaml, f"falco.yaml has {want!r}")
        check("k8s_audit" not in packed_yaml, "falco.yaml names no k8s audit rules")

        # 2. The shipped recipe for the app container.
        app = ["/bin/sh", "-c", "echo app-says-hello; env > /work/app.env; exit 7", "--"]
        plan = render(app[:1], app[1:])
        check_eq(plan["mounts"][0]["image"], "registry.example/kilt/falco:0.32.2", "sidecar image is config.agent_image")
        check_eq(plan["mounts"][0]["volumes"], volumes, "the recipe mounts exactly the image's VOLUMEs")
        check_eq(plan["mounts"][0]["entrypoint"], cfg["config"]["Entrypoint"], "sidecar entrypoint")
        check_eq(plan["capabilities"], ["SYS_PTRACE"], "capabilities")
        args = plan["entrypoint"] + plan["command"]
        for word in args:
            if word.startswith(("/vendor/", "/kilt/")) and not word.startswith("/vendor/falco/etc"):
                check(os.path.exists(agent_root + word), f"{word} (run by the recipe) is in the image")

        # 3. The app container as ECS runs it.
        bundle = busybox_app_bundle(d)
        check(not os.path.exists(os.path.join(bundle, "rootfs", "lib")), "the app image has no libc")
        work = os.path.join(d, "work")
        os.makedirs(work)
        with open(os.path.join(bundle, "config.json")) as f:
            c = json.load(f)
        c["process"]["terminal"] = False
        for v in plan["mounts"][0]["volumes"]:
            c["mounts"].append({"destination": v, "type": "bind", "source": agent_root + v,
                                "options": ["rbind", "ro"]})
        c["mounts"].append({"destination": "/work", "type": "bind", "source": work, "options": ["rbind", "rw"]})
        for kind in ("bounding", "effective", "permitted"):
            c["process"]["capabilities"].setdefault(kind, []).append("CAP_SYS_" + plan["capabilities"][0][4:])
        c["process"]["env"].append("APP_SETTING=from-the-task")
        c["process"]["args"] = args
        t0 = time.monotonic()
        rc, out, err = run_config(bundle, c, "falco")
        check_eq(rc, 7, "container exit status is the app's (pdig stand-in exits 0)")
        check("app-says-hello\n" in out, f"app output comes through: {out!r}")
        check('{"output":"kilt stand-in alert","priority":"Notice","rule":"stand-in"}\n' in out,
              f"Falco's JSON alert on the container's stdout: {out!r}")
        check_eq(err, "", "nothing on stderr")
        check(time.monotonic() - t0 < 20, "no timeout on the way")

        # 4. What the stand-ins saw.
        check_eq(lines(os.path.join(work, "falco.argv")),
                 ["/vendor/falco/bin/falco", "-u", "-c", "/vendor/falco/falco.yaml"], "falco argv")
        check_eq(open(os.path.join(work, "falco.yaml.seen")).read() if os.path.exists(os.path.join(work, "falco.yaml.seen")) else "",
                 packed_yaml, "falco read the packed falco.yaml")
        check_eq(lines(os.path.join(work, "falco.rules")),
                 ["/vendor/falco/etc/falco/falco_rules.yaml ok", "/vendor/falco/etc/falco/falco_rules.local.yaml ok",
                  "/vendor/falco/etc/falco/rules.d ok"], "every rules_file entry exists in the container")
        check("APP_SETTING=from-the-task" in lines(os.path.join(work, "falco.env")), "falco got the container's environment")
        pargv = lines(os.path.join(work, "pdig.argv"))
        check(len(pargv) > 4 and pargv[0] == "/vendor/falco/bin/pdig" and pargv[1] == "/kilt/bin/kilt-launch"
              and pargv[-len(app):] == app, f"pdig runs the app (through kilt-launch's shim): {pargv}")
        check_eq(lines(os.path.join(work, "pdig.state")), ["ring yes", "sys_ptrace yes"],
                 "pdig started after Falco created its ring, with SYS_PTRACE")
        check("APP_SETTING=from-the-task" in lines(os.path.join(work, "app.env")), "the app kept its environment")

        # TERM from the runtime reaches the traced app, not pdig; its status comes back.
        for name in ("pdig.argv", "pdig.state"):
            os.unlink(os.path.join(work, name))
        app = ["/bin/sh", "-c", "trap 'exit 42' TERM; touch /work/ready; while :; do sleep 0.05; done"]
        plan = render(app[:1], app[1:])
        c["process"]["args"] = plan["entrypoint"] + plan["command"]
        rc, out, err = run_config(bundle, c, "falco", signal_after=(os.path.join(work, "ready"), "TERM"))
        check_eq(rc, 42, "TERM forwarded to the app under pdig; its status returned")
        check_eq(lines(os.path.join(work, "pdig.state"))[:1], ["ring yes"], "pdig waited for the ring again")
    finally:
        if os.environ.get("RT_KEEP"):
            log(f"kept {d}")
    finish()
