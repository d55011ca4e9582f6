# SPDX-License-Identifier: Apache-2.0
"""`kilt-wait --copy SRC DEST`, the copy that fills a Kubernetes emptyDir from the agent image.

host       the helper under test (KILT_WAIT) on the host: files, modes, links, times, a second
           run over the first, a DEST inside SRC, every refusal with its exit status and message,
           the depth bound.
container  the static helper as the only program of an image built with umoci (no shell, no cp,
           no libc): a real runc container copies /kilt into a bind-mounted directory standing
           for the emptyDir, a second container runs a binary from that copy, a restart copies
           again over the first copy, and a failing copy exits 1 with its reason; an image
           built by root with owner-only modes is copied by the user `kilt inject` gives the
           copier (no capabilities) and its copy used by an app running as another user.

Usage: copy_cases.py host|container
"""
import json
import os
import shutil
import stat
import subprocess
import sys

from harness import check, check_eq, finish, helper, need, run_config, skip, tmpdir


def make_tree(root):
    """An agent-like tree: nested directories with their own modes, an executable, a read-only
    file, a set-user-ID file, relative and absolute symbolic links (one dangling), an empty
    directory, a name with spaces."""
    os.makedirs(os.path.join(root, "bin"))
    os.makedirs(os.path.join(root, "etc", "rules.d"))
    os.makedirs(os.path.join(root, "empty"))
    with open(os.path.join(root, "etc", "falco.yaml"), "w") as f:
        f.write("json_output: true\n")
    with open(os.path.join(root, "etc", "rules.d", "a rule.yaml"), "w") as f:
        f.write("- rule: x\n" * 1000)
    os.chmod(os.path.join(root, "etc", "falco.yaml"), 0o444)
    with open(os.path.join(root, "etc", "suid"), "wb") as f:
        f.write(b"\0\1\2" * 30000)
    os.chmod(os.path.join(root, "etc", "suid"), 0o4755)
    os.symlink("falco.yaml", os.path.join(root, "etc", "link"))
    os.symlink("/kilt/etc/falco.yaml", os.path.join(root, "etc", "abs-link"))
    os.symlink("../missing", os.path.join(root, "etc", "dangling"))
    os.chmod(os.path.join(root, "etc", "rules.d"), 0o750)
    os.utime(os.path.join(root, "etc", "falco.yaml"), (1000000000, 1000000000))


