#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Files a user points `kilt inject` at, through the binary: -o into a device, FIFO, terminal or
# open descriptor writes into it and never replaces it; a symbolic link is followed and its target
# replaced; -i keeps owner, group and mode and says what happens to hard links; SIGINT, SIGTERM
# and SIGHUP during a write leave no temporary file; the summary is printed only after the result
# is written; a run that changes nothing leaves its own file untouched and says so; a YAML result
# goes into the file as it is made and a failure part way leaves the file as it was.
# Device nodes are made with mknod inside the test's own directory (never the machine's /dev).
import os
import pty
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import tty

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "infra"))
from checks import check, result  # noqa: E402

KILT = os.environ["KILT"]
SRC = os.environ.get("KILT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
RECIPE = os.path.join(SRC, "tests/ecs/recipes/falco.conf")
CASE_IN = os.path.join(SRC, "tests/golden/ecs/cfn-basic/input.json")
WANT = open(os.path.join(SRC, "tests/golden/ecs/cfn-basic/want.json"), "rb").read()
YAML_IN = os.path.join(SRC, "tests/golden/ecs/yaml-fail-open/input.yaml")
SUMMARY = b"container(s) patched"

skipped = []


def kilt(*args, stdin=None, stdout=subprocess.PIPE, timeout=120):
    return subprocess.run([KILT, "inject", "-r", RECIPE, "--no-image-lookup", *args],
                          stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, timeout=timeout)


def temps(d):
    return [n for n in os.listdir(d) if ".kilt-" in n]


def mknod(path, major, minor):
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        return True
    except PermissionError:
        return False


def devices(d):
    """Point 1: devices, FIFOs, terminals and descriptors are written into, never replaced."""
    null = os.path.join(d, "null")
    if mknod(null, 1, 3):
        for args in (["--output-file", null], ["--output-file", null, "--json-path", "whole"]):
            p = kilt(CASE_IN, *args)
            check(p.returncode == 0, f"-o device {args[2:]}: exit {p.returncode} {p.stderr!r}")
            check(stat.S_ISCHR(os.lstat(null).st_mode), f"-o device {args[2:]}: still a device")
        link = os.path.join(d, "null-link")
        os.symlink(null, link)
        p = kilt(CASE_IN, "--output-file", link)
        check(p.returncode == 0 and os.path.islink(link) and stat.S_ISCHR(os.lstat(null).st_mode),
              "-o a link to a device: link and device kept")
        check(not temps(d), "no temporary file beside a device")
    else:
        skipped.append("device nodes (mknod needs root)")

    fifo = os.path.join(d, "fifo")
    os.mkfifo(fifo)
    for extra in ([], ["--json-path", "whole"]):
        got = []
        reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
        reader.start()
        p = kilt(CASE_IN, "--output-file", fifo, *extra)
        reader.join(30)
        check(p.returncode == 0 and got == [WANT], f"-o FIFO {extra}: the reader gets the result")
        check(stat.S_ISFIFO(os.lstat(fifo).st_mode), f"-o FIFO {extra}: still a FIFO")

    master, slave = pty.openpty()
    tty.setraw(slave)  # no \n -> \r\n translation: the bytes arrive as written
    name = os.ttyname(slave)
    chunks = []

    def drain():
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:
                return
            if not b:
                return
            chunks.append(b)
            if b"".join(chunks) == WANT:
                return

    t = threading.Thread(target=drain, daemon=True)
    t.start()
    p = kilt(CASE_IN, "--output-file", name)
    t.join(10)
    check(p.returncode == 0 and b"".join(chunks) == WANT, f"-o terminal {name}: result shown")
    check(stat.S_ISCHR(os.stat(name).st_mode), "-o terminal: still a terminal")
    os.close(slave)
    os.close(master)

    for path in ("/dev/fd/1", "/proc/self/fd/1"):
        p = kilt(CASE_IN, "--output-file", path)
        check(p.returncode == 0 and p.stdout == WANT, f"-o {path} into a pipe: {p.stderr!r}")

    # a link to a regular file: the target gets the result, the link stays a link
    target = os.path.join(d, "target.json")
    open(target, "w").write("old\n")
    link = os.path.join(d, "link.json")
    os.symlink("target.json", link)
    p = kilt(CASE_IN, "--output-file", link)
    check(p.returncode == 0 and os.path.islink(link) and open(target, "rb").read() == WANT,
          "-o a link: target replaced, link kept")
    # a dangling link: the file is created where it points
    dangling = os.path.join(d, "dangling.json")
    os.symlink("made.json", dangling)
    p = kilt(CASE_IN, "--output-file", dangling)
    check(p.returncode == 0 and os.path.islink(dangling)
          and open(os.path.join(d, "made.json"), "rb").read() == WANT,
          "-o a dangling link: file created at its target")
    p = kilt(CASE_IN, "--output-file", d)
    check(p.returncode == 1 and b"is a directory" in p.stderr, "-o a directory is an error")
    check(not temps(d), "no temporary file left")


def in_place(d):
    """Point 2: -i keeps owner, group and mode, patches a link's target, reports hard links."""
    f = os.path.join(d, "owned.json")
    open(f, "wb").write(open(CASE_IN, "rb").read())
    os.chmod(f, 0o640)
    if os.geteuid() == 0:
        os.chown(f, 65534, 65534)
        p = kilt("-i", f)
        st = os.stat(f)
        check(p.returncode == 0 and open(f, "rb").read() == WANT, "-i as root: patched")
        check((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (65534, 65534, 0o640),
              f"-i as root keeps owner, group, mode: {st.st_uid}:{st.st_gid} "
              f"{oct(stat.S_IMODE(st.st_mode))}")
    else:
        skipped.append("-i keeping another user's ownership (needs root)")

    target = os.path.join(d, "real.json")
    open(target, "wb").write(open(CASE_IN, "rb").read())
    link = os.path.join(d, "alias.json")
    os.symlink("real.json", link)
    p = kilt("-i", link)
    check(p.returncode == 0 and os.path.islink(link) and open(target, "rb").read() == WANT,
          "-i on a link: the target is patched, the link stays")

    a = os.path.join(d, "a.json")
    b = os.path.join(d, "b.json")
    orig = open(CASE_IN, "rb").read()
    open(a, "wb").write(orig)
    os.link(a, b)
    p = kilt("-i", a)
    check(p.returncode == 0 and open(a, "rb").read() == WANT and open(b, "rb").read() == orig,
          "-i on a hard link: this name patched, the other keeps the old content")
    check(b"had 2 hard links" in p.stderr and a.encode() in p.stderr,
          f"-i on a hard link says so: {p.stderr!r}")


class Stall:
    """A loopback 'registry' that accepts connections and never answers: kilt waits in its image
    lookup, during which the temporary file of a streamed -i/-o exists."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)


def signals(d):
    """Point 3: SIGINT, SIGTERM, SIGHUP during -i/-o remove the temporary file."""
    stall = Stall()
    text = open(CASE_IN).read().replace(
        '"Image": "nginx:1.27",\n            "Essential": true,\n            "EntryPoint": [\n'
        '              "/docker-entrypoint.sh"\n            ],',
        f'"Image": "127.0.0.1:{stall.port}/app:1",\n            "Essential": true,')
    assert f"127.0.0.1:{stall.port}" in text and "EntryPoint" not in text
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        for mode in ("-i", "-o"):
            f = os.path.join(d, f"sig-{sig.name}{mode}.json")
            open(f, "w").write(text)
            args = ["-i", f] if mode == "-i" else [f, "--output-file", f + ".out"]
            p = subprocess.Popen([KILT, "inject", "-r", RECIPE, "--insecure-registry",
                                  f"127.0.0.1:{stall.port}", "--image-timeout", "600000", *args],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            end = time.time() + 60
            while not temps(d) and time.time() < end and p.poll() is None:
                time.sleep(0.01)
            had = temps(d)
            check(bool(had), f"{sig.name} {mode}: the temporary file exists while kilt waits")
            p.send_signal(sig)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            check(p.returncode == -sig, f"{sig.name} {mode}: ended by the signal "
                  f"(status {p.returncode})")
            check(not temps(d), f"{sig.name} {mode}: no temporary file left: {temps(d)}")
            check(open(f).read() == text, f"{sig.name} {mode}: the input is intact")
            check(not os.path.exists(f + ".out"), f"{sig.name} {mode}: no output made")
    stall.sock.close()


def summary_after_write(d):
    """Point 5: a failed write prints the error and no summary."""
    full = os.path.join(d, "full")
    if not mknod(full, 1, 7):
        skipped.append("write failure on a full device (mknod needs root)")
        return
    for extra in ([], ["--json-path", "whole"]):
        p = kilt(CASE_IN, "--output-file", full, *extra)
        check(p.returncode == 1 and SUMMARY not in p.stderr and b"No space" in p.stderr,
              f"-o full device {extra}: error, no summary: {p.stderr!r}")
        with open(full, "wb") as out:
            p = kilt(CASE_IN, *extra, stdout=out)
        check(p.returncode == 1 and SUMMARY not in p.stderr,
              f"stdout on a full device {extra}: error, no summary: {p.stderr!r}")
    p = kilt(YAML_IN, "--fail-open", "--output-file", full)
    check(p.returncode == 1 and SUMMARY not in p.stderr, f"YAML -o full: no summary {p.stderr!r}")
    p = kilt(CASE_IN, "--output-file", os.path.join(d, "out.json"))
    check(p.returncode == 0 and SUMMARY in p.stderr, "a successful write prints the summary")


def untouched(d):
    """Issue 9 point 6: nothing patched -> the file is not rewritten, and kilt says so."""
    yaml_text = b"# a comment kilt must keep\n" + open(YAML_IN, "rb").read()
    json_text = open(CASE_IN, "rb").read().replace(b"  ", b"    ")
    for name, text, extra in (("c.yaml", yaml_text, ["--mode", "opt-in"]),
                              ("c.json", json_text, ["--mode", "opt-in"]),
                              ("w.json", json_text, ["--mode", "opt-in", "--json-path", "whole"]),
                              ("patched.json", WANT, [])):
        f = os.path.join(d, name)
        open(f, "wb").write(text)
        os.utime(f, (1000000000, 1000000000))
        ino = os.stat(f).st_ino
        for args in (["-i", f], [f, "--output-file", f]):
            p = kilt(*extra, *args)
            st = os.stat(f)
            check(p.returncode == 0 and open(f, "rb").read() == text and st.st_ino == ino
                  and st.st_mtime == 1000000000, f"{name} {args[0]}: left untouched")
            check(b"left untouched" in p.stderr, f"{name} {args[0]}: says so: {p.stderr!r}")
    # onto another file or standard output the result is still written
    f = os.path.join(d, "c.json")
    p = kilt("--mode", "opt-in", f)
    check(p.returncode == 0 and p.stdout.startswith(b"{\n  \"AWS"), "stdout still gets the result")
    other = os.path.join(d, "other.json")
    p = kilt("--mode", "opt-in", f, "--output-file", other)
    check(p.returncode == 0 and os.path.exists(other) and b"untouched" not in p.stderr,
          "-o another file is written")


def cfn_yaml(tasks):
    out = ["Resources:\n"]
    for t in range(tasks):
        out.append(f"  Task{t}:\n    Type: AWS::ECS::TaskDefinition\n    Properties:\n"
                   f"      RequiresCompatibilities: [FARGATE]\n      ContainerDefinitions:\n")
        for c in range(4):
            out.append(f"        - Name: c{c}\n          Image: registry.example.com/svc{t}:{c}\n"
                       f"          EntryPoint: [/entry.sh]\n"
                       f"          Command: [run, '--port', '80{c}']\n"
                       f"          Environment:\n            - Name: REGION\n"
                       f"              Value: !Ref AWS::Region\n")
    return "".join(out)


def k8s_yaml(deployments):
    out = []
    for d in range(deployments):
        out.append(f"---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc{d}\n"
                   f"spec:\n  template:\n    spec:\n      containers:\n")
        for c in range(4):
            out.append(f"        - name: c{c}\n          image: registry.example.com/svc{d}:{c}\n"
                       f"          command: [/entry.sh]\n"
                       f"          args: [run, '--port', '80{c}']\n")
    return "".join(out)


def yaml_written_as_made(d):
    """A YAML result goes into a file's temporary file as it is made: the same bytes as the whole
    text on stdout; a result that fails part way (more than kilt reads back, a write error) leaves
    the file as it was and no temporary file."""
    import resource
    for kind, make, few, many in (("template", cfn_yaml, 60, 2200),
                                  ("manifests", k8s_yaml, 60, 2200)):
        src = os.path.join(d, f"{kind}.yaml")
        with open(src, "w") as f:
            f.write(make(few))
        out = os.path.join(d, f"{kind}.out.yaml")
        p = kilt(src, "--output-file", out)
        q = kilt(src)
        check(p.returncode == 0 and q.returncode == 0 and len(q.stdout) > 3 * 65536
              and open(out, "rb").read() == q.stdout,
              f"YAML {kind} into a file: the bytes kilt writes to stdout {p.stderr!r} {q.stderr!r}")
        # a write error part way (a file size limit): the file keeps its content
        with open(out, "w") as f:
            f.write("old\n")

        def limit():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (100000, 100000))
        p = subprocess.run([KILT, "inject", "-r", RECIPE, "--no-image-lookup", src,
                            "--output-file", out], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=120, preexec_fn=limit)
        check(p.returncode == 1 and b"cannot write the result: File too large" in p.stderr
              and open(out).read() == "old\n" and not temps(d),
              f"YAML {kind}, a write error part way: error, file intact: {p.stderr!r}")
        # more than kilt reads back: refused part way, the file keeps its content
        with open(src, "w") as f:
            f.write(make(many))
        check(os.path.getsize(src) < 8 << 20, f"{kind}: the input is within the limit")
        p = kilt(src, "--output-file", out)
        check(p.returncode == 1 and b"cannot write more than 8388608 bytes" in p.stderr
              and open(out).read() == "old\n" and not temps(d),
              f"YAML {kind} above 8 MiB: refused, file intact: {p.stderr!r}")


def main():
    with tempfile.TemporaryDirectory(prefix="kilt-files.") as d:
        for fn in (devices, in_place, signals, summary_after_write, untouched,
                   yaml_written_as_made):
            sub = os.path.join(d, fn.__name__)
            os.mkdir(sub)
            fn(sub)
    for s in skipped:
        print(f"SKIPPED (loudly): {s}", file=sys.stderr)
    sys.exit(result("ecs files: ok"))


if __name__ == "__main__":
    main()
