#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Assembles kilt's agent image without a Docker engine (umoci) and pushes it (skopeo): the static
# kilt helpers in /kilt/bin, the agent's files under the agent path, both declared VOLUMEs (so
# ECS volumesFrom / a Kubernetes init copy can take them), kilt-wait as the entrypoint.
# With --falco and --pdig it builds the image deploy/recipes/falco.kilt.conf runs (docs/falco.md):
#   /kilt/bin/{kilt-launch,kilt-wait}
#   /vendor/falco/bin/{falco,pdig}   /vendor/falco/lib/ (only for dynamically linked inputs)
#   /vendor/falco/falco.yaml         /vendor/falco/etc/falco/{falco_rules.yaml,falco_rules.local.yaml,rules.d/}
set -euo pipefail

usage() {
	cat >&2 <<'EOF'
usage: build-agent-image.sh --falco TARBALL|DIR --pdig FILE --dest DEST [options]
       build-agent-image.sh --agent-dir DIR --agent-path PATH --dest DEST [options]
  --falco TARBALL|DIR   a Falco 0.32.2 build: the release tarball (falco-0.32.2-x86_64.tar.gz)
                        or a directory holding usr/bin/falco (or bin/falco) and
                        etc/falco/falco_rules.yaml; laid out under /vendor/falco with a
                        falco.yaml written for userspace mode
  --pdig FILE           the pdig binary (x86-64)
  --libs DIR            where to look first for the libraries of a dynamically linked falco or
                        pdig (they are copied with the loader into /vendor/falco/lib)
  --agent-dir DIR       any other agent: its files, copied as they are
  --agent-path PATH     where they go in the image (default /vendor/agent)
  --dest DEST           skopeo destination: docker://HOST/REPO:TAG or oci:DIR:TAG
  --arch amd64|arm64    image architecture (default amd64); picks the helpers' build
  --helpers DIR         directory with static kilt-launch and kilt-wait (default: build them
                        with the `static` / `static-arm64` CMake preset into build/<preset>)
  --label KEY=VALUE     image label (repeatable)
  --dest-tls-verify B   passed to skopeo (false for a plain-HTTP test registry)
  --dest-creds U:P      passed to skopeo
  --keep DIR            keep the OCI layout and bundle in DIR (default: a temporary directory)
EOF
	exit 2
}

prog=build-agent-image
lib_hint=" (give --libs DIR)"
src_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=deploy/images/image-lib.sh
. "$src_dir/deploy/images/image-lib.sh"
agent_dir="" agent_path=/vendor/agent dest="" arch=amd64 helpers="" keep="" falco="" pdig="" libs=""
labels=() skopeo_opts=()
while (($#)); do
	case "$1" in
	--agent-dir) agent_dir=${2:?}; shift 2 ;;
	--falco) falco=${2:?}; shift 2 ;;
	--pdig) pdig=${2:?}; shift 2 ;;
	--libs) libs=${2:?}; shift 2 ;;
	--agent-path) agent_path=${2:?}; shift 2 ;;
	--arch) arch=${2:?}; shift 2 ;;
	--helpers) helpers=${2:?}; shift 2 ;;
	-h | --help) usage ;;
	*)
		image_option "$@" || { echo "$prog: unknown argument $1" >&2; usage; }
		shift 2
		;;
	esac
done
[[ -n $dest ]] || usage
if [[ -n $falco || -n $pdig ]]; then
	[[ -n $falco && -n $pdig ]] || die "--falco and --pdig go together"
	[[ -z $agent_dir ]] || die "--agent-dir and --falco exclude each other"
	[[ $arch == amd64 ]] || die "pdig traces x86-64 only: the Falco image is --arch amd64"
	agent_path=/vendor/falco
else
	[[ -n $agent_dir ]] || usage
	[[ -d $agent_dir ]] || die "--agent-dir $agent_dir is not a directory"
