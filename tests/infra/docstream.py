# SPDX-License-Identifier: Apache-2.0
"""Kubernetes manifests as the tests read them: a stream of JSON documents (what `kilt inject`
writes for a JSON input, and its --json-patch output) or multi-document YAML, and the Python that
can read YAML and apply JSON Patches (the virtualenv tests/infra/peer-jsonpatch.sh installs, with
PyYAML and jsonpatch).

Import it from a test with tests/infra on sys.path (the Kubernetes tests' PYTHONPATH has it).
"""
import json
import os
import subprocess
import sys

SRC = os.environ.get("KILT_SOURCE_DIR",
                     os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))


def json_stream(text):
    """The JSON values of `text`, one after the other, separated by white space or nothing."""
    dec, i, out = json.JSONDecoder(), 0, []
    while True:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        if i >= len(text):
            return out
        v, i = dec.raw_decode(text, i)
        out.append(v)


def is_json(text):
    """Whether `text` is written as JSON (kilt's JSON output) rather than YAML."""
    return text.lstrip().startswith("{") or text.lstrip().startswith("[")


def yaml_docs(text):
    """The documents of a multi-document YAML text, empty ones left out (needs PyYAML)."""
    import yaml
    return [d for d in yaml.safe_load_all(text) if d is not None]


def load_text(text):
    """The documents of `text`: a JSON stream when it starts as JSON (after a byte order mark and
    white space), else multi-document YAML."""
    s = text.lstrip("\ufeff \t\r\n")
    if s.startswith("{") or s.startswith("["):
        return json_stream(s)
    return yaml_docs(text)


def load_docs(path):
    """The documents of the file at `path` (load_text)."""
    with open(path) as f:
        return load_text(f.read())


def peer_python():
    """The path of the peer's interpreter (installs it the first time); exits 1 if that fails."""
    out = subprocess.run(["bash", os.path.join(SRC, "tests", "infra", "peer-jsonpatch.sh")],
                         capture_output=True, text=True)
    if out.returncode != 0:
        print(f"tests/infra/peer-jsonpatch.sh failed:\n{out.stderr}", file=sys.stderr)
        sys.exit(1)
    return out.stdout.strip()


def run_in_peer():
    """Runs the calling script again under the peer's interpreter unless this interpreter already
    has PyYAML and jsonpatch. Returns only in an interpreter that has them."""
    try:
        import jsonpatch  # noqa: F401
        import yaml  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("KILT_PEER_PY"):
        print(f"{sys.executable} lacks PyYAML or jsonpatch (tests/infra/peer-jsonpatch.sh)",
              file=sys.stderr)
        sys.exit(1)
    py = peer_python()
    os.environ["KILT_PEER_PY"] = py
    os.execv(py, [py, *sys.argv])
