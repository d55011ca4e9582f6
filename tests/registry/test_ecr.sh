#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ECR: a registry named like <acct>.dkr.ecr.<region>.amazonaws.com (pinned to loopback with
# KILT_RESOLVE; a real docker-registry with htpasswd user AWS) whose password comes from
# GetAuthorizationToken signed with SigV4 from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
# AWS_SESSION_TOKEN. ECR itself cannot be reached here: tests/registry/ecr_standin.py stands in
# for its API endpoint and verifies the signature independently (Python hmac), as AWS would.
source "$(dirname "$0")/lib.sh"
need htpasswd

HOSTNAME_ECR=123456789012.dkr.ecr.us-west-2.amazonaws.com
EXTRA_SAN=DNS:$HOSTNAME_ECR make_ca
ECR_PW=ecr-password-$RANDOM
start_htpasswd_registry ecr AWS "$ECR_PW"
PORT=${REG##*:}
build_images
push both "$REG/team/app:prod" --dest-cert-dir "$WORK/pki/certdir" --dest-creds "AWS:$ECR_PW"

EPORT=$(free_port)
ELOG=$WORK/ecr.log
: >"$ELOG"
python3 "$HERE/ecr_standin.py" "$EPORT" "$WORK/pki/server.crt" "$WORK/pki/server.key" \
  AKIDKILTTEST 'kilt/secret+KEY' 'session-token-xyz' "$ECR_PW" "$ELOG" 2>"$WORK/ecr.err" &
PIDS+=($!)
wait_port "$EPORT"
: >"$ELOG"

export HOME=$WORK/home KILT_RESOLVE="$HOSTNAME_ECR:$PORT:127.0.0.1"
export KILT_ECR_ENDPOINT=https://127.0.0.1:$EPORT/
mkdir -p "$HOME"
unset DOCKER_CONFIG AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
REF=$HOSTNAME_ECR:$PORT/team/app:prod
K=("$KILT" image inspect --ca-file "$CA")

out=$(AWS_ACCESS_KEY_ID=AKIDKILTTEST AWS_SECRET_ACCESS_KEY='kilt/secret+KEY' \
  AWS_SESSION_TOKEN=session-token-xyz "${K[@]}" -o json "$REF")
expect_eq "ECR credentials from the environment" "$(jget "$out" '[d["entrypoint"], d["command"]]')" '[["/init"],["serve"]]'
expect_eq "one signed GetAuthorizationToken for us-west-2" "$(cat "$ELOG")" "token us-west-2"

: >"$ELOG"
rc=0
err=$(AWS_ACCESS_KEY_ID=AKIDKILTTEST AWS_SECRET_ACCESS_KEY='wrong' AWS_SESSION_TOKEN=session-token-xyz \
  "${K[@]}" "$REF" 2>&1) || rc=$?
expect_eq "wrong secret exits 1" "$rc" 1
expect_eq "wrong secret: AWS's answer" "$err" \
  "kilt: image $REF: ECR GetAuthorizationToken (us-west-2): HTTP 403: InvalidSignatureException: The request signature we calculated does not match the signature you provided."

err=$(AWS_ACCESS_KEY_ID=AKIDKILTTEST AWS_SECRET_ACCESS_KEY='kilt/secret+KEY' "${K[@]}" "$REF" 2>&1) || true
expect_contains "missing session token" "$err" "UnrecognizedClientException: session token missing or unsigned"

err=$("${K[@]}" "$REF" 2>&1) || true
expect_contains "no AWS credentials: anonymous, refused" "$err" \
  "unauthorized: the registry wants a username and password and none is configured for it"

# An auth file entry wins over ECR.
printf '{"auths":{"%s":{"auth":"%s"}}}' "$HOSTNAME_ECR:$PORT" "$(printf 'AWS:%s' "$ECR_PW" | base64 -w0)" >"$WORK/config.json"
: >"$ELOG"
out=$(AWS_ACCESS_KEY_ID=AKIDKILTTEST AWS_SECRET_ACCESS_KEY=wrong "${K[@]}" -o json --auth-file "$WORK/config.json" "$REF")
expect_eq "auth file before ECR" "$(jget "$out" 'd["command"]')" '["serve"]'
expect_eq "no ECR call then" "$(cat "$ELOG")" ""

finish
