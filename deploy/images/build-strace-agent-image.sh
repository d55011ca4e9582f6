#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# An agent image whose agent is strace: a real ptrace tracer standing in for pdig, for trying the
# injection end to end where no Falco + pdig build is at hand (docs/kubernetes.md "Images").
# The machine's strace is copied with its libraries and loader into /vendor/strace, its
# interpreter and RPATH pointing there, so it runs in any app image (no libc of the app's is
# used); build-agent-image.sh then adds the static kilt helpers in /kilt/bin and declares both
# VOLUMEs. A recipe runs it as deploy.launch.tracer: [ /vendor/strace/bin/strace, -f, ... ].
set -euo pipefail

usage() {
	cat >&2 <<'EOF'
usage: build-strace-agent-image.sh --dest DEST [options]
  --dest DEST           skopeo destination: docker://HOST/REPO:TAG, oci:DIR:TAG or
                        docker-archive:FILE:REF (for `ctr images import`)
  --strace FILE         the strace program (default: the one on PATH)
  --helpers DIR         directory with static kilt-launch and kilt-wait (default: built with
                        the `static` CMake preset)
  --label KEY=VALUE     image label (repeatable)
  --dest-tls-verify B   passed to skopeo
EOF
	exit 2
}

prog=build-strace-agent-image
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=deploy/images/image-lib.sh
. "$here/image-lib.sh"
dest="" strace="" pass=()
while (($#)); do
	case "$1" in
	--dest) dest=${2:?}; shift 2 ;;
	--strace) strace=${2:?}; shift 2 ;;
	--helpers | --label | --dest-tls-verify) pass+=("$1" "${2:?}"); shift 2 ;;
	-h | --help) usage ;;
	*) echo "$prog: unknown argument $1" >&2; usage ;;
	esac
done
[[ -n $dest ]] || usage
need_tools patchelf readelf ldd
strace=${strace:-$(command -v strace || true)}
[[ -n $strace && -f $strace ]] || die "strace is not installed (Debian: strace)"
[[ $(elf_machine "$strace") == *X86-64* ]] || die "$strace is not an x86-64 program"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
agent=$work/agent
install -d "$agent/bin"
n=$(bundle_program "$strace" "$agent/bin/strace" "$agent/lib" /vendor/strace/lib)
[[ $n == static ]] || echo "$prog: strace: dynamic; loader and $n libraries in /vendor/strace/lib" >&2
exec "$here/build-agent-image.sh" --agent-dir "$agent" --agent-path /vendor/strace \
	--label "io.kilt.agent=strace" "${pass[@]}" --dest "$dest"
