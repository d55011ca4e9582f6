#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""End-to-end tests of the CloudFormation macro under the real AWS Lambda Runtime Interface
Emulator (aws-lambda-rie, tests/infra/peer-lambda-rie.sh) running the packaged zip's `bootstrap`.

Each emulator instance runs with its own function environment on free loopback ports; events are
sent the way Lambda's Invoke API delivers them (POST .../2015-03-31/functions/function/invocations).
A local HTTPS server (a real TLS peer, openssl-made certificate) serves recipes for RecipeUrl.

Environment: KILT_MACRO_ZIP (the zip), KILT_SOURCE_DIR. Exit 77 (skip, loudly) only when the
emulator cannot be built here.
"""
import base64
import copy
import hashlib
import http.server
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
import zipfile

SRC = os.environ.get("KILT_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
ZIP = os.environ.get("KILT_MACRO_ZIP", "")
RIE = os.path.join(os.environ.get("KILT_PEER_BIN", "/opt/kilt/bin"), "aws-lambda-rie")
TMP = tempfile.mkdtemp(prefix="kilt-macro-rie.")
TASK = os.path.join(TMP, "task")
KILT_LAUNCH = "/kilt/bin/kilt-launch"
SANITIZED = False  # set when the zip bundles libasan


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"aws-lambda-rie exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"aws-lambda-rie did not listen on {port}")


AGENT_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/kilt/falco:0.32.2"


class Rie:
    """One emulator instance (= one warm function instance) with its own environment."""

    def __init__(self, env=None):
        self.env = env or {}

    def __enter__(self):
        self.port = free_port()
        api = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KILT_", "AWS_"))}
        env.update({"AWS_LAMBDA_FUNCTION_TIMEOUT": "30", "LOG_LEVEL": "info"})
        # What the installer's AgentImage parameter sets, for functions on the built-in recipe.
        if not any(k in self.env for k in ("KILT_RECIPE", "KILT_RECIPE_URL", "NO_AGENT_IMAGE")):
            env["KILT_CONFIG_agent_image"] = AGENT_IMAGE
        env.update({k: v for k, v in self.env.items() if k != "NO_AGENT_IMAGE"})
        self.log = open(os.path.join(TMP, f"rie-{self.port}.log"), "w+")
        self.proc = subprocess.Popen(
            [RIE, "--runtime-interface-emulator-address", f"127.0.0.1:{self.port}",
             "--runtime-api-address", f"127.0.0.1:{api}", os.path.join(TASK, "bootstrap")],
            cwd=TASK, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc)
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def invoke_raw(self, body: bytes):
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/2015-03-31/functions/function/invocations",
            data=body, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def invoke(self, event):
        status, body = self.invoke_raw(json.dumps(event).encode())
        if status != 200:
            raise AssertionError(f"invoke: HTTP {status}: {body[:500]!r}")
        return json.loads(body)

    def logs(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()


# ---- templates --------------------------------------------------------------------------------

def task(family, tags=None, image="nginx:1.27", entrypoint=("/docker-entrypoint.sh",),
         command=("nginx", "-g", "daemon off;")):
    c = {"Name": "app", "Image": image, "Essential": True}
    if entrypoint is not None:
        c["EntryPoint"] = list(entrypoint)
    if command is not None:
        c["Command"] = list(command)
    props = {"Family": family, "Cpu": "256", "Memory": "512", "NetworkMode": "awsvpc",
             "RequiresCompatibilities": ["FARGATE"], "ContainerDefinitions": [c]}
    if tags:
        props["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    return {"Type": "AWS::ECS::TaskDefinition", "Properties": props}


def template(**resources):
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}


def event(fragment, params=None, values=None, request_id="req-0001"):
    return {"region": "eu-west-1", "accountId": "123456789012",
            "transformId": "123456789012::Kilt", "requestId": request_id,
            "params": params or {}, "templateParameterValues": values or {},
            "fragment": fragment}


def app(reply, logical):
    return reply["fragment"]["Resources"][logical]["Properties"]["ContainerDefinitions"][0]


def patched(reply, logical):
    return app(reply, logical).get("EntryPoint", [None])[0] == KILT_LAUNCH


def sidecar(reply, logical):
    for c in reply["fragment"]["Resources"][logical]["Properties"]["ContainerDefinitions"]:
        if c["Name"] != "app":
            return c
    return None


TWO_TASKS = template(Tagged=task("tagged", tags={"kilt-include": "true"}), Plain=task("plain"))


# ---- a local HTTPS server for RecipeUrl -------------------------------------------------------

class Recipes(http.server.BaseHTTPRequestHandler):
    files = {}

    def do_GET(self):
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def https_server():
    cert, key = os.path.join(TMP, "cert.pem"), os.path.join(TMP, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recipes)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, cert


MINI_RECIPE = b"""deploy {
  entrypoint: [ /agent/run, "--" ] ${original.entrypoint}
  command: ${original.command}
  mount: [ { name: agent, image: "example.com/agent:1", volumes: [ /agent ], entrypoint: [ /agent/idle ] } ]
}
"""


class MacroUnderRie(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.default = Rie().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.default.__exit__(None, None, None)

    # -- success and the reply's shape

    def test_success_patches_every_fargate_task(self):
        frag = template(Web=task("web"), Logs={"Type": "AWS::Logs::LogGroup"})
        r = self.default.invoke(event(frag, request_id="req-success"))
        self.assertEqual(r["status"], "success", r.get("errorMessage"))
        self.assertEqual(r["requestId"], "req-success")
        self.assertTrue(patched(r, "Web"))
        self.assertEqual(app(r, "Web")["EntryPoint"][-2:], ["--", "/docker-entrypoint.sh"])
        self.assertIn("SYS_PTRACE",
                      json.dumps(app(r, "Web").get("LinuxParameters", {})))
        self.assertIsNotNone(sidecar(r, "Web"))
        self.assertEqual(r["fragment"]["Resources"]["Logs"], {"Type": "AWS::Logs::LogGroup"})
        self.assertNotIn("errorMessage", r)
        # Applying the macro to its own output changes nothing (idempotent).
        again = self.default.invoke(event(r["fragment"]))
        self.assertEqual(again["fragment"], r["fragment"])

    # -- modes and per-stack precedence

    def test_opt_out_and_opt_in(self):
        out = self.default.invoke(event(TWO_TASKS))
        self.assertEqual(out["status"], "success", out.get("errorMessage"))
        self.assertTrue(patched(out, "Tagged") and patched(out, "Plain"))
        ign = template(Ignored=task("ignored", tags={"kilt-ignore": "true"}))
        r = self.default.invoke(event(ign))
        self.assertFalse(patched(r, "Ignored"))
        opt_in = self.default.invoke(event(TWO_TASKS, params={"Mode": "opt-in"}))
        self.assertEqual(opt_in["status"], "success", opt_in.get("errorMessage"))
        self.assertTrue(patched(opt_in, "Tagged"))
        self.assertFalse(patched(opt_in, "Plain"))

    def test_settings_precedence(self):
        env = {"KILT_MODE": "opt-in", "KILT_CONFIG_agent_image": "env.example/agent:1",
               "KILT_CONFIG": json.dumps({"on_timeout": "exit"})}
        mapping = {"KiltSettings": {"Settings": {
            "Mode": "opt-out", "Config": json.dumps({"agent_image": "mapping.example/agent:1"})}}}
        with Rie(env) as rie:
            # environment only
            r = rie.invoke(event(TWO_TASKS))
            self.assertTrue(patched(r, "Tagged"))
            self.assertFalse(patched(r, "Plain"), "KILT_MODE=opt-in ignored")
            self.assertEqual(sidecar(r, "Tagged")["Image"], "env.example/agent:1")
            # the mapping beats the environment
            frag = dict(copy.deepcopy(TWO_TASKS), Mappings=mapping)
            r = rie.invoke(event(frag))
            self.assertEqual(r["status"], "success", r.get("errorMessage"))
            self.assertTrue(patched(r, "Plain"), "Mappings.KiltSettings Mode ignored")
            self.assertEqual(sidecar(r, "Plain")["Image"], "mapping.example/agent:1")
            self.assertEqual(r["fragment"]["Mappings"], mapping)
            # Transform parameters beat the mapping
            r = rie.invoke(event(frag, params={"Mode": "opt-in",
                                               "Config.agent_image": "param.example/agent:1"}))
            self.assertFalse(patched(r, "Plain"), "Transform parameter Mode ignored")
            self.assertEqual(sidecar(r, "Tagged")["Image"], "param.example/agent:1")

    def test_fn_transform_inside_resources(self):
        # Resources: {Fn::Transform: {Name: Kilt, Parameters: {Mode: opt-in}}, ...}: the
        # fragment is the map of sibling resources, and the reply must be that map again.
        resources = copy.deepcopy(TWO_TASKS["Resources"])
        r = self.default.invoke(event(resources, params={"Mode": "opt-in"}))
        self.assertEqual(r["status"], "success", r.get("errorMessage"))
        self.assertEqual(sorted(r["fragment"]), ["Plain", "Tagged"])
        wrapped = {"fragment": {"Resources": r["fragment"]}}
        self.assertTrue(patched(wrapped, "Tagged"))
        self.assertFalse(patched(wrapped, "Plain"))

    def test_parameter_values_decide_tags_and_conditions(self):
        frag = template(Web=task("web"))
        frag["Parameters"] = {"Skip": {"Type": "String", "Default": "none"},
                              "Env": {"Type": "String", "Default": "dev"}}
        frag["Conditions"] = {"IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]}}
        props = frag["Resources"]["Web"]["Properties"]
        props["Tags"] = [{"Key": "kilt-ignore-containers", "Value": {"Fn::Sub": "${Skip}"}}]
        # the tag's value comes from templateParameterValues, not the Default
        r = self.default.invoke(event(frag, values={"Skip": "app", "Env": "prod"}))
        self.assertEqual(r["status"], "success", r.get("errorMessage"))
        self.assertFalse(patched(r, "Web"), "kilt-ignore-containers=${Skip} (app) ignored")
        r = self.default.invoke(event(frag, values={"Skip": "other", "Env": "prod"}))
        self.assertTrue(patched(r, "Web"))
        # the conditions are left for CloudFormation to evaluate
        self.assertEqual(r["fragment"]["Conditions"], frag["Conditions"])

    def test_inline_recipe_text_and_base64(self):
        env = {"KILT_RECIPE": base64.b64encode(MINI_RECIPE).decode()}
        with Rie(env) as rie:
            r = rie.invoke(event(template(Web=task("web"))))
            self.assertEqual(r["status"], "success", r.get("errorMessage"))
            self.assertEqual(app(r, "Web")["EntryPoint"],
                             ["/agent/run", "--", "/docker-entrypoint.sh"])
            # a stack's own recipe text beats the function's
            r = rie.invoke(event(template(Web=task("web")),
                                 params={"RecipeUrl": "builtin:falco", "Config.agent_image": AGENT_IMAGE}))
            self.assertTrue(patched(r, "Web"))

    def test_config_keys_are_checked(self):
        # No made-up default image: without AgentImage the built-in recipe says how to make one.
        with Rie({"NO_AGENT_IMAGE": "1"}) as rie:
            r = rie.invoke(event(template(Web=task("web"))))
            self.assertEqual(r["status"], "failure")
            self.assertIn("recipe falco needs config.agent_image", r["errorMessage"])
            self.assertIn("build-agent-image.sh --falco", r["errorMessage"])
            r = rie.invoke(event(template(Web=task("web")), params={"Config.agent_image": AGENT_IMAGE}))
            self.assertEqual(r["status"], "success", r.get("errorMessage"))
            self.assertEqual(sidecar(r, "Web")["Image"], AGENT_IMAGE)
        # A misspelled key fails the stack, whichever way it came, naming the right one.
        bad_ways = [({}, {"Config.agent_imag": "x/y:1"}, None),
                    ({}, {}, {"KiltSettings": {"Config": {"agentimage": "x/y:1"}}}),
                    ({"KILT_CONFIG_wait_timeot": "5"}, {}, None),
                    ({"KILT_CONFIG": json.dumps({"on_timout": "exit"})}, {}, None)]
        for env, params, mappings in bad_ways:
            with self.subTest(env=env, params=params, mappings=mappings), Rie(env) as rie:
                frag = template(Web=task("web"))
                if mappings:
                    frag["Mappings"] = mappings
                r = rie.invoke(event(frag, params=params))
                self.assertEqual(r["status"], "failure", r)
                self.assertRegex(r["errorMessage"], r"config\.\w+ is not a parameter of recipe falco "
                                 r"\(did you mean '(agent_image|wait_timeout|on_timeout)'\?\); its parameters are: "
                                 r"agent_image, on_timeout, wait_timeout")

    def test_recipe_from_https_with_sha256(self):
        srv, cert = https_server()
        try:
            Recipes.files["/r/mini.conf"] = MINI_RECIPE
            url = f"https://127.0.0.1:{srv.server_address[1]}/r/mini.conf"
            sha = hashlib.sha256(MINI_RECIPE).hexdigest()
            env = {"KILT_RECIPE_URL": url, "KILT_RECIPE_SHA256": sha, "SSL_CERT_FILE": cert}
            with Rie(env) as rie:
                r = rie.invoke(event(template(Web=task("web"))))
                self.assertEqual(r["status"], "success", r.get("errorMessage"))
                self.assertEqual(app(r, "Web")["EntryPoint"][0], "/agent/run")
                # cached across warm invocations: still served after the file is gone
                del Recipes.files["/r/mini.conf"]
                r = rie.invoke(event(template(Web=task("web"))))
                self.assertEqual(r["status"], "success", r.get("errorMessage"))
                # a hash that does not match is refused, naming both hashes
                Recipes.files["/r/other.conf"] = MINI_RECIPE + b"\n# changed\n"
                r = rie.invoke(event(template(Web=task("web")), params={
                    "RecipeUrl": url.replace("mini", "other"), "RecipeSha256": sha}))
                self.assertEqual(r["status"], "failure")
                self.assertIn("sha256 is", r["errorMessage"])
                self.assertIn(sha, r["errorMessage"])
                # a missing file names the URL and the HTTP status
                r = rie.invoke(event(template(Web=task("web")), params={
                    "RecipeUrl": url.replace("mini", "gone"), "RecipeSha256": sha}))
                self.assertEqual(r["status"], "failure")
                self.assertIn("HTTP 404", r["errorMessage"])
        finally:
            srv.shutdown()

    # -- failures a user can act on

    def assertFailure(self, reply, *needles):
        self.assertEqual(reply["status"], "failure", "expected a failure reply")
        self.assertNotIn("fragment", reply, "a failure must not carry a template")
        for n in needles:
            self.assertIn(n, reply["errorMessage"])

    def test_bad_recipe(self):
        r = self.default.invoke(event(template(Web=task("web")),
                                      params={"Recipe": "deploy {\n  entrypoint: [ /a \n"}))
        self.assertFailure(r, "recipe", "Transform parameters")
        self.assertRegex(r["errorMessage"], r":\d+:\d+")  # line:column
        r = self.default.invoke(event(template(Web=task("web")), params={"Mode": "maybe"}))
        self.assertFailure(r, 'Mode "maybe"', "opt-in", "opt-out")
        r = self.default.invoke(event(template(Web=task("web")), params={"Colour": "red"}))
        self.assertFailure(r, 'unknown setting "Colour"')

    def test_malformed_fragment(self):
        self.assertFailure(self.default.invoke(event([1, 2])), "template object")
        self.assertFailure(self.default.invoke(event({"Outputs": {}})), "no Resources")
        bad = template(Web=task("web"))
        bad["Resources"]["Web"]["Properties"]["ContainerDefinitions"] = {"Name": "app"}
        self.assertFailure(self.default.invoke(event(bad)), "Web", "ContainerDefinitions")
        # A half-patchable template is refused whole: the good task is not returned patched.
        half = template(Good=task("good"), Bad=copy.deepcopy(bad["Resources"]["Web"]))
        self.assertFailure(self.default.invoke(event(half)), "Bad")

    def test_unresolvable_image(self):
        frag = template(Web=task("web", image={"Ref": "AppImage"}, entrypoint=None,
                                 command=None))
        frag["Parameters"] = {"AppImage": {"Type": "String", "Default": "127.0.0.1:2/dflt:1"}}
        # the Ref is resolved through templateParameterValues, not the Default
        r = self.default.invoke(event(frag, values={"AppImage": "127.0.0.1:1/app:1"}))
        self.assertFailure(r, "Web", "app", "127.0.0.1:1/app:1", "EntryPoint")
        self.assertNotIn("dflt", r["errorMessage"])

    def test_oversized_result(self):
        frag = template(**{f"Task{i}": task(f"t{i}") for i in range(8)})
        size = len(json.dumps(frag, separators=(",", ":")))
        frag["Resources"]["Pad"] = {"Type": "AWS::CloudFormation::WaitConditionHandle",
                                    "Metadata": {"Blob": "x" * (1024 * 1024 - size - 400)}}
        self.assertLess(len(json.dumps(frag, separators=(",", ":"))), 1024 * 1024)
        r = self.default.invoke(event(frag))
        self.assertFailure(r, "1048576-byte limit", "nested stacks")

    def test_not_an_event(self):
        status, body = self.default.invoke_raw(b"this is not json")
        reply = json.loads(body)
        self.assertEqual(reply.get("errorType"), "Kilt.InvalidEvent", body)
        self.assertIn("not a CloudFormation macro event", reply.get("errorMessage", ""))
        # the instance survives and keeps answering
        self.assertEqual(self.default.invoke(event(TWO_TASKS))["status"], "success")

    def test_invalid_environment_is_an_init_error(self):
        with Rie({"KILT_MODE": "sometimes"}) as rie:
            status, body = rie.invoke_raw(json.dumps(event(TWO_TASKS)).encode())
            self.assertIn(b"Kilt.InvalidSettings", body + rie.logs().encode())
            self.assertIn("function environment: Mode", rie.logs())

    # -- a warm instance under a burst

    def test_burst_on_one_warm_instance(self):
        with Rie() as rie:
            first = rie.invoke(event(TWO_TASKS))
            pid = int(subprocess.run(["pgrep", "-P", str(rie.proc.pid)], capture_output=True,
                                     text=True).stdout.split()[0])
            rss0 = rss_kb(pid)
            t0 = time.monotonic()
            n = 300
            for i in range(n):
                r = rie.invoke(event(TWO_TASKS, request_id=f"burst-{i}"))
                self.assertEqual(r["requestId"], f"burst-{i}")
                self.assertEqual(r["fragment"], first["fragment"])
            elapsed = time.monotonic() - t0
            rss1 = rss_kb(pid)
            logs = rie.logs()
            self.assertEqual(logs.count("INIT START"), 1, "the runtime was restarted")
            self.assertEqual(logs.count('"status":"success"'), n + 1)
            if not SANITIZED:  # ASan's quarantine keeps freed memory resident
                self.assertLess(rss1 - rss0, 4096, f"memory grew from {rss0} to {rss1} kB")
            print(f"burst: {n} invocations in {elapsed:.2f} s "
                  f"({elapsed / n * 1000:.2f} ms each), RSS {rss0} -> {rss1} kB",
                  file=sys.stderr)

    def test_log_line_has_no_template_secrets(self):
        frag = template(Web=task("web"))
        frag["Resources"]["Web"]["Properties"]["ContainerDefinitions"][0]["Environment"] = [
            {"Name": "DB_PASSWORD", "Value": "hunter2-very-secret"}]
        with Rie() as rie:
            r = rie.invoke(event(frag, request_id="req-secret"))
            self.assertEqual(r["status"], "success", r.get("errorMessage"))
            logs = rie.logs()
            lines = [json.loads(l) for l in logs.splitlines() if l.startswith("{")]
            mine = [l for l in lines if l.get("requestId") == "req-secret"]
            self.assertEqual(len(mine), 1)
            self.assertEqual(mine[0]["patched"], 1)
            self.assertIn("durationMs", mine[0])
            self.assertNotIn("hunter2", logs)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    if not ZIP or not os.path.exists(ZIP):
        print(f"rie_e2e: the zip {ZIP!r} is missing (run the macro/package test)", file=sys.stderr)
        return 1
    if not os.access(RIE, os.X_OK):
        r = subprocess.run(["bash", os.path.join(SRC, "tests/infra/peer-lambda-rie.sh")])
        if r.returncode != 0 or not os.access(RIE, os.X_OK):
            print("SKIP rie_e2e: aws-lambda-rie could not be built (Go module proxy "
                  "unreachable?)", file=sys.stderr)
            return 77
    os.makedirs(TASK)
    global SANITIZED
    with zipfile.ZipFile(ZIP) as z:
        SANITIZED = any("libasan" in n for n in z.namelist())
        for info in z.infolist():
            path = z.extract(info, TASK)
            os.chmod(path, (info.external_attr >> 16) & 0o777)
    try:
        prog = unittest.main(argv=[sys.argv[0], "-v"], exit=False)
        return 0 if prog.result.wasSuccessful() else 1
    finally:
        shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
