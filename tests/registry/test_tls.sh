#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A real registry over TLS (test CA, anonymous pull): exact facts of images built with umoci, the
# platform choice in a hand-made OCI index, digest pinning, the cache (requests counted in the
# registry's own access log), the negative cache, the disk cache, TLS policy and error messages.
source "$(dirname "$0")/lib.sh"

make_ca
start_registry anon ""
push_images kilt ep cmd both neither env user amd multi

K=("$KILT" image inspect --ca-file "$CA")
facts() { "${K[@]}" -o json "$@"; }

# --- exact facts ------------------------------------------------------------------------------
check_facts() {
  local tag=$1 ep=$2 cmd=$3 out
  out=$(facts "$REG/kilt/$tag:1")
  expect_eq "$tag entrypoint" "$(jget "$out" 'd["entrypoint"]')" "$ep"
  expect_eq "$tag command" "$(jget "$out" 'd["command"]')" "$cmd"
}
check_facts ep '["/bin/app","--flag"]' '[]'
check_facts cmd '[]' '["/bin/sh","-c","echo hi"]'
check_facts both '["/init"]' '["serve"]'
check_facts neither '[]' '[]'
out=$(facts "$REG/kilt/env:1")
expect_eq "env" "$(jget "$out" '[e for e in d["environment"] if e[0] in "AB"]')" '["A=1","B=x y=z"]'
out=$(facts "$REG/kilt/user:1")
expect_eq "user" "$(jget "$out" '[d["user"], d["working_dir"], d["os"], d["architecture"]]')" \
  '["1000:1000","/srv/app","linux","amd64"]'
expect_eq "reference is canonical" "$(jget "$out" 'd["reference"]')" "\"$REG/kilt/user:1\""
want=$(layout_digest user)
expect_eq "digest of a single manifest" "$(jget "$out" '[d["digest"], d["manifest_digest"]]')" \
  "[\"$want\",\"$want\"]"

# --- platforms --------------------------------------------------------------------------------
amd=$(layout_digest amd)
arm=$(layout_digest arm)
multi=$(layout_digest multi)
out=$(facts "$REG/kilt/multi:1")
expect_eq "index: default platform is linux/amd64" \
  "$(jget "$out" '[d["digest"], d["manifest_digest"], d["platform"], d["command"]]')" \
  "[\"$multi\",\"$amd\",\"linux/amd64\",[\"amd-cmd\"]]"
out=$(facts --platform linux/arm64 "$REG/kilt/multi:1")
expect_eq "index: linux/arm64 picks the arm64 manifest" \
  "$(jget "$out" '[d["manifest_digest"], d["architecture"], d["command"]]')" \
  "[\"$arm\",\"arm64\",[\"arm-cmd\"]]"
out=$(facts --platform linux/aarch64/v8 "$REG/kilt/multi:1")
expect_eq "index: aarch64/v8 is arm64" "$(jget "$out" 'd["manifest_digest"]')" "\"$arm\""
rc=0
err=$("${K[@]}" --platform linux/s390x "$REG/kilt/multi:1" 2>&1) || rc=$?
expect_eq "missing platform exits 1" "$rc" 1
expect_eq "missing platform message" "$err" \
  "kilt: image $REG/kilt/multi:1: platform linux/s390x missing from the image index (it has: linux/amd64, linux/arm64/v8)"
rc=0
err=$("${K[@]}" --platform linux/arm64 "$REG/kilt/ep:1" 2>&1) || rc=$?
expect_eq "single-platform image, other platform" "$err" \
  "kilt: image $REG/kilt/ep:1: platform linux/arm64 missing: the image is single-platform linux/amd64"

# --- digests ----------------------------------------------------------------------------------
out=$(facts "$REG/kilt/multi@$multi")
expect_eq "pinned by index digest" "$(jget "$out" '[d["digest"], d["manifest_digest"]]')" \
  "[\"$multi\",\"$amd\"]"
out=$(facts --platform linux/arm64 "$REG/kilt/multi:1@$arm")
expect_eq "digest wins over tag" "$(jget "$out" '[d["digest"], d["command"]]')" \
  "[\"$arm\",[\"arm-cmd\"]]"
bogus=sha256:$(printf 'nothing' | sha256sum | cut -d' ' -f1)
rc=0
err=$("${K[@]}" "$REG/kilt/ep@$bogus" 2>&1) || rc=$?
expect_eq "unknown digest" "$err" \
  "kilt: image $REG/kilt/ep@$bogus: manifest $bogus: not found (HTTP 404 from $REG): MANIFEST_UNKNOWN: manifest unknown"

# --- errors -----------------------------------------------------------------------------------
rc=0
err=$("${K[@]}" "$REG/kilt/ep:nope" 2>&1) || rc=$?
expect_eq "unknown tag" "$err" \
  "kilt: image $REG/kilt/ep:nope: manifest nope: not found (HTTP 404 from $REG): MANIFEST_UNKNOWN: manifest unknown"
