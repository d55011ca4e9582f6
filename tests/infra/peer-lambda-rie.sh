#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the AWS Lambda Runtime Interface Emulator (aws-lambda-rie) from the Go module proxy into
# /opt/kilt/bin, the real peer that runs the macro's packaged `bootstrap` in tests/macro and
# bench/macro. Idempotent: does nothing when the pinned version is already there.
set -euo pipefail

# The emulator's tags are not served by the proxy; this pseudo-version is.
version=${KILT_RIE_VERSION:-v0.0.0-20261030222936-bef5c4ba774d}
bindir=${KILT_PEER_BIN:-/opt/kilt/bin}
stamp="$bindir/.aws-lambda-rie.version"

if [ -x "$bindir/aws-lambda-rie" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
  exit 0
fi
command -v go >/dev/null 2>&1 || { echo "peer-lambda-rie: go is not installed" >&2; exit 1; }
mkdir -p "$bindir"
export GOBIN="$bindir"
export GOFLAGS=-mod=mod
export GOCACHE=${GOCACHE:-/var/cache/kilt/go-build}
export GOMODCACHE=${GOMODCACHE:-/var/cache/kilt/go-mod}
export CGO_ENABLED=0
echo "peer-lambda-rie: building aws-lambda-rie@$version" >&2
go install "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$version"
echo "$version" >"$stamp"
