#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kilt loads libcurl on first use (src/libcurl_loader.c). When it cannot, an image lookup must fail
# like any other lookup: one clear error and exit 1, never an abort. A stand-in libcurl.so.4 with
# no functions in it, found first through LD_LIBRARY_PATH, makes the load fail.
source "$(dirname "$0")/lib.sh"
need cc

mkdir -p "$WORK/lib" "$WORK/home"
cc -shared -o "$WORK/lib/libcurl.so.4" -x c /dev/null
export HOME=$WORK/home

set +e
out=$(LD_LIBRARY_PATH=$WORK/lib "$KILT" image inspect 127.0.0.1:9/kilt/none:1 2>&1)
rc=$?
set -e
expect_eq "no libcurl: exit status" "$rc" 1
expect_contains "no libcurl: the load failure is named" "$out" "libcurl"
expect_contains "no libcurl: the lookup is named" "$out" "image 127.0.0.1:9/kilt/none:1"
finish
