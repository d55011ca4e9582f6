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

die() {
	echo "build-agent-image: $*" >&2
	exit 1
}

src_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
agent_dir="" agent_path=/vendor/agent dest="" arch=amd64 helpers="" keep="" falco="" pdig="" libs=""
labels=() skopeo_opts=()
while (($#)); do
	case "$1" in
	--agent-dir) agent_dir=${2:?}; shift 2 ;;
	--falco) falco=${2:?}; shift 2 ;;
	--pdig) pdig=${2:?}; shift 2 ;;
	--libs) libs=${2:?}; shift 2 ;;
	--agent-path) agent_path=${2:?}; shift 2 ;;
	--dest) dest=${2:?}; shift 2 ;;
	--arch) arch=${2:?}; shift 2 ;;
	--helpers) helpers=${2:?}; shift 2 ;;
	--label) labels+=("--config.label=${2:?}"); shift 2 ;;
	--dest-tls-verify) skopeo_opts+=("--dest-tls-verify=${2:?}"); shift 2 ;;
	--dest-creds) skopeo_opts+=("--dest-creds=${2:?}"); shift 2 ;;
	--keep) keep=${2:?}; shift 2 ;;
	-h | --help) usage ;;
	*) echo "build-agent-image: unknown argument $1" >&2; usage ;;
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
for tool in umoci skopeo readelf ${falco:+patchelf ldd tar}; do
	command -v "$tool" >/dev/null || die "$tool is not installed (tests/infra/install-deps.sh)"
done

if [[ -z $helpers ]]; then
	helpers="$src_dir/build/$preset/runtime"
	cmake -S "$src_dir" --preset "$preset" >/dev/null
	cmake --build "$src_dir/build/$preset" >/dev/null
fi
for h in kilt-launch kilt-wait; do
	[[ -x $helpers/$h ]] || die "$helpers/$h is missing"
	readelf -h "$helpers/$h" | grep -q "$machine" || die "$helpers/$h is not a $arch binary"
	! readelf -lW "$helpers/$h" | grep -q INTERP || die "$helpers/$h is not statically linked"
done

if [[ -n $keep ]]; then
	work=$keep
	mkdir -p "$work"
else
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
fi

# An ELF program for x86-64, runnable from /vendor/falco in any image: static, or dynamic with
# its libraries and loader copied into /vendor/falco/lib and its interpreter and RUNPATH
# pointing there (so no libc of the app image is used).
place_program() { # SRC NAME DESTDIR
	local src=$1 name=$2 out=$3 lib=$3/../lib
	[[ -f $src ]] || die "$name: $src is not a file"
	readelf -h "$src" >/dev/null 2>&1 || die "$name: $src is not an ELF program"
	readelf -h "$src" | grep -q "Machine:.*X86-64" ||
		die "$name: $src is not an x86-64 program ($(readelf -h "$src" | sed -n 's/ *Machine: *//p'))"
	install -m 0755 "$src" "$out/$name"
	if ! grep -q INTERP <<<"$(readelf -lW "$src")"; then
		echo "build-agent-image: $name: static" >&2
		return
	fi
	mkdir -p "$lib"
	local interp
	interp=$(readelf -lW "$src" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
	local listing
	listing=$(LD_LIBRARY_PATH=${libs:-} ldd "$src" 2>&1) || die "$name: ldd $src failed: $listing"
	if grep -q "not found" <<<"$listing"; then
		die "$name: libraries not found (give --libs DIR): $(grep "not found" <<<"$listing" | tr -s ' \t\n' ' ')"
	fi
	local word
	for word in $(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' <<<"$listing"); do
		[[ -e $lib/$(basename "$word") ]] || cp -L "$word" "$lib/$(basename "$word")"
	done
	[[ -e $lib/$(basename "$interp") ]] || die "$name: its loader $interp was not found"
	patchelf --set-interpreter "/vendor/falco/lib/$(basename "$interp")" --set-rpath /vendor/falco/lib \
		"$out/$name"
	echo "build-agent-image: $name: dynamic; loader and $(($(ls "$lib" | wc -l))) libraries in /vendor/falco/lib" >&2
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
layout="$work/oci" bundle="$work/bundle" tag=kilt-agent
rm -rf "$layout" "$bundle"

rootless=()
[[ $(id -u) -eq 0 ]] || rootless=(--rootless)
umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci unpack "${rootless[@]}" --image "$layout:$tag" "$bundle" >/dev/null
root="$bundle/rootfs"
install -d -m 0755 "$root/kilt/bin" "$root$agent_path"
install -m 0755 "$helpers/kilt-launch" "$helpers/kilt-wait" "$root/kilt/bin/"
cp -a "$agent_dir/." "$root$agent_path/"
umoci repack --image "$layout:$tag" "$bundle"
umoci config --image "$layout:$tag" \
	--os linux --architecture "$arch" \
	--config.entrypoint /kilt/bin/kilt-wait --clear=config.cmd \
	--config.volume /kilt --config.volume "$agent_path" \
	--config.label "org.opencontainers.image.title=kilt agent" \
	--config.label "io.kilt.agent-path=$agent_path" \
	"${labels[@]}"
umoci gc --layout "$layout"
skopeo copy "${skopeo_opts[@]}" "oci:$layout:$tag" "$dest"
echo "build-agent-image: pushed $dest ($arch, agent files at $agent_path, helpers at /kilt/bin)" >&2
