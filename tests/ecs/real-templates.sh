#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Real template shapes against a real registry (tests/registry/lib.sh), where the golden cases
# (hermetic, no lookups) cannot go:
# - an AWS-sample-like stack whose image is a parameter with a Default: the entrypoint looked up
#   for the Default is a warning naming the parameter and the --param that decides it; given
#   with --param (or the macro's templateParameterValues), the real image decides, no warning;
# - an App Mesh-like stack (image parameters, Fn::Sub, Fn::Join, a platform chosen by Fn::If, Envoy named by
#   ProxyConfiguration) against a registry that never answers, under --fail-open: one lookup per
#   distinct image (connections counted by the stalling server), the apps skipped with the
#   registry's reason, Envoy skipped as the proxy without any lookup; and a run whose images
#   outlast the run's own budget (--image-budget). Durations are printed, not asserted on.
source "$(dirname "$0")/../registry/lib.sh"

make_ca
start_registry anon ""
push_images kilt both ep
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

# App Mesh on Fargate (14 containers, 3 images to look up) against a registry that stalls: one
# lookup per distinct image whatever its spelling (a parameter, Fn::Sub, Fn::Join, a literal with
# or without ":latest"), whatever its task's platform (one task's is an Fn::If), counted as the
# connections the stalling server accepts. Envoy (the ProxyConfiguration's container) is skipped
# without a lookup. The run's duration is printed, not asserted on.
start_stall
mesh() { # mesh STALL: the stack (parameters ColorTellerImage, EnvoyImage, Registry, XrayTag)
  python3 - "$1" <<'EOP'
import json, sys
stall = sys.argv[1]
def task(app, image, xray, choice=False):
    props = {"RequiresCompatibilities": ["FARGATE"], "NetworkMode": "awsvpc", "Cpu": "256",
        "Memory": "512",
        "ProxyConfiguration": {"Type": "APPMESH", "ContainerName": "envoy",
            "ProxyConfigurationProperties": [{"Name": "IgnoredUID", "Value": "1337"},
                                             {"Name": "AppPorts", "Value": "9080"}]},
        "ContainerDefinitions": [
            {"Name": app, "Image": image, "Essential": True,
             "DependsOn": [{"ContainerName": "envoy", "Condition": "HEALTHY"}]},
            {"Name": "envoy", "Image": {"Ref": "EnvoyImage"}, "User": "1337", "Essential": True}]}
    if xray:
        props["ContainerDefinitions"].append({"Name": "xray", "Image": xray, "Essential": False})
    if choice:  # decided at deploy time: the platform is unknown offline
        props["RuntimePlatform"] = {"Fn::If": ["OnGraviton",
            {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"},
            {"CpuArchitecture": "X86_64", "OperatingSystemFamily": "LINUX"}]}
    return {"Type": "AWS::ECS::TaskDefinition", "Properties": props}
res = {
    "ColorTellerWhiteTask": task("app", {"Ref": "ColorTellerImage"}, stall + "/xray"),
    "ColorTellerRedTask": task("app", {"Ref": "ColorTellerImage"},
                               {"Fn::Sub": "${Registry}/xray:${XrayTag}"}),
    "ColorTellerBlueTask": task("app", stall + "/colorteller:1", stall + "/xray:latest"),
    "ColorTellerBlackTask": task("app", {"Fn::Sub": "${Registry}/colorteller:1"},
                                 {"Fn::Join": ["", [{"Ref": "Registry"}, "/xray"]]}, choice=True),
    "GatewayTask": task("gateway", {"Fn::Sub": "${Registry}/gateway:1"}, None),
}
print(json.dumps({"AWSTemplateFormatVersion": "2010-09-09",
  "Parameters": {"ColorTellerImage": {"Type": "String"}, "EnvoyImage": {"Type": "String"},
                 "Registry": {"Type": "String"}, "XrayTag": {"Type": "String", "Default": "latest"},
                 "Graviton": {"Type": "String", "Default": "no"}},
  "Conditions": {"OnGraviton": {"Fn::Equals": [{"Ref": "Graviton"}, "yes"]}},
  "Resources": res}, indent=1))
EOP
}
mesh "$STALL" >"$WORK/mesh.json"
mesh_params=(--param "ColorTellerImage=$STALL/colorteller:1" --param "EnvoyImage=$STALL/envoy:1"
  --param "Registry=$STALL")
for path in stream whole; do
  : >"$STALL_LOG"
  t0=$(date +%s%3N)
  "${K[@]}" --json-path "$path" --image-timeout 1500 --fail-open -e "${mesh_params[@]}" \
    "$WORK/mesh.json" >"$WORK/mesh.out" 2>"$WORK/mesh.err" ||
    fail "App Mesh stack ($path): kilt inject --fail-open failed: $(cat "$WORK/mesh.err")"
  t1=$(date +%s%3N)
  looked=$(stall_connections)
  expect_eq "App Mesh ($path): one lookup per distinct image (colorteller, xray, gateway)" "$looked" 3
  expect_eq "App Mesh ($path): every app, gateway and X-Ray container skipped with the registry's reason" \
    "$(grep -cE "/ (app|gateway|xray): skipped: not patched \(fail-open\): .*timed out \(time budget 1500 ms\)" "$WORK/mesh.err")" 9
  expect_eq "App Mesh ($path): every Envoy skipped as the proxy" \
    "$(grep -c "/ envoy: skipped: the proxy ProxyConfiguration names" "$WORK/mesh.err")" 5
  expect_eq "App Mesh ($path): no message claims a remembered failure for a time it was not kept" \
    "$(grep -c "remembered for [0-9]" "$WORK/mesh.err" || true)" 0
  expect_eq "App Mesh ($path): the template is unchanged" \
    "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])) == json.load(open(sys.argv[2])))' "$WORK/mesh.json" "$WORK/mesh.out")" True
  say "measured ($path): App Mesh stack, 14 containers, 3 images to look up on a stalled registry, --image-timeout 1500 --fail-open: $looked lookup(s), $((t1 - t0)) ms"
done

# The run's own budget: 20 distinct images on the stalled registry, 8 lookups at a time of at
# most 1500 ms each, but 2000 ms for the whole run. What is not looked up by then is not asked
# at all, and each message names the budget that ended it.
python3 - "$STALL" >"$WORK/many.json" <<'EOP'
import json, sys
res = {"Task%02d" % i: {"Type": "AWS::ECS::TaskDefinition", "Properties": {
    "RequiresCompatibilities": ["FARGATE"], "NetworkMode": "awsvpc", "Cpu": "256", "Memory": "512",
    "ContainerDefinitions": [{"Name": "app", "Image": "%s/app%02d:1" % (sys.argv[1], i)}]}}
    for i in range(20)}
print(json.dumps({"Resources": res}))
EOP
: >"$STALL_LOG"
t0=$(date +%s%3N)
"${K[@]}" --image-timeout 1500 --image-budget 2000 --fail-open "$WORK/many.json" \
  >"$WORK/many.out" 2>"$WORK/many.err" ||
  fail "20 stalled images: kilt inject --fail-open failed: $(cat "$WORK/many.err")"
t1=$(date +%s%3N)
looked=$(stall_connections)
by_lookup=$(grep -c "/ app: skipped: not patched (fail-open): .*timed out (time budget 1500 ms)" "$WORK/many.err" || true)
by_run=$(grep -c "/ app: skipped: not patched (fail-open): .*the run's image lookup budget of 2000 ms (--image-budget)" "$WORK/many.err" || true)
expect_eq "run budget: every app skipped, each saying which budget ended it" "$((by_lookup + by_run))" 20
if [ "$by_run" -ge 4 ]; then pass "run budget: lookups it cut or never started say so ($by_run)"; else fail "run budget: only $by_run message(s) name the run's budget"; fi
if [ "$looked" -lt 20 ]; then pass "run budget: lookups not started once it was spent ($looked of 20 started)"; else fail "run budget: $looked lookups for 20 images"; fi
expect_contains "run budget: a lookup never started says the budget was spent" "$(cat "$WORK/many.err")" \
  "the run's image lookup budget of 2000 ms (--image-budget) was spent"
say "measured: 20 images on a stalled registry, --image-timeout 1500 --image-budget 2000 --fail-open: $looked lookup(s), $((t1 - t0)) ms"

finish