err=$("${K[@]}" "$REG/kilt/absent:1" 2>&1) || true
expect_eq "unknown repository" "$err" \
  "kilt: image $REG/kilt/absent:1: manifest 1: not found (HTTP 404 from $REG): MANIFEST_UNKNOWN: manifest unknown"
err=$("${K[@]}" "$REG/Kilt/ep:1" 2>&1) || true
expect_contains "bad reference" "$err" "repository component 'Kilt' must be lower-case"
rc=0
err=$("$KILT" image inspect "$REG/kilt/ep:1" 2>&1) || rc=$?
expect_eq "untrusted CA exits 1" "$rc" 1
expect_contains "untrusted CA says so" "$err" "TLS: SSL certificate problem"
expect_contains "untrusted CA says how to fix" "$err" "use --ca-file for a private CA, or --insecure-registry $REG"
out=$("$KILT" image inspect -o json --insecure-registry "$REG" "$REG/kilt/ep:1")
expect_eq "--insecure-registry skips verification" "$(jget "$out" 'd["entrypoint"]')" '["/bin/app","--flag"]'
out=$(KILT_INSECURE_REGISTRIES="other:1, $REG" "$KILT" image inspect -o json "$REG/kilt/ep:1")
expect_eq "KILT_INSECURE_REGISTRIES" "$(jget "$out" 'd["entrypoint"]')" '["/bin/app","--flag"]'
out=$(SSL_CERT_FILE="$CA" "$KILT" image inspect -o json "$REG/kilt/ep:1")
expect_eq "SSL_CERT_FILE names the CA" "$(jget "$out" 'd["entrypoint"]')" '["/bin/app","--flag"]'

# --- cache ------------------------------------------------------------------------------------
before=$(requests_to_v2)
"${K[@]}" --stats --repeat 5 "$REG/kilt/both:1" >/dev/null 2>"$WORK/stats"
after=$(requests_to_v2)
expect_eq "five lookups, one manifest + one config request" "$((after - before))" 2
expect_contains "stats" "$(cat "$WORK/stats")" "requests=2 cache_hits=4"
before=$(requests_to_v2)
"${K[@]}" --concurrency 8 "$REG/kilt/multi:1" "$REG/kilt/multi:1" "$REG/kilt/multi:1" \
  "$REG/kilt/multi:1" >/dev/null
after=$(requests_to_v2)
expect_eq "identical concurrent lookups run once (index + manifest + config)" "$((after - before))" 3
before=$(requests_to_v2)
"${K[@]}" --repeat 4 "$REG/kilt/ep:missing" >/dev/null 2>"$WORK/neg" || true
after=$(requests_to_v2)
expect_eq "negative cache: four failed lookups, one request" "$((after - before))" 1
expect_contains "negative cache says so" "$(tail -1 "$WORK/neg")" "(failure remembered for 30s)"

# LRU: with room for 2 entries (a lookup by tag takes two: tag -> digest, digest -> facts), the
# second round of A B A asks for A and B again: 2 + 2 + 2 requests, then A again is a hit.
before=$(requests_to_v2)
"${K[@]}" --cache-entries 2 --concurrency 1 "$REG/kilt/ep:1" "$REG/kilt/both:1" "$REG/kilt/ep:1" >/dev/null
after=$(requests_to_v2)
expect_eq "LRU eviction" "$((after - before))" 6
before=$(requests_to_v2)
"${K[@]}" --cache-entries 4 --concurrency 1 "$REG/kilt/ep:1" "$REG/kilt/both:1" "$REG/kilt/ep:1" >/dev/null
after=$(requests_to_v2)
expect_eq "LRU with room keeps both" "$((after - before))" 4

# Disk cache: facts by digest survive the process; tags are always asked again.
mkdir -p "$WORK/cache"
"${K[@]}" --cache-dir "$WORK/cache" "$REG/kilt/cmd:1" >/dev/null
cmd=$(layout_digest cmd)
before=$(requests_to_v2)
out=$("${K[@]}" -o json --cache-dir "$WORK/cache" "$REG/kilt/cmd@$cmd")
after=$(requests_to_v2)
expect_eq "disk cache: pinned lookup in a new process makes no request" "$((after - before))" 0
expect_eq "disk cache: facts" "$(jget "$out" 'd["command"]')" '["/bin/sh","-c","echo hi"]'
before=$(requests_to_v2)
"${K[@]}" --cache-dir "$WORK/cache" "$REG/kilt/cmd:1" >/dev/null
after=$(requests_to_v2)
expect_eq "disk cache: a tag costs one manifest request" "$((after - before))" 1

# --- several references, text output ----------------------------------------------------------
out=$("${K[@]}" "$REG/kilt/both:1" "$REG/kilt/user:1")
expect_contains "text output" "$out" "entrypoint:   [\"/init\"]
command:      [\"serve\"]"
expect_contains "text output user" "$out" "user:         1000:1000
working_dir:  /srv/app"

finish
