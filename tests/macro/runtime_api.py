#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The macro's Lambda Runtime API client against the HTTP framings aws-lambda-rie never produces.

aws-lambda-rie (tests/macro/rie_e2e.py) always answers with a Content-Length on one keep-alive
connection. The runtime API is plain HTTP/1.1, so `kilt cfn-macro` must also cope with what any
HTTP/1.1 server may send: chunked bodies (with extensions and trailers), a body that ends when the
connection closes, `Connection: close`, a connection closed while idle (reconnect and resend
once), interim 1xx responses, and an event over Lambda's payload limit (answered with a
Kilt.EventTooLarge invocation error, the loop going on). And the invocation's deadline: image
lookups against a registry that never answers end in time for the reply, one lookup per
distinct image. Each case runs with both transports:
the socket client (default) and libcurl (KILT_RUNTIME_API_CLIENT=curl).

The peer is a small HTTP/1.1 server written here on raw sockets, because these framings are the
point; it records every request. Environment: KILT (the kilt binary).
"""
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import unittest
import uuid

KILT = os.environ.get("KILT", "")
MAX_EVENT = 6 * 1024 * 1024 + 64 * 1024  # src/cmd_cfn_macro.c MAX_EVENT_BYTES


def macro_event(request_id, pad=0):
    task = {"Type": "AWS::ECS::TaskDefinition", "Properties": {
        "RequiresCompatibilities": ["FARGATE"], "NetworkMode": "awsvpc", "Cpu": "256",
        "Memory": "512", "ContainerDefinitions": [{
            "Name": "app", "Image": "nginx:1.27", "Essential": True,
            "EntryPoint": ["/docker-entrypoint.sh"], "Command": ["nginx"]}]}}
    res = {"Web": task}
    if pad:
        res["Pad"] = {"Type": "AWS::CloudFormation::WaitConditionHandle",
                      "Metadata": {"Blob": "x" * pad}}
    return json.dumps({"region": "eu-west-1", "accountId": "123456789012",
                       "transformId": "123456789012::Kilt", "requestId": request_id,
                       "params": {}, "templateParameterValues": {},
                       "fragment": {"Resources": res}}).encode()


class Peer:
    """Serves invocation/next from a list of event bodies in the given framing; records every
    request as (connection number, method, path, headers, body). When the events run out it
    stops listening and closes, so the runtime gives up and exits."""

    def __init__(self, events, mode, deadline_ms=None):
        self.events, self.mode = list(events), mode
        self.deadline_ms = deadline_ms  # Unix ms, or None: far away
        self.requests, self.connections = [], 0
        self.times = []  # time.time() of each request
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        try:
            while True:
                conn, _ = self.lsock.accept()
                self.connections += 1
                with conn:
                    if not self.serve_connection(conn, self.connections):
                        return
        except OSError:
            return
        finally:
            self.lsock.close()

    @staticmethod
    def read_request(conn, buf):
        while b"\r\n\r\n" not in buf:
            got = conn.recv(65536)
            if not got:
                return None, buf
            buf += got
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        method, path, _ = lines[0].split(" ")
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        while len(buf) < n:
            got = conn.recv(65536)
            if not got:
                return None, buf
            buf += got
        return (method, path, headers, buf[:n]), buf[n:]

    def respond(self, conn, status, headers, body):
        """Sends one response in self.mode; returns False when the connection must close."""
        out = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        for k, v in headers.items():
            out += f"{k}: {v}\r\n"
        mode = self.mode
        if mode == "interim":
            conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if mode == "chunked":
            out += "Transfer-Encoding: chunked\r\n\r\n"
            data, i, sizes = b"", 0, [1, 7, 4096, 65536]
            while i < len(body):
                n = sizes[(i // 3) % len(sizes)]
                piece = body[i:i + n]
                data += f"{len(piece):x};ext=1\r\n".encode() + piece + b"\r\n"
                i += n
            data += b"0\r\nX-Trailer: yes\r\n\r\n"
            conn.sendall(out.encode() + data)
            return True
        if mode == "eof":  # no length: the body ends with the connection
            conn.sendall(out.encode() + b"\r\n" + body)
            return False
        out += f"Content-Length: {len(body)}\r\n"
        if mode == "close":
            out += "Connection: close\r\n"
        conn.sendall(out.encode() + b"\r\n" + body)
        return mode not in ("close", "idle-close")

    def serve_connection(self, conn, number):
        buf = b""
        while True:
            req, buf = self.read_request(conn, buf)
            if req is None:
                return True  # the client closed; wait for its next connection
            method, path, headers, body = req
            self.requests.append((number, method, path, headers, body))
            self.times.append(time.time())
            if method == "GET" and path == "/2018-06-01/runtime/invocation/next":
                if not self.events:
                    return False  # no more events: stop serving
                ev = self.events.pop(0)
                rid = str(uuid.uuid4())
                keep = self.respond(conn, "200 OK", {
                    "Lambda-Runtime-Aws-Request-Id": rid,
                    "Lambda-Runtime-Deadline-Ms": str(self.deadline_ms or 4102444800000),
                    "Lambda-Runtime-Trace-Id": "Root=1-test"}, ev)
            else:
                keep = self.respond(conn, "202 Accepted", {}, b'{"status":"OK"}')
            if not keep:
                return True

    def posts(self):
        return [r for r in self.requests if r[1] == "POST"]


class Stall:
    """A registry that never answers: accepts connections, holds them, counts them."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.host = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        try:
            while True:
                self.held.append(self.sock.accept()[0])
        except OSError:
            return

    def close(self):
        self.sock.close()
        for c in self.held:
            c.close()