def snapshot(root, skip_names=()):
    """{relative path: (kind, mode bits, content or link target, mtime for files)}."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip_names]
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", None, os.readlink(p), None)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), None, None)
            else:
                with open(p, "rb") as f:
                    out[rel] = ("file", stat.S_IMODE(st.st_mode), f.read(), int(st.st_mtime))
    return out


def shared(kind, mode):
    """The mode of a copy: readable by everyone, executable or searchable by everyone when it is
    by anyone (the app containers run as any user), set-user-ID and set-group-ID dropped."""
    if mode is None:
        return None
    m = (mode & 0o1777) | 0o444
    if kind == "dir" or m & 0o111:
        m |= 0o111
    return m


def expected(snap):
    """What the copy must give: modes widened (shared), everything else equal."""
    return {k: (kind, shared(kind, mode), data, mt) for k, (kind, mode, data, mt) in snap.items()}


def run(args, **kw):
    p = subprocess.run(args, capture_output=True, text=True, timeout=60, **kw)
    return p.returncode, p.stdout, p.stderr


def case_host():
    kw = os.environ.get("KILT_WAIT")
    if not kw:
        skip("KILT_WAIT is not set")
    d = tmpdir("copy-host")
    src = os.path.join(d, "src")
    make_tree(src)
    want = expected(snapshot(src))
    dest = os.path.join(d, "dest")

    rc, out, err = run([kw, "--copy", src, dest])
    check_eq((rc, out, err), (0, "", ""), "copy succeeds silently")
    check_eq(snapshot(dest), want, "the copy equals the source (modes, links, contents, times)")

    # A second run (an init container restarted) replaces what is there, links included.
    os.chmod(os.path.join(dest, "etc", "suid"), 0o600)
    with open(os.path.join(dest, "etc", "suid"), "w") as f:
        f.write("stale")
    os.unlink(os.path.join(dest, "etc", "link"))
    os.symlink("elsewhere", os.path.join(dest, "etc", "link"))
    with open(os.path.join(dest, "extra"), "w") as f:
        f.write("kept")
    rc, out, err = run([kw, "--copy", src + "/", dest])
    check_eq((rc, err), (0, ""), "a second copy over the first succeeds")
    again = snapshot(dest)
    extra = again.pop("extra", None)
    check(extra is not None and extra[2] == b"kept", "a file only in DEST is left alone")
    check_eq(again, want, "the second copy equals the source again")

    # DEST inside SRC is not copied into itself.
    inner = os.path.join(src, "etc", "inner")
    rc, out, err = run([kw, "--copy", src, inner])
    check_eq(rc, 0, "a DEST inside SRC copies")
    check(not os.path.exists(os.path.join(inner, "etc", "inner")), "DEST is not copied into itself")
    check_eq(snapshot(inner), want, "the copy inside SRC equals the source")
    shutil.rmtree(inner)

    # Refusals: exit status and one line naming the path and the reason.
    rc, out, err = run([kw, "--copy", os.path.join(d, "nope"), os.path.join(d, "d1")])
    check_eq(rc, 1, "a missing SRC fails")
    check(f"{d}/nope: cannot open the source directory: No such file or directory" in err, f"missing SRC message: {err!r}")
    fifo_src = os.path.join(d, "fifo-src")
    os.makedirs(fifo_src)
    os.mkfifo(os.path.join(fifo_src, "pipe"))
    rc, out, err = run([kw, "--copy", fifo_src, os.path.join(d, "d2")])
    check_eq(rc, 1, "a FIFO is refused")
    check(f"{fifo_src}/pipe: not a file, directory or symbolic link" in err, f"FIFO message: {err!r}")
    blocked = os.path.join(d, "blocked")
    os.makedirs(os.path.join(blocked, "etc"))  # a directory where SRC has a file
    os.makedirs(os.path.join(blocked, "etc", "falco.yaml"))
    rc, out, err = run([kw, "--copy", src, blocked])
    check_eq(rc, 1, "a directory in the way fails")
    check("etc/falco.yaml: a directory is in the way in the destination" in err, f"in-the-way message: {err!r}")
    with open(os.path.join(d, "afile"), "w") as f:
        f.write("x")
    rc, out, err = run([kw, "--copy", src, os.path.join(d, "afile")])
    check_eq(rc, 1, "DEST that is a file fails")
    check("cannot open the destination directory" in err, f"DEST-is-a-file message: {err!r}")
    for args in (["--copy"], ["--copy", src], ["--copy", src, dest, "x"], ["--copy", "", dest],
                 ["--copy", src, dest, src, ""]):
        rc, out, err = run([kw, *args])
        check_eq((rc, err), (2, "usage: kilt-wait --copy SRC DEST [SRC DEST]...\n"), f"usage error for {args}")

    # Several pairs in one run (one init container per mount, one pair per volume); the first
    # failure stops the run.
    rc, out, err = run([kw, "--copy", os.path.join(src, "etc"), os.path.join(d, "p1"), os.path.join(src, "bin"), os.path.join(d, "p2")])
    check_eq((rc, err), (0, ""), "two pairs copy")
    check_eq(snapshot(os.path.join(d, "p1")), {k[4:]: v for k, v in want.items() if k.startswith("etc/")}, "first pair")
    check(os.path.isdir(os.path.join(d, "p2")), "second pair")
    rc, out, err = run([kw, "--copy", os.path.join(d, "nope"), os.path.join(d, "p3"), src, os.path.join(d, "p4")])
    check_eq(rc, 1, "a failing first pair fails the run")
    check(not os.path.exists(os.path.join(d, "p4")), "pairs after a failure are not copied")

    # The depth bound: 64 directories below SRC copy, 65 do not.
    for depth, want_rc in ((64, 0), (65, 1)):
        deep = os.path.join(d, f"deep{depth}")
        p = deep
        for _ in range(depth):
            p = os.path.join(p, "d")
        os.makedirs(p)
        rc, out, err = run([kw, "--copy", deep, os.path.join(d, f"deep{depth}-out")])
        check_eq(rc, want_rc, f"{depth} nested directories")
        if want_rc:
            check("deeper than 64 directories" in err, f"depth message: {err!r}")
    finish()


def sh(*args):
    subprocess.run(list(args), check=True, stdout=subprocess.DEVNULL)


def runc(bundle, args, mounts, timeout=60, user=None):
    """Runs args in the bundle; user: (uid, gid) without any capability and without new
    privileges, as a pod's securityContext with `capabilities: {drop: [ALL]}` runs it."""
    with open(os.path.join(bundle, "config.json")) as f:
        c = json.load(f)
    c["process"]["terminal"] = False
    c["process"]["args"] = args
    if user is not None:
        c["process"]["user"] = {"uid": user[0], "gid": user[1]}
        c["process"]["capabilities"] = {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")}
        c["process"]["noNewPrivileges"] = True
    c["root"]["readonly"] = True  # the copy writes only into the emptyDir stand-in
    for dst, src, mode in mounts:
        c["mounts"].append({"destination": dst, "type": "bind", "source": src,
                            "options": ["rbind", mode]})
    return run_config(bundle, c, "copy", timeout=timeout)


def case_container():
    if os.geteuid() != 0:
        skip("runc containers need root here (rootless runc is not set up)")
    need("runc", "umoci")
    kw = helper("static", "kilt-wait")
    d = tmpdir("copy-ctr")

    # The agent image: nothing but kilt's static helpers and the agent's files under /kilt.
    layout = os.path.join(d, "oci")
    sh("umoci", "init", "--layout", layout)
    sh("umoci", "new", "--image", f"{layout}:agent")
    staging = os.path.join(d, "staging")
    sh("umoci", "unpack", "--image", f"{layout}:agent", staging)
    root = os.path.join(staging, "rootfs")
    kilt = os.path.join(root, "kilt")
    make_tree(kilt)
    os.makedirs(os.path.join(kilt, "bin"), exist_ok=True)
    shutil.copy2(kw, os.path.join(kilt, "bin", "kilt-wait"))
    shutil.copy2(helper("static", "kilt-launch"), os.path.join(kilt, "bin", "kilt-launch"))
    sh("umoci", "repack", "--image", f"{layout}:agent", staging)
    sh("umoci", "config", "--image", f"{layout}:agent", "--config.entrypoint", "/kilt/bin/kilt-wait")
    bundle = os.path.join(d, "bundle")
    sh("umoci", "unpack", "--image", f"{layout}:agent", bundle)
    rootfs = os.path.join(bundle, "rootfs")
    entries = sorted(os.listdir(rootfs))
    check_eq(entries, ["kilt"], "the image holds /kilt only")
    for prog in ("bin/sh", "bin/cp", "usr/bin/cp", "lib", "usr/lib"):
        check(not os.path.lexists(os.path.join(rootfs, prog)), f"the image has no /{prog}")
    want = expected(snapshot(os.path.join(rootfs, "kilt")))

    # 1. The init container: kilt-wait --copy /kilt /kilt-volume/0, the volume bind-mounted rw.
    vol = os.path.join(d, "emptydir")
    os.makedirs(vol)
    os.chmod(vol, 0o777)  # what the kubelet gives an emptyDir
    rc, out, err = runc(bundle, ["/kilt/bin/kilt-wait", "--copy", "/kilt", "/kilt-volume/0"],
                        [("/kilt-volume/0", vol, "rw")])
    check_eq((rc, out, err), (0, "", ""), "the copy in a shell-less container exits 0, silent")
    check_eq(snapshot(vol), want, "the volume holds the image's /kilt (modes, links, contents, times)")

    # 2. A restarted init container copies again over its first copy.
    os.unlink(os.path.join(vol, "etc", "falco.yaml"))
    rc, out, err = runc(bundle, ["/kilt/bin/kilt-wait", "--copy", "/kilt", "/kilt-volume/0"],
                        [("/kilt-volume/0", vol, "rw")])
    check_eq((rc, err), (0, ""), "a second copy exits 0")
    check_eq(snapshot(vol), want, "the second copy restores the volume")

    # 3. The app side: the volume mounted read-only at /kilt of another container; the copied
    # static binary runs from it (here copying its own tree once more, into /out).
    app = os.path.join(d, "app-bundle")
    shutil.copytree(bundle, app, symlinks=True)
    shutil.rmtree(os.path.join(app, "rootfs", "kilt"))
    os.makedirs(os.path.join(app, "rootfs", "kilt"))
    out_dir = os.path.join(d, "out")
    os.makedirs(out_dir)
    rc, out, err = runc(app, ["/kilt/bin/kilt-wait", "--copy", "/kilt/etc", "/out"],
                        [("/kilt", vol, "ro"), ("/out", out_dir, "rw")])
    check_eq((rc, err), (0, ""), "the copied kilt-wait runs from the volume")
    check_eq(snapshot(out_dir), {k[len("etc/"):]: v for k, v in want.items() if k.startswith("etc/")},
             "what it copied from the volume equals the image's /kilt/etc")

    # 4. A copy that cannot succeed: exit 1 and the reason (a read-only volume).
    ro = os.path.join(d, "ro-volume")
    os.makedirs(ro)
    rc, out, err = runc(bundle, ["/kilt/bin/kilt-wait", "--copy", "/kilt", "/kilt-volume/0"],
                        [("/kilt-volume/0", ro, "ro")])
    check_eq(rc, 1, "a read-only volume makes the copy fail")
    check("kilt-wait: copy: /kilt/" in err and "Read-only file system" in err, f"failure message: {err!r}")
    rc, out, err = runc(bundle, ["/kilt/bin/kilt-wait", "--copy", "/nope", "/kilt-volume/0"],
                        [("/kilt-volume/0", vol, "rw")])
    check_eq(rc, 1, "a missing source fails")
    check("kilt-wait: copy: /nope: cannot open the source directory" in err, f"missing source message: {err!r}")

    # 5. An agent image built by root with owner-only modes (0700 directory, 0600 and 0700
    # files), copied as the copy init container that `kilt inject` writes runs (its runAsUser,
    # no capabilities, no new privileges); then used by an app container that runs as another
    # user (1000), with the volume read-only.
    owner_only(d, layout)
    finish()


def copier_user(extra_args=()):
    """The uid of the copy init container `kilt inject` writes for a pod (runAsUser)."""
    kilt = os.environ.get("KILT")
    check(bool(kilt), "KILT (the kilt binary) is set")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"},
           "spec": {"containers": [{"name": "app", "image": "example/app:1", "command": ["/app"]}]}}
    recipe = os.path.join(os.environ.get("KILT_SOURCE_DIR", "."), "tests", "k8s-inject", "recipes", "falco.conf")
    p = subprocess.run([kilt, "inject", "-r", recipe, "--no-image-lookup", "-o", "json", *extra_args, "-"],
                       input=json.dumps(pod), capture_output=True, text=True)
    check_eq(p.returncode, 0, f"kilt inject writes the pod ({p.stderr.strip()})")
    ic = json.loads(p.stdout)["spec"]["initContainers"][0]
    sc = ic["securityContext"]
    check_eq(sc["capabilities"], {"drop": ["ALL"]}, "the copier has no capabilities")
    return sc["runAsUser"], sc["runAsNonRoot"]


