#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A real registry in `auth: token` mode: it verifies JWTs issued by tests/registry/token_issuer.py
# (a Python http.server over TLS signing RS256 with the openssl CLI; the signing certificate is
# the registry's rootcertbundle, so no Python crypto package is needed). kilt must follow the
# WWW-Authenticate bearer challenge, anonymously or with credentials, and reuse its token.
source "$(dirname "$0")/lib.sh"

EXTRA_SAN=DNS:registry.kilt.test,DNS:auth.kilt.test make_ca
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
push_images private ep both multi -- --dest-creds 'kilt:t0ken-pw'
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

# Credentials go to a token service on the registry's own domain only (docs/images.md). A second
# registry whose realm is auth.kilt.test: reached as registry.kilt.test (same domain) kilt sends
# the credentials; reached as 127.0.0.1 (another host) it asks anonymously and warns. It serves
# the first registry's storage (skopeo could not resolve auth.kilt.test to push).
mkdir -p "$WORK/token-domain"
ln -s "$WORK/token/data" "$WORK/token-domain/data"
start_registry token-domain "auth:
  token:
    realm: https://auth.kilt.test:$TPORT/token
    service: kilt-registry
    issuer: kilt-issuer
    rootcertbundle: $WORK/pki/token.crt"
RPORT=${REG##*:}
export KILT_RESOLVE="registry.kilt.test:$RPORT:127.0.0.1,auth.kilt.test:$TPORT:127.0.0.1"
creds=$(printf 'kilt:t0ken-pw' | base64 -w0)
printf '{"auths":{"%s":{"auth":"%s"},"registry.kilt.test:%s":{"auth":"%s"}}}' "$REG" "$creds" \
  "$RPORT" "$creds" >"$WORK/both.json"
: >"$TLOG"
out=$("${K[@]}" -o json --auth-file "$WORK/both.json" "registry.kilt.test:$RPORT/private/ep:1" 2>"$WORK/same.err")
expect_eq "realm on the registry's domain: credentials sent" "$(cat "$TLOG")" "/token auth repository:private/ep:pull"
expect_eq "realm on the registry's domain: facts" "$(jget "$out" 'd["entrypoint"]')" '["/bin/app","--flag"]'
expect_eq "realm on the registry's domain: no warning" "$(cat "$WORK/same.err")" ""
: >"$TLOG"
rc=0
err=$("${K[@]}" --auth-file "$WORK/both.json" "$REG/private/ep:1" 2>&1) || rc=$?
expect_eq "realm on another host: credentials withheld" "$(cat "$TLOG")" "/token anon repository:private/ep:pull"
expect_eq "realm on another host: the private image is refused" "$rc" 1
expect_contains "realm on another host: warning" "$err" \
  "kilt: warning: $REG: the token service auth.kilt.test:$TPORT is not on the registry's domain; asking it for a token without the registry's credentials"
unset KILT_RESOLVE

finish