def run_kilt(peer, transport, host="127.0.0.1"):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KILT_", "AWS_"))}
    env["AWS_LAMBDA_RUNTIME_API"] = f"{host}:{peer.port}"
    env["KILT_CONFIG_agent_image"] = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/kilt/falco:0.32.2"
    env["KILT_RUNTIME_API_CLIENT"] = transport
    p = subprocess.run([KILT, "cfn-macro"], env=env, capture_output=True, text=True, timeout=60)
    if peer.thread.is_alive():  # the runtime never came (or came back): stop accepting
        try:
            peer.lsock.shutdown(socket.SHUT_RDWR)  # wakes accept(); close() alone does not
        except OSError:
            pass
    peer.thread.join(10)
    return p


class RuntimeApi(unittest.TestCase):
    def check_replies(self, peer, ids):
        posts = peer.posts()
        self.assertEqual(len(posts), len(ids), [p[2] for p in posts])
        for (_, _, path, _, body), rid in zip(posts, ids):
            self.assertTrue(path.endswith("/response"), path)
            reply = json.loads(body)
            self.assertEqual(reply["requestId"], rid)
            self.assertEqual(reply["status"], "success", reply.get("errorMessage"))

    def framing(self, mode, transport):
        events = [macro_event("a"), macro_event("b", pad=300 * 1024), macro_event("c")]
        peer = Peer(events, mode)
        p = run_kilt(peer, transport)
        self.assertEqual(p.returncode, 1, p.stderr)  # the API went away: the runtime exits
        self.assertIn("runtime API", p.stderr)
        self.check_replies(peer, ["a", "b", "c"])
        return peer

    def test_framings(self):
        for transport in ("socket", "curl"):
            for mode in ("length", "chunked", "eof", "close", "interim", "idle-close"):
                with self.subTest(transport=transport, mode=mode):
                    peer = self.framing(mode, transport)
                    if mode in ("length", "chunked", "interim"):
                        # keep-alive: one connection for 3 events, 3 replies and the last next
                        self.assertEqual(peer.connections, 1)
                    if mode in ("eof", "close", "idle-close"):
                        self.assertGreaterEqual(peer.connections, 4)

    def test_oversized_event_is_answered_and_the_loop_goes_on(self):
        for transport in ("socket", "curl"):
            with self.subTest(transport=transport):
                big = b'{"pad":"' + b"x" * MAX_EVENT + b'"}'
                peer = Peer([big, macro_event("after")], "length")
                p = run_kilt(peer, transport)
                self.assertEqual(p.returncode, 1, p.stderr)
                posts = peer.posts()
                self.assertEqual(len(posts), 2, p.stderr)
                _, _, path, headers, body = posts[0]
                self.assertTrue(path.endswith("/error"), path)
                self.assertEqual(headers.get("lambda-runtime-function-error-type"),
                                 "Kilt.EventTooLarge")
                self.assertEqual(json.loads(body)["errorType"], "Kilt.EventTooLarge")
                self.assertEqual(json.loads(posts[1][4])["requestId"], "after")

    def test_not_an_event_is_an_invocation_error(self):
        peer = Peer([b"not json", macro_event("ok")], "length")
        p = run_kilt(peer, "socket")
        posts = peer.posts()
        self.assertEqual(len(posts), 2, p.stderr)
        self.assertTrue(posts[0][2].endswith("/error"))
        self.assertEqual(posts[0][3].get("lambda-runtime-function-error-type"),
                         "Kilt.InvalidEvent")
        self.assertEqual(json.loads(posts[1][4])["status"], "success")

    def test_localhost(self):
        peer = Peer([macro_event("a")], "length")
        p = run_kilt(peer, "socket", host="localhost")
        self.check_replies(peer, ["a"])
        self.assertEqual(p.returncode, 1, p.stderr)

    def test_environment_that_is_not_utf8_is_refused(self):
        # A setting that cannot be read must not be dropped: that would apply the default recipe.
        for var in (b"KILT_MODE", b"KILT_RECIPE_URL", b"KILT_CONFIG_agent_image"):
            with self.subTest(var=var):
                env = {k: v for k, v in os.environb.items()
                       if not k.startswith((b"KILT_", b"AWS_"))}
                env[var] = b"s3://bucket/caf\xe9"
                p = subprocess.run([KILT, "cfn-macro", "--event", "-"], env=env,
                                   input=macro_event("a"), capture_output=True, timeout=60)
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertIn(var + b": not valid UTF-8", p.stderr)
                # --event always answers (docs/cloudformation.md): a failure, not the default
                reply = json.loads(p.stdout)
                self.assertEqual((reply["requestId"], reply["status"]), ("a", "failure"))
                self.assertIn(var.decode() + ": not valid UTF-8", reply["errorMessage"])

    def test_image_lookups_end_before_the_deadline(self):
        # 14 containers, 3 images (spelled as a parameter, Fn::Sub, literals with and without
        # ":latest"; one task's platform an Fn::If) on a registry that never answers. Each lookup
        # may take 8 s, but the function has 4.5 s left: the lookups share what is left less the
        # time to answer, and the failure says so. Envoy (the proxy) needs no lookup.
        stall = Stall()
        self.addCleanup(stall.close)
        def task(image, xray, choice=False):
            props = {"RequiresCompatibilities": ["FARGATE"], "NetworkMode": "awsvpc",
                     "Cpu": "256", "Memory": "512",
                     "ProxyConfiguration": {"Type": "APPMESH", "ContainerName": "envoy"},
                     "ContainerDefinitions": [
                         {"Name": "app", "Image": image, "Essential": True},
                         {"Name": "envoy", "Image": {"Ref": "EnvoyImage"}, "Essential": True}]}
            if xray:
                props["ContainerDefinitions"].append({"Name": "xray", "Image": xray})
            if choice:
                props["RuntimePlatform"] = {"Fn::If": ["Arm", {"CpuArchitecture": "ARM64"},
                                                       {"CpuArchitecture": "X86_64"}]}
            return {"Type": "AWS::ECS::TaskDefinition", "Properties": props}
        res = {"White": task({"Ref": "ColorTellerImage"}, stall.host + "/xray"),
               "Red": task({"Ref": "ColorTellerImage"}, {"Fn::Sub": "${Registry}/xray:latest"}),
               "Blue": task(stall.host + "/colorteller:1", stall.host + "/xray:latest"),
               "Black": task({"Fn::Sub": "${Registry}/colorteller:1"}, stall.host + "/xray",
                             choice=True),
               "Gateway": task({"Fn::Sub": "${Registry}/gateway:1"}, None)}
        event = json.dumps({
            "region": "eu-west-1", "accountId": "123456789012",
            "transformId": "123456789012::Kilt", "requestId": "mesh", "params": {},
            "templateParameterValues": {"ColorTellerImage": stall.host + "/colorteller:1",
                                        "EnvoyImage": stall.host + "/envoy:1",
                                        "Registry": stall.host},
            "fragment": {"Conditions": {"Arm": {"Fn::Equals": ["a", "b"]}},
                         "Resources": res}}).encode()
        start = time.time()
        deadline = int((start + 4.5) * 1000)
        peer = Peer([event], "length", deadline_ms=deadline)
        p = run_kilt(peer, "socket")
        posts = peer.posts()
        self.assertEqual(len(posts), 1, p.stderr)
        reply = json.loads(posts[0][4])
        self.assertEqual((reply["requestId"], reply["status"]), ("mesh", "failure"))
        msg = reply["errorMessage"]
        self.assertIn("timed out: the run's image lookup budget of ", msg)
        self.assertIn(" ms (the time this invocation has left, less 3000 ms to answer) ran out",
                      msg)
        budget = int(re.search(r"image lookup budget of (\d+) ms", msg).group(1))
        self.assertLessEqual(budget, 1500)
        self.assertEqual(len(stall.held), 3, "one lookup per distinct image")
        answered = peer.times[peer.requests.index(posts[0])]
        print("measured: 3 images on a stalled registry, 4500 ms to the deadline: budget "
              "%d ms, %d lookup(s), replied %d ms before the deadline"
              % (budget, len(stall.held), deadline - answered * 1000), file=sys.stderr)

    def test_unknown_transport_is_refused(self):
        peer = Peer([macro_event("a")], "length")
        p = run_kilt(peer, "carrier-pigeon")
        self.assertEqual(p.returncode, 1)
        self.assertIn("KILT_RUNTIME_API_CLIENT", p.stderr)
        self.assertEqual(peer.requests, [])


def main():
    if not KILT or not os.access(KILT, os.X_OK):
        print(f"runtime_api: KILT={KILT!r} is not an executable", file=sys.stderr)
        return 1
    prog = unittest.main(argv=[sys.argv[0], "-v"], exit=False)
    return 0 if prog.result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
