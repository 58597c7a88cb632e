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

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_registry DIR: Debian's docker-registry (distribution 2.8) on a free loopback port, no
# auth, storage and log in DIR. Sets REGISTRY (127.0.0.1:PORT) and REGISTRY_PID; stop_registry
# stops it (call it from an EXIT trap).
start_registry() {
  local dir=$1 port code
  command -v docker-registry >/dev/null || die "docker-registry not found: run 'make deps' (as root)"
  mkdir -p "$dir/data"
  port=$(free_port)
  cat >"$dir/config.yml" <<CONF
version: 0.1
log: {level: info, formatter: text}
storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}
http: {addr: "127.0.0.1:$port"}
CONF
  docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 </dev/null &
  REGISTRY_PID=$!
  REGISTRY=127.0.0.1:$port
  for _ in $(seq 1 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://$REGISTRY/v2/" || true)
    [ "$code" = 200 ] && return 0
    kill -0 "$REGISTRY_PID" 2>/dev/null || break
    sleep 0.1
  done
  die "docker-registry did not start on $REGISTRY (log: $dir/registry.log)"
}

stop_registry() {
  if [ -n "${REGISTRY_PID:-}" ]; then
    kill "$REGISTRY_PID" 2>/dev/null || true
    wait "$REGISTRY_PID" 2>/dev/null || true
    REGISTRY_PID=
  fi
}
