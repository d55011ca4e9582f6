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

die() {
	echo "build-strace-agent-image: $*" >&2
	exit 1
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dest="" strace="" pass=()
while (($#)); do
	case "$1" in
	--dest) dest=${2:?}; shift 2 ;;
	--strace) strace=${2:?}; shift 2 ;;
	--helpers | --label | --dest-tls-verify) pass+=("$1" "${2:?}"); shift 2 ;;
	-h | --help) usage ;;
	*) echo "build-strace-agent-image: unknown argument $1" >&2; usage ;;
	esac
done
[[ -n $dest ]] || usage
for tool in patchelf readelf ldd; do
	command -v "$tool" >/dev/null || die "$tool is not installed (tests/infra/install-deps.sh)"
done
strace=${strace:-$(command -v strace || true)}
[[ -n $strace && -f $strace ]] || die "strace is not installed (Debian: strace)"
readelf -h "$strace" | grep -q "Machine:.*X86-64" || die "$strace is not an x86-64 program"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
agent=$work/agent
install -d "$agent/bin" "$agent/lib"
install -m 0755 "$strace" "$agent/bin/strace"
if grep -q INTERP <<<"$(readelf -lW "$strace")"; then
	interp=$(readelf -lW "$strace" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
	listing=$(ldd "$strace" 2>&1) || die "ldd $strace failed: $listing"
	! grep -q "not found" <<<"$listing" || die "$strace: libraries not found"
	for word in $(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' <<<"$listing"); do
		cp -L "$word" "$agent/lib/$(basename "$word")"
	done
	[[ -e $agent/lib/$(basename "$interp") ]] || die "its loader $interp was not found"
	# RPATH, not RUNPATH: it also covers the libraries' own dependencies.
	patchelf --set-interpreter "/vendor/strace/lib/$(basename "$interp")" \
		--force-rpath --set-rpath /vendor/strace/lib "$agent/bin/strace"
fi
exec "$here/build-agent-image.sh" --agent-dir "$agent" --agent-path /vendor/strace \
	--label "io.kilt.agent=strace" "${pass[@]}" --dest "$dest"
