# SPDX-License-Identifier: Apache-2.0
"""`kilt inject` on Kubernetes manifests: the result's syntax (-o json|yaml, default the input's)
and the JSON decisions report (--report json, the shape ECS inputs give), multi-document inputs
included. Runs under the peer's Python (tests/infra/peer-jsonpatch.sh) for PyYAML.
"""
import json
import os
import subprocess
import sys
import tempfile

KILT = os.environ["KILT"]
SRC = os.environ.get("KILT_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
GOLDEN = os.path.join(SRC, "tests", "golden")
RECIPE = os.path.join(SRC, "tests", "k8s-inject", "recipes", "falco.conf")

sys.path.insert(0, os.path.join(SRC, "tests", "infra"))
from checks import check, result  # noqa: E402
from docstream import is_json, json_stream, run_in_peer, yaml_docs  # noqa: E402

run_in_peer()  # PyYAML
import yaml  # noqa: E402


def kilt(*args, stdin=None):
    p = subprocess.run([KILT, "inject", "-r", RECIPE, "--no-image-lookup", *args],
                       capture_output=True, text=True, input=stdin)
    if p.returncode != 0:
        print(f"kilt inject {' '.join(args)} failed ({p.returncode}):\n{p.stderr}", file=sys.stderr)
        sys.exit(1)
    return p.stdout, p.stderr


# A multi-document YAML file (a Helm chart's output: ServiceAccount, Service, Deployment, Pod).
helm = os.path.join(GOLDEN, "k8s", "helm-rendered", "input.yaml")
y_out, _ = kilt(helm)
check(not is_json(y_out), "YAML in, YAML out by default")
y_docs = yaml_docs(y_out)
check(len(y_docs) == 4, f"4 documents out of 4 ({len(y_docs)})")
j_out, _ = kilt("-o", "json", helm)
check(is_json(j_out), "-o json writes JSON for a YAML input")
j_docs = json_stream(j_out)
check(json.dumps(j_docs) == json.dumps(y_docs),
      "-o json gives the same documents, in the same order and with the same key order, as YAML")
check([d["kind"] for d in j_docs] == ["ServiceAccount", "Service", "Deployment", "Pod"],
      "documents in input order")

# A stream of JSON documents.
mdj = os.path.join(GOLDEN, "k8s", "multi-document-json", "input.json")
j2_out, _ = kilt(mdj)
check(is_json(j2_out), "JSON in, JSON out by default")
y2_out, _ = kilt("-o", "yaml", mdj)
check(not is_json(y2_out), "-o yaml writes YAML for a JSON input")
check(json.dumps(yaml_docs(y2_out)) == json.dumps(json_stream(j2_out)),
      "-o yaml gives the same documents as JSON")
check(y2_out.count("\n---") + (1 if y2_out.startswith("---") else 0) >= len(json_stream(j2_out)) - 1,
      "-o yaml separates the documents")

# The patches follow -o too (JSON by default).
p_json, _ = kilt("--json-patch", helm)
p_yaml, _ = kilt("--json-patch", "-o", "yaml", helm)
check(is_json(p_json), "--json-patch prints JSON by default")
check("\n- op: add\n" in p_yaml, "--json-patch -o yaml prints YAML")
check(json.dumps(json_stream(p_json)) == json.dumps(list(yaml.safe_load_all(p_yaml))),
      "--json-patch -o yaml prints the same patches as JSON, one per document")

# -i with -o json: the file is rewritten in JSON.
with tempfile.TemporaryDirectory() as tmp:
    f = os.path.join(tmp, "app.yaml")
    with open(f, "w") as w:
        w.write(open(helm).read())
    kilt("-i", "-o", "json", f)
    check(json.dumps(json_stream(open(f).read())) == json.dumps(y_docs),
          "-i -o json rewrites the YAML file as the same documents in JSON")

# --report json: one JSON document on stderr, the shape the ECS path gives.
_, err = kilt("--report", "json", helm)
try:
    rep = json.loads(err)
except ValueError:
    rep = None
check(isinstance(rep, dict), "--report json prints one JSON document on stderr")
rep = rep or {}
check(rep.get("input") == "kubernetes", "the report names its input kind")
_, ecs_err = kilt("--report", "json", os.path.join(SRC, "samples", "fargate.yaml"))
ecs = json.loads(ecs_err)
check(sorted(rep) == sorted(ecs), f"the same top-level keys as an ECS input's report ({sorted(rep)} vs {sorted(ecs)})")
dec = rep.get("decisions", [])
check(all(set(d) <= {"task", "container", "decision", "reason", "warning"} and
          {"task", "decision", "reason"} <= set(d) for d in dec),
      "every decision has task, decision, reason (and container, warning when they apply)")
check([d["task"] for d in dec if "container" not in d] ==
      ["Deployment release-shop", "Pod release-shop-test-connection"],
      "a decision per pod, in document order")
check(any(d.get("container") == "shop" and d["decision"] == "patched" for d in dec),
      "the patched container has its decision")
check(rep.get("patched") == 1, "counts: 1 container patched")

# --report json with --remove on the result: the same shape, the removal counted.
_, err = kilt("--report", "json", "--remove", stdin=y_out)
rem = json.loads(err)
check(rem.get("input") == "kubernetes" and rem.get("removed") == 1,
      "--remove --report json counts the removed container")

sys.exit(result())