fi
[[ $agent_path == /* && $agent_path != / && $agent_path != /kilt* ]] ||
	die "--agent-path must be absolute and outside /kilt"
case "$arch" in
amd64) preset=static machine="X86-64" ;;
arm64) preset=static-arm64 machine="AArch64" ;;
*) die "--arch must be amd64 or arm64" ;;
esac
need_tools umoci skopeo readelf ${falco:+patchelf ldd tar}

if [[ -z $helpers ]]; then
	helpers="$src_dir/build/$preset/runtime"
	cmake -S "$src_dir" --preset "$preset" >/dev/null
	cmake --build "$src_dir/build/$preset" >/dev/null
fi
for h in kilt-launch kilt-wait; do
	[[ -x $helpers/$h ]] || die "$helpers/$h is missing"
	[[ $(elf_machine "$helpers/$h") == *"$machine"* ]] || die "$helpers/$h is not a $arch binary"
	[[ -z $(elf_interp "$helpers/$h") ]] || die "$helpers/$h is not statically linked"
done
image_workdir

# An ELF program for x86-64, runnable from /vendor/falco in any image: static, or dynamic with
# its libraries and loader copied into /vendor/falco/lib (bundle_program, image-lib.sh).
place_program() { # SRC NAME DESTDIR
	local src=$1 name=$2 out=$3 machine n
	[[ -f $src ]] || die "$name: $src is not a file"
	machine=$(elf_machine "$src")
	[[ -n $machine ]] || die "$name: $src is not an ELF program"
	[[ $machine == *X86-64* ]] || die "$name: $src is not an x86-64 program ($machine)"
	n=$(bundle_program "$src" "$out/$name" "$out/../lib" /vendor/falco/lib "$libs")
	if [[ $n == static ]]; then
		echo "$prog: $name: static" >&2
	else
		echo "$prog: $name: dynamic; loader and $n libraries in /vendor/falco/lib" >&2
	fi
}

# Falco's configuration for userspace mode: JSON alerts on stdout (they reach CloudWatch through
# the app container's log configuration), no driver, no plugins, no web server, no gRPC.
write_falco_yaml() {
	cat >"$1" <<'YAML'
# Falco 0.32.2 in userspace mode (-u), fed by pdig. Written by kilt's build-agent-image.sh.
rules_file:
  - /vendor/falco/etc/falco/falco_rules.yaml
  - /vendor/falco/etc/falco/falco_rules.local.yaml
  - /vendor/falco/etc/falco/rules.d
plugins: []
load_plugins: []
json_output: true
json_include_output_property: true
json_include_tags_property: true
log_stderr: true
log_syslog: false
log_level: info
priority: debug
buffered_outputs: false
syscall_event_drops:
  threshold: .1
  actions: [log, alert]
  rate: .03333
  max_burst: 1
syscall_event_timeouts:
  max_consecutives: 1000
output_timeout: 2000
outputs:
  rate: 1
  max_burst: 1000
stdout_output:
  enabled: true
syslog_output:
  enabled: false
file_output:
  enabled: false
  keep_alive: false
  filename: ./events.txt
program_output:
  enabled: false
  keep_alive: false
  program: "jq '{text: .output}'"
http_output:
  enabled: false
  url: http://127.0.0.1/
webserver:
  enabled: false
  listen_port: 8765
  k8s_healthz_endpoint: /healthz
  ssl_enabled: false
  ssl_certificate: /etc/falco/falco.pem
grpc:
  enabled: false
  bind_address: "unix:///run/falco/falco.sock"
  threadiness: 0
grpc_output:
  enabled: false
YAML
}

if [[ -n $falco ]]; then
	src=$falco
	if [[ -f $falco ]]; then
		mkdir -p "$work/falco-release"
		tar -xzf "$falco" -C "$work/falco-release" || die "--falco $falco: not a .tar.gz release"
		src=$work/falco-release
	fi
	[[ -d $src ]] || die "--falco $falco: neither a tarball nor a directory"
	falco_bin=$(find "$src" -maxdepth 4 -path '*bin/falco' -type f | sort | head -n 1)
	[[ -n $falco_bin ]] || die "--falco $falco: no usr/bin/falco or bin/falco in it"
	release=$(dirname "$(dirname "$falco_bin")")
	[[ $(basename "$release") == usr ]] && release=$(dirname "$release")
	rules=$release/etc/falco
	[[ -f $rules/falco_rules.yaml ]] || die "--falco $falco: no etc/falco/falco_rules.yaml beside the binary"
	agent_dir=$work/agent
	rm -rf "$agent_dir"
	install -d "$agent_dir/bin" "$agent_dir/etc/falco/rules.d"
	place_program "$falco_bin" falco "$agent_dir/bin"
	place_program "$pdig" pdig "$agent_dir/bin"
	if version=$(timeout 20 "$falco_bin" --version 2>/dev/null </dev/null | head -n 1) &&
		[[ -n $version ]]; then
		[[ $version == *0.32.2* ]] ||
			echo "build-agent-image: warning: $version; kilt's Falco recipe is known to work with 0.32.2 only (docs/falco.md)" >&2
		labels+=("--config.label=io.kilt.falco-version=$version")
	fi
	# The stable rules only: k8s_audit_rules.yaml needs a plugin that is not loaded.
	install -m 0644 "$rules/falco_rules.yaml" "$agent_dir/etc/falco/"
	if [[ -f $rules/falco_rules.local.yaml ]]; then
		install -m 0644 "$rules/falco_rules.local.yaml" "$agent_dir/etc/falco/"
	else
		echo "# Local rules and overrides." >"$agent_dir/etc/falco/falco_rules.local.yaml"
	fi
	if [[ -d $rules/rules.d ]]; then
		cp -a "$rules/rules.d/." "$agent_dir/etc/falco/rules.d/"
	fi
	write_falco_yaml "$agent_dir/falco.yaml"
fi
image_begin kilt-agent
install -d -m 0755 "$root/kilt/bin" "$root$agent_path"
install -m 0755 "$helpers/kilt-launch" "$helpers/kilt-wait" "$root/kilt/bin/"
cp -a "$agent_dir/." "$root$agent_path/"
image_end "$arch" \
	--config.entrypoint /kilt/bin/kilt-wait --clear=config.cmd \
	--config.volume /kilt --config.volume "$agent_path" \
	--config.label "org.opencontainers.image.title=kilt agent" \
	--config.label "io.kilt.agent-path=$agent_path"
echo "$prog: pushed $dest ($arch, agent files at $agent_path, helpers at /kilt/bin)" >&2
