#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# What every kilt command shares: one meaning per short option letter across all commands (read
# from each --help), exit statuses in every --help, `kilt help` and `kilt version`, an unknown
# option reported once with a suggestion, one spelling of the registry options (old ones kept as
# aliases), -o/--output as a format everywhere (`kilt inject -o json t.json` never writes a file
# named json), `kilt recipe check --output json`, `kilt inject --report json` and the warning of
# `kilt inject -i` on a YAML file with comments.
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "infra"))
from checks import check, result  # noqa: E402

KILT = os.environ["KILT"]
SRC = os.environ["KILT_SOURCE_DIR"]


def kilt(*args, cwd=None, stdin=None):
    return subprocess.run([KILT, *args], cwd=cwd, input=stdin, capture_output=True, text=True,
                          timeout=60)


# Every command (and subcommand) that has a --help.
HELPS = [["inject"], ["recipe"], ["recipe", "check"], ["recipe", "render"], ["image"],
         ["image", "inspect"], ["hocon"], ["cfn-macro"], ["webhook"], ["webhook", "serve"],
         ["webhook", "manifests"], ["exec"]]
# kilt exec selects pods the way kubectl does, with kubectl's own letters (also as the kubectl
# plugin `kubectl kilt exec`): these two are the only letters that mean something else elsewhere.
KUBECTL_LETTERS = {("exec", "c", "container"), ("exec", "l", "selector")}

# --- kilt help, kilt version
top = kilt("--help")
check(top.returncode == 0 and "Exit status" in top.stdout, "kilt --help lists exit statuses")
listed = re.findall(r"^  ([a-z][a-z-]*) ", top.stdout.split("Commands:")[1], re.M)
missing = [c for c in listed if c not in ("help", "version") and [c] not in HELPS]
check(len(listed) >= 6 and not missing,
      f"every command of kilt --help is checked here (add new ones to HELPS): {missing}")
h = kilt("help")
check(h.returncode == 0 and h.stdout == top.stdout, "kilt help == kilt --help")
for cmd in HELPS:
    direct = kilt(*cmd, "--help")
    check(direct.returncode == 0, f"kilt {' '.join(cmd)} --help exits 0")
    check("Exit status" in direct.stdout, f"kilt {' '.join(cmd)} --help lists exit statuses")
    if len(cmd) == 1:
        via = kilt("help", cmd[0])
        check(via.returncode == 0 and via.stdout == direct.stdout,
              f"kilt help {cmd[0]} == kilt {cmd[0]} --help")
v1, v2 = kilt("version"), kilt("--version")
check(v1.returncode == 0 and re.fullmatch(r"kilt \d+\.\d+\.\d+\n", v1.stdout) is not None,
      f"kilt version prints the version ({v1.stdout!r})")
check(v1.stdout == v2.stdout, "kilt version == kilt --version")
u = kilt("help", "injct")
check(u.returncode == 2 and "did you mean 'inject'" in u.stderr, "kilt help with a typo suggests")
u = kilt("injetc")
check(u.returncode == 2 and "unknown command 'injetc'; did you mean 'inject'?" in u.stderr,
      "an unknown command gets a suggestion")

# --- one meaning per short letter, read from every --help ("  -x, --long")
meaning = {}
for cmd in HELPS:
    for m in re.finditer(r"^\s+-([A-Za-z]), --([a-z-]+)", kilt(*cmd, "--help").stdout, re.M):
        letter, name = m.group(1), m.group(2)
        if (cmd[0], letter, name) in KUBECTL_LETTERS:
            continue
        meaning.setdefault(letter, set()).add(name)
clashes = {k: v for k, v in meaning.items() if len(v) > 1}
check(not clashes, f"one meaning per short option across every command: {clashes or meaning}")
check(len(meaning) >= 12, f"the help texts name their short options ({len(meaning)} letters)")

# --- an unknown option: reported once, with a suggestion
cases = [
    (["inject", "--explian"], "unknown option '--explian'; did you mean '--explain'?"),
    (["inject", "-p", "A=b"], "unknown option '-p'; did you mean '--param NAME=VALUE'?"),
    (["recipe", "render", "-i", "nginx", "r.conf"],
     "unknown option '-i'; did you mean '--image'?"),
    (["recipe", "render", "-n", "web", "r.conf"], "unknown option '-n'; did you mean '--name'?"),
    (["webhook", "serve", "--tls-crt", "x"], "did you mean '--tls-cert'?"),
    (["recipe", "check", "--outptu", "json"], "did you mean '--output'?"),
    (["image", "inspect", "--insecure-registy", "x"], "did you mean '--insecure-registry'?"),
    (["hocon", "--compcat", "-"], "did you mean '--compact'?"),
    (["cfn-macro", "-e", "ev.json"], "unknown option '-e'; did you mean '--event FILE'?"),
    (["inject", "--recipe"], "option '--recipe' needs a value"),
    (["inject", "-r"], "option '-r' (--recipe) needs a value"),
    (["inject", "--fail-open=yes"], "option '--fail-open' takes no value"),
    (["--bogus"], "unknown option '--bogus'"),
]
for args, want in cases:
    p = kilt(*args)
    lines = p.stderr.splitlines()
    check(p.returncode == 2 and want in p.stderr,
          f"kilt {' '.join(args)}: exit 2 with {want!r} (got {p.returncode} {p.stderr!r})")
    check(len(lines) == 2 and lines[1].startswith("Try 'kilt"),
          f"kilt {' '.join(args)}: said once, then where to look ({lines})")

