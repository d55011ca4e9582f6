#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The time budget against a registry that stalls (a Python socket server that accepts connections
# and never answers), lookups running concurrently under it, a closed port, and a real registry
# over plain HTTP that is only used when named with --insecure-registry.
source "$(dirname "$0")/lib.sh"

start_stall

ms() { date +%s%3N; }
t0=$(ms)
rc=0
err=$("$KILT" image inspect --timeout 1500 "$STALL/app:1" 2>&1) || rc=$?
t1=$(ms)
expect_eq "stalled registry exits 1" "$rc" 1
expect_contains "stalled registry: timeout named" "$err" "kilt: image $STALL/app:1: GET https://$STALL/v2/app/manifests/1: timed out (time budget 1500 ms)"
# The stall never answers: only the budget ends the lookup. The upper bound leaves room for a slow,
# loaded machine (and sanitizers) and still fails if the budget is not what stops it.
if [ $((t1 - t0)) -ge 1400 ] && [ $((t1 - t0)) -lt 6000 ]; then pass "budget kept ($((t1 - t0)) ms)"; else fail "budget: took $((t1 - t0)) ms for 1500"; fi

# Four stalled lookups, each spending its whole budget of 3000 ms: one after the other they cannot
# take less than 4 x 3000 ms, however fast the machine, so finishing under that proves they ran
# concurrently, with 9 s left for a slow, loaded machine (a fixed bound near one budget did not).
t0=$(ms)
"$KILT" image inspect --timeout 3000 --concurrency 4 "$STALL/a:1" "$STALL/b:1" "$STALL/c:1" "$STALL/d:1" >/dev/null 2>"$WORK/four" || true
t1=$(ms)
expect_eq "four stalled lookups, four errors" "$(grep -c 'timed out (time budget 3000 ms)' "$WORK/four")" 4
if [ $((t1 - t0)) -ge 2900 ] && [ $((t1 - t0)) -lt 12000 ]; then pass "concurrent budgets ($((t1 - t0)) ms, serial >= 12000)"; else fail "four lookups took $((t1 - t0)) ms (serial would take >= 12000)"; fi

# A timeout is remembered across lookups of one process for 10 s (not the 30 s of answers about
# the image), and the repeated message says so.
: >"$STALL_LOG"
"$KILT" image inspect --timeout 1000 --repeat 2 "$STALL/again:1" >/dev/null 2>"$WORK/again" || true
expect_eq "a timeout remembered: one connection for two lookups" "$(stall_connections)" 1
expect_contains "a remembered timeout says how long it is kept" "$(tail -1 "$WORK/again")" \
  "timed out (time budget 1000 ms): Connection timed out after"
expect_contains "... 10 s, the time it is really kept" "$(tail -1 "$WORK/again")" "(failure remembered for 10s)"

CLOSED=127.0.0.1:$(free_port)
err=$("$KILT" image inspect --timeout 3000 "$CLOSED/app:1" 2>&1) || true
expect_contains "closed port" "$err" "kilt: image $CLOSED/app:1: GET https://$CLOSED/v2/app/manifests/1: Failed to connect to 127.0.0.1 port"

make_ca
start_registry plain "" plain
build_images
push both "$REG/kilt/both:1" --dest-tls-verify=false
push ep "$REG/kilt/ep:1" --dest-tls-verify=false
rc=0
err=$("$KILT" image inspect "$REG/kilt/both:1" 2>&1) || rc=$?
expect_eq "plain HTTP registry without --insecure-registry exits 1" "$rc" 1
expect_contains "plain HTTP registry: TLS error with the fix" "$err" "--insecure-registry $REG to skip verification"
out=$("$KILT" image inspect -o json --insecure-registry "$REG" "$REG/kilt/both:1")
expect_eq "plain HTTP registry named insecure" "$(jget "$out" '[d["entrypoint"], d["command"]]')" '[["/init"],["serve"]]'
# 1 TLS attempt + manifest + config, then manifest + config: HTTP is remembered for the host.
"$KILT" image inspect --insecure-registry "$REG" --stats --concurrency 1 "$REG/kilt/both:1" "$REG/kilt/ep:1" >/dev/null 2>"$WORK/stats"
expect_contains "plain HTTP remembered for the host" "$(cat "$WORK/stats")" "requests=5 "

finish
