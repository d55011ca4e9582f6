#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# What a recipe may make kilt read, through the binary. A recipe whose text someone else supplies
# (a stack's Transform parameters, the function's KILT_RECIPE, a URL or S3: all loaded as text)
# includes no file at all and reads no environment variable; a recipe file the operator installed
# (`kilt inject -r FILE`, `kilt recipe check FILE`) includes only files beside it. And
# `kilt cfn-macro --event FILE` always prints a valid reply on stdout (issue 10 point 16).
import base64
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "infra"))
from checks import check, result  # noqa: E402

KILT = os.environ["KILT"]
SRC = os.environ.get("KILT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
RECIPE = open(os.path.join(SRC, "tests/ecs/recipes/falco.conf")).read()
TEMPLATE = json.load(open(os.path.join(SRC, "tests/golden/ecs/cfn-basic/input.json")))
SECRET = "hunter2-secret-value"


def env(**extra):
    e = {k: v for k, v in os.environ.items() if not k.startswith("KILT_")}
    e.update(extra)
    return e


def macro(event_path, cwd, **extra):
    return subprocess.run([KILT, "cfn-macro", "--event", event_path], cwd=cwd,
                          capture_output=True, text=True, env=env(**extra), timeout=120)


def reply_of(p, what):
    """The reply on stdout must be one valid JSON reply object."""
    try:
        r = json.loads(p.stdout)
    except ValueError:
        check(False, f"{what}: stdout is a JSON reply: {p.stdout!r} (stderr {p.stderr!r})")
        return None
    check(isinstance(r, dict) and set(r) >= {"requestId", "status"}
          and r["status"] in ("success", "failure"), f"{what}: a macro reply: {r}")
    return r


def event(d, params, rid="rid-1"):
    path = os.path.join(d, "event.json")
    json.dump({"region": "eu-west-1", "accountId": "123456789012", "transformId": "x::Kilt",
               "requestId": rid, "params": params, "templateParameterValues": {},
               "fragment": TEMPLATE}, open(path, "w"))
    return path


def stack_recipes(d):
    """Point 6: no file include from a stack's recipe (or any text recipe), no env fallback."""
    secret = os.path.join(d, "secret.properties")
    open(secret, "w").write(f"password={SECRET}\n")
    open(os.path.join(d, "secret.conf"), "w").write(f'password: "{SECRET}"\n')
    for inc in (f'include file("{secret}")', 'include "secret.conf"', 'include "secret"',
                f'include required(file("{secret}"))'):
        # inside an object, the included keys become environment variables of the task
        text = RECIPE + "\ndeploy.environment { " + inc + " }\n"
        for name, params in (("Recipe", {"Recipe": text}),
                             ("Recipe base64", {"Recipe": base64.b64encode(text.encode()).decode()})):
            p = macro(event(d, params), d)
            r = reply_of(p, f"{name} with {inc}")
            check(r is not None and r["status"] == "failure" and r["requestId"] == "rid-1"
                  and "may not include files" in r.get("errorMessage", ""),
                  f"{name} with {inc}: refused: {r and r.get('errorMessage')}")
            check(SECRET not in p.stdout + p.stderr, f"{name} with {inc}: the secret is not read")
        # the function's own KILT_RECIPE is text too: no file to be beside
        p = macro(event(d, {}), d, KILT_RECIPE=text)
        r = reply_of(p, f"KILT_RECIPE with {inc}")
        check(r is not None and r["status"] == "failure" and SECRET not in p.stdout + p.stderr,
              f"KILT_RECIPE with {inc}: refused, secret not read")
    # no environment fallback: a substitution the recipe cannot resolve never reads the variable
    for sub in ("${?KILT_TEST_SECRET}", "${KILT_TEST_SECRET}"):
        text = RECIPE + "\ndeploy.environment.LEAK: " + sub + "\n"
        p = macro(event(d, {"Recipe": text}), d, KILT_TEST_SECRET=SECRET)
        r = reply_of(p, f"env {sub}")
        check(r is not None and SECRET not in p.stdout + p.stderr,
              f"{sub}: the environment is not read ({r and r['status']})")
    # the same recipe without includes is fine (the refusal is about the include only)
    p = macro(event(d, {"Recipe": RECIPE}), d)
    r = reply_of(p, "plain inline recipe")
    check(r is not None and r["status"] == "success", "an inline recipe without include works")


def operator_files(d):
    """Point 6: a recipe file includes only files beside it (its directory and below)."""
    rdir = os.path.join(d, "recipes")
    os.makedirs(os.path.join(rdir, "parts"))
    outside = os.path.join(d, "outside.conf")
    open(outside, "w").write(f'deploy.environment.LEAK: "{SECRET}"\n')
    open(os.path.join(rdir, "common.conf"), "w").write('deploy.environment.FROM_COMMON: "yes"\n')
    open(os.path.join(rdir, "parts", "more.conf"), "w").write('deploy.environment.MORE: "yes"\n')
    os.symlink(outside, os.path.join(rdir, "link.conf"))
    case_in = os.path.join(SRC, "tests/golden/ecs/cfn-basic/input.json")

    def recipe(name, inc):
        path = os.path.join(rdir, name)
        open(path, "w").write(RECIPE + "\n" + inc + "\n")
        return path

    good = recipe("good.conf", 'include "common.conf"\ninclude "parts/more.conf"')
    p = subprocess.run([KILT, "inject", "-r", good, "--no-image-lookup", case_in],
                       capture_output=True, text=True, env=env())
    ok = p.returncode == 0 and '"FROM_COMMON"' in p.stdout and '"MORE"' in p.stdout
    check(ok, f"a recipe file includes files beside it and below: {p.stderr!r}")
    for name, inc, want in (("up.conf", 'include "../outside.conf"', "only files beside"),
                            ("abs.conf", f'include "{outside}"', "only files beside"),
                            ("link.conf-user.conf", 'include "link.conf"', "outside the directory")):
        path = recipe(name, inc)
        for cmd in (["inject", "-r", path, "--no-image-lookup", case_in],
                    ["recipe", "check", path]):
            p = subprocess.run([KILT, *cmd], capture_output=True, text=True, env=env())
            check(p.returncode == 1 and want in p.stderr and SECRET not in p.stdout + p.stderr,
                  f"{cmd[0]} {name}: refused ({want}): {p.stderr.strip()!r}")


def event_replies(d):
    """Point 16: --event FILE prints a valid reply whatever is wrong."""
    bad = os.path.join(d, "bad.json")
    cases = []
    open(bad, "w").write("this is not JSON")
    cases.append(("not JSON", bad, {}, ""))
    norid = os.path.join(d, "norid.json")
    json.dump({"region": "eu-west-1", "fragment": TEMPLATE}, open(norid, "w"))
    cases.append(("no requestId", norid, {}, ""))
    cases.append(("bad KILT_MODE", event(d, {}, "rid-mode"), {"KILT_MODE": "sideways"}, "rid-mode"))
    cases.append(("missing file", os.path.join(d, "absent.json"), {}, ""))
    empty = os.path.join(d, "empty.json")
    open(empty, "w").close()
    cases.append(("empty file", empty, {}, ""))
    for what, path, extra, rid in cases:
        p = macro(path, d, **extra)
        r = reply_of(p, what)
        check(p.returncode == 1 and r is not None and r["status"] == "failure"
              and r["requestId"] == rid and r.get("errorMessage", "").startswith("kilt: "),
              f"{what}: failure reply with requestId {rid!r}: {r}")
        check(p.stderr.strip() != "", f"{what}: the error is also on stderr")
    p = subprocess.run([KILT, "cfn-macro", "--event", "-"], input="{", capture_output=True,
                       text=True, env=env())
    r = reply_of(p, "stdin not JSON")
    check(r is not None and r["status"] == "failure", "stdin that is not JSON: failure reply")


def main():
    with tempfile.TemporaryDirectory(prefix="kilt-trust.") as d:
        for fn in (stack_recipes, operator_files, event_replies):
            sub = os.path.join(d, fn.__name__)
            os.mkdir(sub)
            fn(sub)
    sys.exit(result("recipe trust: ok"))


if __name__ == "__main__":
    main()