with tempfile.TemporaryDirectory() as tmp:
    tf = os.path.join(SRC, "tests/golden/ecs/tf-container-definitions/input.json")
    base = ["--no-image-lookup", "-r", os.path.join(SRC, "tests/ecs/recipes/falco.conf")]

    # --- -o is the result's format: never a file named json
    p = kilt("inject", "-o", "json", tf, *base, cwd=tmp)
    check(p.returncode == 0 and not os.path.exists(os.path.join(tmp, "json")),
          "kilt inject -o json FILE writes no file named json")
    check(p.returncode == 0 and isinstance(json.loads(p.stdout), list),
          "kilt inject -o json FILE prints the JSON result")
    p = kilt("inject", "-o", "yaml", tf, *base, cwd=tmp)
    check(p.returncode == 0 and p.stdout.startswith("- ") and not os.path.exists(
        os.path.join(tmp, "yaml")), "kilt inject -o yaml prints YAML, writes no file")
    p = kilt("inject", "--output-file", "out.json", tf, *base, cwd=tmp)
    check(p.returncode == 0 and p.stdout == "" and
          json.load(open(os.path.join(tmp, "out.json"))) == json.loads(
              kilt("inject", tf, *base).stdout), "--output-file writes the result")
    p = kilt("inject", "-o", "old.json", tf, *base, cwd=tmp)
    check(p.returncode == 0 and os.path.exists(os.path.join(tmp, "old.json")) and
          "'-o old.json' is the old spelling of '--output-file old.json'" in p.stderr,
          "the old '-o FILE' still writes FILE, with a warning")
    p = kilt("inject", "-o", "text", tf, *base, cwd=tmp)
    check(p.returncode == 2 and "--output must be json or yaml" in p.stderr,
          "-o text is refused by inject")

    # --- registry options: one spelling, old ones kept as aliases
    for cmd in (["inject"], ["image", "inspect"]):
        help_text = kilt(*cmd, "--help").stdout
        for opt in ("--auth-file", "--insecure-registry", "--ca-file", "--image-timeout",
                    "--concurrency", "--cache-dir", "--cache-entries"):
            check(opt in help_text, f"kilt {' '.join(cmd)} --help names {opt}")
        for alias in ("--timeout", "--image-timeout"):
            p = kilt(*cmd, alias, "nope", "x")
            check(p.returncode == 2 and "--image-timeout: expected milliseconds" in p.stderr,
                  f"kilt {' '.join(cmd)} takes {alias} ({p.stderr.strip()!r})")
    p = kilt("inject", "--timeout", "2000", tf, *base)
    check(p.returncode == 0, "kilt inject --timeout (the alias) runs")

    # --- kilt recipe check --output json
    bad = os.path.join(tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write("deploy {\n  entrypiont: [ /x ]\n}\n")
    good = os.path.join(SRC, "deploy/recipes/falco.kilt.conf")
    p = kilt("recipe", "check", "--output", "json", good, bad)
    doc = json.loads(p.stdout) if p.stdout else None
    check(p.returncode == 1 and p.stderr == "", f"check -o json: exit 1, quiet stderr ({p.stderr!r})")
    check(isinstance(doc, list) and len(doc) == 2, "check -o json: one result per FILE")
    if isinstance(doc, list) and len(doc) == 2:
        check(doc[0]["ok"] is True and re.fullmatch("[0-9a-f]{64}", doc[0]["sha256"]) and
              doc[0]["name"] == "falco", f"check -o json: the good recipe {doc[0]}")
        e = doc[1].get("errors", [{}])[0]
        check(doc[1]["ok"] is False and e.get("line") == 2 and e.get("column") == 15 and
              "did you mean 'entrypoint'" in e.get("message", ""),
              f"check -o json: the bad recipe's located error {doc[1]}")
    p = kilt("recipe", "check", "-o", "json", good)
    check(p.returncode == 0 and json.loads(p.stdout)[0]["ok"] is True, "check -o json: exit 0")

    # --- kilt inject --report json
    p = kilt("inject", "--report", "json", tf, *base)
    try:
        rep = json.loads(p.stderr)
    except ValueError:
        rep = None
    check(p.returncode == 0 and isinstance(rep, dict), f"--report json: stderr is one JSON document")
    if isinstance(rep, dict):
        check(rep.get("patched") == 2 and rep.get("input") == "container-definitions" and
              [d["decision"] for d in rep["decisions"]] == ["patched", "patched", "patched"],
              f"--report json: counts and every decision {rep}")
    check(json.loads(p.stdout) == json.loads(kilt("inject", tf, *base).stdout),
          "--report json: the result is unchanged")

    # --- kilt inject -i on YAML with comments warns, without comments does not
    yaml_src = open(os.path.join(SRC, "tests/golden/ecs/yaml-fail-open/input.yaml")).read()
    for name, text, want in (("commented.yaml", "# owned by team A\n" + yaml_src, True),
                             ("plain.yaml", yaml_src, False)):
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(text)
        p = kilt("inject", "-i", path, "--fail-open", *base)
        warned = "its YAML comments are not kept" in p.stderr
        check(p.returncode == 0 and warned == want,
              f"inject -i {name}: warning {'given' if want else 'not given'} ({p.stderr!r})")
    p = kilt("inject", "--output-file", os.path.join(tmp, "o.yaml"),
             os.path.join(tmp, "commented.yaml"), "--fail-open", *base)
    check(p.returncode == 0 and "comments" not in p.stderr,
          "no warning when the commented file is not rewritten")

sys.exit(result("all CLI command checks passed"))
