#!/usr/bin/env bash
# Builds, once per version string, the root directory of the systemd-nspawn container the end-to-end test boots:
# Debian bookworm minbase with systemd (no compiler, no python: a stand-in for a production backend host) plus
# this host's node and npm. Prints the root's path. Concurrent callers wait for one build (flock).
# See /work/shared/docs/systemd-nspawn.md. Needs root, debootstrap and network access to the Debian mirror.
set -euo pipefail

node_version=$(node --version)
version="bookworm-minbase-1-node${node_version}"
base=${SOCKMON_CI_ROOT_BASE:-/var/tmp/sockmon-ci-root}
root="$base/$version"
mkdir -p "$base"
exec 9>"$base/.lock"
flock 9
if [ -f "$root/.sockmon-ci-root-complete" ]; then
  echo "$root"
  exit 0
fi

# Older versions of the root are of no further use.
find "$base" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
partial="$root.partial"
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,iproute2,curl,procps,ca-certificates \
  bookworm "$partial" "$mirror" >&2
# The host's node runs on bookworm's libraries; npm is what installs the release tarball.
install -m 0755 "$(command -v node)" "$partial/usr/bin/node"
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
mkdir -p "$partial/usr/lib/node_modules"
cp -a "$npm_dir" "$partial/usr/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$partial/usr/bin/npm"
systemd-machine-id-setup --root="$partial" >&2
# Nothing in the container may reach a network: it has none (--private-network); keep apt from trying.
rm -f "$partial/etc/apt/sources.list" "$partial/etc/apt/sources.list.d/"* 2>/dev/null || true
apt_cache_clean() { rm -rf "$partial/var/cache/apt/archives/"*.deb; }
apt_cache_clean
touch "$partial/.sockmon-ci-root-complete"
mv "$partial" "$root"
echo "$root"
