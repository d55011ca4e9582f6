#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Runs every command example of the documentation and checks its output, so the docs cannot
# drift from the program. Pages: README.md and every *.md under docs/, bench/ and deploy/ (a new
# page is covered as soon as it exists).
#
# How to write an example:
#   A fenced block with the info string `console` is run. Lines starting with "$ " are commands
#   (a line ending in "\" continues on the next); the lines after a command, up to the next
#   "$ ", are its expected output (stdout and stderr together). In an expected line "…" matches
#   any text; a line that is only "…" matches any number of lines. A command must exit 0 unless
#   its output ends with a line "[exit N]".
#   Commands run with bash in a scratch folder per page (blocks of a page share it, in order),
#   which holds a copy of docs/examples/ and links to deploy/ and samples/; `kilt` is the built
#   binary. `<!-- doc-example: file NAME -->` before any fenced block writes that block into NAME
#   there first, so a page can show a file and then run kilt on it.
#   Any other block that shows a command (info string sh/shell/bash, a "$ " prompt, or a line
#   starting with kilt, kilt-launch, kilt-wait, scripts/, tests/infra/) must be preceded by
#   `<!-- doc-example: not run: REASON -->`, or this test fails. The reasons are printed.
import os
import re
import shutil
import subprocess
import sys
import tempfile

SRC = os.environ.get("KILT_SOURCE_DIR") or os.path.dirname(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KILT = os.environ["KILT"]

MARKER = re.compile(r"<!--\s*doc-example:\s*(.*?)\s*-->")
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([^\s`]*)")
COMMANDISH = re.compile(r"^\s*(\$ |kilt(-launch|-wait)?(\s|$)|scripts/|tests/infra/)")
SHELL_INFO = {"sh", "shell", "bash", "zsh"}


def pages():
    found = [os.path.join(SRC, "README.md")]
    for top in ("docs", "bench", "deploy"):
        for root, dirs, files in os.walk(os.path.join(SRC, top)):
            dirs[:] = sorted(d for d in dirs if d != "examples" or top != "docs")
            found += [os.path.join(root, f) for f in sorted(files) if f.endswith(".md")]
    return [p for p in found if os.path.exists(p)]


def blocks(text):
    """Yields (line number, info string, body lines, markers just before the block)."""
    lines = text.split("\n")
    i, pending = 0, []
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            mk = MARKER.search(lines[i])
            if mk:
                pending.append(mk.group(1))
            elif lines[i].strip():
                pending = []
            i += 1
            continue
        fence, info, start = m.group(2), m.group(3).lower(), i + 1
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        indent = len(m.group(1))
        body = [l[indent:] if l[:indent].strip() == "" else l for l in lines[i + 1:j]]
        yield start, info, body, pending
        pending = []
        i = j + 1


def parse_console(body):
    """[(command, [expected lines])] from a console block."""
    out, cur = [], None
    k = 0
    while k < len(body):
        line = body[k]
        if line.startswith("$ "):
            cmd = line[2:]
            while cmd.endswith("\\") and k + 1 < len(body):
                k += 1
                cmd = cmd + "\n" + body[k]
            cur = (cmd, [])
            out.append(cur)
        elif cur is not None:
            cur[1].append(line)
        k += 1
    for _, exp in out:
        while exp and not exp[-1].strip():
            exp.pop()
    return out


def line_matches(pattern, line):
    parts = [re.escape(p) for p in pattern.split("…")]
    return re.fullmatch(".*".join(parts), line, re.S) is not None


def lines_match(want, got):
    """Matches expected lines against actual ones; a want line "…" spans any number of lines."""
    memo = {}

    def m(i, j):
        if (i, j) in memo:
            return memo[(i, j)]
        if i == len(want):
            r = j == len(got)
        elif want[i].strip() == "…":
            r = any(m(i + 1, k) for k in range(j, len(got) + 1))
        else:
            r = j < len(got) and line_matches(want[i].rstrip(), got[j].rstrip()) and m(i + 1, j + 1)
        memo[(i, j)] = r
        return r

    return m(0, 0)


def scratch_for(page):
    d = tempfile.mkdtemp(prefix="kilt-doc-")
    ex = os.path.join(SRC, "docs", "examples")
    if os.path.isdir(ex):
        shutil.copytree(ex, d, dirs_exist_ok=True)
    for name in ("deploy", "samples"):
        if os.path.exists(os.path.join(SRC, name)) and not os.path.exists(os.path.join(d, name)):
            os.symlink(os.path.join(SRC, name), os.path.join(d, name))
    return d


def main():
    bindir = tempfile.mkdtemp(prefix="kilt-doc-bin-")
    os.symlink(KILT, os.path.join(bindir, "kilt"))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KILT_", "DOCKER_", "AWS_")) and k not in ("SSL_CERT_FILE",)}
    env.update(PATH=bindir + ":" + os.environ.get("PATH", "/usr/bin:/bin"), LC_ALL="C.UTF-8",
               TZ="UTC", COLUMNS="100")
    failures, commands, not_run = [], 0, []
    for page in pages():
        rel = os.path.relpath(page, SRC)
        text = open(page, encoding="utf-8").read()
        work = None
        for start, info, body, markers in blocks(text):
            where = f"{rel}:{start}"
            files = [m[len("file "):].strip() for m in markers if m.startswith("file ")]
            skip = [m for m in markers if m.startswith("not run:")]
            if files or info == "console":
                if work is None:
                    work = scratch_for(page)
                    env["HOME"] = work
            for name in files:
                path = os.path.join(work, name)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8") as f:
                    f.write("\n".join(body) + "\n")
            if info == "console":
                if skip:
                    failures.append(f"{where}: a console block is always run; drop the "
                                    "'not run' marker or use another info string")
                for cmd, want in parse_console(body):
                    commands += 1
                    status = 0
                    if want and re.fullmatch(r"\[exit \d+\]", want[-1].strip()):
                        status = int(want[-1].strip()[6:-1])
                        want = want[:-1]
                    p = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=work, env=env,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       timeout=120)
                    got = p.stdout.decode("utf-8", "replace").rstrip("\n").split("\n")
                    if got == [""]:
                        got = []
                    if p.returncode != status:
                        failures.append(f"{where}: $ {cmd}\n  exit {p.returncode}, want {status}"
                                        "\n  output:\n" + "\n".join("    " + l for l in got))
                    elif not lines_match(want, got):
                        failures.append(f"{where}: $ {cmd}\n  want:\n" +
                                        "\n".join("    " + l for l in want) + "\n  got:\n" +
                                        "\n".join("    " + l for l in got))
                    else:
                        print(f"ok   {where}: $ {cmd.splitlines()[0]}")
                continue
            shows_command = info in SHELL_INFO or any(COMMANDISH.match(l) for l in body)
            if shows_command and not files:
                if skip:
                    not_run.append(f"{where}: {skip[0][len('not run:'):].strip()}")
                else:
                    failures.append(
                        f"{where}: a command example that no test runs: make it a `console` "
                        "block with its output, or say why it cannot run here with "
                        "<!-- doc-example: not run: REASON --> (see tests/docs/examples.py)")
        if work:
            shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(bindir, ignore_errors=True)
    print(f"\n{commands} documented command(s) run and checked")
    print(f"{len(not_run)} block(s) not run here, each with its reason:")
    for n in not_run:
        print("  NOT RUN " + n)
    for f in failures:
        print("\nFAIL " + f)
    if commands < 5:
        print("FAIL: fewer than 5 documented commands found: is the scanner broken?")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
