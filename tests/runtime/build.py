# SPDX-License-Identifier: Apache-2.0
"""ctest fixture: builds the runtime helpers for the container, qemu and valgrind tests.

Usage: build.py static|static-arm64|plain   (into $RT_BUILD_DIR/<kind>, incremental)
"""
import shutil
import sys

from harness import build, skip

NEEDS = {"static": "musl-gcc", "static-arm64": "aarch64-linux-gnu-gcc", "plain": "gcc"}

if __name__ == "__main__":
    kind = sys.argv[1]
    if not shutil.which(NEEDS[kind]):
        skip(f"{NEEDS[kind]} is not installed (run tests/infra/install-deps.sh)")
    build(kind)
    print(f"built {kind}")
