#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the arm64 (Debian multiarch) libraries the kilt binary links against, so the
# CloudFormation macro's arm64 Lambda zip can be cross-built (deploy/lambda/build-zip.sh arm64) and
# bundle real arm64 libraries. Idempotent: does nothing when they are present.
set -euo pipefail
pkgs=(libjansson-dev:arm64 libfyaml-dev:arm64 libcurl4-openssl-dev:arm64 libssl-dev:arm64)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]})) || exit 0
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  "${sudo_cmd[@]}" dpkg --add-architecture arm64
fi
echo "peer-arm64-libs: installing ${missing[*]}" >&2
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
