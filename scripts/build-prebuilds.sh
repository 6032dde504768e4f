#!/usr/bin/env bash
# Builds the release addons, prebuilds/linux-x64/sockmon.glibc.node and prebuilds/linux-arm64/sockmon.glibc.node
# (prebuildify's names, which node-gyp-build picks), inside a Debian 11 root (scripts/bullseye-root.sh build:
# glibc 2.31, g++ 10 and its aarch64 cross compiler) against the official Node.js headers
# (scripts/node-runtime.sh), with libstdc++ and libgcc linked statically. The addons then need nothing above
# GLIBC_2.17 and no libstdc++ on the host: they load wherever Node.js 20's official binaries run (glibc 2.28).
# Built on this machine (glibc 2.36, g++ 12) an addon would need GLIBC_2.34 and GLIBCXX_3.4.29.
# test/e2e/symbol_floor.test.ts checks the result. Run by `npm pack` (prepack); needs root (chroot, mounts).
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$PWD

if [ "$(id -u)" -ne 0 ]; then
  echo "$0: building the release addons needs root (a chroot into a Debian 11 root); see docs/platforms.md" >&2
  exit 1
fi

root=$(bash scripts/bullseye-root.sh build)
node_x64=$(bash scripts/node-runtime.sh x64)
node_arm64=$(bash scripts/node-runtime.sh arm64)
work=$(mktemp -d /var/tmp/sockmon-prebuild.XXXXXX)
trap 'rm -rf "$work"' EXIT

# What the build reads, copied in (the root stays as it was built): binding.gyp, the sources, node-addon-api's
# headers, node-gyp.
mkdir -p "$work/src/native" "$work/src/node_modules"
cp binding.gyp "$work/src/"
cp native/*.cc native/*.h "$work/src/native/"
cp -a node_modules/node-addon-api "$work/src/node_modules/"

# One build per architecture, each in a fresh copy of the sources. The chroot runs in a mount namespace of its
# own: the bind mounts below vanish with it, whatever happens, so nothing is left mounted on the host.
build() {
  local arch=$1 nodedir=$2 cross=$3
  local out="$work/$arch"
  cp -a "$work/src" "$out"
  unshare --mount --propagation private /bin/bash -euo pipefail -c '
    root=$1 out=$2 nodedir=$3 node_x64=$4 checkout=$5 arch=$6 cross=$7
    bind() { mkdir -p "$root$2" && mount --bind "$1" "$root$2" && mount -o remount,bind,ro "$root$2"; }
    # tmpfs on /tmp and /opt (empty in the root): the mount points made below never touch the cached root.
    mount -t tmpfs tmpfs "$root/tmp"
    mount -t tmpfs tmpfs "$root/opt"
    mkdir -p "$root/tmp/build"
    mount --bind "$out" "$root/tmp/build"
    bind "$node_x64" /opt/node
    bind "$nodedir" /opt/headers
    bind "$checkout/node_modules" /opt/node_modules
    # CC/CXX pick the compiler; LDFLAGS reach the link of the module (gyp'"'"'s LDFLAGS.target).
    chroot "$root" /usr/bin/env -i PATH=/opt/node/bin:/usr/bin:/bin HOME=/tmp LANG=C.UTF-8 \
      CC="${cross}gcc" CXX="${cross}g++" LDFLAGS="-static-libstdc++ -static-libgcc" \
      /bin/sh -c "cd /tmp/build && node /opt/node_modules/node-gyp/bin/node-gyp.js rebuild --arch=$arch --nodedir=/opt/headers --jobs=2 >/tmp/build/log 2>&1 || { cat /tmp/build/log >&2; exit 1; }
        # Stripped like prebuildify --strip: the symbols serve no one on a host, and they are most of the size.
        ${cross}strip --strip-all build/Release/sockmon.node"
  ' build "$root" "$out" "$nodedir" "$node_x64" "$checkout" "$arch" "$cross"
  mkdir -p "prebuilds/linux-$arch"
  cp "$out/build/Release/sockmon.node" "prebuilds/linux-$arch/sockmon.glibc.node"
}

rm -rf prebuilds
build x64 "$node_x64" ""
build arm64 "$node_arm64" aarch64-linux-gnu-
ls -l prebuilds/linux-*/ >&2
