#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Python jsonpatch library (PyPI, pinned) into a virtualenv cached under
# /var/cache/kilt, an RFC 6902 implementation independent of kilt's, so tests can apply the JSON
# Patches kilt emits (the journal's tests, the Kubernetes golden cases, which also read YAML with
# the PyYAML it installs). Idempotent and safe to run concurrently; prints the venv's python on
# stdout.
# Usage: tests/infra/peer-jsonpatch.sh     (KILT_JSONPATCH_VERSION=x.y for another pinned version)
set -euo pipefail
source "$(dirname "$0")/venv-lib.sh"
version=${KILT_JSONPATCH_VERSION:-1.33}
venv=${KILT_CACHE:-/var/cache/kilt}/jsonpatch-$version
# .ok-yaml: a venv made before PyYAML was part of it is made again
venv_install jsonpatch "$venv" .ok-yaml \
  'python3 -c "import jsonpatch, yaml; print(\"jsonpatch\", jsonpatch.__version__)"' \
  "jsonpatch==$version" "PyYAML==6.0.2"
echo "$venv/bin/python3"
