# SPDX-License-Identifier: Apache-2.0
"""AdmissionReviews as the API server sends them for pods a Deployment's ReplicaSet creates:
generateName, ownerReferences, the pod-template-hash label, the kube-api-access projected
volume the ServiceAccount admission plugin adds before webhooks run, probes, resources, env,
and managedFields written by kube-controller-manager (fieldsV1 of every container field set).
Sizes are set by the number of containers and env entries (about 10, 20 and 30 KB)."""
import json


def _fields_for_container(c):
    f = {"f:image": {}, "f:imagePullPolicy": {}, "f:name": {}, "f:resources": {
        ".": {}, "f:limits": {".": {}, "f:cpu": {}, "f:memory": {}},
        "f:requests": {".": {}, "f:cpu": {}, "f:memory": {}}},
        "f:terminationMessagePath": {}, "f:terminationMessagePolicy": {}, "f:command": {},
        "f:ports": {".": {}, 'k:{"containerPort":8080,"protocol":"TCP"}': {
            ".": {}, "f:containerPort": {}, "f:name": {}, "f:protocol": {}}},
        "f:readinessProbe": {".": {}, "f:failureThreshold": {}, "f:httpGet": {
            ".": {}, "f:path": {}, "f:port": {}, "f:scheme": {}}, "f:periodSeconds": {},
            "f:successThreshold": {}, "f:timeoutSeconds": {}},
        "f:volumeMounts": {".": {}, 'k:{"mountPath":"/etc/app"}': {
            ".": {}, "f:mountPath": {}, "f:name": {}, "f:readOnly": {}}}}
    f["f:env"] = {".": {}}
    for e in c["env"]:
        f["f:env"][json.dumps({"name": e["name"]}, separators=(",", ":")).join(["k:", ""])] = \
            {".": {}, "f:name": {}, ("f:valueFrom" if "valueFrom" in e else "f:value"): {}}
    return f


def pod(index, containers, envs):
    app = f"shop-{index}"
    rs = f"{app}-7d9f8c6b5d"
    cs = []
    for k in range(containers):
        env = [{"name": f"SETTING_{k}_{i}", "value": f"value-{i}-" + "x" * 24} for i in range(envs)]
        env.append({"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}})
        cs.append({
            "name": "app" if k == 0 else f"sidecar-{k}",
            "image": f"registry.example.com/shop/app-{k}:1.{index}.0",
            "command": ["/app", "--config", "/etc/app/config.yaml"],
            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
            "env": env,
            "resources": {"limits": {"cpu": "500m", "memory": "256Mi"},
                          "requests": {"cpu": "100m", "memory": "128Mi"}},
            "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": True},
                             {"name": "kube-api-access-x7k2p",
                              "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                              "readOnly": True}],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"},
                               "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
                               "failureThreshold": 3},
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
        })
    spec_fields = {"f:containers": {f'k:{{"name":"{c["name"]}"}}': _fields_for_container(c) for c in cs},
                   "f:dnsPolicy": {}, "f:enableServiceLinks": {}, "f:restartPolicy": {},
                   "f:schedulerName": {}, "f:securityContext": {}, "f:terminationGracePeriodSeconds": {},
                   "f:volumes": {".": {}, 'k:{"name":"config"}': {".": {}, "f:configMap": {
                       ".": {}, "f:defaultMode": {}, "f:name": {}}, "f:name": {}}}}
    return {
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {
            "generateName": f"{rs}-", "namespace": "shop",
            "labels": {"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "shop",
                       "pod-template-hash": "7d9f8c6b5d"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-12-01T10:00:00Z",
                            "prometheus.io/scrape": "true", "prometheus.io/port": "8080"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                 "uid": f"0b6c5a7e-2f4d-4c1e-9a3b-{index:012d}",
                                 "controller": True, "blockOwnerDeletion": True}],
            "managedFields": [{
                "manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1",
                "time": "2026-12-06T06:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:generateName": {}, "f:labels": {
                    ".": {}, "f:app.kubernetes.io/name": {}, "f:app.kubernetes.io/part-of": {},
                    "f:pod-template-hash": {}}, "f:ownerReferences": {
                    ".": {}, f'k:{{"uid":"0b6c5a7e-2f4d-4c1e-9a3b-{index:012d}"}}': {}}},
                    "f:spec": spec_fields}}],
        },
        "spec": {
            "volumes": [{"name": "config", "configMap": {"name": f"{app}-config", "defaultMode": 420}},
                        {"name": "kube-api-access-x7k2p", "projected": {"sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
                                "apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}],
                            "defaultMode": 420}}],
            "containers": cs,
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default", "serviceAccount": "default", "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 300},
                            {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                             "effect": "NoExecute", "tolerationSeconds": 300}],
            "priority": 0, "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {},
    }


def review(index, containers, envs):
    return {
        "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": f"5d2b8a1c-9f0e-4b7a-8c3d-{index:012d}",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop", "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "uid": "3c4e0f0a-7b1d-4f55-a0a9-1f2e3d4c5b6a",
                         "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system",
                                    "system:authenticated"]},
            "object": pod(index, containers, envs),
            "oldObject": None, "dryRun": False,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        },
    }


# (containers, env entries per container) giving about 10, 20 and 30 KB of compact JSON
SHAPES = [(1, 50), (2, 50), (3, 52)]


def make(n=12):
    """n reviews cycling through the three sizes; each with its own uid and names."""
    out = []
    for i in range(n):
        c, e = SHAPES[i % len(SHAPES)]
        out.append(json.dumps(review(i, c, e), separators=(",", ":")))
    return out


if __name__ == "__main__":
    for r in make(3):
        print(len(r))
