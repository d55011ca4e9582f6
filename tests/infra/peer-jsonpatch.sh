#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Python jsonpatch library (PyPI, pinned) into a virtualenv cached under
# /var/cache/kilt, an RFC 6902 implementation independent of kilt's, so tests can apply the JSON
# Patches kilt emits (the journal's tests, the Kubernetes golden cases, which also read YAML with
# the PyYAML it installs). Idempotent and safe to run concurrently; prints the venv's python on
# stdout.
# Usage: tests/infra/peer-jsonpatch.sh     (KILT_JSONPATCH_VERSION=x.y for another pinned version)
set -euo pipefail
version=${KILT_JSONPATCH_VERSION:-1.33}
cache=${KILT_CACHE:-/var/cache/kilt}
venv=$cache/jsonpatch-$version
py=$venv/bin/python3
# .ok-yaml: a venv made before PyYAML was part of it is made again
if [ -e "$venv/.ok-yaml" ]; then
  echo "$py"
  exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/.jsonpatch.lock"
flock 9
if ! [ -e "$venv/.ok-yaml" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2 || {
    echo "peer-jsonpatch: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2
    exit 1
  }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "jsonpatch==$version" \
    "PyYAML==6.0.2" >&2
  "$py" -c 'import jsonpatch, yaml; print("jsonpatch", jsonpatch.__version__)' >&2
  touch "$venv/.ok" "$venv/.ok-yaml"
fi
echo "$py"
