#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Real template shapes against a real registry (tests/registry/lib.sh), where the golden cases
# (hermetic, no lookups) cannot go:
# - an AWS-sample-like stack whose image is a parameter with a Default: the entrypoint looked up
#   for the Default is a warning naming the parameter and the --param that decides it; given
#   with --param (or the macro's templateParameterValues), the real image decides, no warning;
# - an App Mesh-like stack (image parameters, Envoy named by ProxyConfiguration) against a
#   registry that never answers, under --fail-open: the apps are skipped with the registry's
#   reason, Envoy is skipped as the proxy without any lookup, and the run's duration and
#   lookup count are printed (measured here, not asserted on time).
source "$(dirname "$0")/../registry/lib.sh"

make_ca
start_registry anon ""
build_images
for t in both ep; do
  push "$t" "$REG/kilt/$t:1" --dest-cert-dir "$WORK/pki/certdir"
done
recipe=$KILT_SOURCE_DIR/tests/ecs/recipes/falco.conf
K=("$KILT" inject -r "$recipe" --ca-file "$CA")

# AWS's Fargate samples: the service and its image are parameters with Defaults.
sample() {
  python3 - "$1" <<'EOP'
import json, sys
print(json.dumps({"AWSTemplateFormatVersion": "2010-09-09",
  "Parameters": {"ServiceName": {"Type": "String", "Default": "web"},
                 "ImageUrl": {"Type": "String", "Default": sys.argv[1]},
                 "ContainerPort": {"Type": "Number", "Default": 80}},
  "Resources": {"TaskDefinition": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
    "Family": {"Ref": "ServiceName"}, "Cpu": "256", "Memory": "512", "NetworkMode": "awsvpc",
    "RequiresCompatibilities": ["FARGATE"],
    "ContainerDefinitions": [{"Name": {"Ref": "ServiceName"}, "Image": {"Ref": "ImageUrl"},
      "PortMappings": [{"ContainerPort": {"Ref": "ContainerPort"}}]}]}}}}))
EOP
}
sample "$REG/kilt/both:1" >"$WORK/sample.json"
"${K[@]}" "$WORK/sample.json" >"$WORK/sample.out" 2>"$WORK/sample.err" ||
  fail "sample stack: kilt inject failed: $(cat "$WORK/sample.err")"
expect_contains "Default image: a warning naming the parameter" "$(cat "$WORK/sample.err")" \
  "warning: TaskDefinition / web: patched"
expect_contains "Default image: and the --param that decides it" "$(cat "$WORK/sample.err")" \
  "parameter ImageUrl's Default: the image deployed decides; give it with --param ImageUrl=IMAGE"
expect_contains "Default image: its ENTRYPOINT was written" "$(cat "$WORK/sample.out")" '"/init"'

"${K[@]}" --param "ImageUrl=$REG/kilt/ep:1" "$WORK/sample.json" >"$WORK/given.out" 2>"$WORK/given.err" ||
  fail "sample stack with --param: kilt inject failed: $(cat "$WORK/given.err")"
expect_eq "--param given: no Default warning" "$(grep -c "Default" "$WORK/given.err" || true)" 0
expect_contains "--param given: the given image's ENTRYPOINT" "$(cat "$WORK/given.out")" '"/bin/app"'

# The macro knows the stack's real value: templateParameterValues decides.
python3 - "$WORK/sample.json" "$WORK/event.json" "$REG/kilt/ep:1" <<'EOP'
import json, sys
json.dump({"region": "us-east-1", "accountId": "123456789012",
           "fragment": json.load(open(sys.argv[1])), "transformId": "123456789012::Kilt",
           "params": {}, "requestId": "sample",
           "templateParameterValues": {"ServiceName": "web", "ImageUrl": sys.argv[3]}},
          open(sys.argv[2], "w"))
EOP
KILT_RECIPE=$(cat "$recipe") SSL_CERT_FILE=$CA "$KILT" cfn-macro --event "$WORK/event.json" \
  >"$WORK/reply.json" 2>"$WORK/macro.log"
expect_eq "macro: success" "$(jget "$(cat "$WORK/reply.json")" "d['status']")" '"success"'
expect_contains "macro: the stack's image decides" "$(cat "$WORK/reply.json")" '"/bin/app"'
expect_eq "macro: no Default warning" "$(grep -c "Default" "$WORK/macro.log" || true)" 0

# App Mesh on Fargate: three services of one image, Envoy beside each, a registry that stalls.
start_stall
python3 - "$STALL" >"$WORK/mesh.json" <<'EOP'
import json, sys
res = {}
for color in ("White", "Red", "Blue"):
    res["ColorTeller%sTask" % color] = {"Type": "AWS::ECS::TaskDefinition", "Properties": {
        "RequiresCompatibilities": ["FARGATE"], "NetworkMode": "awsvpc", "Cpu": "256", "Memory": "512",
        "ProxyConfiguration": {"Type": "APPMESH", "ContainerName": "envoy",
            "ProxyConfigurationProperties": [{"Name": "IgnoredUID", "Value": "1337"},
                                             {"Name": "AppPorts", "Value": "9080"}]},
        "ContainerDefinitions": [
            {"Name": "app", "Image": {"Ref": "ColorTellerImage"}, "Essential": True,
             "DependsOn": [{"ContainerName": "envoy", "Condition": "HEALTHY"}],
             "Environment": [{"Name": "COLOR", "Value": color.lower()}]},
            {"Name": "envoy", "Image": {"Ref": "EnvoyImage"}, "User": "1337", "Essential": True}]}}
print(json.dumps({"AWSTemplateFormatVersion": "2010-09-09",
  "Parameters": {"ColorTellerImage": {"Type": "String"}, "EnvoyImage": {"Type": "String"}},
  "Resources": res}))
EOP
t0=$(date +%s%3N)
"${K[@]}" --image-timeout 1500 --fail-open -e --param "ColorTellerImage=$STALL/colorteller:1" \
  --param "EnvoyImage=$STALL/envoy:1" "$WORK/mesh.json" >"$WORK/mesh.out" 2>"$WORK/mesh.err" ||
  fail "App Mesh stack: kilt inject --fail-open failed: $(cat "$WORK/mesh.err")"
t1=$(date +%s%3N)
expect_eq "App Mesh: every app skipped with the registry's reason" \
  "$(grep -c "/ app: skipped: not patched (fail-open)" "$WORK/mesh.err")" 3
expect_eq "App Mesh: every Envoy skipped as the proxy" \
  "$(grep -c "/ envoy: skipped: the proxy ProxyConfiguration names" "$WORK/mesh.err")" 3
expect_eq "App Mesh: the template is unchanged" \
  "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])) == json.load(open(sys.argv[2])))' "$WORK/mesh.json" "$WORK/mesh.out")" True
say "measured: App Mesh stack, 6 containers, 1 application image on a stalled registry, --image-timeout 1500 --fail-open: $((t1 - t0)) ms"

finish
