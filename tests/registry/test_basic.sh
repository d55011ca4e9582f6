#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A real registry with htpasswd (bcrypt) basic auth over TLS: credentials from a docker
# config.json (base64 "auth", username/password, URL keys, $DOCKER_CONFIG), from a Kubernetes
# dockerconfigjson pull secret in YAML, and the errors when they are missing or wrong.
source "$(dirname "$0")/lib.sh"

make_ca
start_htpasswd_registry basic kilt 's3cret:x'
push_images private ep both -- --dest-creds 'kilt:s3cret:x'

# No ambient credentials: an empty HOME and no DOCKER_CONFIG.
export HOME=$WORK/home
mkdir -p "$HOME"
unset DOCKER_CONFIG
K=("$KILT" image inspect --ca-file "$CA")

rc=0
err=$("${K[@]}" "$REG/private/ep:1" 2>&1) || rc=$?
expect_eq "anonymous exits 1" "$rc" 1
expect_eq "anonymous message" "$err" \
  "kilt: image $REG/private/ep:1: $REG: unauthorized: the registry wants a username and password and none is configured for it (docker login, --auth-file, or a pull secret)"

auth=$(printf 'kilt:s3cret:x' | base64 -w0)
printf '{"auths":{"%s":{"auth":"%s"}}}' "$REG" "$auth" >"$WORK/config.json"
out=$("${K[@]}" -o json --auth-file "$WORK/config.json" "$REG/private/ep:1")
expect_eq "config.json base64 auth" "$(jget "$out" 'd["entrypoint"]')" '["/bin/app","--flag"]'

printf '{"auths":{"https://%s/v1/":{"username":"kilt","password":"s3cret:x"}}}' "$REG" >"$WORK/urlkey.json"
out=$("${K[@]}" -o json --auth-file "$WORK/urlkey.json" "$REG/private/both:1")
expect_eq "config.json URL key, username/password" "$(jget "$out" 'd["command"]')" '["serve"]'

mkdir -p "$WORK/dockercfg"
cp "$WORK/config.json" "$WORK/dockercfg/config.json"
out=$(DOCKER_CONFIG=$WORK/dockercfg "${K[@]}" -o json "$REG/private/ep:1")
expect_eq "\$DOCKER_CONFIG/config.json by default" "$(jget "$out" 'd["entrypoint"]')" '["/bin/app","--flag"]'
mkdir -p "$HOME/.docker"
cp "$WORK/config.json" "$HOME/.docker/config.json"
out=$("${K[@]}" -o json "$REG/private/ep:1")
expect_eq "~/.docker/config.json by default" "$(jget "$out" 'd["entrypoint"]')" '["/bin/app","--flag"]'
rm "$HOME/.docker/config.json"

secret=$(base64 -w0 <"$WORK/config.json")
cat >"$WORK/secret.yaml" <<EOS
apiVersion: v1
kind: Secret
metadata:
  name: regcred
  namespace: default
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: $secret
EOS
out=$("${K[@]}" -o json --auth-file "$WORK/secret.yaml" "$REG/private/both:1")
expect_eq "pull secret (YAML)" "$(jget "$out" 'd["entrypoint"]')" '["/init"]'

# Both lookups in one process: the second sends its credentials at once (no second 401).
before=$(grep -c '" 401 ' "$REG_LOG" || true)
"${K[@]}" --concurrency 1 --auth-file "$WORK/config.json" "$REG/private/ep:1" "$REG/private/ep:1@$(layout_digest ep)" >/dev/null
after=$(grep -c '" 401 ' "$REG_LOG" || true)
expect_eq "one 401 for two lookups of a repository" "$((after - before))" 1

printf '{"auths":{"%s":{"auth":"%s"}}}' "$REG" "$(printf 'kilt:wrong' | base64 -w0)" >"$WORK/wrong.json"
rc=0
err=$("${K[@]}" --auth-file "$WORK/wrong.json" "$REG/private/ep:1" 2>&1) || rc=$?
expect_eq "wrong password exits 1" "$rc" 1
expect_eq "wrong password: the registry's own message" "$err" \
  "kilt: image $REG/private/ep:1: $REG: unauthorized: UNAUTHORIZED: authentication required"

rc=0
err=$("${K[@]}" --auth-file "$WORK/missing.json" "$REG/private/ep:1" 2>&1) || rc=$?
expect_eq "missing auth file" "$err" "kilt: auth file $WORK/missing.json: No such file or directory"
printf 'kind: Secret\ndata:\n  token: eA==\n' >"$WORK/opaque.yaml"
err=$("${K[@]}" --auth-file "$WORK/opaque.yaml" "$REG/private/ep:1" 2>&1) || true
expect_contains "not a pull secret" "$err" "has no data \".dockerconfigjson\" or \".dockercfg\""

finish
