#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs every Debian package kilt needs to build and test; does nothing when all are present.
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build pkg-config git python3 python3-yaml python3-venv
  libjansson-dev libcmocka-dev libfyaml-dev
  libcurl4-openssl-dev libssl-dev libmicrohttpd-dev libgnutls28-dev
  clang clang-format libclang-rt-14-dev cppcheck
  valgrind strace jq
  musl-tools gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static
  runc umoci skopeo busybox-static tini patchelf
  docker-registry apache2-utils openssl curl
  containerd containernetworking-plugins iptables util-linux mount procps
  wrk  # bench/webhook's load generator
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian registry package starts a system service we do not use; tests run their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
fi
exit 0
