# SPDX-License-Identifier: Apache-2.0
# A stand-in for ECR's GetAuthorizationToken endpoint, run by test_ecr.sh (the real ECR cannot be
# reached here). It checks the request the way AWS does: target header, then the SigV4 signature
# recomputed here, independently of kilt's signer, from the received method, path, query, signed
# headers and body with the known secret key; a session token must be signed too. On success it
# answers with base64("AWS:<password>") for the registry's htpasswd user AWS.
# Usage: ecr_standin.py PORT CERT KEY ACCESS_KEY SECRET_KEY SESSION_TOKEN PASSWORD LOG
import base64, hashlib, hmac, http.server, json, ssl, sys, time

port, cert, key, access_key, secret_key, session_token, password, log = sys.argv[1:9]


def h(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def reply(self, code, doc):
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def deny(self, typ, msg):
        with open(log, "a") as f:
            f.write("deny %s\n" % typ)
        self.reply(400 if typ.endswith("Exception") and "Signature" not in typ else 403,
                   {"__type": typ, "message": msg})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("X-Amz-Target") != \
                "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken":
            return self.deny("UnknownOperationException", "unknown target")
        auth = self.headers.get("Authorization", "")
        try:
            algo, rest = auth.split(" ", 1)
            fields = dict(p.strip().split("=", 1) for p in rest.split(","))
            ak, date, region, service, term = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
        except Exception:
            return self.deny("IncompleteSignatureException", "malformed Authorization")
        if algo != "AWS4-HMAC-SHA256" or service != "ecr" or term != "aws4_request":
            return self.deny("IncompleteSignatureException", "bad scope")
        if ak != access_key:
            return self.deny("UnrecognizedClientException",
                             "The security token included in the request is invalid.")
        if session_token and ("x-amz-security-token" not in signed or
                              self.headers.get("X-Amz-Security-Token") != session_token):
            return self.deny("UnrecognizedClientException", "session token missing or unsigned")
        amz_date = self.headers.get("X-Amz-Date", "")
        canonical = "\n".join([
            self.command, "/", "",
            "".join("%s:%s\n" % (n, " ".join(self.headers.get(n, "").split())) for n in signed),
            ";".join(signed), hashlib.sha256(body).hexdigest()])
        scope = "/".join([date, region, service, term])
        sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
        k = h(h(h(h(("AWS4" + secret_key).encode(), date), region), service), "aws4_request")
        want = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, fields.get("Signature", "")):
            return self.deny("InvalidSignatureException",
                             "The request signature we calculated does not match the signature "
                             "you provided.")
        with open(log, "a") as f:
            f.write("token %s\n" % region)
        tok = base64.b64encode(("AWS:" + password).encode()).decode()
        self.reply(200, {"authorizationData": [{
            "authorizationToken": tok, "expiresAt": time.time() + 43200,
            "proxyEndpoint": "https://example"}]})


srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
