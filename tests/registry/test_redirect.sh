#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Redirects are held to the TLS policy hop by hop: a plain-HTTP registry named insecure cannot
# send kilt to another plain-HTTP host that is not, and the Authorization header never follows a
# redirect to another host. Stand-ins (Python http.server on loopback): no real registry can be
# made to redirect to an arbitrary host, which is what this checks.
source "$(dirname "$0")/lib.sh"

APORT=$(free_port)
BPORT=$(free_port)
python3 - "$APORT" "$BPORT" "$WORK/b.log" <<'PY' 2>"$WORK/standin.err" &
import http.server, sys, threading
aport, bport, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

class A(http.server.BaseHTTPRequestHandler):
    """The insecure registry: asks for basic credentials, then redirects every manifest to
    localhost:B over plain HTTP."""
    def log_message(self, *a): pass
    def do_GET(self):
        if self.headers.get("Authorization") is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="a"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(307)
        self.send_header("Location", f"http://localhost:{bport}{self.path}")
        self.send_header("Content-Length", "0")
        self.end_headers()

class B(http.server.BaseHTTPRequestHandler):
    """The other plain-HTTP host: logs what reaches it, has nothing."""
    def log_message(self, *a): pass
    def do_GET(self):
        with open(log, "a") as f:
            f.write(f"{self.path} auth={'yes' if self.headers.get('Authorization') else 'no'}\n")
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"nothing here"}]}'
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

servers = [http.server.ThreadingHTTPServer(("127.0.0.1", aport), A),
           http.server.ThreadingHTTPServer(("127.0.0.1", bport), B)]
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
servers[0].serve_forever()
PY
PIDS+=($!)
wait_port "$APORT"
wait_port "$BPORT"
: >"$WORK/b.log"
A=127.0.0.1:$APORT
printf '{"auths":{"%s":{"auth":"%s"}}}' "$A" "$(printf 'u:secret' | base64 -w0)" >"$WORK/auth.json"
export HOME=$WORK/home
mkdir -p "$HOME"
unset DOCKER_CONFIG

rc=0
err=$("$KILT" image inspect --auth-file "$WORK/auth.json" --insecure-registry "$A" "$A/app:1" 2>&1) || rc=$?
expect_eq "redirect to an unlisted plain-HTTP host: refused" "$rc" 1
expect_contains "redirect refused: says where and why" "$err" \
  "refusing plain HTTP to localhost:$BPORT (add --insecure-registry localhost:$BPORT to allow it)"
expect_eq "redirect refused: the other host got nothing" "$(cat "$WORK/b.log")" ""

: >"$WORK/b.log"
rc=0
err=$("$KILT" image inspect --auth-file "$WORK/auth.json" --insecure-registry "$A" \
  --insecure-registry "localhost:$BPORT" "$A/app:1" 2>&1) || rc=$?
expect_eq "redirect to a listed plain-HTTP host: followed" "$(cat "$WORK/b.log")" \
  "/v2/app/manifests/1 auth=no"
expect_contains "redirect followed: the other host's answer" "$err" "nothing here"
finish
