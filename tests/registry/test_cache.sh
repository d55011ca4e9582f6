#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The image cache on disk in a directory others could share: a directory others may write into
# is refused (unless sticky and the user's own), links planted at the entry's name or at a
# temporary file's name are never followed (the file they point to stays as it was), and an entry
# the user did not write is not believed. A real registry (plain HTTP on loopback) answers.
source "$(dirname "$0")/lib.sh"

start_registry cache "" plain
build_images
push cmd "$REG/kilt/cmd:1" --dest-tls-verify=false
digest=$(layout_digest cmd)
REF=$REG/kilt/cmd@$digest
K=("$KILT" image inspect --insecure-registry "$REG" -o json)

# learn the entry's file name in a clean directory
mkdir -m 0700 "$WORK/learn"
"${K[@]}" --cache-dir "$WORK/learn" "$REF" >/dev/null
entry=$(cd "$WORK/learn" && ls)
expect_eq "one entry by digest" "$(printf '%s\n' "$entry" | wc -l)" 1
expect_eq "the entry is private to the user" "$(stat -c %a "$WORK/learn/$entry")" 600

# a directory others may write into is refused, with the reason
for mode in 0777 0775 0757; do
  mkdir -m "$mode" "$WORK/shared-$mode"
  rc=0
  err=$("${K[@]}" --cache-dir "$WORK/shared-$mode" "$REF" 2>&1 >/dev/null) || rc=$?
  expect_eq "mode $mode: refused" "$rc" 1
  expect_contains "mode $mode: says why" "$err" "writable by group or others"
  expect_eq "mode $mode: nothing written" "$(ls -A "$WORK/shared-$mode")" ""
done
if [ "$(id -u)" -eq 0 ]; then
  mkdir -m 0755 "$WORK/theirs"
  chown 65534 "$WORK/theirs"
  rc=0
  err=$("${K[@]}" --cache-dir "$WORK/theirs" "$REF" 2>&1 >/dev/null) || rc=$?
  expect_eq "another user's directory: refused" "$rc" 1
  expect_contains "another user's directory: says why" "$err" "owned by another user"
else
  say "SKIPPED (loudly): a directory owned by another user (needs root to make one)"
fi
# a sticky directory of the user's own is accepted (others can add names but not replace these)
mkdir -m 1777 "$WORK/sticky"
out=$("${K[@]}" --cache-dir "$WORK/sticky" "$REF")
expect_eq "sticky own directory: accepted" "$(jget "$out" 'd["command"]')" '["/bin/sh","-c","echo hi"]'
expect_eq "sticky own directory: entry written" "$(ls "$WORK/sticky")" "$entry"

# planted links: at the entry's name and at every name a predictable temporary file could take
# (the old "<entry>.<pid>.tmp": the shell's pid is kilt's after exec)
echo precious >"$WORK/victim"
mkdir -m 0700 "$WORK/planted"
ln -s "$WORK/victim" "$WORK/planted/$entry"
sh -c 'ln -s "$1" "$2/$3.$$.tmp"; shift 3; exec "$@"' sh "$WORK/victim" "$WORK/planted" "$entry" \
  "${K[@]}" --cache-dir "$WORK/planted" "$REF" >"$WORK/planted.out"
expect_eq "planted links: the linked file is untouched" "$(cat "$WORK/victim")" precious
expect_eq "planted links: the facts are the registry's" \
  "$(jget "$(cat "$WORK/planted.out")" 'd["command"]')" '["/bin/sh","-c","echo hi"]'
if [ -L "$WORK/planted/$entry" ]; then
  fail "the link at the entry's name was kept"
else
  expect_eq "the entry replaced the link (rename, not a write through it)" \
    "$(stat -c %F "$WORK/planted/$entry")" "regular file"
fi

# an entry the user did not write (another user's, in a sticky directory) is not believed, nor
# one reached through a link
if [ "$(id -u)" -eq 0 ]; then
  mkdir -m 1777 "$WORK/forged"
  python3 - "$WORK/learn/$entry" "$WORK/forged/$entry" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["value"]["command"] = ["/forged"]
json.dump(d, open(sys.argv[2], "w"))
PY
  chown 65534 "$WORK/forged/$entry"
  before=$(requests_to_v2)
  out=$("${K[@]}" --cache-dir "$WORK/forged" "$REF")
  after=$(requests_to_v2)
  expect_eq "another user's entry: not believed" "$(jget "$out" 'd["command"]')" '["/bin/sh","-c","echo hi"]'
  expect_eq "another user's entry: the registry was asked" "$((after > before))" 1
else
  say "SKIPPED (loudly): an entry owned by another user (needs root to make one)"
fi
mkdir -m 0700 "$WORK/linked"
python3 - "$WORK/learn/$entry" "$WORK/forged-own.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["value"]["command"] = ["/forged"]
json.dump(d, open(sys.argv[2], "w"))
PY
ln -s "$WORK/forged-own.json" "$WORK/linked/$entry"
out=$("${K[@]}" --cache-dir "$WORK/linked" "$REF")
expect_eq "an entry behind a link: not read" "$(jget "$out" 'd["command"]')" '["/bin/sh","-c","echo hi"]'

# the cache still works: a second process answers from disk without a request
before=$(requests_to_v2)
out=$("${K[@]}" --cache-dir "$WORK/learn" "$REF")
after=$(requests_to_v2)
expect_eq "own entry: answered from disk" "$((after - before))" 0
expect_eq "own entry: facts" "$(jget "$out" 'd["command"]')" '["/bin/sh","-c","echo hi"]'
finish
