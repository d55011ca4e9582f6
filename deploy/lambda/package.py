#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Packages the kilt CloudFormation macro as a Lambda zip for provided.al2023.

The zip holds a tiny static `bootstrap` (deploy/lambda/bootstrap.c), the kilt binary in bin/, and
in lib/ every shared library kilt needs plus the dynamic loader, found by walking DT_NEEDED with
readelf (so it works for a cross-built arm64 binary too), and libcurl with its own libraries, which
kilt opens with dlopen on first use. bootstrap starts bin/kilt through the
bundled loader with --library-path lib and --inhibit-cache: nothing of the host image is used.
The zip is deterministic: sorted entries, fixed timestamps, fixed permissions.

Usage: package.py --arch amd64|arm64 --kilt build/kilt --out kilt-macro-amd64.zip
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))

ARCHES = {
    "amd64": {
        "loader": "ld-linux-x86-64.so.2",
        "machine": "Advanced Micro Devices X86-64",
        "cc": ["musl-gcc", "gcc"],
        "strip": "strip",
        "dirs": ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64"],
    },
    "arm64": {
        "loader": "ld-linux-aarch64.so.1",
        "machine": "AArch64",
        "cc": ["aarch64-linux-gnu-gcc"],
        "strip": "aarch64-linux-gnu-strip",
        "dirs": [
            "/lib/aarch64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/usr/aarch64-linux-gnu/lib",
        ],
    },
}


def die(msg):
    print(f"package: {msg}", file=sys.stderr)
    sys.exit(1)


def readelf(path, *args):
    out = subprocess.run(["readelf", "-W", *args, path], check=True, capture_output=True, text=True)
    return out.stdout


def machine(path):
    m = re.search(r"Machine:\s+(.*)", readelf(path, "-h"))
    return m.group(1).strip() if m else ""


def needed(path):
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", readelf(path, "-d"))


def find_lib(name, arch):
    for d in ARCHES[arch]["dirs"]:
        p = os.path.join(d, name)
        if os.path.exists(p) and machine(os.path.realpath(p)) == ARCHES[arch]["machine"]:
            return os.path.realpath(p)
    return None


# Libraries kilt opens with dlopen when first needed (src/libcurl_loader.c): not in DT_NEEDED,
# so they are found by their soname in the binary's text and bundled with their own closure.
DLOPENED = ["libcurl.so.4"]


def dlopened(binary):
    with open(binary, "rb") as f:
        data = f.read()
    return [name for name in DLOPENED if name.encode() + b"\0" in data]


def closure(binary, arch):
    """soname -> real path of every library `binary` needs or opens, transitively."""
    libs, todo = {}, list(needed(binary)) + dlopened(binary)
    while todo:
        name = todo.pop()
        if name in libs:
            continue
        path = find_lib(name, arch)
        if not path:
            die(f"{name} (needed by {os.path.basename(binary)}) not found for {arch} in "
                f"{', '.join(ARCHES[arch]['dirs'])}; install its :{arch} package")
        libs[name] = path
        todo.extend(needed(path))
    return libs


def build_bootstrap(arch, out):
    spec = ARCHES[arch]
    cc = next((c for c in spec["cc"] if shutil.which(c)), None)
    if not cc:
        die(f"no compiler for the {arch} bootstrap (tried {', '.join(spec['cc'])})")
    cmd = [cc, "-static", "-Os", "-std=c17", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror",
           f"-DKILT_LOADER=\"{spec['loader']}\"", "-o", out, os.path.join(HERE, "bootstrap.c")]
    subprocess.run(cmd, check=True)
    subprocess.run([spec["strip"], out], check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", choices=sorted(ARCHES), required=True)
    ap.add_argument("--kilt", required=True, help="the kilt binary built for --arch")
    ap.add_argument("--out", required=True, help="the zip to write")
    args = ap.parse_args()
    spec = ARCHES[args.arch]
    if machine(args.kilt) != spec["machine"]:
        die(f"{args.kilt} is built for {machine(args.kilt) or 'an unknown machine'}, "
            f"not {args.arch}")
    interp = re.search(r"Requesting program interpreter: ([^\]]+)\]", readelf(args.kilt, "-l"))
    if not interp or os.path.basename(interp.group(1)) != spec["loader"]:
        die(f"{args.kilt}: unexpected program interpreter {interp and interp.group(1)}")

    with tempfile.TemporaryDirectory() as tmp:
        files = {}  # name in zip -> (path, mode)
        boot = os.path.join(tmp, "bootstrap")
        build_bootstrap(args.arch, boot)
        files["bootstrap"] = (boot, 0o755)
        kilt = os.path.join(tmp, "kilt")
        subprocess.run([spec["strip"], "--strip-unneeded", "-o", kilt, args.kilt], check=True)
        files["bin/kilt"] = (kilt, 0o755)
        libs = closure(args.kilt, args.arch)
        loader = find_lib(spec["loader"], args.arch)
        if not loader:
            die(f"the dynamic loader {spec['loader']} was not found for {args.arch}")
        libs[spec["loader"]] = loader
        for name, path in libs.items():
            files[f"lib/{name}"] = (path, 0o755 if name == spec["loader"] else 0o644)

        tmp_zip = args.out + ".tmp"
        with zipfile.ZipFile(tmp_zip, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            for name in sorted(files):
                path, mode = files[name]
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = (0o100000 | mode) << 16
                info.create_system = 3  # unix: Lambda keeps the permission bits
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(path, "rb") as f:
                    z.writestr(info, f.read())
        os.replace(tmp_zip, args.out)
    size = os.path.getsize(args.out)
    print(f"package: {args.out}: {len(files)} files, {size} bytes "
          f"({', '.join(sorted(libs))})", file=sys.stderr)


if __name__ == "__main__":
    main()
