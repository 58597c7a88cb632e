#!/usr/bin/env bash
# `make bench` (trust): time of a verified pull resolution, rrun against the real notary CLI in
# the same run.
#
# Starts notary-signer + notary-server (memory storage, TLS with a CA made here) on free loopback
# ports, signs TRUST_TAGS tags (default 20) of one repository with `rrun trust sign`, then times
# TRUST_RUNS (default 21, at least 10) interleaved runs of each:
#   rrun cold   `rrun trust lookup --verify` (what `pull --verify` does before it fetches the
#               manifest by the signed digest) with a fresh --root: no cached metadata
#   rrun warm   the same with the metadata of the previous runs cached (root pinned)
#   notary cold `notary lookup GUN TAG` with a fresh trust dir
#   notary warm the same with its trust dir kept
# Wall time (ms, medians and min/max), CPU time (user + sys, median) and peak RSS
# (/usr/bin/time) go to bench/trust.md.
# Work dir: $BENCH_DIR/trust, default bench/work/trust (removed first).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
need notary notary-server notary-signer openssl jq /usr/bin/time

RUNS=${TRUST_RUNS:-21}
TAGS=${TRUST_TAGS:-20}
W=${BENCH_DIR:-$ROOT/bench/work}/trust
OUT_MD=$ROOT/bench/trust.md
if ! [[ $RUNS =~ ^[1-9][0-9]*$ ]] || [ "$RUNS" -lt 10 ]; then die "TRUST_RUNS must be a number >= 10"; fi
if ! [[ $TAGS =~ ^[1-9][0-9]*$ ]]; then die "TRUST_TAGS must be a positive number"; fi

log() { echo "[bench-trust] $*" >&2; }

rm -rf "$W"
mkdir -p "$W"/{certs,conf,logs}
W=$(cd "$W" && pwd)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the trust service -------------------------------------------------------------------------
C=$W/certs
openssl ecparam -name prime256v1 -genkey -noout -out "$C/ca.key" 2>/dev/null
openssl req -x509 -new -key "$C/ca.key" -subj /CN=rrun-bench-ca -days 2 -out "$C/ca.crt" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
for n in server signer; do
  openssl ecparam -name prime256v1 -genkey -noout -out "$C/$n.ec" 2>/dev/null
  openssl pkcs8 -topk8 -nocrypt -in "$C/$n.ec" -out "$C/$n.key"
  openssl req -new -key "$C/$n.key" -subj "/CN=notary-$n" -out "$C/$n.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >"$C/$n.ext"
  openssl x509 -req -in "$C/$n.csr" -CA "$C/ca.crt" -CAkey "$C/ca.key" -CAcreateserial \
    -days 2 -extfile "$C/$n.ext" -out "$C/$n.crt" 2>/dev/null
done
SIGNER_PORT=$(free_port)
SERVER_PORT=$(free_port)
cat >"$W/conf/signer.json" <<EOF
{"server": {"grpc_addr": "127.0.0.1:$SIGNER_PORT", "tls_cert_file": "../certs/signer.crt",
 "tls_key_file": "../certs/signer.key", "client_ca_file": "../certs/ca.crt"},
 "logging": {"level": "warn"}, "storage": {"backend": "memory"}}
EOF
cat >"$W/conf/server.json" <<EOF
{"server": {"http_addr": "127.0.0.1:$SERVER_PORT", "tls_cert_file": "../certs/server.crt",
 "tls_key_file": "../certs/server.key"},
 "trust_service": {"type": "remote", "hostname": "127.0.0.1", "port": "$SIGNER_PORT",
  "key_algorithm": "ecdsa", "tls_ca_file": "../certs/ca.crt",
  "tls_client_cert": "../certs/server.crt", "tls_client_key": "../certs/server.key"},
 "storage": {"backend": "memory"}, "logging": {"level": "warn"}}
EOF
(cd "$W/conf" && exec notary-signer -config signer.json >"$W/logs/signer.log" 2>&1) &
PIDS+=($!)
sleep 0.5
(cd "$W/conf" && exec notary-server -config server.json >"$W/logs/server.log" 2>&1) &
PIDS+=($!)
URL=https://127.0.0.1:$SERVER_PORT
CA=$C/ca.crt
for _ in $(seq 100); do
  curl -sf --cacert "$CA" "$URL/_notary_server/health" >/dev/null 2>&1 && break
  for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null || die "notary did not start: $(cat "$W"/logs/*.log)"; done
  sleep 0.1
done
curl -sf --cacert "$CA" "$URL/_notary_server/health" >/dev/null || die "notary-server is not healthy"

# --- signed tags -------------------------------------------------------------------------------
GUN=127.0.0.1:5000/bench/trust
SIGN_ROOT=$W/signer
export RRUN_TRUST_ROOT_PASSPHRASE=bench-root-pw RRUN_TRUST_REPOSITORY_PASSPHRASE=bench-repo-pw
unset RRUN_CONTENT_TRUST RRUN_CONTENT_TRUST_SERVER
log "signing $TAGS tags of $GUN on $URL"
for i in $(seq "$TAGS"); do
  d=sha256:$(printf 'manifest %s' "$i" | sha256sum | cut -d' ' -f1)
  "$RRUN" --root "$SIGN_ROOT" trust sign --trust-server "$URL" --tls-ca "$CA" \
    "$GUN:t$i" --digest "$d" --size $((1000 + i)) >/dev/null
