#!/usr/bin/env bash
# Lays out sockmon with its own Node.js runtime, as the OS packages and the OCI image install it, under DEST:
#   DEST/usr/lib/sockmon/node/bin/node   the pinned official Node.js binary (scripts/node-runtime.sh), stripped
#   DEST/usr/lib/sockmon/app/            the release tarball's package (dist, bundled node_modules, the prebuilt
#                                        addon for ARCH only, systemd, monitoring, man)
# Usage: stage-release.sh TARBALL x64|arm64 DEST   (TARBALL: npm pack's sockmon-VERSION.tgz)
set -euo pipefail

usage() {
  echo "usage: $0 TARBALL x64|arm64 DEST" >&2
  exit 2
}
[ $# -eq 3 ] || usage
tarball=$1 arch=$2 dest=$3
case "$arch" in
  x64) strip=strip ;;
  arm64) strip=aarch64-linux-gnu-strip ;;
  *) usage ;;
esac
[ -f "$tarball" ] || { echo "$0: no such tarball: $tarball" >&2; exit 2; }
command -v "$strip" >/dev/null || { echo "$0: $strip is missing (apt-get install binutils${arch/x64/}${arch/arm64/-aarch64-linux-gnu})" >&2; exit 1; }

here=$(dirname "$0")
runtime=$(bash "$here/node-runtime.sh" "$arch")
lib="$dest/usr/lib/sockmon"
mkdir -p "$lib/node/bin" "$lib/app"
install -m 0755 "$runtime/bin/node" "$lib/node/bin/node"
"$strip" --strip-all "$lib/node/bin/node"
install -m 0644 "$runtime/LICENSE" "$lib/node/LICENSE"
tar -xzf "$tarball" -C "$lib/app" --strip-components=1 --no-same-owner
[ -f "$lib/app/prebuilds/linux-$arch/sockmon.glibc.node" ] || { echo "$0: $tarball has no prebuilt addon for linux-$arch" >&2; exit 1; }
find "$lib/app/prebuilds" -mindepth 1 -maxdepth 1 ! -name "linux-$arch" -exec rm -rf {} +
