#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `kilt webhook serve` looking up images in a real registry behind basic auth (Debian's
# docker-registry) with the pull secrets it reads from a real API server (tests/infra/
# k8s_cluster.py), as the service account bound to the role of docs/webhook.md: the secret named
# by the namespace's default service account, and the one the pod names itself; a pod without
# either is skipped with the registry's reason; a pod whose containers say what they run reads no
# secret. Reviews are sent straight to the webhook (the API server's call is tested in
# tests/k8s/webhook.py).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)

if [ "${1:-}" != inner ]; then
  source "$SRC/tests/registry/lib.sh"
  need htpasswd
  make_ca
  htpasswd -Bbn kilt 's3cret' >"$WORK/htpasswd"
  start_registry basic "auth:
  htpasswd:
    realm: kilt-basic
    path: $WORK/htpasswd"
  build_images
  push both "$REG/private/both:1" --dest-cert-dir "$WORK/pki/certdir" --dest-creds 'kilt:s3cret'
  auth=$(printf 'kilt:s3cret' | base64 -w0)
  printf '{"auths":{"%s":{"auth":"%s"}}}' "$REG" "$auth" >"$WORK/dockerconfig.json"
  rc=0
  WORK=$WORK REG=$REG CA=$CA python3 "$SRC/tests/infra/k8s_cluster.py" run -- \
    bash "$0" inner || rc=$?
  [ "$rc" -eq 77 ] && exit 77
  [ "$rc" -eq 0 ] || FAILS=$((FAILS + 1))
  finish
  exit 0
fi

# ---- inside the cluster's run: KUBECONFIG, KILT_K8S_API, KILT_K8S_CA_CERT, PATH with kubectl ----
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2', want '$3'"; fi; }
contains() { case "$2" in *"$3"*) ok "$1" ;; *) bad "$1: '$3' not in: $2" ;; esac; }

kubectl create namespace ps >/dev/null
kubectl create namespace own >/dev/null
kubectl create namespace kilt-system >/dev/null
for ns in ps own; do
  kubectl -n "$ns" create secret generic regcred --type=kubernetes.io/dockerconfigjson \
    --from-file=.dockerconfigjson="$WORK/dockerconfig.json" >/dev/null
done
for _ in $(seq 100); do kubectl -n ps get serviceaccount default >/dev/null 2>&1 && break; sleep 0.1; done
kubectl -n ps patch serviceaccount default -p '{"imagePullSecrets":[{"name":"regcred"}]}' >/dev/null

# the webhook's identity: exactly the role docs/webhook.md gives
kubectl -n kilt-system create serviceaccount kilt-webhook >/dev/null
kubectl create clusterrole kilt-webhook --verb=get,list,watch --resource=namespaces >/dev/null
kubectl patch clusterrole kilt-webhook --type=json -p '[{"op":"add","path":"/rules/-","value":{"apiGroups":[""],"resources":["serviceaccounts","secrets"],"verbs":["get"]}}]' >/dev/null
kubectl create clusterrolebinding kilt-webhook --clusterrole=kilt-webhook \
  --serviceaccount=kilt-system:kilt-webhook >/dev/null
token=$(kubectl -n kilt-system create token kilt-webhook --duration=1h)
cat >"$WORK/kc.json" <<EOF
{"apiVersion": "v1", "kind": "Config", "current-context": "k",
 "contexts": [{"name": "k", "context": {"cluster": "c", "user": "u"}}],
 "clusters": [{"name": "c", "cluster": {"server": "$KILT_K8S_API", "certificate-authority": "$KILT_K8S_CA_CERT"}}],
 "users": [{"name": "u", "user": {"token": "$token"}}]}
EOF
cat >"$WORK/recipe.conf" <<'EOR'
deploy {
    entrypoint: [ /agent/run, "--" ] ${original.entrypoint}
    command: ${original.command}
}
EOR
"$KILT" webhook serve --listen 127.0.0.1:0 --tls-cert "$WORK/pki/server.crt" \
  --tls-key "$WORK/pki/server.key" -r "$WORK/recipe.conf" --kubeconfig "$WORK/kc.json" \
  --ca-file "$CA" 2>"$WORK/webhook.log" &
hook=$!
trap 'kill $hook 2>/dev/null || true' EXIT
port=
for _ in $(seq 200); do
  port=$(sed -n 's/.*"msg":"listening","address":"127.0.0.1:\([0-9]*\)".*/\1/p' "$WORK/webhook.log")
  [ -n "$port" ] && break
  sleep 0.05
done
[ -n "$port" ] || { cat "$WORK/webhook.log"; echo "FAIL: the webhook did not start"; exit 1; }

review() { # review NAMESPACE POD-JSON -> "command args | warnings" of the answer
  python3 - "$1" "$2" <<'EOF' >"$WORK/review.json"
import json, sys
print(json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                  "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                              "resource": {"group": "", "version": "v1", "resource": "pods"},
                              "namespace": sys.argv[1], "operation": "CREATE",
                              "object": json.loads(sys.argv[2])}}))
EOF
  curl -sS --cacert "$CA" -H 'Content-Type: application/json' --data-binary "@$WORK/review.json" \
    "https://127.0.0.1:$port/mutate" | python3 -c '
import base64, json, sys
r = json.load(sys.stdin)["response"]
ops = json.loads(base64.b64decode(r["patch"])) if "patch" in r else []
got = {op["path"]: op["value"] for op in ops if op["path"].startswith("/spec/containers/0/")}
print(json.dumps([got.get("/spec/containers/0/command"), got.get("/spec/containers/0/args")],
                 separators=(",", ":")), "|", " / ".join(r.get("warnings", [])))'
}
metric() { curl -sS --cacert "$CA" "https://127.0.0.1:$port/metrics" | sed -n "s/^$1 //p"; }

pod='{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"neither","image":"'$REG'/private/both:1"}]}}'
out=$(review ps "$pod")
check "the service account's pull secret: ENTRYPOINT + CMD from the private image" "${out%% |*}" '[["/agent/run","--","/init"],["serve"]]'
own='{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"imagePullSecrets":[{"name":"regcred"}],"containers":[{"name":"neither","image":"'$REG'/private/both:1"}]}}'
out=$(review own "$own")
check "the pod's own pull secret" "${out%% |*}" '[["/agent/run","--","/init"],["serve"]]'
out=$(review own "$pod")
check "no pull secret: not injected" "${out%% |*}" '[null,null]'
contains "and the warning gives the registry's reason" "$out" "could not be looked up"
contains "(unauthorized)" "$out" "nauthorized"
check "two pull secret reads" "$(metric 'kilt_webhook_pull_secret_reads_total{result="success"}')" 2
cmd='{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"'$REG'/private/both:1","command":["/x"]}]}}'
out=$(review ps "$cmd")
check "a container with a command: no lookup" "${out%% |*}" '[["/agent/run","--","/x"],[]]'
check "and no secret read" "$(metric 'kilt_webhook_pull_secret_reads_total{result="success"}')" 2
check "namespace facts from the API server" "$(metric 'kilt_webhook_namespace_facts_total{source="unknown"}')" 0
kill $hook
wait $hook || true
if [ "$fails" -ne 0 ]; then
  cat "$WORK/webhook.log"
  echo "$fails check(s) failed"
  exit 1
fi
echo "all checks passed"
