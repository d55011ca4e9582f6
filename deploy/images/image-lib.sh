# SPDX-License-Identifier: Apache-2.0
# What the image scripts of deploy/images/ share (sourced, not run): their common options, the
# checks of ELF programs, the walk of a dynamic program's libraries, and the umoci/skopeo steps
# that make an image from a root filesystem. The sourcing script sets `prog` (its name, for
# messages) first, and may set lib_hint (what to add to a "libraries not found" error).

# A failure inside $(...) fails the script too (die in a function whose output is captured).
shopt -s inherit_errexit

die() {
	echo "$prog: $*" >&2
	exit 1
}

# image_option OPTION VALUE: takes an option every image script has (--dest, --label,
# --dest-tls-verify, --dest-creds, --keep) into dest, labels, skopeo_opts and keep; returns 1
# for any other option (the caller shifts 2 on success).
image_option() {
	case "$1" in
	--dest) dest=${2:?} ;;
	--label) labels+=("--config.label=${2:?}") ;;
	--dest-tls-verify) skopeo_opts+=("--dest-tls-verify=${2:?}") ;;
	--dest-creds) skopeo_opts+=("--dest-creds=${2:?}") ;;
	--keep) keep=${2:?} ;;
	*) return 1 ;;
	esac
}

need_tools() { # TOOL...
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || die "$tool is not installed (tests/infra/install-deps.sh)"
	done
}

elf_machine() { # FILE: readelf's Machine (X86-64, AArch64...), empty for a file that is no ELF
	{ readelf -h "$1" 2>/dev/null || true; } | sed -n 's/ *Machine: *//p'
}

elf_interp() { # FILE: the program interpreter a dynamic program asks for, empty for a static one
	# sed reads the whole listing: grep -q would leave early and pipefail could take readelf's
	# SIGPIPE for a failure
	readelf -lW "$1" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p'
}

# elf_libraries OBJECT [DIR]: every file ldd lists for OBJECT (its libraries and the loader),
# one a line, looking in DIR first; dies when ldd fails or a library is not found.
elf_libraries() {
	local listing
	listing=$(LD_LIBRARY_PATH=${2:-} ldd "$1" 2>&1) || die "ldd $1 failed: $listing"
	if grep -q "not found" <<<"$listing"; then
		die "$1: libraries not found${lib_hint:-}: $(grep "not found" <<<"$listing" | tr -s ' \t\n' ' ')"
	fi
	awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' <<<"$listing"
}

# bundle_program SRC DEST LIBDIR PREFIX [DIR]: installs the ELF program SRC as DEST. A dynamic
# one gets every library it needs and its loader copied into LIBDIR (DIR searched first), its
# interpreter set to the loader under PREFIX (LIBDIR's path in the image) and its RPATH to
# PREFIX, so it runs in any image without using the image's libc. RPATH, not RUNPATH: the loader
# searches a program's RUNPATH for the program's own libraries only, so a library that only
# another library needs would be looked for in the image's /lib and /usr/lib (missing there, or
# another build of it); a program's RPATH serves every library it loads. A bundled library's own
# RUNPATH (a build machine's directory) would hide the program's RPATH from that library's
# needs: it is replaced by the same RPATH. Prints "static", or the number of files in LIBDIR.
bundle_program() {
	local src=$1 out=$2 lib=$3 prefix=$4 dir=${5:-} interp words word base
	install -m 0755 "$src" "$out"
	interp=$(elf_interp "$src")
	if [[ -z $interp ]]; then
		echo static
		return
	fi
	mkdir -p "$lib"
	words=$(elf_libraries "$src" "$dir")
	for word in $words; do
		base=$(basename "$word")
		[[ -e $lib/$base ]] && continue
		cp -L "$word" "$lib/$base"
		if [[ $base != "$(basename "$interp")" ]] && grep -q RUNPATH <<<"$(readelf -dW "$lib/$base")"; then
			chmod u+w "$lib/$base"
			patchelf --force-rpath --set-rpath "$prefix" "$lib/$base"
		fi
	done
	[[ -e $lib/$(basename "$interp") ]] || die "$src: its loader $interp was not found"
	patchelf --set-interpreter "$prefix/$(basename "$interp")" --force-rpath --set-rpath "$prefix" "$out"
	ls "$lib" | wc -l
}

# image_workdir: sets work to --keep's directory, or to a temporary one removed on exit.
image_workdir() {
	if [[ -n $keep ]]; then
		work=$keep
		mkdir -p "$work"
	else
		work=$(mktemp -d)
		trap 'rm -rf "$work"' EXIT
	fi
}

# image_begin TAG: a new empty image TAG in the OCI layout $work/oci, unpacked into
# $work/bundle; sets layout, bundle and root (the root filesystem to fill).
image_begin() {
	tag=$1 layout="$work/oci" bundle="$work/bundle"
	rm -rf "$layout" "$bundle"
	local rootless=()
	[[ $(id -u) -eq 0 ]] || rootless=(--rootless)
	umoci init --layout "$layout"
	umoci new --image "$layout:$tag"
	umoci unpack "${rootless[@]}" --image "$layout:$tag" "$bundle" >/dev/null
	root="$bundle/rootfs"
}

# image_end ARCH CONFIG-OPTION...: the root filesystem becomes the image's layer, with the
# configuration umoci config's options give (and the --label options), copied to $dest.
image_end() {
	local arch=$1
	shift
	umoci repack --image "$layout:$tag" "$bundle"
	umoci config --image "$layout:$tag" --os linux --architecture "$arch" "$@" "${labels[@]}"
	umoci gc --layout "$layout"
	skopeo copy "${skopeo_opts[@]}" "oci:$layout:$tag" "$dest" >/dev/null
}
