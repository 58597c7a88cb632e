#!/usr/bin/env bash
# `make bench`: layer encryption throughput and peak memory, rrun against skopeo in the same run.
#
# Builds an OCI layout by hand with one uncompressed `application/vnd.oci.image.layer.v1.tar`
# layer holding BENCH_BYTES (default 1 GiB) of random data, then times BENCH_RUNS (default 3)
# runs of each: rrun image encrypt, skopeo copy --encryption-key, rrun image decrypt, skopeo copy
# --decryption-key (runs interleaved, `sync` before each, /usr/bin/time for wall and max RSS).
# Both decrypts read the same skopeo-encrypted image. Also records CPU seconds (user + sys). skopeo gets
# --dest-oci-accept-uncompressed-layers so that it does not gzip the layer (same work as rrun).
# Writes bench/results.md and bench/chart.png. Work dir: $BENCH_DIR, default bench/work.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
need jq openssl skopeo gnuplot sha256sum /usr/bin/time

BYTES=${BENCH_BYTES:-1073741824}
RUNS=${BENCH_RUNS:-3}
W=${BENCH_DIR:-$ROOT/bench/work}
OUT_MD=$ROOT/bench/results.md
OUT_PNG=$ROOT/bench/chart.png
if ! [[ $BYTES =~ ^[1-9][0-9]*$ ]]; then die "BENCH_BYTES must be a positive number of bytes"; fi
if ! [[ $RUNS =~ ^[1-9][0-9]*$ ]]; then die "BENCH_RUNS must be a positive number"; fi

log() { echo "[bench] $*" >&2; }

rm -rf "$W"
mkdir -p "$W"
W=$(cd "$W" && pwd)
free_kib=$(df -Pk "$W" | awk 'NR==2 {print $4}')
[ "$free_kib" -gt $((BYTES * 4 / 1024)) ] || die "need about $((BYTES * 4 / 1048576)) MiB free in $W"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the input image, written by hand ------------------------------------------------------------
L="$W/plain"
TAG=bench
# put_blob FILE: move FILE into the layout's blobs, print "sha256:HEX SIZE"
put_blob() {
  local hex size
  hex=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  mv "$1" "$L/blobs/sha256/$hex"
  echo "sha256:$hex $size"
}
log "building $L: one uncompressed tar layer with $BYTES random bytes"
mkdir -p "$L/blobs/sha256" "$W/payload"
printf '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
head -c "$BYTES" /dev/urandom >"$W/payload/random.bin"
tar -C "$W/payload" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
  -cf "$W/layer.tar" random.bin
rm -rf "$W/payload"
read -r LAYER_DIGEST LAYER_SIZE < <(put_blob "$W/layer.tar")
jq -n -c --arg diff "$LAYER_DIGEST" \
  '{architecture: "amd64", os: "linux", config: {},
    rootfs: {type: "layers", diff_ids: [$diff]},
    history: [{created_by: "rrun bench: random payload"}]}' >"$W/config.json"
read -r CONFIG_DIGEST CONFIG_SIZE < <(put_blob "$W/config.json")
jq -n -c --arg cd "$CONFIG_DIGEST" --argjson cs "$CONFIG_SIZE" \
  --arg ld "$LAYER_DIGEST" --argjson ls "$LAYER_SIZE" \
  '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
    layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $ld, size: $ls}]}' \
  >"$W/manifest.json"
read -r MANIFEST_DIGEST MANIFEST_SIZE < <(put_blob "$W/manifest.json")
jq -n -c --arg d "$MANIFEST_DIGEST" --argjson s "$MANIFEST_SIZE" --arg t "$TAG" \
  '{schemaVersion: 2, manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: $d, size: $s, annotations: {"org.opencontainers.image.ref.name": $t}}]}' \
  >"$L/index.json"
log "layer $LAYER_DIGEST ($LAYER_SIZE bytes)"

