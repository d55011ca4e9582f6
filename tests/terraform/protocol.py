#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# `kilt inject --format terraform-external` on the query documented in docs/terraform.md (read
# from the page, so the docs and this test cannot part): the result object holds two strings, the
# patched list and the decisions; the result fed back changes nothing; every bad query exits 1
# with kilt's message on stderr and nothing on stdout (what Terraform shows); the query's recipe,
# mode and config are applied; the documented module calls the program this way.
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


def run(query, *args):
    data = query if isinstance(query, str) else json.dumps(query)
    return subprocess.run([KILT, "inject", "--format", "terraform-external", *args],
                          input=data, capture_output=True, text=True, timeout=60)


def documented(name):
    page = open(os.path.join(SRC, "docs/terraform.md"), encoding="utf-8").read()
    m = re.search(r"<!-- doc-example: file " + re.escape(name) + r" -->\s*```\w*\n(.*?)```",
                  page, re.S)
    if not m:
        print(f"FAIL: docs/terraform.md has no block for {name}")
        sys.exit(1)
    return m.group(1)


query_text = documented("query.json")
module = documented("main.tf")
query = json.loads(query_text)

# --- the documented module calls the program as this test does
check('program = ["kilt", "inject", "--format", "terraform-external"]' in module,
      "the module runs kilt inject --format terraform-external")
check("data.external.kilt.result.container_definitions" in module and
      "data.external.kilt.result.decisions" in module, "the module uses both results")
for key in query:
    check(re.search(r"^\s*" + key + r"\s*=", module, re.M) is not None,
          f"the module's query sets {key}, as the documented query does")

# --- the documented query
p = run(query_text)
check(p.returncode == 0, f"documented query: exit 0 ({p.stderr.strip()!r})")
res = json.loads(p.stdout)
check(sorted(res) == ["container_definitions", "decisions"] and
      all(isinstance(v, str) for v in res.values()),
      "the result is an object of two strings (the protocol allows strings only)")
defs = json.loads(res["container_definitions"])
orig = json.loads(query["container_definitions"])
web = next(c for c in defs if c["name"] == "web")
argv = web["entryPoint"] + web.get("command", [])
check(web["entryPoint"][0] == "/kilt/bin/kilt-launch" and
      argv[-len(orig[0]["entryPoint"] + orig[0]["command"]):] ==
      orig[0]["entryPoint"] + orig[0]["command"],
      "the container runs the launcher, then its own program")
check(any(c.get("image") == json.loads(query["config"])["agent_image"] for c in defs),
      "the query's config reaches the recipe (the agent image)")
check(web["portMappings"] == orig[0]["portMappings"], "fields kilt does not own are kept")
check(any(c.get("essential") is False for c in defs if c["name"] != "web"),
      "a non-essential sidecar is added")
rep = json.loads(res["decisions"])
check(rep["patched"] == 1 and rep["input"] == "container-definitions" and
      [d.get("container") for d in rep["decisions"]] == [None, "web"],
      f"decisions: every decision with its reason ({rep})")
check(json.dumps(json.loads(p.stdout)) == json.dumps(json.loads(run(query_text).stdout)),
      "deterministic")

# --- fed back: nothing changes (a second plan shows no diff)
again = run({**query, "container_definitions": res["container_definitions"]})
res2 = json.loads(again.stdout) if again.returncode == 0 else {}
check(res2.get("container_definitions") == res["container_definitions"],
      "the result fed back is unchanged")
check(res2 and json.loads(res2["decisions"])["unchanged"] == 1, "and reported unchanged")

# --- the query's settings
with tempfile.TemporaryDirectory() as tmp:
    recipe = os.path.join(tmp, "tag.kilt.conf")
    with open(recipe, "w") as f:
        f.write("deploy {\n  entrypoint: [ /agent/launch, \"--\" ] ${original.entrypoint}\n"
                "  command: ${original.command}\n"
                "  environment: { AGENT_TAG: ${config.tag} }\n}\n")
    p = run({**query, "recipe": recipe, "config": json.dumps({"tag": "blue"})})
    ok = p.returncode == 0
    web = next(c for c in json.loads(json.loads(p.stdout)["container_definitions"])
               if c["name"] == "web") if ok else {}
    check(ok and web["entryPoint"][0] == "/agent/launch" and
          {"name": "AGENT_TAG", "value": "blue"} in web.get("environment", []),
          f"recipe and config from the query ({p.stderr.strip()!r})")
    p = run({**query, "config": json.dumps({"tag": "green"})}, "-r", recipe, "--set", "tag=red")
    web = next(c for c in json.loads(json.loads(p.stdout)["container_definitions"])
               if c["name"] == "web") if p.returncode == 0 else {}
    check({"name": "AGENT_TAG", "value": "green"} in web.get("environment", []),
          "the query's config wins over --set; -r gives the recipe")
    p = run({**query, "mode": "opt-in"})
    r = json.loads(json.loads(p.stdout)["decisions"]) if p.returncode == 0 else {}
    check(r.get("patched") == 0 and r.get("skipped", 0) >= 1,
          f"mode opt-in from the query: an untagged list is left alone ({r})")

    # --- errors: exit 1, kilt's message on stderr, nothing on stdout
    bad = [
        ({**query, "mdoe": "opt-in"}, "query: unknown key 'mdoe' (known: container_definitions, "
         "recipe, mode, config)"),
        ({"mode": "opt-out"}, "query: container_definitions: missing"),
        ({"container_definitions": orig}, "query: container_definitions: expected a string"),
        ({"container_definitions": "[{\"name\": \"web\",}]"},
         "query.container_definitions:1:"),
        ({"container_definitions": "{}"}, "expected the JSON text of an array"),
        ({**query, "mode": "sometimes"}, "query: mode: expected opt-in or opt-out"),
        ({**query, "config": "[1]"}, "query: config: expected the JSON text of an object"),
        ({**query, "recipe": os.path.join(tmp, "none.conf")}, "none.conf"),
        ("[1, 2]", "query: expected a JSON object of strings"),
        ("{\"container_definitions\": ", "query:1:"),
        ({"container_definitions": json.dumps([{"name": "web", "image": "nginx"}])},
         "entrypoint"),
    ]
    for q, want in bad:
        p = run(q, "--no-image-lookup")
        check(p.returncode == 1 and p.stdout == "" and want in p.stderr and
              p.stderr.startswith("kilt: "),
              f"bad query {str(q)[:60]!r}: exit 1, {want!r} ({p.returncode}, {p.stderr.strip()!r})")
    # a container that does not say what it runs: kilt asks its registry (none listens here)
    p = run({"container_definitions": json.dumps([{"name": "web", "image": "127.0.0.1:9/app:1"}])},
            "--insecure-registry", "127.0.0.1:9", "--image-timeout", "3000")
    check(p.returncode == 1 and "127.0.0.1:9" in p.stderr and p.stdout == "",
          f"image facts are looked up in the registry ({p.stderr.strip()!r})")
    p = subprocess.run([KILT, "inject", "--format", "terraform-external", "-i", "x.json"],
                       capture_output=True, text=True)
    check(p.returncode == 2, "terraform-external with -i is a usage error")

sys.exit(result("terraform protocol: all checks passed"))
