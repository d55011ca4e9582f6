#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Numbers a template holds that jansson cannot (beyond 64 bits, more digits than a double keeps,
# beyond a double's range) come out of every door exactly as written: kilt inject on a JSON file,
# on stdin and on YAML, --remove after inject, the CloudFormation macro (--event) and the
# Terraform external data source. They were refused ("too big integer") or rounded before.
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "infra"))
from checks import check, result  # noqa: E402

KILT = os.environ["KILT"]
SRC = os.environ["KILT_SOURCE_DIR"]
RECIPE = os.path.join(SRC, "tests/ecs/recipes/falco.conf")

NUMBERS = ["123456789012345678901234567890", "-99999999999999999999", "18446744073709551615",
           "0.12345678901234567890", "1.00000000000000000000001", "1e400", "1e-400"]


def exact(text):
    """Parses JSON keeping every number's text (Python would make 1e400 inf)."""
    return json.loads(text, parse_int=lambda s: ("n", s), parse_float=lambda s: ("n", s),
                      parse_constant=lambda s: ("n", s))


def holds_all(text, what):
    missing = [n for n in NUMBERS if n not in text]
    check(not missing, f"{what}: every number as written (missing {missing})")


def kilt(*args, stdin=None, env=None):
    return subprocess.run([KILT, *args], input=stdin, capture_output=True, text=True,
                          timeout=120, env=env)


containers = [{
    "Name": "app", "Image": "nginx:1.27", "Essential": True,
    "EntryPoint": ["/docker-entrypoint.sh"], "Command": ["nginx"],
    "LinuxParameters": {"SharedMemorySize": "@0"},
    "Ulimits": [{"Name": "nofile", "SoftLimit": "@2", "HardLimit": 9223372036854775807}],
    "DockerLabels": {"ratio": "@3"},
}]
template = {
    "Resources": {
        "Other": {"Type": "Custom::X", "Properties": {f"N{i}": f"@{i}" for i in range(len(NUMBERS))}},
        "Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
            "RequiresCompatibilities": ["FARGATE"], "ContainerDefinitions": containers}},
    }
}


def with_numbers(obj, **kw):
    text = json.dumps(obj, **kw)
    for i, n in enumerate(NUMBERS):
        text = text.replace(f'"@{i}"', n)
    return text


with tempfile.TemporaryDirectory() as d:
    src = with_numbers(template, indent=2)
    path = os.path.join(d, "t.json")
    open(path, "w").write(src)

    p = kilt("inject", "-r", RECIPE, "--no-image-lookup", path)
    check(p.returncode == 0, f"inject a JSON file: exit 0 ({p.stderr.strip()!r})")
    holds_all(p.stdout, "inject a JSON file")
    out = exact(p.stdout) if p.returncode == 0 else {}
    patched = out.get("Resources", {}).get("Task", {}).get("Properties", {})
    check(len(patched.get("ContainerDefinitions", [])) == 2, "the task was patched (a sidecar)")
    check(out.get("Resources", {}).get("Other") == exact(src)["Resources"]["Other"],
          "a resource kilt does not touch is unchanged, number for number")

    s = kilt("inject", "-r", RECIPE, "--no-image-lookup", "-", stdin=src)
    check(s.returncode == 0 and s.stdout == p.stdout, "the same bytes from stdin")

    once = os.path.join(d, "once.json")
    open(once, "w").write(p.stdout)
    r = kilt("inject", "-r", RECIPE, "--no-image-lookup", "--remove", once)
    check(r.returncode == 0 and exact(r.stdout) == exact(src),
          f"--remove restores the template, numbers and all ({r.stderr.strip()!r})")

    y = os.path.join(d, "t.yaml")
    open(y, "w").write("Resources:\n  Other:\n    Type: Custom::X\n    Properties:\n" +
                       "".join(f"      N{i}: {n}\n" for i, n in enumerate(NUMBERS[:5])) +
                       "      S: '123456789012345678901234567890'\n")
    p = kilt("inject", "-r", RECIPE, "--no-image-lookup", y)
    check(p.returncode == 0 and all(f"N{i}: {n}\n" in p.stdout for i, n in enumerate(NUMBERS[:5]))
          and "S: '123456789012345678901234567890'" in p.stdout,
          f"YAML: numbers plain as written, the quoted one still a string ({p.stdout!r})")

    # the CloudFormation macro
    ev = os.path.join(d, "event.json")
    open(ev, "w").write('{"region": "eu-west-1", "accountId": "123456789012", '
                        '"transformId": "x::Kilt", "requestId": "rid-1", "params": {}, '
                        '"templateParameterValues": {}, "fragment": ' + src + '}')
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILT_")}
    env["KILT_RECIPE"] = open(RECIPE).read()
    m = kilt("cfn-macro", "--event", ev, env=env)
    ok = m.returncode == 0 and exact(m.stdout).get("status") == "success"
    check(ok, f"macro: a success reply ({m.stdout[:300]!r} {m.stderr.strip()[:300]!r})")
    holds_all(m.stdout, "macro reply")
    if ok:
        frag = exact(m.stdout)["fragment"]
        check(frag["Resources"]["Other"] == exact(src)["Resources"]["Other"],
              "macro: the untouched resource is unchanged")

    # the Terraform external data source: container_definitions is a JSON string
    tf_defs = with_numbers([{k[0].lower() + k[1:]: v for k, v in containers[0].items()}])
    q = json.dumps({"container_definitions": tf_defs,
                    "config": json.dumps({"agent_image": "registry.example.com/falco:1"})})
    t = kilt("inject", "--format", "terraform-external", "--no-image-lookup", stdin=q)
    ok = t.returncode == 0
    check(ok, f"terraform-external: exit 0 ({t.stderr.strip()!r})")
    if ok:
        defs = json.loads(t.stdout)["container_definitions"]
        for n in (NUMBERS[0], NUMBERS[2], NUMBERS[3]):
            check(n in defs, f"terraform-external: {n} as written")

    # a number where a key belongs is still an error, located
    bad = os.path.join(d, "bad.json")
    open(bad, "w").write('{"Resources": {\n  123456789012345678901234567890: 1}}')
    b = kilt("inject", "-r", RECIPE, "--no-image-lookup", bad)
    check(b.returncode == 1 and "bad.json:2:" in b.stderr and "expected" in b.stderr
          and not b.stdout, f"a number as a key: a located error ({b.stderr.strip()!r})")

sys.exit(result("all passed"))
