#!/usr/bin/env bash
# Builds sockmon's OCI image (deploy/image/Containerfile, FROM scratch) from the release tarball, with podman:
#   rootfs/usr/lib/sockmon/{node,app}  scripts/stage-release.sh: the pinned Node.js runtime and the package
#   rootfs/usr/lib/sockmon/sockmon.js  a link to the CLI that package.json's "bin" names
#   rootfs/usr/lib/<triplet>/...       the shared libraries the Node binary and the addon load (ldd), copied from
#                                      this host (Debian 12) with their Debian copyright files
#   rootfs/etc/passwd, /etc/group      root and nobody/nogroup (65534), the user the image runs as
# Usage: build-image.sh [--tarball sockmon-VERSION.tgz] [--tag NAME]
#   without --tarball it runs `npm pack` in this checkout (which builds the prebuilt addon); --tag defaults to sockmon.
# The libraries come from this host, so the image is for this host's architecture (x64); see docs/containers.md.
set -euo pipefail

usage() {
  echo "usage: $0 [--tarball sockmon-VERSION.tgz] [--tag NAME]" >&2
  exit 2
}
tarball='' tag=sockmon
while [ $# -gt 0 ]; do
  case "$1" in
    --tarball) [ $# -ge 2 ] && [ -n "$2" ] || usage; tarball=$2; shift 2 ;;
    --tag) [ $# -ge 2 ] && [ -n "$2" ] || usage; tag=$2; shift 2 ;;
    *) usage ;;
  esac
done
[ -z "$tarball" ] || [ -f "$tarball" ] || { echo "$0: no such tarball: $tarball" >&2; exit 2; }
[ "$(uname -m)" = x86_64 ] || { echo "$0: the image takes this host's libraries: build it on an x86_64 host" >&2; exit 1; }
for tool in podman ldd dpkg-query node; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is missing" >&2; exit 1; }
done

here=$(cd "$(dirname "$0")" && pwd)
checkout=$(dirname "$here")
arch=x64
work=$(mktemp -d "${TMPDIR:-/tmp}/sockmon-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ -z "$tarball" ]; then
  (cd "$checkout" && npm pack --pack-destination "$work" >&2)
  tarball=$(echo "$work"/sockmon-*.tgz)
fi

root="$work/rootfs"
bash "$here/stage-release.sh" "$tarball" "$arch" "$root"
lib="$root/usr/lib/sockmon"
package_field() { node -p "const p = require(process.argv[1]); $1" "$lib/app/package.json"; }
cli=$(package_field 'typeof p.bin === "string" ? p.bin : p.bin.sockmon')
version=$(package_field 'p.version')
[ -f "$lib/app/$cli" ] || { echo "$0: package.json's bin $cli is not in $tarball" >&2; exit 1; }
ln -s "app/${cli#./}" "$lib/sockmon.js"

# The loader and every library ldd resolves for the runtime and the addon, at their canonical paths (Debian 12
# merges /lib into /usr/lib: /lib and /lib64 become the same links as here), and which Debian package each is from.
mkdir -p "$root/usr/share/doc"
for link in lib lib64; do
  if [ -L "/$link" ]; then ln -s "$(readlink "/$link")" "$root/$link"; fi
done
{
  ldd "$lib/node/bin/node"
  ldd "$lib/app/prebuilds/linux-$arch/"*.node
} | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u | while read -r path; do
  dir=$(readlink -f "$(dirname "$path")")
  mkdir -p "$root$dir"
  cp -L "$path" "$root$dir/$(basename "$path")"
  package=$(dpkg-query -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1) || true
  package=${package:-$(dpkg-query -S "$dir/$(basename "$path")" | head -n 1 | cut -d: -f1)}
  mkdir -p "$root/usr/share/doc/$package"
  cp "/usr/share/doc/$package/copyright" "$root/usr/share/doc/$package/copyright"
  echo "$dir/$(basename "$path") $package $(dpkg-query -W -f '${Version}' "$package")" >>"$lib/image-libraries"
done

mkdir -p "$root/etc"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
chmod -R u=rwX,go=rX "$root"

node_options=$(sed -n 's/^Environment="NODE_OPTIONS=\([^"]*\)"$/\1/p' "$lib/app/systemd/sockmon.service")
[ -n "$node_options" ] || { echo "$0: systemd/sockmon.service sets no NODE_OPTIONS" >&2; exit 1; }
revision=$(git -C "$checkout" rev-parse HEAD 2>/dev/null || echo unknown)
podman build --quiet --pull=never -f "$checkout/deploy/image/Containerfile" -t "$tag" \
  --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
  --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" --build-arg "NODE_OPTIONS=$node_options" "$work" >/dev/null
size=$(podman image inspect --format '{{.Size}}' "$tag")
echo "$0: built $tag ($version, $((size / 1024 / 1024)) MiB): $(wc -l <"$lib/image-libraries") libraries from $(cut -d' ' -f2 "$lib/image-libraries" | sort -u | tr '\n' ' ')" >&2
