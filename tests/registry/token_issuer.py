# SPDX-License-Identifier: Apache-2.0
# A small token issuer for the registry's `auth: token` mode, run by test_token.sh: answers
# GET /token?service=..&scope=repository:NAME:pull over HTTPS with a JWT (RS256, x5c header) signed
# by the openssl CLI with a key whose certificate is the registry's rootcertbundle. Users with the
# right password get what they ask for; anonymous callers get pull on public/* only; a wrong
# password gets 401. Every request is appended to a log so the test can count them.
# Usage: token_issuer.py PORT CERT KEY SIGN_CERT SIGN_KEY LOG ISSUER USER:PASSWORD
import base64, http.server, json, os, ssl, subprocess, sys, time, urllib.parse

port, cert, key, sign_cert, sign_key, log, issuer, userpass = sys.argv[1:9]
user, password = userpass.split(":", 1)
der = subprocess.run(["openssl", "x509", "-in", sign_cert, "-outform", "DER"],
                     check=True, capture_output=True).stdout


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(sub, service, access):
    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
    claims = {"iss": issuer, "sub": sub, "aud": service, "exp": now + 300, "nbf": now - 10,
              "iat": now, "jti": os.urandom(8).hex(), "access": access}
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(claims).encode())).encode()
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", sign_key],
                         input=signing_input, check=True, capture_output=True).stdout
    return signing_input.decode() + "." + b64url(sig)


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def reply(self, code, doc):
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        auth = self.headers.get("Authorization", "")
        with open(log, "a") as f:
            f.write("%s %s %s\n" % (u.path, "auth" if auth else "anon", q.get("scope", [""])[0]))
        if u.path != "/token":
            return self.reply(404, {"details": "not found"})
        sub = ""
        if auth:
            ok = False
            if auth.startswith("Basic "):
                try:
                    u_, p_ = base64.b64decode(auth[6:]).decode().split(":", 1)
                    ok = (u_, p_) == (user, password)
                except Exception:
                    ok = False
            if not ok:
                return self.reply(401, {"details": "invalid username or password"})
            sub = user
        access = []
        for scope in q.get("scope", []):
            parts = scope.split(":")
            if len(parts) != 3 or parts[0] != "repository":
                continue
            if sub or parts[1].startswith("public/"):
                access.append({"type": "repository", "name": parts[1],
                               "actions": parts[2].split(",")})
        self.reply(200, {"token": token(sub, q.get("service", [""])[0], access),
                         "expires_in": 300})


srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
