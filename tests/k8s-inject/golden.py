# SPDX-License-Identifier: Apache-2.0
"""Runs one Kubernetes golden case (tests/golden/k8s/<case>/) through `kilt inject`.

A case folder holds:
  input.yaml|input.json  the manifests (a Namespace document among them gives its namespace's
                         labels and annotations, as the namespace would in a cluster)
  recipe                 optional: recipe names in tests/k8s-inject/recipes/ (default: falco),
                         one per line; the first is the default, the others chosen by annotation
  args                   optional: extra arguments, one per line
  facts.json             optional: image facts (--image-facts), for containers that say neither
                         command nor args
  pre-recipe, pre-args   optional: applied first (a recipe change, a re-invocation)
  want.yaml|want.json    the expected output, or
  want-error             a text the error message must contain (exit status 1, no output)
  want-stderr            optional: lines that must appear on stderr
  original.yaml|json     optional: what --remove must give back when it is not the input (the
                         input is itself an injected pod)

Checks: the output is the wanted one; the same run again gives the same bytes; applying the
recipe to the output changes nothing; the JSON Patch kilt prints for the case (--json-patch),
applied to each input document by Python's jsonpatch (an RFC 6902 implementation independent of
kilt), gives the output document (as a JSON value: RFC 6902 does not order object members), and
holds only add, replace and remove operations, none of them replacing a list some entry of
which it keeps (kilt's entries are added at their indices); the patch of the output is empty; `--remove` on the output gives back the input (key order
included). KILT_UPDATE_GOLDEN=1 rewrites want.* (review the diff).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

KILT = os.environ["KILT"]
SRC = os.environ.get("KILT_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
sys.path.insert(0, os.path.join(SRC, "tests", "infra"))
from docstream import json_stream, load_docs, load_text, run_in_peer  # noqa: E402
RECIPES = os.path.join(SRC, "tests", "k8s-inject", "recipes")


def fail(msg):
    print(f"{NAME}: {msg}", file=sys.stderr)
    sys.exit(1)


def lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [l.rstrip("\n") for l in f if l.strip()]


def recipe_args(names):
    out = []
    for n in names:
        out += ["-r", os.path.join(RECIPES, n + ".conf")]
    return out


def kilt(args, input_path):
    p = subprocess.run([KILT, "inject", *args, input_path], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def check_patch(inp, out, patches):
    """The independent check: each patch of `patches` applied by jsonpatch to the document of
    `inp` gives the document of `out`. Returns what is wrong, or None."""
    import jsonpatch
    import jsonpointer
    if len(patches) != len(inp):
        return f"{len(patches)} patches for {len(inp)} documents"
    for i, (doc, want, patch) in enumerate(zip(inp, out, patches)):
        for op in patch:
            if op["op"] not in ("add", "replace", "remove"):
                return f"document {i}: unexpected operation {op}"
        # kilt adds or replaces its own entries of a list (containers, initContainers, volumes,
        # env, volumeMounts, capabilities...) at their indices: a list is replaced whole only
        # when no entry of it survives (a container's command and args, a list an earlier
        # injection made)
        cur = doc
        for op in patch:
            if op["op"] == "replace" and isinstance(op.get("value"), list):
                old = jsonpointer.resolve_pointer(cur, op["path"])

                def key(e):
                    return json.dumps(e.get("name") if isinstance(e, dict) else e)
                kept = {key(e) for e in old} & {key(e) for e in op["value"]}
                if kept and op["path"].rsplit("/", 1)[-1] not in ("command", "args"):
                    return f"document {i}: {op['path']} replaced whole, though it keeps {sorted(kept)}"
            cur = jsonpatch.apply_patch(cur, [op])
        got = jsonpatch.apply_patch(doc, patch)
        # equal as JSON values: RFC 6902 leaves the order of an object's members to the
        # implementation
        if json.dumps(got, sort_keys=True) != json.dumps(want, sort_keys=True):
            return (f"document {i}: the patch applied by jsonpatch differs from kilt's output\n"
                    f"patch: {json.dumps(patch, indent=1)}\ngot:   {json.dumps(got)}\n"
                    f"want:  {json.dumps(want)}")
    return None


def main(case_dir):
    tmp = tempfile.mkdtemp(prefix=f"kilt-k8s-{NAME}-")
    try:
        run_case(case_dir, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_case(case_dir, tmp):
    inputs = [f for f in sorted(os.listdir(case_dir)) if f.startswith("input.")]
    if not inputs:
        fail("no input.* file")
    inp = os.path.join(case_dir, inputs[0])
    ext = inputs[0].split(".", 1)[1]
    recipes = lines(os.path.join(case_dir, "recipe")) or ["falco"]
    args = recipe_args(recipes) + lines(os.path.join(case_dir, "args"))
    facts = os.path.join(case_dir, "facts.json")
    if os.path.exists(facts):
        args += ["--image-facts", facts]
    args += ["--no-image-lookup"]  # golden cases are hermetic
    doc = inp
    if os.path.exists(os.path.join(case_dir, "pre-recipe")) or os.path.exists(os.path.join(case_dir, "pre-args")):
        pre = recipe_args(lines(os.path.join(case_dir, "pre-recipe")) or ["falco"]) + \
            lines(os.path.join(case_dir, "pre-args")) + ["--no-image-lookup"]
        if os.path.exists(facts):
            pre += ["--image-facts", facts]
        rc, out, err = kilt(pre, inp)
        if rc != 0:
            fail(f"the pre-run failed ({rc}):\n{err}")
        doc = os.path.join(tmp, "pre." + ext)
        with open(doc, "w") as f:
            f.write(out)

    rc, out, err = kilt(args, doc)
    want_error = os.path.join(case_dir, "want-error")
    if os.path.exists(want_error):
        if rc != 1:
            fail(f"expected exit status 1, got {rc}\n{err}")
        if out:
            fail("output written despite the error")
        text = open(want_error).read().strip()
        if text not in err:
            fail(f"error message lacks: {text}\ngot:\n{err}")
        print(f"{NAME}: ok (error)")
        return
    if rc != 0:
        fail(f"kilt inject failed ({rc}):\n{err}")
    for line in lines(os.path.join(case_dir, "want-stderr")):
        if line not in err:
            fail(f"stderr lacks: {line}\ngot:\n{err}")
    want = os.path.join(case_dir, "want." + ext)
    if os.environ.get("KILT_UPDATE_GOLDEN") == "1":
        with open(want, "w") as f:
            f.write(out)
        print(f"{NAME}: updated {want}")
    if not os.path.exists(want):
        fail(f"no {want} (run with KILT_UPDATE_GOLDEN=1)")
    if open(want).read() != out:
        d = subprocess.run(["diff", "-u", want, "-"], input=out, capture_output=True, text=True)
        fail(f"output differs from {want}:\n{d.stdout}")

    # Deterministic.
    rc2, out2, _ = kilt(args, doc)
    if rc2 != 0 or out2 != out:
        fail("output is not deterministic")
    once = os.path.join(tmp, "once." + ext)
    with open(once, "w") as f:
        f.write(out)
    # Applying twice equals once (the --remove cases: removing twice equals once).
    rc3, out3, err3 = kilt(args, once)
    if rc3 != 0:
        fail(f"second application failed:\n{err3}")
    if out3 != out:
        d = subprocess.run(["diff", "-u", once, "-"], input=out3, capture_output=True, text=True)
        fail(f"applying twice differs from once:\n{d.stdout}")

    # The JSON Patch, applied by an independent implementation.
    rc4, patch, err4 = kilt(args + ["--json-patch"], doc)
    if rc4 != 0:
        fail(f"--json-patch failed:\n{err4}")
    wrong = check_patch(load_docs(doc), load_docs(once), load_text(patch))
    if wrong:
        fail(f"JSON Patch check failed:\n{wrong}")
    # The patch of an unchanged document is empty.
    rc5, patch2, err5 = kilt(args + ["--json-patch"], once)
    if rc5 != 0 or any(p != [] for p in json_stream(patch2)):
        fail(f"the patch of an already injected document is not empty:\n{patch2}{err5}")

    # --remove restores the input (what the pre-run started from, for those cases).
    if "--remove" not in args:
        rc6, removed, err6 = kilt(recipe_args(recipes) + ["--remove"], once)
        if rc6 != 0:
            fail(f"--remove failed:\n{err6}")
        origs = [f for f in sorted(os.listdir(case_dir)) if f.startswith("original.")]
        orig = os.path.join(case_dir, origs[0]) if origs else inp
        # the same documents, key order included (json.dumps keeps a dict's order)
        a, b = load_docs(orig), load_text(removed)
        if json.dumps(a) != json.dumps(b):
            fail("--remove does not restore the input:\ndocuments differ:\n"
                 f"{json.dumps(a)}\n{json.dumps(b)}")
    print(f"{NAME}: ok")


if __name__ == "__main__":
    run_in_peer()  # PyYAML and jsonpatch
    NAME = os.path.basename(os.path.normpath(sys.argv[1]))
    main(sys.argv[1])
