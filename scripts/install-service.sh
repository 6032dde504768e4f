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

# Paths go into the manifest one per line and into the unit's ExecStart: a control character (a newline, a
# tab) fits neither, and is refused before anything changes. Every other character works (quoted for systemd).
check_path() { # name, value
  case $2 in *[[:cntrl:]]*) fail "$1 must not hold control characters (a newline, a tab): got $(printf '%q' "$2")" 2 ;; esac
}

destdir=${DESTDIR:-}
check_path DESTDIR "$destdir"
destdir=${destdir%/}
prefix=${PREFIX:-/usr/local}
check_path PREFIX "$prefix"
case $prefix in /*) ;; *) fail "PREFIX must be an absolute path, got \"$prefix\"" 2 ;; esac
# Node cannot load a program from a path with a backslash (ERR_INVALID_MODULE_SPECIFIER).
case $prefix in *\\*) fail "PREFIX must not hold a backslash (node cannot run a program below it): got $prefix" 2 ;; esac
prefix=${prefix%/}
package_dir=$prefix/lib/sockmon
# An upgrade stages the new copy here and swaps it in; the old one waits here until it is removed.
staged=$package_dir.staged
previous=$package_dir.previous
man_page=$prefix/share/man/man1/sockmon.1
unit=/etc/systemd/system/sockmon.service
dropins=/etc/systemd/system/sockmon.service.d
defaults=/etc/default/sockmon
config_dir=/etc/sockmon
manifest=/var/lib/sockmon-installer/manifest

# systemctl only for the machine's own root, and only when systemd runs it.
live_systemd() { [ -z "$destdir" ] && [ -d /run/systemd/system ]; }

# The manifest lists, one per line, what this script created: files, directories it made (removed when empty),
# and directory trees it owns whole, with a trailing / (the package, its staged and previous copies). It is
# rewritten (atomically) before each change, so an interrupted run leaves a manifest that names all it made.
recorded=()
write_manifest() {
  [ -d "$destdir$(dirname "$manifest")" ] || return 0
  printf '%s\n' "${recorded[@]}" "$manifest" >"$destdir$manifest.new"
  mv -f -- "$destdir$manifest.new" "$destdir$manifest"
}
record() {
  local entry
  for entry in "${recorded[@]}"; do [ "$entry" != "$1" ] || return 0; done
  recorded+=("$1")
  write_manifest
}
forget() { # entries equal to $1, or below it when $2 is "below"
  local kept=() entry
  for entry in "${recorded[@]}"; do
    if [ "$entry" = "$1" ] || { [ "${2:-}" = below ] && [[ $entry == "$1"/?* ]]; }; then continue; fi
    kept+=("$entry")
  done
  recorded=("${kept[@]}")
  write_manifest
}
load_manifest() {
  recorded=()
  [ -f "$destdir$manifest" ] || return 0
  local entry
  while IFS= read -r entry; do
    case $entry in '' | "$manifest") ;; *) recorded+=("$entry") ;; esac
  done <"$destdir$manifest"
}
# Whether the manifest lists `path` (as a file, a directory or a tree).
owned() { [ -f "$destdir$manifest" ] && grep -qxF -e "$1" -e "$1/" -- "$destdir$manifest"; }

# mkdir -p that records each directory it creates, so that uninstall removes exactly those (when empty).
make_dir() {
  local path=$1 partial='' part
  local IFS=/
  local -
  set -f # a path part may hold * or ?
  for part in ${path#/}; do
    partial=$partial/$part
    if [ ! -d "$destdir$partial" ]; then
      record "$partial"
      mkdir -- "$destdir$partial"
    fi
  done
}

# Removes what the manifest lists, last written first: trees whole, files, then the directories they were in
# if now empty. Directories still holding something (the kept configuration) stay listed, for a later --purge
# or install.
remove_installed() {
  [ -f "$destdir$manifest" ] || return 0
  load_manifest
  local entries=("${recorded[@]}") path i
  for ((i = ${#entries[@]} - 1; i >= 0; i--)); do
    path=${entries[i]}
    case $path in
      '' | "$manifest" | "$(dirname "$manifest")") continue ;;
      */) rm -rf -- "$destdir${path%/}" ;;
      *) if [ -d "$destdir$path" ] && [ ! -L "$destdir$path" ]; then rmdir -- "$destdir$path" 2>/dev/null || true; else rm -f -- "$destdir$path"; fi ;;
    esac
  done
  rm -f -- "$destdir$manifest.new"
  # What still exists stays recorded; the manifest's own directory (and the ones above it that it made) count
  # only when something else is left.
  local others=no
  recorded=()
  for path in "${entries[@]}"; do
    [ -e "$destdir${path%/}" ] || continue
    recorded+=("$path")
    case "$(dirname "$manifest")/" in "$path"/*) ;; *) others=yes ;; esac
  done
  if [ "$others" = no ]; then
    rm -f -- "$destdir$manifest"
    for ((i = ${#recorded[@]} - 1; i >= 0; i--)); do rmdir -- "$destdir${recorded[i]}" 2>/dev/null || true; done
    recorded=()
  else
    write_manifest
  fi
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

# One word of a unit's command line as systemd.syntax(7) and systemd.service(5) read it: left as it is when it
# holds only plain characters, else in double quotes with \ and " escaped and % doubled (a specifier
# otherwise); in an argument (not the executable, which is not expanded) $ is doubled too (a variable otherwise).
systemd_word() { # word, exec|arg
  local word=$1 bs='\' dq='"'
  case $word in *[!A-Za-z0-9/._+@:,=-]*) ;; *) printf '%s' "$word"; return ;; esac
  word=${word//"$bs"/"$bs$bs"}
  word=${word//"$dq"/"$bs$dq"}
  word=${word//'%'/'%%'}
  [ "$2" = exec ] || word=${word//'$'/'$$'}
  printf '"%s"' "$word"
}

# systemd/sockmon.service with its ExecStart running `node` on the package in `package_dir`.
render_unit() { # node, package_dir
  local from='ExecStart=/usr/bin/node /usr/local/lib/sockmon/' line rest script found=no
  while IFS= read -r line || [ -n "$line" ]; do
    if [[ $line == "$from"* ]]; then
      rest=${line#"$from"}
      script=${rest%% *}
      line="ExecStart=$(systemd_word "$1" exec) $(systemd_word "$2/$script" arg)${rest#"$script"}"
      found=yes
    fi
    printf '%s\n' "$line"
  done <systemd/sockmon.service
  [ "$found" = yes ]
}

# The whole install is: stage the new package, unit and man page beside the old ones, swap them in by rename,
# then remove the old copy. Interrupted anywhere (a failing command, a full disk, a kill), the old version
# still runs and the manifest names everything made so far: a rerun completes the install, --uninstall
# removes it all.
install_service() {
  cd "$(dirname "$0")/.."
  [ -f dist/src/cli/cli.js ] && [ -f man/sockmon.1 ] || fail "build first: npm ci (in a checkout)"
  local files addon
  files=$(package_files) || fail "npm pack could not list the package's files"
  # An addon built from source here (build/Release) is loaded before a prebuilt one: take it along when present.
  addon=$( { [ -f build/Release/sockmon.node ] && echo build/Release/sockmon.node; } || true)
  echo "$files" | grep -q '^prebuilds/.*\.node$' || [ -n "$addon" ] || fail "no addon: build first (npm ci) or install the release tarball"
  local node=${NODE:-$(command -v node)}
  check_path NODE "$node"
  # systemd refuses an executable whose name holds a quote or a backslash ("contains special characters").
  case $node in *[\\\"\']*) fail "NODE must not hold a quote or a backslash (systemd refuses such an executable name): got $node" 2 ;; esac
  [ -x "$node" ] || fail "no node binary (set NODE)"
  local path
  for path in "$package_dir" "$staged" "$previous"; do
    if [ -e "$destdir$path" ] && ! owned "$path"; then fail "$destdir$path exists and was not installed by this script; not touching it"; fi
  done

  load_manifest
  make_dir "$(dirname "$manifest")"
  write_manifest
  # An earlier run stopped between its two renames: put the old package back first.
  if [ ! -e "$destdir$package_dir" ] && [ -d "$destdir$previous" ]; then mv -- "$destdir$previous" "$destdir$package_dir"; fi
  rm -rf -- "$destdir$staged" "$destdir$previous" "$destdir$unit.staged" "$destdir$man_page.staged"

  # Stage.
  make_dir "$(dirname "$package_dir")"
  record "$staged/"
  mkdir -- "$destdir$staged"
  printf '%s\n' "$files" ${addon:+"$addon"} |
    tar -cf - --no-recursion --mode=u+rw,go+rX,go-w --owner=0 --group=0 -T - |
    tar -xf - --no-same-owner -C "$destdir$staged"
  make_dir "$(dirname "$unit")"
  record "$unit.staged"
  render_unit "$node" "$package_dir" >"$destdir$unit.staged" || fail "systemd/sockmon.service has no ExecStart line to rewrite"
  chmod 0644 -- "$destdir$unit.staged"
  make_dir "$(dirname "$man_page")"
  record "$man_page.staged"
  install -m 0644 man/sockmon.1 "$destdir$man_page.staged"

  # Swap: each rename replaces the old version whole.
  record "$previous/"
  record "$package_dir/"
  if [ -e "$destdir$package_dir" ]; then mv -- "$destdir$package_dir" "$destdir$previous"; fi
  mv -- "$destdir$staged" "$destdir$package_dir"
  forget "$staged/"
  forget "$package_dir" below # an earlier installer listed each file: the tree entry covers them
  forget "$package_dir"
  record "$unit"
  mv -f -- "$destdir$unit.staged" "$destdir$unit"
  forget "$unit.staged"
  record "$man_page"
  mv -f -- "$destdir$man_page.staged" "$destdir$man_page"
  forget "$man_page.staged"
  rm -rf -- "$destdir$previous"
  forget "$previous/"

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
