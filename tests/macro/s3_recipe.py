#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""RecipeUrl s3://bucket/key: `kilt cfn-macro --event` fetches the recipe with SigV4 signed by the
function's role credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).

No real S3 can run here, so this is a stand-in, and it says so: a local HTTPS server (path-style,
KILT_S3_ENDPOINT) that recomputes each request's signature with botocore's S3SigV4Auth -- AWS's
own signer, independent of kilt's -- over exactly the headers the request says it signed, and
answers 403 SignatureDoesNotMatch like S3 when they differ. Runs under the cfn-lint venv's
python (tests/infra/peer-cfn-lint.sh), which has botocore.
"""
import hashlib
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

KILT = os.environ["KILT"]
TMP = tempfile.mkdtemp(prefix="kilt-macro-s3.")
ACCESS, SECRET, TOKEN, REGION = "AKIAKILTTEST", "kilt/secret+key", "session-token-1", "eu-west-1"
RECIPE = b"""deploy {
  entrypoint: [ /agent/run, "--" ] ${original.entrypoint}
  command: ${original.command}
  mount: [ { name: agent, image: "example.com/agent:1", volumes: [ /agent ] } ]
}
"""
OBJECTS = {"/recipes/agent/mini.kilt.conf": RECIPE}
SEEN = []


class S3StandIn(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        m = re.match(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/s3/aws4_request, "
                     r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$", auth)
        if not m or m.group(1) != ACCESS or m.group(3) != REGION:
            return self.fail(403, "AccessDenied", f"bad Authorization: {auth!r}")
        signed = m.group(4).split(";")
        headers = {h: self.headers[h] for h in signed if self.headers.get(h) is not None}
        if "host" not in signed or "x-amz-date" not in signed or len(headers) != len(signed):
            return self.fail(403, "AccessDenied", "unsigned or missing headers")
        if "x-amz-security-token" not in signed or self.headers["x-amz-security-token"] != TOKEN:
            return self.fail(403, "InvalidToken", "session token not signed")
        req = AWSRequest(method="GET", url=f"https://{self.headers['host']}{self.path}",
                         headers=headers)
        req.context["timestamp"] = self.headers["x-amz-date"]
        signer = S3SigV4Auth(Credentials(ACCESS, SECRET, TOKEN), "s3", REGION)
        want = signer.signature(signer.string_to_sign(req, signer.canonical_request(req)), req)
        if want != m.group(5):
            return self.fail(403, "SignatureDoesNotMatch", "signature mismatch")
        SEEN.append(self.path)
        body = OBJECTS.get(self.path[len("/kilt-recipes"):]) if self.path.startswith(
            "/kilt-recipes/") else None
        if body is None:
            return self.fail(404, "NoSuchKey", self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def fail(self, status, code, msg):
        body = f"<Error><Code>{code}</Code><Message>{msg}</Message></Error>".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def event(params=None):
    frag = {"Resources": {"Web": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
        "RequiresCompatibilities": ["FARGATE"], "NetworkMode": "awsvpc", "Cpu": "256",
        "Memory": "512", "ContainerDefinitions": [{
            "Name": "app", "Image": "nginx:1.27", "Essential": True,
            "EntryPoint": ["/docker-entrypoint.sh"], "Command": ["nginx"]}]}}}}
    return {"requestId": "s3-1", "region": REGION, "accountId": "1", "params": params or {},
            "templateParameterValues": {}, "fragment": frag}


class S3Recipe(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cert, key = os.path.join(TMP, "cert.pem"), os.path.join(TMP, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True, capture_output=True)
        cls.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), S3StandIn)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        cls.srv.socket = ctx.wrap_socket(cls.srv.socket, server_side=True)
        threading.Thread(target=cls.srv.serve_forever, daemon=True).start()
        cls.env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS, AWS_SECRET_ACCESS_KEY=SECRET,
                       AWS_SESSION_TOKEN=TOKEN, AWS_REGION=REGION, SSL_CERT_FILE=cert,
                       KILT_S3_ENDPOINT=f"https://127.0.0.1:{cls.srv.server_address[1]}")

    @classmethod
    def tearDownClass(cls):
        cls.srv.shutdown()

    def run_macro(self, params, **env):
        path = os.path.join(TMP, "event.json")
        with open(path, "w") as f:
            json.dump(event(params), f)
        p = subprocess.run([KILT, "cfn-macro", "--event", path], capture_output=True, text=True,
                           env=dict(self.env, **env))
        return json.loads(p.stdout)

    def test_signed_fetch_and_sha256(self):
        url = "s3://kilt-recipes/recipes/agent/mini.kilt.conf"
        r = self.run_macro({"RecipeUrl": url,
                            "RecipeSha256": hashlib.sha256(RECIPE).hexdigest()})
        self.assertEqual(r["status"], "success", r.get("errorMessage"))
        ep = r["fragment"]["Resources"]["Web"]["Properties"]["ContainerDefinitions"][0]
        self.assertEqual(ep["EntryPoint"][:2], ["/agent/run", "--"])
        self.assertIn("/kilt-recipes/recipes/agent/mini.kilt.conf", SEEN)
        # without a hash it is accepted too (the bucket is trusted through the role)
        self.assertEqual(self.run_macro({"RecipeUrl": url})["status"], "success")

    def test_wrong_secret_is_refused_by_the_signature_check(self):
        r = self.run_macro({"RecipeUrl": "s3://kilt-recipes/recipes/agent/mini.kilt.conf"},
                           AWS_SECRET_ACCESS_KEY="not-the-secret")
        self.assertEqual(r["status"], "failure")
        self.assertIn("HTTP 403", r["errorMessage"])
        self.assertIn("SignatureDoesNotMatch", r["errorMessage"])

    def test_missing_object(self):
        r = self.run_macro({"RecipeUrl": "s3://kilt-recipes/recipes/none.conf"})
        self.assertEqual(r["status"], "failure")
        self.assertIn("s3://kilt-recipes/recipes/none.conf", r["errorMessage"])
        self.assertIn("HTTP 404", r["errorMessage"])

    def test_key_with_empty_or_dot_segments_is_refused_clearly(self):
        # S3 signs the path as sent, while curl and the SigV4 rules kilt signs by fold "//", "."
        # and "..": such keys must get a clear error, not a 403 SignatureDoesNotMatch.
        for key in ("recipes//mini.kilt.conf", "recipes/./mini.kilt.conf", "a/../mini.kilt.conf"):
            with self.subTest(key=key):
                r = self.run_macro({"RecipeUrl": f"s3://kilt-recipes/{key}"})
                self.assertEqual(r["status"], "failure")
                self.assertIn(key, r["errorMessage"])
                self.assertIn("empty, '.' or '..' segment", r["errorMessage"])

    def test_no_credentials(self):
        r = self.run_macro({"RecipeUrl": "s3://kilt-recipes/recipes/agent/mini.kilt.conf"},
                           AWS_ACCESS_KEY_ID="")
        self.assertEqual(r["status"], "failure")
        self.assertIn("no AWS credentials", r["errorMessage"])


if __name__ == "__main__":
    print("s3_recipe: S3 is a stand-in here (no real S3 can run); signatures are verified with "
          "botocore", file=sys.stderr)
    try:
        prog = unittest.main(verbosity=2, exit=False)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(0 if prog.result.wasSuccessful() else 1)
