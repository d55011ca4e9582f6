# SPDX-License-Identifier: Apache-2.0
# Sourced by the macro's shell tests: aws-lambda-rie (built by tests/infra/peer-lambda-rie.sh)
# started on loopback with a given bootstrap as the function's runtime. The sourcing script sets
# `src` (the source tree) and stops $rie_pid when it exits.

# start_rie BOOTSTRAP LOG: starts the emulator with BOOTSTRAP, its output in LOG, and waits (up to
# 10 s) until it listens; sets rie_pid and RIE_INVOKE, the URL invocations are POSTed to.
start_rie() {
  local rie=${KILT_PEER_BIN:-/opt/kilt/bin}/aws-lambda-rie p1 p2 _
  if ! [ -x "$rie" ]; then
    bash "$src/tests/infra/peer-lambda-rie.sh" || { echo "aws-lambda-rie unavailable" >&2; exit 1; }
  fi
  p1=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  p2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$rie" --runtime-interface-emulator-address "127.0.0.1:$p1" --runtime-api-address "127.0.0.1:$p2" \
    "$1" >"$2" 2>&1 &
  rie_pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p1") 2>/dev/null && break
    sleep 0.1
  done
  RIE_INVOKE=http://127.0.0.1:$p1/2015-03-31/functions/function/invocations
}