done
TAG=t$TAGS
WANT=$(printf 'manifest %s' "$TAGS" | sha256sum | cut -d' ' -f1)

# --- timing ------------------------------------------------------------------------------------
# timed NAME CMD...: one run; appends "µs rss_kib cpu_s" to $W/NAME.txt; the output must name
# $WANT.
timed() {
  local name=$1 t0 t1
  shift
  t0=$(date +%s%N)
  /usr/bin/time -f '%M %U %S' -o "$W/rss" "$@" >"$W/out" 2>"$W/err" || die "$name failed: $(cat "$W/err")"
  t1=$(date +%s%N)
  grep -q "$WANT" "$W/out" || die "$name did not resolve $GUN:$TAG to $WANT: $(cat "$W/out")"
  echo "$(((t1 - t0) / 1000)) $(tail -n1 "$W/rss" | awk '{print $1, $2 + $3}')" >>"$W/$name.txt"
}
rrun_lookup() {
  timed "$1" "$RRUN" --root "$2" trust lookup --verify --trust-server "$URL" --tls-ca "$CA" \
    --format json "$GUN:$TAG"
}
notary_lookup() {
  timed "$1" notary -s "$URL" --tlscacert "$CA" -d "$2" lookup "$GUN" "$TAG"
}
log "$RUNS interleaved runs of each: rrun cold/warm, notary lookup cold/warm"
rrun_lookup rrun-warm "$W/rrun-warm-root" # fills the warm cache (not counted)
rm -f "$W/rrun-warm.txt"
notary_lookup notary-warm "$W/notary-warm-dir"
rm -f "$W/notary-warm.txt"
for _ in $(seq "$RUNS"); do
  rm -rf "$W/rrun-cold-root" "$W/notary-cold-dir"
  rrun_lookup rrun-cold "$W/rrun-cold-root"
  notary_lookup notary-cold "$W/notary-cold-dir"
  rrun_lookup rrun-warm "$W/rrun-warm-root"
  notary_lookup notary-warm "$W/notary-warm-dir"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# median: the median of the numbers on stdin
median() { sort -n | awk '{t[NR]=$1} END {printf "%f", (NR%2) ? t[(NR+1)/2] : (t[NR/2]+t[NR/2+1])/2}'; }
# stats NAME: wall "median | min | max" in ms, the median CPU ms and the peak RSS in MiB
stats() {
  local f=$W/$1.txt
  awk -v m="$(cut -d' ' -f1 "$f" | median)" -v c="$(cut -d' ' -f3 "$f" | median)" \
    '{if (NR==1 || $1<lo) lo=$1; if ($1>hi) hi=$1; if ($2>r) r=$2}
     END {printf "%.1f | %.1f | %.1f | %.0f | %.1f", m/1000, lo/1000, hi/1000, c*1000, r/1024}' "$f"
}
ratio() {
  awk -v a="$(cut -d' ' -f1 "$W/$1.txt" | median)" -v b="$(cut -d' ' -f1 "$W/$2.txt" | median)" \
    'BEGIN {printf "%.2f", a/b}'
}

{
  echo "# Content trust: verified pull resolution"
  echo
  echo "Generated by \`scripts/bench-trust.sh\` on $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores;"
  echo "load average before $LOAD_BEFORE, after $LOAD_AFTER."
  echo
  echo "One repository \`$GUN\` with $TAGS tags signed by \`rrun trust sign\` on a local"
  echo "notary-server + notary-signer (memory storage, TLS), resolving tag \`$TAG\` to its signed"
  echo "digest and length: \`rrun trust lookup --verify\` runs the same \`verify_tag\` as"
  echo "\`rrun pull --verify\` before the manifest is fetched by digest; the peer is the real"
  echo "\`notary lookup\`. Cold: fresh \`--root\` / trust dir each run (root, timestamp, snapshot,"
  echo "targets downloaded and verified); warm: the cached metadata of earlier runs (timestamp"
  echo "re-fetched, as both clients always do). $RUNS interleaved runs each (TRUST_RUNS,"
  echo "TRUST_TAGS); wall time of the whole process. A cold rrun run writes each verified file"
  echo "to its cache with fsync and an atomic rename; a warm one rewrites only what changed."
  echo
  echo "| client | cache | median ms | min ms | max ms | CPU ms (median) | peak RSS MiB |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
  echo "| rrun | cold | $(stats rrun-cold) |"
  echo "| notary lookup | cold | $(stats notary-cold) |"
  echo "| rrun | warm | $(stats rrun-warm) |"
  echo "| notary lookup | warm | $(stats notary-warm) |"
  echo
  echo "rrun / notary (wall medians): cold $(ratio rrun-cold notary-cold), warm $(ratio rrun-warm notary-warm)."
  echo "CPU time is user + sys as /usr/bin/time reports it (10 ms resolution)."
} >"$OUT_MD"
cat "$OUT_MD"
