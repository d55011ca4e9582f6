#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Assembles kilt's agent image without a Docker engine (umoci) and pushes it (skopeo): the static
# kilt helpers in /kilt/bin, the given agent files under the agent path, both declared VOLUMEs (so
# ECS volumesFrom / a Kubernetes init copy can take them), kilt-wait as the entrypoint.
set -euo pipefail

usage() {
	cat >&2 <<'EOF'
usage: build-agent-image.sh --agent-dir DIR --dest DEST [options]
  --agent-dir DIR       files of the agent (e.g. falco/, pdig, falco.yaml); copied as they are
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
agent_dir="" agent_path=/vendor/agent dest="" arch=amd64 helpers="" keep=""
labels=() skopeo_opts=()
while (($#)); do
	case "$1" in
	--agent-dir) agent_dir=${2:?}; shift 2 ;;
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
[[ -n $agent_dir && -n $dest ]] || usage
[[ -d $agent_dir ]] || die "--agent-dir $agent_dir is not a directory"
[[ $agent_path == /* && $agent_path != / && $agent_path != /kilt* ]] ||
	die "--agent-path must be absolute and outside /kilt"
case "$arch" in
amd64) preset=static machine="X86-64" ;;
arm64) preset=static-arm64 machine="AArch64" ;;
*) die "--arch must be amd64 or arm64" ;;
esac
for tool in umoci skopeo readelf; do
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