def owner_only(d, layout):
    sh("umoci", "new", "--image", f"{layout}:owner-only")
    staging = os.path.join(d, "staging-oo")
    sh("umoci", "unpack", "--image", f"{layout}:owner-only", staging)
    kilt = os.path.join(staging, "rootfs", "kilt")
    os.makedirs(os.path.join(kilt, "bin"))
    os.makedirs(os.path.join(kilt, "private"))
    shutil.copy2(helper("static", "kilt-wait"), os.path.join(kilt, "bin", "kilt-wait"))
    shutil.copy2(helper("static", "kilt-wait"), os.path.join(kilt, "private", "tool"))
    with open(os.path.join(kilt, "private", "token"), "w") as f:
        f.write("agent settings\n")
    os.chmod(os.path.join(kilt, "private", "token"), 0o600)
    os.chmod(os.path.join(kilt, "private", "tool"), 0o700)
    os.chmod(os.path.join(kilt, "private"), 0o700)
    sh("umoci", "repack", "--image", f"{layout}:owner-only", staging)
    bundle = os.path.join(d, "bundle-oo")
    sh("umoci", "unpack", "--image", f"{layout}:owner-only", bundle)
    st = os.stat(os.path.join(bundle, "rootfs", "kilt", "private", "token"))
    check_eq((st.st_uid, stat.S_IMODE(st.st_mode)), (0, 0o600), "the image's token is root's, 0600")
    want = expected(snapshot(os.path.join(bundle, "rootfs", "kilt")))

    uid, non_root = copier_user()
    check_eq((uid, non_root), (0, False), "the copier runs as root (without capabilities) by default")
    vol = os.path.join(d, "emptydir-oo")
    os.makedirs(vol)
    os.chmod(vol, 0o777)
    rc, out, err = runc(bundle, ["/kilt/bin/kilt-wait", "--copy", "/kilt", "/kilt-volume/0"],
                        [("/kilt-volume/0", vol, "rw")], user=(uid, 0))
    check_eq((rc, err), (0, ""), f"the copier (uid {uid}, no capabilities) copies owner-only files")
    check_eq(snapshot(vol), want, "the copy holds them, readable (and runnable) by every user")
    check_eq(stat.S_IMODE(os.stat(os.path.join(vol, "private", "token")).st_mode), 0o644, "0600 becomes 0644")
    check_eq(stat.S_IMODE(os.stat(os.path.join(vol, "private", "tool")).st_mode), 0o755, "0700 becomes 0755")

    app = os.path.join(d, "app-oo")
    shutil.copytree(bundle, app, symlinks=True)
    shutil.rmtree(os.path.join(app, "rootfs", "kilt"))
    os.makedirs(os.path.join(app, "rootfs", "kilt"))
    out_dir = os.path.join(d, "out-oo")
    os.makedirs(out_dir)
    os.chmod(out_dir, 0o777)
    rc, out, err = runc(app, ["/kilt/private/tool", "--copy", "/kilt/private", "/out"],
                        [("/kilt", vol, "ro"), ("/out", out_dir, "rw")], user=(1000, 1000))
    check_eq((rc, err), (0, ""), "an app running as uid 1000 runs the copied 0700 program and reads the 0600 file")
    with open(os.path.join(out_dir, "token")) as f:
        check_eq(f.read(), "agent settings\n", "what it read is the image's file")

    # --copy-user: a non-root copier needs files it can read; when it cannot, the copy fails
    # naming the file, its user and what the image must give.
    uid, non_root = copier_user(["--copy-user", "65532"])
    check_eq((uid, non_root), (65532, True), "--copy-user 65532 makes a non-root copier")
    vol2 = os.path.join(d, "emptydir-oo2")
    os.makedirs(vol2)
    os.chmod(vol2, 0o777)
    rc, out, err = runc(bundle, ["/kilt/bin/kilt-wait", "--copy", "/kilt", "/kilt-volume/0"],
                        [("/kilt-volume/0", vol2, "rw")], user=(uid, 0))
    check_eq(rc, 1, "a copier that cannot read the files fails")
    check("kilt-wait: copy: /kilt/private: cannot open the directory: Permission denied (kilt-wait runs as uid 65532, gid 0: "
          "the agent image's files must be readable by that user)" in err, f"its message: {err!r}")


if __name__ == "__main__":
    {"host": case_host, "container": case_container}[sys.argv[1]]()
