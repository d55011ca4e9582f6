#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the real cfn-lint (PyPI, pinned) into a virtualenv cached under /var/cache/kilt, so tests
# can lint every CloudFormation template kilt produces. Idempotent and safe to run concurrently;
# prints the binary's path on stdout.
# Usage: tests/infra/peer-cfn-lint.sh     (KILT_CFN_LINT_VERSION=x.y.z for another pinned version)
set -euo pipefail
source "$(dirname "$0")/venv-lib.sh"
version=${KILT_CFN_LINT_VERSION:-1.51.0}
venv=${KILT_CACHE:-/var/cache/kilt}/cfn-lint-$version
venv_install cfn-lint "$venv" .ok "cfn-lint --version" "cfn-lint==$version"
echo "$venv/bin/cfn-lint"
