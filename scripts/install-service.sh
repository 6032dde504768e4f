#!/usr/bin/env bash
# Installs sockmon as a systemd service, from a built checkout (after `npm ci`) or from the installed release
# package (after `npm install -g ./sockmon-<version>.tgz`): `npm run install-service` in either directory.
#
# It writes only what it records in a manifest, and removes only what the manifest lists:
#   $PREFIX/lib/sockmon/               the package (what the release tarball holds, plus an addon built here)
#   $PREFIX/share/man/man1/sockmon.1   the man page
#   /etc/systemd/system/sockmon.service
#   /var/lib/sockmon-installer/manifest
# plus the directories it had to create for them. The configuration, /etc/default/sockmon and /etc/sockmon/, is
# created once and kept; the unit's drop-ins (sockmon.service.d/) are the operator's. Both go only with --purge.
set -euo pipefail
umask 022

usage() {
  cat <<'EOF'
Usage: install-service.sh [--uninstall [--purge]] | --help
  (nothing)            install or upgrade sockmon.service; a running service is restarted
  --uninstall          stop and disable the service and remove what the install wrote; keep the configuration
  --uninstall --purge  also remove the configuration: /etc/default/sockmon, /etc/sockmon/ (web config, keys)
                       and the unit's drop-ins in /etc/systemd/system/sockmon.service.d/
  --help               this text
Environment: PREFIX (default /usr/local: the package goes in $PREFIX/lib/sockmon), DESTDIR (install below this
root instead of /, without touching systemd), NODE (the node binary the unit runs; default: node on PATH).
EOF
}

fail() { echo "install-service: $1" >&2; exit "${2:-1}"; }

action=install
purge=no
for arg in "$@"; do
  case $arg in
    --uninstall) action=uninstall ;;
    --purge) purge=yes ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install-service: unknown argument \"$arg\"" >&2; usage >&2; exit 2 ;;
  esac
done
[ "$purge" = no ] || [ "$action" = uninstall ] || { echo "install-service: --purge goes with --uninstall" >&2; usage >&2; exit 2; }

