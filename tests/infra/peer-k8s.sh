#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the Kubernetes test cluster's programs from the Go module proxy into /opt/kilt/bin:
# kube-apiserver, kubelet, kube-scheduler, kube-controller-manager, kube-proxy and kubectl
# (k8s.io/kubernetes),
# etcd (go.etcd.io/etcd/server/v3) and helm (helm.sh/helm/v3). Each group is cached by version (a
# stamp file next to the binaries), so a second run costs nothing; a lock makes concurrent runs
# build once. A cold build is CPU-bound (go build -p 2; caches under /var/cache/kilt, ~6 GB): about
# 11 minutes on two lightly loaded cores, 70 minutes on two cores shared with other builds (load
# ~20); a cached run costs nothing.
# Usage: tests/infra/peer-k8s.sh    (KILT_K8S_VERSION, KILT_ETCD_VERSION, KILT_HELM_VERSION override)
set -euo pipefail

k8s_version=${KILT_K8S_VERSION:-v1.37.2}
etcd_version=${KILT_ETCD_VERSION:-v3.7.4}
helm_version=${KILT_HELM_VERSION:-v3.22.0}
bindir=${KILT_PEER_BIN:-/opt/kilt/bin}
cache=${KILT_CACHE:-/var/cache/kilt}
kube_bins=(kube-apiserver kubelet kube-controller-manager kube-scheduler kube-proxy kubectl)

# up_to_date NAME VERSION BIN...: the stamp names VERSION and every binary is there.
up_to_date() {
  local name=$1 version=$2
  shift 2
  [ "$(cat "$bindir/.$name.version" 2>/dev/null)" = "$version" ] || return 1
  local b
  for b in "$@"; do [ -x "$bindir/$b" ] || return 1; done
}

all_up_to_date() {
  up_to_date kubernetes "$k8s_version" "${kube_bins[@]}" &&
    up_to_date etcd "$etcd_version" etcd &&
    up_to_date helm "$helm_version" helm
}

all_up_to_date && exit 0

command -v go >/dev/null 2>&1 || { echo "peer-k8s: go is not installed" >&2; exit 1; }
mkdir -p "$bindir" "$cache"
exec 9>"$cache/.k8s-build.lock"
if ! flock -n 9; then
  echo "peer-k8s: another build is running; waiting for it" >&2
  flock 9
fi
all_up_to_date && exit 0

export GOCACHE=${GOCACHE:-$cache/go-build}
export GOMODCACHE=${GOMODCACHE:-$cache/go-mod}
export GOTOOLCHAIN=local
export GOFLAGS=-mod=mod
export CGO_ENABLED=0
jobs=${KILT_GO_JOBS:-2}

# build_to NAME PACKAGE LDFLAGS: builds into a temporary name, then renames, so an interrupted
# build never leaves a half-written binary under the final name.
build_to() {
  local name=$1 pkg=$2 ldflags=$3 t0
  t0=$(date +%s)
  echo "peer-k8s: building $name" >&2
  go build -p "$jobs" -trimpath -ldflags "$ldflags" -o "$bindir/.$name.tmp" "$pkg"
  mv -f "$bindir/.$name.tmp" "$bindir/$name"
  echo "peer-k8s: built $name in $(($(date +%s) - t0)) s" >&2
}

if ! up_to_date kubernetes "$k8s_version" "${kube_bins[@]}"; then
  # k8s.io/kubernetes replaces each staging module with a local path, so it cannot be built as a
  # dependency as is: a wrapper module pins each of those to its published v0.N.M instead.
  wrap=$cache/k8s-wrapper-$k8s_version
  rm -rf "$wrap"
  mkdir -p "$wrap"
  modfile=$(cd "$wrap" && go mod download -json "k8s.io/kubernetes@$k8s_version" |
    sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  [ -f "$modfile" ] || { echo "peer-k8s: no go.mod for k8s.io/kubernetes@$k8s_version" >&2; exit 1; }
  staging_version=v0.${k8s_version#v1.}
  {
    echo "module kilt.test/k8s-peer"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes $k8s_version"
    echo
    echo "replace ("
    # The proxy refuses the two sample modules and nothing here needs them.
    sed -n '/^replace (/,/^)/p' "$modfile" |
      sed -n 's|^[[:space:]]*\(k8s\.io/[A-Za-z0-9._-]*\) => \./staging/.*|\1|p' |
      grep -v -e '^k8s.io/sample-cli-plugin$' -e '^k8s.io/sample-controller$' |
      while read -r m; do printf '\t%s => %s %s\n' "$m" "$m" "$staging_version"; done
    echo ")"
  } >"$wrap/go.mod"
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    for b in "${kube_bins[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b"; done
    echo ")"
  } >"$wrap/tools.go"
  (cd "$wrap" && go mod tidy)
  major=${k8s_version#v}
  major=${major%%.*}
  minor=${k8s_version#v*.}
  minor=${minor%%.*}
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$k8s_version -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    ld="$ld -X $p.gitTreeState=clean"
  done
  # Same version, a program added to the list: only the missing ones are built.
  same=false
  [ "$(cat "$bindir/.kubernetes.version" 2>/dev/null)" = "$k8s_version" ] && same=true
  for b in "${kube_bins[@]}"; do
    $same && [ -x "$bindir/$b" ] && continue
    (cd "$wrap" && build_to "$b" "k8s.io/kubernetes/cmd/$b" "$ld")
  done
  echo "$k8s_version" >"$bindir/.kubernetes.version"
fi

if ! up_to_date etcd "$etcd_version" etcd; then
  # etcd's own go.mod has replace directives too: `go install ...@version` refuses it.
  wrap=$cache/etcd-wrapper-$etcd_version
  rm -rf "$wrap"
  mkdir -p "$wrap"
  printf 'module kilt.test/etcd-peer\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' \
    "$etcd_version" >"$wrap/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$wrap/tools.go"
  (cd "$wrap" && go mod tidy)
  (cd "$wrap" && build_to etcd go.etcd.io/etcd/server/v3 "-s -w")
  echo "$etcd_version" >"$bindir/.etcd.version"
fi

if ! up_to_date helm "$helm_version" helm; then
  wrap=$cache/helm-wrapper-$helm_version
  rm -rf "$wrap"
  mkdir -p "$wrap"
  printf 'module kilt.test/helm-peer\n\ngo 1.26.0\n\nrequire helm.sh/helm/v3 %s\n' \
    "$helm_version" >"$wrap/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "helm.sh/helm/v3/cmd/helm"\n' >"$wrap/tools.go"
  (cd "$wrap" && go mod tidy)
  (cd "$wrap" && build_to helm helm.sh/helm/v3/cmd/helm \
    "-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version")
  echo "$helm_version" >"$bindir/.helm.version"
fi

"$bindir/kubectl" version --client >&2
"$bindir/etcd" --version | sed -n 1p >&2
"$bindir/helm" version --short >&2
