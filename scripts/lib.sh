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

# start_notary DIR: notary-signer + notary-server (Debian's notary; memory storage, TLS with a
# CA made here) on free loopback ports; certificates, configs and logs in DIR. Sets NOTARY_URL
# (https://127.0.0.1:PORT), NOTARY_CA (the CA file clients trust) and NOTARY_PIDS; stop_notary
# stops them (call it from an EXIT trap).
start_notary() {
  local dir=$1 c n p signer_port server_port
  command -v notary-server >/dev/null || die "notary-server not found: run 'make deps' (as root)"
  mkdir -p "$dir"/{certs,conf,logs}
  dir=$(cd "$dir" && pwd)
  c=$dir/certs
  openssl ecparam -name prime256v1 -genkey -noout -out "$c/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$c/ca.key" -subj /CN=rrun-local-ca -days 2 -out "$c/ca.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
  for n in server signer; do
    openssl ecparam -name prime256v1 -genkey -noout -out "$c/$n.ec" 2>/dev/null
    openssl pkcs8 -topk8 -nocrypt -in "$c/$n.ec" -out "$c/$n.key"
    openssl req -new -key "$c/$n.key" -subj "/CN=notary-$n" -out "$c/$n.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >"$c/$n.ext"
    openssl x509 -req -in "$c/$n.csr" -CA "$c/ca.crt" -CAkey "$c/ca.key" -CAcreateserial \
      -days 2 -extfile "$c/$n.ext" -out "$c/$n.crt" 2>/dev/null
  done
  signer_port=$(free_port)
  server_port=$(free_port)
  cat >"$dir/conf/signer.json" <<CONF
{"server": {"grpc_addr": "127.0.0.1:$signer_port", "tls_cert_file": "../certs/signer.crt",
 "tls_key_file": "../certs/signer.key", "client_ca_file": "../certs/ca.crt"},
 "logging": {"level": "warn"}, "storage": {"backend": "memory"}}
CONF
  cat >"$dir/conf/server.json" <<CONF
{"server": {"http_addr": "127.0.0.1:$server_port", "tls_cert_file": "../certs/server.crt",
 "tls_key_file": "../certs/server.key"},
 "trust_service": {"type": "remote", "hostname": "127.0.0.1", "port": "$signer_port",
  "key_algorithm": "ecdsa", "tls_ca_file": "../certs/ca.crt",
  "tls_client_cert": "../certs/server.crt", "tls_client_key": "../certs/server.key"},
 "storage": {"backend": "memory"}, "logging": {"level": "warn"}}
CONF
  NOTARY_PIDS=()
  (cd "$dir/conf" && exec notary-signer -config signer.json >"$dir/logs/signer.log" 2>&1) &
  NOTARY_PIDS+=($!)
  sleep 0.5
  (cd "$dir/conf" && exec notary-server -config server.json >"$dir/logs/server.log" 2>&1) &
  NOTARY_PIDS+=($!)
  NOTARY_URL=https://127.0.0.1:$server_port
  NOTARY_CA=$c/ca.crt
  for _ in $(seq 100); do
    curl -sf --cacert "$NOTARY_CA" "$NOTARY_URL/_notary_server/health" >/dev/null 2>&1 && return 0
    for p in "${NOTARY_PIDS[@]}"; do
      kill -0 "$p" 2>/dev/null || die "notary did not start: $(cat "$dir"/logs/*.log)"
    done
    sleep 0.1
  done
  die "notary-server is not healthy (logs: $dir/logs)"
}

stop_notary() {
  local p
  for p in ${NOTARY_PIDS[@]+"${NOTARY_PIDS[@]}"}; do kill "$p" 2>/dev/null || true; done
  NOTARY_PIDS=()
}
