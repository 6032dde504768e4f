#!/usr/bin/env bash
# Installs sockmon as a systemd service from a built checkout (after `npm ci`):
#   the package in $PREFIX (default /opt/sockmon), the unit in /etc/systemd/system, the defaults file in
#   /etc/default/sockmon (kept if present). DESTDIR=/some/root installs below that root instead, touching
#   nothing else on the machine.
# Usage: scripts/install-service.sh [--uninstall [--purge]]
set -euo pipefail

cd "$(dirname "$0")/.."
destdir=${DESTDIR:-}
prefix=${PREFIX:-/opt/sockmon}
node=${NODE:-$(command -v node)}
unit=$destdir/etc/systemd/system/sockmon.service
defaults=$destdir/etc/default/sockmon

reload_systemd() {
  if [ -z "$destdir" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
}

if [ "${1:-}" = "--uninstall" ]; then
  if [ -z "$destdir" ] && [ -d /run/systemd/system ]; then systemctl disable --now sockmon.service 2>/dev/null || true; fi
  rm -rf "${destdir}${prefix}" "$unit"
  if [ "${2:-}" = "--purge" ]; then rm -f "$defaults"; fi
  reload_systemd
  echo "sockmon: uninstalled from ${destdir:-/}"
  exit 0
fi

[ -f build/Release/sockmon.node ] && [ -f dist/src/cli.js ] || { echo "sockmon: build first (npm ci)" >&2; exit 1; }

target=${destdir}${prefix}
rm -rf "$target"
mkdir -p "$target/build/Release" "$target/node_modules"
cp -r package.json package-lock.json README.md dist monitoring systemd "$target/"
rm -rf "$target/dist/test" "$target/dist/bench"
cp build/Release/sockmon.node "$target/build/Release/"
# The runtime dependencies only, as npm resolved them here (no network needed on the host).
npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 | while read -r dir; do
  rel=${dir#"$PWD/"}
  mkdir -p "$target/$(dirname "$rel")"
  cp -r "$dir" "$target/$rel"
done

mkdir -p "$(dirname "$unit")" "$(dirname "$defaults")"
sed -e "s#^ExecStart=/usr/bin/node /opt/sockmon/#ExecStart=$node $prefix/#" systemd/sockmon.service > "$unit"
chmod 0644 "$unit"
if [ ! -e "$defaults" ]; then install -m 0644 systemd/sockmon.default "$defaults"; fi
reload_systemd
echo "sockmon: installed in $target; unit $unit; options in $defaults"
if [ -z "$destdir" ]; then echo "start it with: systemctl enable --now sockmon"; fi
