#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every symbol libkilt exports starts with kilt_ (STYLE.md names; the library links into front
# ends and other programs without clashing). Usage: exports.sh LIBKILT FIXTURE
# LIBKILT must export nothing else; FIXTURE (tests/lib/exports_fixture.c) exports two names
# without the prefix, and the check must name exactly those two: it can fail.
set -euo pipefail
lib=$1 fixture=$2

# Prints the defined global symbols of an archive that do not start with kilt_ (leaving out the
# __odr_asan.<name> companions AddressSanitizer makes for each global variable: the asan suite).
unprefixed() {
  nm -g --defined-only "$1" | awk 'NF == 3 && $3 !~ /^kilt_/ && $3 !~ /^__odr_asan\./ { print $3 }' | sort -u
}

total=$(nm -g --defined-only "$lib" | awk 'NF == 3' | wc -l)
if [ "$total" -lt 100 ]; then
  echo "FAIL: nm lists only $total exported symbols in $lib: not the library?" >&2
  exit 1
fi
bad=$(unprefixed "$lib")
if [ -n "$bad" ]; then
  echo "FAIL: $lib exports symbols without the kilt_ prefix (rename them kilt_... or make them static):" >&2
  echo "$bad" >&2
  exit 1
fi

caught=$(unprefixed "$fixture" | tr '\n' ' ')
if [ "$caught" != "leaked_name leaked_table " ]; then
  echo "FAIL: the check should name leaked_name and leaked_table in $fixture, named: '$caught'" >&2
  exit 1
fi
echo "exports: $total symbols in $(basename "$lib"), all kilt_-prefixed; the fixture's $caught caught"
