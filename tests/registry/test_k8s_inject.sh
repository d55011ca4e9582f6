#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `kilt inject` on Kubernetes manifests with image facts from a real registry behind basic auth,
# the credentials from a dockerconfigjson pull secret (--pull-secret): a container with neither
# command nor args runs the image's ENTRYPOINT + CMD, one with args only the ENTRYPOINT + its
# args, one with command only its command (no lookup); the pod's platform (nodeSelector
# kubernetes.io/arch) picks the entry of a multi-platform index; without the secret the run fails
# with the registry's reason (or skips the container under --fail-open).
source "$(dirname "$0")/lib.sh"

make_ca
start_htpasswd_registry basic kilt s3cret
push_images private both multi -- --dest-creds kilt:s3cret
export HOME=$WORK/home
mkdir -p "$HOME"
unset DOCKER_CONFIG

auth=$(printf 'kilt:s3cret' | base64 -w0)
secret=$(printf '{"auths":{"%s":{"auth":"%s"}}}' "$REG" "$auth" | base64 -w0)
cat >"$WORK/regcred.yaml" <<EOS
apiVersion: v1
kind: Secret
metadata:
  name: regcred
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: $secret
EOS
cat >"$WORK/recipe.conf" <<'EOR'
deploy {
    entrypoint: [ /agent/run, "--" ] ${original.entrypoint}
    command: ${original.command}
    mount: [ { name: agent, image: "agent:1", volumes: [ /agent ] } ]
}
EOR
cat >"$WORK/app.yaml" <<EOM
apiVersion: v1
kind: Pod
metadata:
  name: app
spec:
  imagePullSecrets:
  - name: regcred
  containers:
  - name: neither
    image: $REG/private/both:1
  - name: args-only
    image: $REG/private/both:1
    args: [--debug]
  - name: command-only
    image: $REG/private/nothing-here:1
    command: [/bin/own]
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: arm
spec:
  selector:
    matchLabels: {app: arm}
  template:
    metadata:
      labels: {app: arm}
    spec:
      nodeSelector:
        kubernetes.io/arch: arm64
      containers:
      - name: multi
        image: $REG/private/multi:1
EOM
argv_of() { # argv_of YAML-TEXT DOC NAME
  python3 -c '
import json, sys, yaml
docs = list(yaml.safe_load_all(sys.stdin.read()))
d = docs[int(sys.argv[1])]
spec = d["spec"] if d["kind"] == "Pod" else d["spec"]["template"]["spec"]
c = [c for c in spec["containers"] if c["name"] == sys.argv[2]][0]
print(json.dumps([c.get("command"), c.get("args")], separators=(",", ":")))' "$2" "$3" <<<"$1"
}
K=("$KILT" inject -r "$WORK/recipe.conf" --ca-file "$CA")

out=$("${K[@]}" --pull-secret "$WORK/regcred.yaml" "$WORK/app.yaml")
expect_eq "neither: ENTRYPOINT + CMD from the image" "$(argv_of "$out" 0 neither)" '[["/agent/run","--","/init"],["serve"]]'
expect_eq "args only: the image's ENTRYPOINT + the args" "$(argv_of "$out" 0 args-only)" '[["/agent/run","--","/init"],["--debug"]]'
expect_eq "command only: no lookup, args made explicit" "$(argv_of "$out" 0 command-only)" '[["/agent/run","--","/bin/own"],[]]'
expect_eq "arm64 pod: the index's arm64 entry" "$(argv_of "$out" 1 multi)" '[["/agent/run","--"],["arm-cmd"]]'

rc=0
err=$("${K[@]}" "$WORK/app.yaml" 2>&1 >/dev/null) || rc=$?
expect_eq "without the pull secret: exit 1" "$rc" 1
expect_contains "and the registry's reason" "$err" "unauthorized"
out=$("${K[@]}" --fail-open "$WORK/app.yaml" 2>"$WORK/warn")
expect_contains "--fail-open: the container is skipped with a warning" "$(cat "$WORK/warn")" "warning: Pod app / neither: skipped: command is not set and the ENTRYPOINT of image $REG/private/both:1 could not be looked up"
expect_eq "--fail-open: command-only container still injected" "$(argv_of "$out" 0 command-only)" '[["/agent/run","--","/bin/own"],[]]'
finish
