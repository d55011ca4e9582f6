#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The ECS engine's journal as an RFC 6902 JSON Patch, applied by an independent implementation
(the Python jsonpatch library): for every CloudFormation JSON golden case (tests/golden/ecs), the
patch of the run applied to the template gives the engine's result. Cases with a pre-recipe
check a run that undoes an earlier injection (removals and replacements)."""
import json
import pathlib
import subprocess
import sys

import jsonpatch

tool, src = sys.argv[1], pathlib.Path(sys.argv[2])
recipes = src / "tests/ecs/recipes"


def recipe_path(name):
    return str(src / "deploy/recipes/falco.kilt.conf") if name == "builtin" else str(recipes / f"{name}.conf")


checked = fails = 0
for case in sorted((src / "tests/golden/ecs").iterdir()):
    inp = case / "input.json"
    if not inp.exists():
        continue
    try:
        doc = json.loads(inp.read_text())
    except ValueError:
        continue
    if not isinstance(doc, dict) or "Resources" not in doc:
        continue
    recipe = (case / "recipe").read_text().strip() if (case / "recipe").exists() else "falco"
    cmd = [tool, recipe_path(recipe), str(inp)]
    if (case / "pre-recipe").exists():
        cmd.append(recipe_path((case / "pre-recipe").read_text().strip()))
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode == 3:
        continue  # the engine refuses this template (an error case)
    if p.returncode != 0:
        print(f"FAIL: {case.name}: ecs_patch exited {p.returncode}: {p.stderr}")
        fails += 1
        continue
    run = json.loads(p.stdout)
    ops = {op["op"] for op in run["patch"]}
    if not ops <= {"add", "replace", "remove"}:
        print(f"FAIL: {case.name}: unexpected operations {ops}")
        fails += 1
        continue
    applied = jsonpatch.apply_patch(run["original"], run["patch"])
    if applied != run["result"]:
        print(f"FAIL: {case.name}: the patch applied to the template is not the result")
        fails += 1
        continue
    if run["original"] != run["result"] and not run["patch"]:
        print(f"FAIL: {case.name}: the document changed but the patch is empty")
        fails += 1
        continue
    checked += 1

print(f"journal patches: {checked} CloudFormation cases applied with jsonpatch {jsonpatch.__version__}, {fails} failed")
if checked < 20:
    print("FAIL: fewer than 20 cases were checked")
    fails += 1
sys.exit(1 if fails else 0)
