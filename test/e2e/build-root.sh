#!/usr/bin/env bash
# Builds the root directories of the systemd-nspawn containers the end-to-end tests boot, once per version string,
# and prints the path of the one asked for. Concurrent callers wait for one build (flock).
#   build-root.sh base   Debian bookworm minbase with systemd and Debian's rpm, and no Node.js (no compiler, no
#                        python: a stand-in for a production backend host): the OS packages' test
#   build-root.sh node   (the default) the base plus this host's node and npm: the release tarball's test
# The node root is a copy of the base (cp --reflink where the file system can): one debootstrap per run.
# See /work/shared/docs/systemd-nspawn.md. Needs root, debootstrap and network access to the Debian mirror.
set -euo pipefail

flavour=${1:-node}
case $flavour in base | node) ;; *) echo "usage: $0 [base|node]" >&2; exit 2 ;; esac
base_version="bookworm-minbase-2"
node_version="$base_version-node$(node --version)"
dir=${SOCKMON_CI_ROOT_BASE:-/var/tmp/sockmon-ci-root}
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
complete=.sockmon-ci-root-complete

# Older versions of the roots are of no further use.
find "$dir" -mindepth 1 -maxdepth 1 -type d ! -name "$base_version" ! -name "$node_version" -exec rm -rf {} +

if [ ! -f "$dir/$base_version/$complete" ]; then
  mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  partial="$dir/$base_version.partial"
  rm -rf "$partial" "$dir/$base_version"
  # rpm: Debian's own, for installing the .rpm under the container's systemd (test/e2e/packages.test.ts).
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,iproute2,curl,procps,ca-certificates,rpm \
    bookworm "$partial" "$mirror" >&2
  systemd-machine-id-setup --root="$partial" >&2
  # Nothing in the container may reach a network: it has none (--private-network); keep apt from trying.
  rm -f "$partial/etc/apt/sources.list" "$partial/etc/apt/sources.list.d/"* 2>/dev/null || true
  rm -rf "$partial/var/cache/apt/archives/"*.deb
  touch "$partial/$complete"
  mv "$partial" "$dir/$base_version"
fi

if [ "$flavour" = node ] && [ ! -f "$dir/$node_version/$complete" ]; then
  partial="$dir/$node_version.partial"
  rm -rf "$partial" "$dir/$node_version"
  cp -a --reflink=auto "$dir/$base_version" "$partial"
  rm "$partial/$complete"
  # The host's node runs on bookworm's libraries; npm is what installs the release tarball.
  install -m 0755 "$(command -v node)" "$partial/usr/bin/node"
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  mkdir -p "$partial/usr/lib/node_modules"
  cp -a "$npm_dir" "$partial/usr/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$partial/usr/bin/npm"
  touch "$partial/$complete"
  mv "$partial" "$dir/$node_version"
fi

if [ "$flavour" = node ]; then echo "$dir/$node_version"; else echo "$dir/$base_version"; fi