destdir=${DESTDIR:-}
destdir=${destdir%/}
prefix=${PREFIX:-/usr/local}
case $prefix in /*) ;; *) fail "PREFIX must be an absolute path, got \"$prefix\"" 2 ;; esac
prefix=${prefix%/}
package_dir=$prefix/lib/sockmon
man_page=$prefix/share/man/man1/sockmon.1
unit=/etc/systemd/system/sockmon.service
dropins=/etc/systemd/system/sockmon.service.d
defaults=/etc/default/sockmon
config_dir=/etc/sockmon
manifest=/var/lib/sockmon-installer/manifest

# systemctl only for the machine's own root, and only when systemd runs it.
live_systemd() { [ -z "$destdir" ] && [ -d /run/systemd/system ]; }

recorded=()
record() { recorded+=("$1"); }

# mkdir -p that records each directory it creates, so that uninstall removes exactly those (when empty).
make_dir() {
  local path=$1 partial=''
  local IFS=/
  for part in ${path#/}; do
    partial=$partial/$part
    if [ ! -d "$destdir$partial" ]; then
      mkdir "$destdir$partial"
      record "$partial"
    fi
  done
}

put_file() { # source, target (without DESTDIR), mode
  make_dir "$(dirname "$2")"
  install -m "$3" "$1" "$destdir$2"
  record "$2"
}

# Removes what the manifest lists, last written first: files, then the directories they were in if now empty.
# Directories still holding something (the kept configuration) stay listed, for a later --purge or install.
remove_installed() {
  [ -f "$destdir$manifest" ] || return 0
  local entries=() path i
  mapfile -t entries <"$destdir$manifest"
  for ((i = ${#entries[@]} - 1; i >= 0; i--)); do
    path=${entries[i]}
    case $path in '' | "$manifest" | "$(dirname "$manifest")") continue ;; esac
    if [ -d "$destdir$path" ] && [ ! -L "$destdir$path" ]; then
      rmdir "$destdir$path" 2>/dev/null || true
    else
      rm -f "$destdir$path"
    fi
  done
  # What still exists stays recorded; the manifest's own directory (and the ones above it that it made) count
  # only when something else is left.
  local others=no
  recorded=()
  for path in "${entries[@]}"; do
    case $path in '' | "$manifest") continue ;; esac
    [ -e "$destdir$path" ] || continue
    record "$path"
    case "$(dirname "$manifest")/" in "$path"/*) ;; *) others=yes ;; esac
  done
  if [ "$others" = no ]; then
    rm -f "$destdir$manifest"
    for ((i = ${#recorded[@]} - 1; i >= 0; i--)); do rmdir "$destdir${recorded[i]}" 2>/dev/null || true; done
    recorded=()
  else
    write_manifest
  fi
}

write_manifest() {
  printf '%s\n' "${recorded[@]}" "$manifest" >"$destdir$manifest"
}

uninstall() {
  if live_systemd; then systemctl disable --now sockmon.service 2>/dev/null || true; fi
  if [ "$purge" = yes ]; then
    rm -rf -- "$destdir$dropins" "$destdir$config_dir" "$destdir$defaults"
  fi
  if [ ! -f "$destdir$manifest" ]; then
    echo "install-service: nothing installed under ${destdir:-/} (no $manifest)"
  fi
  remove_installed
  if live_systemd; then systemctl daemon-reload; fi
  echo "sockmon: uninstalled from ${destdir:-/}$([ "$purge" = yes ] && echo ', configuration purged')"
  if [ "$purge" = no ]; then echo "kept: $defaults, $config_dir/ and any drop-ins in $dropins/ (--purge removes them)"; fi
}

# The files of the release package, as `npm pack` lists them (package.json "files" and the bundled runtime
# dependencies), read from this directory: a checkout or the installed package. No network, no scripts.
package_files() {
  npm pack --dry-run --json --ignore-scripts --offline 2>/dev/null |
    node -e 'for (const f of JSON.parse(require("fs").readFileSync(0, "utf8"))[0].files) console.log(f.path)'
}

install_service() {
  cd "$(dirname "$0")/.."
  [ -f dist/src/cli/cli.js ] && [ -f man/sockmon.1 ] || fail "build first: npm ci (in a checkout)"
  local files addon
  files=$(package_files) || fail "npm pack could not list the package's files"
  # An addon built from source here (build/Release) is loaded before a prebuilt one: take it along when present.
  addon=$( { [ -f build/Release/sockmon.node ] && echo build/Release/sockmon.node; } || true)
  echo "$files" | grep -q '^prebuilds/.*\.node$' || [ -n "$addon" ] || fail "no addon: build first (npm ci) or install the release tarball"
  local node=${NODE:-$(command -v node)}
  [ -x "$node" ] || fail "no node binary (set NODE)"
  if [ -e "$destdir$package_dir" ] && ! grep -qxF "$package_dir" "$destdir$manifest" 2>/dev/null; then
    fail "$destdir$package_dir exists and was not installed by this script; not touching it"
  fi

  remove_installed # an upgrade: the previous version's files go, the configuration stays
  make_dir "$package_dir"
  [ -z "$(ls -A "$destdir$package_dir")" ] || fail "$destdir$package_dir holds files this script did not install; not touching it"
  printf '%s\n' "$files" ${addon:+"$addon"} |
    tar -cf - --no-recursion --mode=u+rw,go+rX,go-w --owner=0 --group=0 -T - |
    tar -xf - --no-same-owner -C "$destdir$package_dir"
  local entry
  while IFS= read -r entry; do record "$package_dir/${entry#./}"; done < <(cd "$destdir$package_dir" && find . -mindepth 1)
  put_file man/sockmon.1 "$man_page" 0644

  local rendered
  rendered=$(mktemp)
  sed -e "s#^ExecStart=/usr/bin/node /usr/local/lib/sockmon/#ExecStart=$node $package_dir/#" systemd/sockmon.service >"$rendered"
  put_file "$rendered" "$unit" 0644
  rm -f "$rendered"

  # The configuration: created once, never overwritten.
  if [ ! -e "$destdir$defaults" ]; then
    make_dir "$(dirname "$defaults")"
    install -m 0644 systemd/sockmon.default "$destdir$defaults"
  elif grep -q '^[[:space:]]*SOCKMON_ARGS=' "$destdir$defaults"; then
    echo "install-service: $defaults still sets SOCKMON_ARGS, which sockmon refuses now: write one SOCKMON_<FLAG>=value per line (see $package_dir/systemd/sockmon.default)" >&2
  fi
  # The unit loads this directory as credentials (the web config and a root-only key): it must exist.
  if [ ! -d "$destdir$config_dir" ]; then
    make_dir "$(dirname "$config_dir")"
    install -d -m 0700 "$destdir$config_dir"
  fi

  make_dir "$(dirname "$manifest")"
  write_manifest

  echo "sockmon: installed in $destdir$package_dir; unit $destdir$unit; settings in $destdir$defaults"
  # The installer before this one copied the package to /opt/sockmon and kept no manifest: say so, touch nothing.
  if [ -f "$destdir/opt/sockmon/dist/src/cli/cli.js" ] && [ "$package_dir" != /opt/sockmon/lib/sockmon ]; then
    echo "note: $destdir/opt/sockmon holds an earlier install (no longer used by the unit); remove it by hand"
  fi
  if live_systemd; then
    systemctl daemon-reload
    if systemctl is-active --quiet sockmon.service; then
      systemctl restart sockmon.service
      echo "sockmon: the running service was restarted on the new version"
    else
      echo "start it with: systemctl enable --now sockmon"
    fi
  elif [ -z "$destdir" ]; then
    echo "systemd is not running here: if sockmon runs, restart it to use this version"
  fi
}

if [ "$action" = uninstall ]; then uninstall; else install_service; fi
