# SPDX-License-Identifier: Apache-2.0
# Sourced by the peer scripts that install a Python tool from PyPI (peer-cfn-lint.sh,
# peer-jsonpatch.sh): one virtualenv per tool and version, cached under /var/cache/kilt (or
# $KILT_CACHE), made once even when several runs ask at the same time.

# venv_install NAME DIR MARKER CHECK-COMMAND PACKAGE...: makes the virtualenv DIR unless the
# file DIR/MARKER says it is complete: pip installs the PACKAGEs, CHECK-COMMAND (run with the
# venv's bin first on PATH) shows they work, then MARKER is written. NAME is for messages.
venv_install() {
  local name=$1 venv=$2 marker=$3 check=$4
  shift 4
  [ -e "$venv/$marker" ] && return 0
  mkdir -p "$(dirname "$venv")"
  exec 9>"$(dirname "$venv")/.$name.lock"
  flock 9
  if ! [ -e "$venv/$marker" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2 || {
      echo "peer-$name: python3 -m venv failed (Debian: apt-get install python3-venv)" >&2
      exit 1
    }
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2
    PATH=$venv/bin:$PATH bash -c "$check" >&2
    touch "$venv/.ok" "$venv/$marker"
  fi
  exec 9>&-
}
