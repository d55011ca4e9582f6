#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A real registry in `auth: token` mode: it verifies JWTs issued by tests/registry/token_issuer.py
# (a Python http.server over TLS signing RS256 with the openssl CLI; the signing certificate is
# the registry's rootcertbundle, so no Python crypto package is needed). kilt must follow the
# WWW-Authenticate bearer challenge, anonymously or with credentials, and reuse its token.
source "$(dirname "$0")/lib.sh"

make_ca
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kilt token signer" \
  -keyout "$WORK/pki/token.key" -out "$WORK/pki/token.crt" 2>/dev/null
TPORT=$(free_port)
TLOG=$WORK/issuer.log
: >"$TLOG"
python3 "$HERE/token_issuer.py" "$TPORT" "$WORK/pki/server.crt" "$WORK/pki/server.key" \
  "$WORK/pki/token.crt" "$WORK/pki/token.key" "$TLOG" kilt-issuer 'kilt:t0ken-pw' \
  2>"$WORK/issuer.err" &
PIDS+=($!)
wait_port "$TPORT"
: >"$TLOG"
start_registry token "auth:
  token:
    realm: https://127.0.0.1:$TPORT/token
    service: kilt-registry
    issuer: kilt-issuer
    rootcertbundle: $WORK/pki/token.crt"
build_images
for t in ep both multi; do
  push "$t" "$REG/private/$t:1" --dest-cert-dir "$WORK/pki/certdir" --dest-creds 'kilt:t0ken-pw'
done
push cmd "$REG/public/cmd:1" --dest-cert-dir "$WORK/pki/certdir" --dest-creds 'kilt:t0ken-pw'

export HOME=$WORK/home
mkdir -p "$HOME"
unset DOCKER_CONFIG
K=("$KILT" image inspect --ca-file "$CA")
printf '{"auths":{"%s":{"auth":"%s"}}}' "$REG" "$(printf 'kilt:t0ken-pw' | base64 -w0)" >"$WORK/config.json"

: >"$TLOG"
out=$("${K[@]}" -o json "$REG/public/cmd:1")
expect_eq "anonymous bearer token for a public repository" "$(jget "$out" 'd["command"]')" '["/bin/sh","-c","echo hi"]'
expect_eq "issuer saw one anonymous request for the right scope" "$(cat "$TLOG")" \
  "/token anon repository:public/cmd:pull"

rc=0
err=$("${K[@]}" "$REG/private/ep:1" 2>&1) || rc=$?
expect_eq "anonymous on a private repository exits 1" "$rc" 1
expect_eq "anonymous on a private repository: the registry's message" "$err" \
  "kilt: image $REG/private/ep:1: $REG: unauthorized: UNAUTHORIZED: authentication required"

: >"$TLOG"
out=$("${K[@]}" -o json --concurrency 1 --auth-file "$WORK/config.json" "$REG/private/ep:1" "$REG/private/ep:1@$(layout_digest ep)" "$REG/private/both:1")
expect_eq "bearer with credentials" "$(jget "$out" '[x["entrypoint"] for x in d]')" '[["/bin/app","--flag"],["/bin/app","--flag"],["/init"]]'
expect_eq "one token per repository, reused" "$(sort "$TLOG" | uniq -c | awk '{print $1, $2, $3, $4}' | tr '\n' ';')" \
  "1 /token auth repository:private/both:pull;1 /token auth repository:private/ep:pull;"

out=$("${K[@]}" -o json --auth-file "$WORK/config.json" --platform linux/arm64 "$REG/private/multi:1")
expect_eq "bearer + index" "$(jget "$out" 'd["command"]')" '["arm-cmd"]'

printf '{"auths":{"%s":{"auth":"%s"}}}' "$REG" "$(printf 'kilt:nope' | base64 -w0)" >"$WORK/wrong.json"
rc=0
err=$("${K[@]}" --auth-file "$WORK/wrong.json" "$REG/private/ep:1" 2>&1) || rc=$?
expect_eq "wrong password at the token service" "$err" \
  "kilt: image $REG/private/ep:1: $REG: unauthorized: token service https://127.0.0.1:$TPORT/token answered HTTP 401: invalid username or password"

finish
