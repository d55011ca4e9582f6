#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`kilt inject --volume-source image` against the test cluster (tests/infra/k8s_cluster.py).

The API server validates what kilt writes: a Pod and a Deployment injected with image volumes,
and with the default copy, go through `kubectl apply --dry-run=server`, and what the API server
would store still holds kilt's image volumes (an API server without the ImageVolume feature drops
the field), their subPath mounts and no copy init container; the same pod with the image
reference removed is refused (the check is real).

Whether the node can run image volumes depends on its container runtime: containerd 2.2 or later
(2.1 mounts them but ignores subPath), or CRI-O 1.33 or later. On such a node a pod that mounts a
directory of an image through an image volume runs and sees its files. On an older one (Debian
12's containerd 1.6.20 here) the same pod never starts: the test checks that the kubelet reports
the container as not created (what docs/kubernetes.md says) and says loudly that the runtime
part of image volumes was not exercised.
"""
import json
import os
import re
import subprocess
import sys
import time

import k8s_cluster
from docstream import json_stream
from checks import check, result

KILT = os.environ["KILT"]
AGENT = "kilt.test/agent:1"


MANIFESTS = """\
apiVersion: v1
kind: Pod
metadata:
  name: app
spec:
  containers:
  - name: app
    image: %(busybox)s
    command: [sleep, "3600"]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: %(busybox)s
        command: [sleep, "3600"]
""" % {"busybox": k8s_cluster.IMAGES["busybox"]}


def inject(*args):
    p = subprocess.run([KILT, "inject", "--no-image-lookup", "--set", f"agent_image={AGENT}",
                        *args, "-"], input=MANIFESTS, capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stderr, file=sys.stderr)
        raise SystemExit("kilt inject failed")
    return p.stdout


def pod_spec(obj):
    return obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]


def dry_run(c, text):
    p = c.kubectl("apply", "--dry-run=server", "-o", "json", "-f", "-", input=text, check=False)
    return p.returncode, (json.loads(p.stdout) if p.returncode == 0 else None), p.stderr


def runtime_supports_image_volumes(runtime):
    """containerd >= 2.2 or CRI-O >= 1.33 (subPath on image volumes)."""
    m = re.match(r"(containerd|cri-o)://v?(\d+)\.(\d+)", runtime)
    if not m:
        return False
    version = (int(m.group(2)), int(m.group(3)))
    return version >= ((2, 2) if m.group(1) == "containerd" else (1, 33))


def main():
    c = k8s_cluster.Cluster()
    try:
        c.start()
    except k8s_cluster.Unavailable as e:
        print(f"SKIPPED: {e}", flush=True)
        return 77
    try:
        server = json.loads(c.kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
        node = json.loads(c.kubectl("get", "node", k8s_cluster.NODE, "-o", "json").stdout)
        runtime = node["status"]["nodeInfo"]["containerRuntimeVersion"]
        print(f"kube-apiserver {server}, node runtime {runtime}", flush=True)

        # 1. The API server takes kilt's image volumes and keeps them.
        rc, out, err = dry_run(c, inject("--volume-source", "image"))
        check(rc == 0, f"server-side dry run of --volume-source image output ({err.strip()})")
        for obj in (out or {}).get("items", []):
            spec = pod_spec(obj)
            vols = [v for v in spec.get("volumes", []) if v["name"].startswith("kilt-")]
            check(len(vols) == 2 and all(v.get("image") == {"reference": AGENT, "pullPolicy": "IfNotPresent"}
                                         for v in vols),
                  f"{obj['kind']}: the stored object keeps kilt's image volumes: {vols}")
            mounts = [m for m in spec["containers"][0].get("volumeMounts", []) if m["name"].startswith("kilt-")]
            check([(m["mountPath"], m.get("subPath"), m.get("readOnly")) for m in mounts] ==
                  [("/kilt", "kilt", True), ("/vendor/falco", "vendor/falco", True)],
                  f"{obj['kind']}: and their subPath mounts: {mounts}")
            check(not spec.get("initContainers"), f"{obj['kind']}: and no copy init container")
        check(len((out or {}).get("items", [])) == 2, "both objects came back")

        # 2. The default copy, the same way.
        rc, out, err = dry_run(c, inject())
        check(rc == 0, f"server-side dry run of the copy output ({err.strip()})")
        for obj in (out or {}).get("items", []):
            ic = pod_spec(obj).get("initContainers") or [{}]
            check(ic[0].get("name") == "kilt-copy-falco" and ic[0].get("image") == AGENT,
                  f"{obj['kind']}: the stored object keeps the copy init container")

        # 3. The check is real: an image volume without its reference is refused.
        bad = json_stream(inject("--volume-source", "image", "-o", "json"))[0]
        del pod_spec(bad)["volumes"][0]["image"]["reference"]
        rc, out, err = dry_run(c, json.dumps(bad))
        check(rc != 0 and "reference" in err, f"an image volume without a reference is refused: {err.strip()}")

        # 4. Running one: a directory of the local busybox image mounted through an image volume.
        c.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "image-volume"},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": k8s_cluster.IMAGES["busybox"],
                                     "imagePullPolicy": "Never", "command": ["ls", "/mnt/image"],
                                     "volumeMounts": [{"name": "image", "mountPath": "/mnt/image",
                                                       "subPath": "bin", "readOnly": True}]}],
                     "volumes": [{"name": "image", "image": {"reference": k8s_cluster.IMAGES["busybox"],
                                                            "pullPolicy": "IfNotPresent"}}]}}))
        if runtime_supports_image_volumes(runtime):
            c.kubectl("wait", "--for=jsonpath={.status.phase}=Succeeded", "pod/image-volume",
                      "--timeout=90s", check=False, timeout=120)
            logs = c.kubectl("logs", "image-volume", check=False).stdout
            check("busybox" in logs.split(), f"the pod lists the image's /bin through the volume: {logs!r}")
        else:
            reason, started = None, False
            end = time.monotonic() + 90
            while time.monotonic() < end and not reason and not started:
                time.sleep(1)
                p = json.loads(c.kubectl("get", "pod", "image-volume", "-o", "json").stdout)
                for st in p.get("status", {}).get("containerStatuses", []):
                    state = st.get("state", {})
                    started = started or "running" in state or "terminated" in state
                    why = state.get("waiting", {}).get("reason")
                    if why and why != "ContainerCreating":
                        reason = why
            check(not started, "the container never starts")
            check(reason == "CreateContainerError",
                  f"on {runtime} the kubelet cannot create a container that mounts an image volume ({reason})")
            print(f"NOT EXERCISED: image volumes at run time: the node's runtime is {runtime}; "
                  "they need containerd >= 2.2 or CRI-O >= 1.33 (docs/kubernetes.md)", flush=True)
        c.kubectl("delete", "pod", "image-volume", "--wait=false", check=False)
    finally:
        c.stop()
    return result()


if __name__ == "__main__":
    sys.exit(main())
