#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A registry stand-in (Python http.server, plain HTTP on loopback) that answers with manifests a
# real registry would never serve: bytes that do not match Docker-Content-Digest, and a body that
# is not a manifest. kilt must refuse both with a clear error, exit 1, and leak nothing on the way:
# valgrind checks that where the binary is not an ASan build (LeakSanitizer misses these leaks,
# the lost pointer still sits in a dead stack frame).
source "$(dirname "$0")/lib.sh"

PORT=$(free_port)
cat >"$WORK/standin.py" <<'PY'
import http.server, sys

GOOD = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}'
ZERO = "sha256:" + "0" * 64


class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/v2/bad/digest/manifests/1":
            body, headers = GOOD, {"Docker-Content-Digest": ZERO}
        elif self.path == "/v2/bad/body/manifests/1":
            body, headers = b"this is not a manifest", {}
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$WORK/standin.py" "$PORT" 2>"$WORK/standin.err" &
PIDS+=($!)
wait_port "$PORT"

export HOME=$WORK/home
mkdir -p "$HOME"
# The lookups' time budgets are the test's own timeout (ctest's, 180 s): under valgrind on a loaded
# machine the first attempt (HTTPS, before kilt falls back to plain HTTP) could spend the default
# 15 s, and the error would then be that instead of the refusal checked here.
K=("$KILT" image inspect --insecure-registry "127.0.0.1:$PORT" --image-timeout 170000
  --image-budget 170000)
# (ldd read whole: grep -q would close the pipe early and, under pipefail, fail the check.)
linked=$(ldd "$KILT" 2>/dev/null || true)
if command -v valgrind >/dev/null 2>&1 && [[ $linked != *libasan* ]]; then
  K=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 "${K[@]}")
else
  say "note: leaks are not checked here (no valgrind, or an ASan build)"
fi

# lookup REPOSITORY: looks it up in the background (both at once: under valgrind each takes
# seconds of CPU), its output and exit status into $WORK/<repository>.{out,rc}; adds the job to
# LOOKUPS.
LOOKUPS=()
lookup() {
  local f=$WORK/${1//\//-}
  {
    rc=0
    "${K[@]}" "127.0.0.1:$PORT/$1:1" >"$f.out" 2>&1 || rc=$?
    echo "$rc" >"$f.rc"
  } &
  LOOKUPS+=($!)
}
# refused WHAT REPOSITORY NEEDLE: the lookup exited 1 with NEEDLE in its message.
refused() {
  local f=$WORK/${2//\//-}
  expect_eq "$1 exits 1" "$(cat "$f.rc")" 1
  expect_contains "$1 is named" "$(cat "$f.out")" "$3"
}
lookup bad/digest
lookup bad/body
wait "${LOOKUPS[@]}"
refused "digest mismatch" bad/digest "does not match the content"
refused "malformed manifest" bad/body "manifest 1"
finish
