#!/usr/bin/env bash
# Prints the directory of a cached Debian 11 (bullseye, glibc 2.31) minbase root of KIND, building it on first use:
#   build        amd64, with g++ 10, make, python3 and the g++-aarch64-linux-gnu cross compiler: where the release
#                addons are compiled (scripts/build-prebuilds.sh), so they need nothing newer than bullseye's glibc.
#   host-x64     amd64, no compiler (a production host has none), with iproute2 for `ss`: the old host the
#                release tarball is installed on (test/e2e/old_host.test.ts).
#   host-arm64   arm64, no compiler, for the arm64 Node.js under qemu-user-static: debootstrap's first stage only
#                (--foreign: Debian 11's arm64 files unpacked, glibc 2.31 and libstdc++ included, not configured).
#                The second stage would run dpkg for every package under qemu: 2 to 4 minutes here, against 25 s,
#                for nothing the Node.js binary uses. binfmt_misc is mounted and qemu-aarch64 enabled if they are not,
#                so that the root's arm64 binaries run.
# Roots live in /var/tmp/sockmon-bullseye/KIND-KEY, KEY a hash of this file: changing what a root holds (the
# package list) makes a new one, and older roots of that kind are removed. Concurrent callers wait for one build
# (flock). The roots are only ever read: users chroot into an overlay or copy. Needs root, debootstrap and the
# Debian mirror.
set -euo pipefail

usage() {
  echo "usage: $0 build|host-x64|host-arm64" >&2
  exit 2
}
[ $# -eq 1 ] || usage
kind=$1
foreign=
case "$kind" in
  build) arch=amd64 include=g++,make,python3,g++-aarch64-linux-gnu ;;
  host-x64) arch=amd64 include=iproute2 ;;
  host-arm64) arch=arm64 include= foreign=--foreign ;;
  *) usage ;;
esac

key=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-12)
base=${SOCKMON_BULLSEYE_BASE:-/var/tmp/sockmon-bullseye}
root="$base/$kind-$key"
mkdir -p "$base"
exec 9>"$base/.lock-$kind"
flock 9
if [ "$arch" = arm64 ]; then
  # The kernel must hand the root's arm64 binaries to qemu. Debian registers qemu-aarch64 with the F flag, so the
  # interpreter need not exist inside the root.
  [ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 >&2
fi
if [ -f "$root/.sockmon-root-complete" ]; then
  echo "$root"
  exit 0
fi

# Roots of this kind made by another version of this script are of no further use.
find "$base" -mindepth 1 -maxdepth 1 -type d -name "$kind-*" -exec rm -rf {} +

mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
partial="$root.partial"
rm -rf "$partial"
debootstrap --variant=minbase --arch="$arch" ${include:+--include="$include"} $foreign bullseye "$partial" "$mirror" >&2
# A first stage keeps the packages for the second one in /debootstrap: never used here.
rm -rf "$partial/debootstrap"
# Nothing inside reaches a network or installs more: keep apt from trying, and the downloaded packages out.
rm -f "$partial/etc/apt/sources.list" "$partial/etc/apt/sources.list.d/"* 2>/dev/null || true
rm -rf "$partial/var/cache/apt/archives/"*.deb "$partial/var/lib/apt/lists/"* 2>/dev/null || true
touch "$partial/.sockmon-root-complete"
mv "$partial" "$root"
echo "$root"