# --- keys and the encrypted input of both decrypts -----------------------------------------------
(umask 077; openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$W/key.pem" 2>/dev/null)
openssl pkey -in "$W/key.pem" -pubout -out "$W/key.pub"
SKOPEO=(skopeo copy -q --dest-oci-accept-uncompressed-layers)
log "encrypting the decrypt input with skopeo"
"${SKOPEO[@]}" --encryption-key "jwe:$W/key.pub" "oci:$L:$TAG" "oci:$W/enc:$TAG"

# --- timed runs ----------------------------------------------------------------------------------
OUT="$W/out"
declare -A CMD
CMD[rrun-encrypt]="$RRUN image encrypt --recipient jwe:$W/key.pub oci:$L:$TAG oci:$OUT:$TAG"
CMD[skopeo-encrypt]="${SKOPEO[*]} --encryption-key jwe:$W/key.pub oci:$L:$TAG oci:$OUT:$TAG"
CMD[rrun-decrypt]="$RRUN image decrypt --key $W/key.pem oci:$W/enc:$TAG oci:$OUT:$TAG"
CMD[skopeo-decrypt]="${SKOPEO[*]} --decryption-key $W/key.pem oci:$W/enc:$TAG oci:$OUT:$TAG"
ORDER=(rrun-encrypt skopeo-encrypt rrun-decrypt skopeo-decrypt)

# check_output NAME: the first run's output must be right
check_output() {
  local want got
  case $1 in
    *-encrypt) want=application/vnd.oci.image.layer.v1.tar+encrypted
               got=$(jq -r '.layers[0].mediaType' "$(manifest_of "$OUT" "$TAG")") ;;
    *-decrypt) want=$LAYER_DIGEST
               got=$(jq -r '.layers[0].digest' "$(manifest_of "$OUT" "$TAG")") ;;
  esac
  [ "$got" = "$want" ] || die "$1 produced $got, expected $want"
}

for name in "${ORDER[@]}"; do : >"$W/$name.times"; done
for i in $(seq 1 "$RUNS"); do
  # alternate who goes first so that neither tool always runs on a warmer machine
  if [ $((i % 2)) = 1 ]; then order=("${ORDER[@]}"); else
    order=(skopeo-encrypt rrun-encrypt skopeo-decrypt rrun-decrypt); fi
  for name in "${order[@]}"; do
    rm -rf "$OUT"
    sync
    # shellcheck disable=SC2086 # CMD holds a word list without spaces in paths
    if ! /usr/bin/time -f '%e %M %U %S' -o "$W/time.tmp" ${CMD[$name]} >/dev/null 2>"$W/$name.err"; then
      cat "$W/$name.err" >&2
      die "$name failed: ${CMD[$name]}"
    fi
    [ "$i" = 1 ] && check_output "$name"
    cat "$W/time.tmp" >>"$W/$name.times"
    log "run $i/$RUNS $name: $(awk '{printf "%.2f s, %.0f MiB", $1, $2/1024}' "$W/time.tmp")"
  done
done
rm -rf "$OUT"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# median of a column of numbers on stdin
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
# median wall, MB/s at the median, max peak RSS (MiB), median CPU seconds, all runs' walls
declare -A WALL MBS RSS CPUS ALL
for name in "${ORDER[@]}"; do
  WALL[$name]=$(awk '{print $1}' "$W/$name.times" | median)
  CPUS[$name]=$(awk '{printf "%.2f\n", $3 + $4}' "$W/$name.times" | median)
  MBS[$name]=$(awk -v b="$LAYER_SIZE" -v w="${WALL[$name]}" 'BEGIN {printf "%.0f", (w > 0) ? b/w/1e6 : 0}')
  RSS[$name]=$(awk 'BEGIN {m=0} {if ($2>m) m=$2} END {printf "%.1f", m/1024}' "$W/$name.times")
  ALL[$name]=$(awk '{printf "%s%.2f", (NR>1 ? ", " : ""), $1}' "$W/$name.times")
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf (b > 0) ? "%.1fx" : "-", a/b}'; }

