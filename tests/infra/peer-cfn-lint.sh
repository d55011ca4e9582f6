#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the real cfn-lint (PyPI, pinned) into a virtualenv cached under /var/cache/kilt, so tests
# can lint every CloudFormation template kilt produces. Idempotent and safe to run concurrently;
# prints the binary's path on stdout.
# Usage: tests/infra/peer-cfn-lint.sh     (KILT_CFN_LINT_VERSION=x.y.z for another pinned version)
set -euo pipefail
version=${KILT_CFN_LINT_VERSION:-1.51.0}
cache=${KILT_CACHE:-/var/cache/kilt}
venv=$cache/cfn-lint-$version
bin=$venv/bin/cfn-lint
if [ -e "$venv/.ok" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/.cfn-lint.lock"
flock 9
if ! [ -e "$venv/.ok" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2 || {
    echo "peer-cfn-lint: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2
    exit 1
  }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$version" >&2
  "$bin" --version >&2
  touch "$venv/.ok"
fi
echo "$bin"
