# shellcheck shell=bash
# Helpers shared by scripts/demo.sh and scripts/bench.sh (sourced, not run).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RRUN=${RRUN:-$ROOT/target/release/rrun}

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || die "$t not found: run 'make deps' (as root)"
  done
  [ -x "$RRUN" ] || die "$RRUN not built: run 'make build'"
}

# make_busybox_rootfs DIR: busybox-static plus its applet symlinks, /etc/passwd and group.
make_busybox_rootfs() {
  local r=$1 applet
  [ -x /bin/busybox ] || die "/bin/busybox not found: run 'make deps' (installs busybox-static)"
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev}
  chmod 1777 "$r/tmp"
  install -m 0755 /bin/busybox "$r/bin/busybox"
  for applet in $(/bin/busybox --list-full); do
    [ -e "$r/$applet" ] || [ -L "$r/$applet" ] || ln -s /bin/busybox "$r/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
}

# manifest_of LAYOUT TAG: path of the manifest blob tagged TAG.
manifest_of() {
  local d
  d=$(jq -r --arg t "$2" \
    '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"]==$t) | .digest' \
    "$1/index.json")
  [ -n "$d" ] || die "no tag $2 in $1"
  echo "$1/blobs/${d%%:*}/${d#*:}"
}

# layer_digests LAYOUT TAG: the layer digests, one a line, bottom first.
layer_digests() { jq -r '.layers[].digest' "$(manifest_of "$1" "$2")"; }