# --- results.md ----------------------------------------------------------------------------------
SKOPEO_VERSION=$(skopeo --version | awk '{print $3}')
RRUN_VERSION=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
MEM=$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
MIB=$(awk -v b="$BYTES" 'BEGIN {printf "%.0f", b/1048576}')
{
  echo "# rrun vs skopeo: layer encryption throughput and memory"
  echo
  echo "Made by \`make bench\` (scripts/bench.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'), rrun \`$RRUN_VERSION\`"
  echo "against skopeo $SKOPEO_VERSION (containers/ocicrypt, Debian 12) in the same run."
  echo
  echo "Input: an OCI layout with one uncompressed \`application/vnd.oci.image.layer.v1.tar\` layer of"
  echo "$BYTES bytes ($MIB MiB) of random data; recipient and key: RSA-2048 JWE. Each operation"
  echo "ran $RUNS times, interleaved, \`sync\` before each run; the table shows the median wall time,"
  echo "the throughput at that time (layer bytes / wall, 1 MB = 10^6 bytes) and the highest peak RSS"
  echo "of the runs, and the median CPU time (user + sys, all threads), which depends less on what"
  echo "else runs on the machine (\`/usr/bin/time -f '%e %M %U %S'\`). Both decrypts read the same"
  echo "skopeo-encrypted image."
  echo "skopeo runs with \`--dest-oci-accept-uncompressed-layers\`, so that it encrypts the raw"
  echo "layer like rrun instead of gzipping it first."
  echo
  echo "| operation | tool | wall s (median) | MB/s | peak RSS MiB | CPU s | speed vs skopeo | RSS vs skopeo |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for op in encrypt decrypt; do
    r=rrun-$op s=skopeo-$op
    echo "| $op | rrun | ${WALL[$r]} | ${MBS[$r]} | ${RSS[$r]} | ${CPUS[$r]} | $(ratio "${MBS[$r]}" "${MBS[$s]}") | $(ratio "${RSS[$r]}" "${RSS[$s]}") |"
    echo "| $op | skopeo $SKOPEO_VERSION | ${WALL[$s]} | ${MBS[$s]} | ${RSS[$s]} | ${CPUS[$s]} | 1.0x | 1.0x |"
  done
  echo
  echo "All wall times (s):"
  echo
  for name in "${ORDER[@]}"; do echo "- $name: ${ALL[$name]}"; done
  echo
  echo "Machine: $CPU, $(nproc) CPUs, $MEM RAM, Linux $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo '?')."
  echo "Load average (1/5/15 min) before: $LOAD_BEFORE; after: $LOAD_AFTER. Other processes may"
  echo "share the CPUs: compare the two tools within one run, not across runs."
  echo
  echo "![throughput chart](chart.png)"
} >"$OUT_MD"

# --- chart.png: throughput and peak memory, rrun next to skopeo --------------------------------------
{
  echo "encrypt ${MBS[rrun-encrypt]} ${MBS[skopeo-encrypt]} ${RSS[rrun-encrypt]} ${RSS[skopeo-encrypt]}"
  echo "decrypt ${MBS[rrun-decrypt]} ${MBS[skopeo-decrypt]} ${RSS[rrun-decrypt]} ${RSS[skopeo-decrypt]}"
} >"$W/chart.dat"
gnuplot <<GP
set terminal pngcairo size 1000,460 font "sans,11"
set output "$OUT_PNG"
set multiplot layout 1,2 title "rrun vs skopeo $SKOPEO_VERSION: JWE layer encryption of a $MIB MiB random layer"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set grid ytics
set xtics nomirror
set ytics nomirror
set tics out
set key top right
set title "throughput (higher is better)"
set ylabel "MB/s"
plot "$W/chart.dat" using 2:xtic(1) title "rrun" lc rgb "#1f77b4", \\
     "" using 3 title "skopeo" lc rgb "#ff7f0e", \\
     "" using (\$0-1.0/6):2:(sprintf("%d", \$2)) with labels offset 0,0.8 notitle, \\
     "" using (\$0+1.0/6):3:(sprintf("%d", \$3)) with labels offset 0,0.8 notitle
set title "peak RSS (lower is better)"
set ylabel "MiB"
plot "$W/chart.dat" using 4:xtic(1) title "rrun" lc rgb "#1f77b4", \\
     "" using 5 title "skopeo" lc rgb "#ff7f0e", \\
     "" using (\$0-1.0/6):4:(sprintf("%.0f", \$4)) with labels offset 0,0.8 notitle, \\
     "" using (\$0+1.0/6):5:(sprintf("%.0f", \$5)) with labels offset 0,0.8 notitle
unset multiplot
GP

[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$W"
cat "$OUT_MD"
log "wrote ${OUT_MD#"$ROOT"/} and ${OUT_PNG#"$ROOT"/}"
