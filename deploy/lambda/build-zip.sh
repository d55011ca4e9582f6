#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds kilt for a Lambda architecture and packages kilt-macro-<arch>.zip (deploy/lambda/package.py).
#   deploy/lambda/build-zip.sh amd64|arm64 [OUTDIR]      (default OUTDIR: build/lambda)
# arm64 is cross-built with aarch64-linux-gnu-gcc against Debian's arm64 multiarch libraries
# (tests/infra/peer-arm64-libs.sh installs them).
set -euo pipefail
arch=${1:?usage: build-zip.sh amd64|arm64 [OUTDIR]}
src=$(cd "$(dirname "$0")/../.." && pwd)
out=${2:-$src/build/lambda}
bdir=${KILT_LAMBDA_BUILD_DIR:-$src/build/lambda-$arch}  # the build tree (tests pass their own)
mkdir -p "$out"
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DKILT_TESTS=OFF -DKILT_BENCH=OFF)
case $arch in
  amd64) ;;
  arm64)
    command -v aarch64-linux-gnu-gcc >/dev/null || { echo "build-zip: aarch64-linux-gnu-gcc missing" >&2; exit 1; }
    [ -e /usr/lib/aarch64-linux-gnu/pkgconfig/libcurl.pc ] || {
      echo "build-zip: arm64 libraries missing: run tests/infra/peer-arm64-libs.sh" >&2; exit 1; }
    export PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
    cmake_args+=(-DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64
                 -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc
                 -DCMAKE_FIND_ROOT_PATH=/usr/aarch64-linux-gnu)
    ;;
  *) echo "build-zip: unknown architecture $arch (amd64, arm64)" >&2; exit 2 ;;
esac
cmake -S "$src" -B "$bdir" "${cmake_args[@]}" >/dev/null
cmake --build "$bdir" --target kilt-cli
python3 "$src/deploy/lambda/package.py" --arch "$arch" --kilt "$bdir/kilt" --out "$out/kilt-macro-$arch.zip"
