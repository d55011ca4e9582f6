#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Assembles the image that runs `kilt webhook serve` without a Docker engine (umoci) and copies it
# to its destination (skopeo). kilt is dynamically linked and opens libmicrohttpd, GnuTLS and
# libcurl at run time: the image holds the binary, its loader and every library those need, at
# the paths of the machine that built it (so the loader's default search finds them, without
# rewriting anything), the CA certificates for registry lookups, and a user 65532 to run as.
#   /usr/bin/kilt   /lib64/ld-linux-x86-64.so.2 (or the arm64 loader)   /lib/<triplet>/*.so.*
#   /etc/ssl/certs/ca-certificates.crt   /etc/passwd, /etc/group   /tmp
# Entrypoint: /usr/bin/kilt; user 65532:65532. The Deployment of `kilt webhook manifests` gives
# the arguments.
set -euo pipefail

usage() {
	cat >&2 <<'EOF'
usage: build-webhook-image.sh --dest DEST [options]
  --dest DEST           skopeo destination: docker://HOST/REPO:TAG, oci:DIR:TAG or
                        docker-archive:FILE:REF (for `ctr images import`)
  --kilt FILE           the kilt binary (default: build/dev/kilt, built with the dev preset
                        when missing); its architecture is the image's
  --label KEY=VALUE     image label (repeatable)
  --dest-tls-verify B   passed to skopeo (false for a plain-HTTP test registry)
  --dest-creds U:P      passed to skopeo
  --keep DIR            keep the OCI layout and bundle in DIR (default: a temporary directory)
EOF
	exit 2
}

prog=build-webhook-image
src_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=deploy/images/image-lib.sh
. "$src_dir/deploy/images/image-lib.sh"
dest="" kilt="" keep=""
labels=() skopeo_opts=()
while (($#)); do
	case "$1" in
	--kilt) kilt=${2:?}; shift 2 ;;
	-h | --help) usage ;;
	*)
		image_option "$@" || { echo "$prog: unknown argument $1" >&2; usage; }
		shift 2
		;;
	esac
done
[[ -n $dest ]] || usage
need_tools umoci skopeo readelf ldd ldconfig
if [[ -z $kilt ]]; then
	kilt=$src_dir/build/dev/kilt
	if [[ ! -x $kilt ]]; then
		cmake -S "$src_dir" --preset dev >/dev/null
		cmake --build "$src_dir/build/dev" --target kilt-cli >/dev/null
	fi
fi
[[ -f $kilt && -x $kilt ]] || die "--kilt $kilt is not an executable file"
case $(elf_machine "$kilt") in
*X86-64*) arch=amd64 ;;
*AArch64*) arch=arm64 ;;
*) die "--kilt $kilt is not an x86-64 or AArch64 ELF program" ;;
esac
interp=$(elf_interp "$kilt")
[[ -n $interp ]] || die "--kilt $kilt is static: this script bundles the libraries of a dynamic kilt"

# The libraries kilt opens at run time (src/webhook_libs.c, src/libcurl_loader.c).
dlopened=(libmicrohttpd.so.12 libgnutls.so.30 libcurl.so.4)
objects=("$kilt")
for soname in "${dlopened[@]}"; do
	# awk reads ldconfig's whole listing: leaving early would kill ldconfig with SIGPIPE, which
	# pipefail turns into this script's failure.
	path=$(ldconfig -p | awk -v n="$soname" -v a="$([[ $arch == amd64 ]] && echo x86-64 || echo AArch64)" \
		'$1 == n && index($0, a) && !found { print $NF; found = 1 }')
	[[ -n $path ]] || die "$soname is not installed (libmicrohttpd12, libgnutls30, libcurl4)"
	objects+=("$path")
done

image_workdir
image_begin kilt-webhook

# Every library, at the path the loader resolved it to (the loader's own default directories).
copied=0
for obj in "${objects[@]}"; do
	words=$(elf_libraries "$obj")
	for word in "$obj" $words; do
		[[ $word == "$kilt" ]] && continue
		if [[ ! -e $root$word ]]; then
			install -d "$root$(dirname "$word")"
			cp -L "$word" "$root$word"
			copied=$((copied + 1))
		fi
	done
done
[[ -e $root$interp ]] || die "the loader $interp was not found by ldd"
# /lib may be a link to /usr/lib on the building machine: either spelling must work.
for d in lib lib64; do
	if [[ -d $root/$d && ! -e $root/usr/$d ]]; then
		install -d "$root/usr"
		ln -s "../$d" "$root/usr/$d"
	fi
done
install -D -m 0755 "$kilt" "$root/usr/bin/kilt"
ca=""
for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
	[[ -f $f ]] && { ca=$f; break; }
done
[[ -n $ca ]] || die "no CA bundle found (install ca-certificates)"
install -D -m 0644 "$ca" "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nkilt:x:65532:65532:kilt:/nonexistent:/sbin/nologin\n' \
	>"$root/etc/passwd"
printf 'root:x:0:\nkilt:x:65532:\n' >"$root/etc/group"
install -d -m 1777 "$root/tmp"
echo "$prog: kilt ($arch) with its loader and $copied libraries" >&2

version=$("$kilt" version | awk '{ print $2 }')
image_end "$arch" \
	--config.entrypoint /usr/bin/kilt --clear=config.cmd \
	--config.user 65532:65532 \
	--config.exposedports 8443/tcp \
	--config.label "org.opencontainers.image.title=kilt webhook" \
	--config.label "org.opencontainers.image.version=$version"
echo "$prog: wrote $dest (kilt $version, $arch, user 65532)" >&2
