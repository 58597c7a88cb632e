#!/usr/bin/env bash
# `make bench` (pull area): pull + unpack of an image with one big layer from a local registry,
# `rrun pull` against `skopeo copy docker://... oci:...` + `umoci unpack` in the same run.
#
# The image: a directory holding one file of BENCH_PULL_BYTES (default 1 GiB) random bytes,
# made into a one-layer image by `rrun image import` (a gzip-compressed tar layer, as registries
# usually serve them; random data does not shrink, so the blob is as big as the file) and pushed
# verbatim by `rrun push` to Debian's docker-registry, which this script starts on a free
# loopback port and stops at the end. Then BENCH_RUNS (default 3) interleaved runs of each side,
# every run into fresh directories, `sync` before each command, `/usr/bin/time` for wall and
# peak RSS: rrun is one command (download, verify, unpack into a snapshot); the pair is two,
# whose walls add up and whose peak RSS is the larger one. Writes bench/pull.md.
# Work dir: $BENCH_DIR/pull (default bench/work/pull).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
need jq skopeo umoci docker-registry curl python3 /usr/bin/time

BYTES=${BENCH_PULL_BYTES:-1073741824}
RUNS=${BENCH_RUNS:-3}
W=${BENCH_DIR:-$ROOT/bench/work}/pull
OUT_MD=$ROOT/bench/pull.md
if ! [[ $BYTES =~ ^[1-9][0-9]*$ ]]; then die "BENCH_PULL_BYTES must be a positive number of bytes"; fi
if ! [[ $RUNS =~ ^[1-9][0-9]*$ ]]; then die "BENCH_RUNS must be a positive number"; fi

log() { echo "[bench-pull] $*" >&2; }

rm -rf "$W"
mkdir -p "$W"
W=$(cd "$W" && pwd)
free_kib=$(df -Pk "$W" | awk 'NR==2 {print $4}')
[ "$free_kib" -gt $((BYTES * 6 / 1024)) ] || die "need about $((BYTES * 6 / 1048576)) MiB free in $W"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the registry, on a free loopback port -------------------------------------------------------
trap stop_registry EXIT
start_registry "$W/registry"
IMAGE=$REGISTRY/bench/pull:1
log "registry on $REGISTRY (pid $REGISTRY_PID)"

# --- the image ------------------------------------------------------------------------------------
log "building the image: one gzip layer with a $BYTES-byte random file"
mkdir -p "$W/payload/data"
head -c "$BYTES" /dev/urandom >"$W/payload/data/random.bin"
"$RRUN" image import --cmd /bin/true "$W/payload" "oci:$W/src:bench" >/dev/null
rm -rf "$W/payload"
"$RRUN" push -q "oci:$W/src:bench" "$IMAGE" >/dev/null
rm -rf "$W/src"
LAYER=$(skopeo inspect --raw --tls-verify=false "docker://$IMAGE" | jq -r '.layers[0] | "\(.mediaType) \(.digest) \(.size)"')
log "pushed $IMAGE: layer $LAYER"
read -r LAYER_TYPE _ LAYER_SIZE <<<"$LAYER"

# --- timed runs ------------------------------------------------------------------------------------
R=$W/rrun-root
SK=$W/skopeo-layout
BUNDLE=$W/umoci-bundle
UMOCI_FLAGS=()
[ "$(id -u)" = 0 ] || UMOCI_FLAGS=(--rootless)
declare -A CMD
CMD[rrun]="$RRUN --root $R pull -q $IMAGE"
CMD[skopeo]="skopeo copy -q --src-tls-verify=false docker://$IMAGE oci:$SK:bench"
CMD[umoci]="umoci unpack ${UMOCI_FLAGS[*]:+${UMOCI_FLAGS[*]} }--image $SK:bench $BUNDLE"

# check_unpacked NAME: the first run's unpacked file must be whole
check_unpacked() {
  local f
  case $1 in
    rrun) f=$(find "$R/snapshots" -path '*/rootfs/data/random.bin' | head -1) ;;
    umoci) f=$BUNDLE/rootfs/data/random.bin ;;
    *) return 0 ;;
  esac
  if [ -z "$f" ] || [ "$(stat -c %s "$f")" != "$BYTES" ]; then
    die "$1 did not unpack data/random.bin whole"
  fi
}

# timed NAME: run CMD[NAME] under /usr/bin/time, append "wall rss_kib" to NAME.times
timed() {
  sync
  # shellcheck disable=SC2086 # CMD holds a word list without spaces in paths
  if ! /usr/bin/time -f '%e %M' -o "$W/time.tmp" ${CMD[$1]} >/dev/null 2>"$W/$1.err"; then
    cat "$W/$1.err" >&2
    die "$1 failed: ${CMD[$1]}"
  fi
  cat "$W/time.tmp" >>"$W/$1.times"
  log "run $i/$RUNS $1: $(awk '{printf "%.2f s, %.1f MiB", $1, $2/1024}' "$W/time.tmp")"
}

run_rrun() { rm -rf "$R"; timed rrun; [ "$i" = 1 ] && check_unpacked rrun; rm -rf "$R"; }
run_pair() {
  rm -rf "$SK" "$BUNDLE"
  timed skopeo
  timed umoci
  [ "$i" = 1 ] && check_unpacked umoci
  rm -rf "$SK" "$BUNDLE"
}

: >"$W/rrun.times"; : >"$W/skopeo.times"; : >"$W/umoci.times"
for i in $(seq 1 "$RUNS"); do
  # alternate who goes first so that neither side always runs on a warmer machine
  if [ $((i % 2)) = 1 ]; then run_rrun; run_pair; else run_pair; run_rrun; fi
done
stop_registry
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- results ---------------------------------------------------------------------------------------
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
paste -d' ' "$W/skopeo.times" "$W/umoci.times" |
  awk '{printf "%.2f %d\n", $1 + $3, ($2 > $4) ? $2 : $4}' >"$W/pair.times"
declare -A WALL RSS ALL
for name in rrun skopeo umoci pair; do
  WALL[$name]=$(awk '{print $1}' "$W/$name.times" | median)
  RSS[$name]=$(awk '{print $2/1024}' "$W/$name.times" | median)
  RSS[$name]=$(printf '%.1f' "${RSS[$name]}")
  ALL[$name]=$(awk '{printf "%s%.2f", (NR>1 ? ", " : ""), $1}' "$W/$name.times")
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf (b > 0) ? "%.2fx" : "-", a/b}'; }
SPEEDUP=$(ratio "${WALL[pair]}" "${WALL[rrun]}")
RSS_OK=$(awk -v r="${RSS[rrun]}" 'BEGIN {print (r < 64) ? "yes" : "no"}')
FASTER=$(awk -v a="${WALL[rrun]}" -v b="${WALL[pair]}" 'BEGIN {print (a < b) ? "yes" : "no"}')

SKOPEO_VERSION=$(skopeo --version | awk '{print $3}')
UMOCI_VERSION=$(umoci --version | awk '{print $3}')
REGISTRY_VERSION=$(dpkg-query -W -f '${Version}' docker-registry 2>/dev/null || echo '?')
RRUN_VERSION=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
MEM=$(awk '/^MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
MIB=$(awk -v b="$BYTES" 'BEGIN {printf "%.0f", b/1048576}')
{
  echo "# rrun vs skopeo + umoci: pull and unpack of a $MIB MiB layer"
  echo
  echo "Made by \`make bench\` (scripts/bench-pull.sh) on $(date -u '+%Y-%m-%d %H:%M UTC'), rrun"
  echo "\`$RRUN_VERSION\` against skopeo $SKOPEO_VERSION + umoci $UMOCI_VERSION in the same run, from Debian's"
  echo "docker-registry $REGISTRY_VERSION on a loopback port (plain HTTP)."
  echo
  echo "Image: one layer, \`$LAYER_TYPE\` ($LAYER_SIZE bytes, gzip of a tar holding one file of"
  echo "$BYTES random bytes), made by \`rrun image import\` and pushed as is by \`rrun push\`."
  echo "Each side ran $RUNS time(s), interleaved, into fresh directories, \`sync\` before each command:"
  echo
  echo "- rrun: \`rrun --root NEW pull -q IMAGE\` (download with digest and size checks, store, then"
  echo "  unpack into a snapshot checked against the diff_id);"
  echo "- the pair: \`skopeo copy docker://IMAGE oci:DIR:bench\`, then \`umoci unpack ${UMOCI_FLAGS[*]:+${UMOCI_FLAGS[*]} }--image DIR:bench BUNDLE\`"
  echo "  (wall = the two added up, peak RSS = the larger of the two)."
  echo
  echo "Wall and peak RSS are medians of the runs (\`/usr/bin/time -f '%e %M'\`)."
  echo
  echo "| tool | wall s (median) | peak RSS MiB (median) |"
  echo "| --- | ---: | ---: |"
  echo "| rrun pull | ${WALL[rrun]} | ${RSS[rrun]} |"
  echo "| skopeo copy + umoci unpack | ${WALL[pair]} | ${RSS[pair]} |"
  echo "| (skopeo copy) | ${WALL[skopeo]} | ${RSS[skopeo]} |"
  echo "| (umoci unpack) | ${WALL[umoci]} | ${RSS[umoci]} |"
  echo
  echo "rrun / pair: the pair takes $SPEEDUP rrun's wall time. Goal (issue 3): faster than the"
  echo "pair: $FASTER; peak RSS under 64 MiB: $RSS_OK."
  echo
  echo "All wall times (s):"
  echo
  for name in rrun skopeo umoci; do echo "- $name: ${ALL[$name]}"; done
  echo
  echo "Machine: $CPU, $(nproc) CPUs, $MEM RAM, Linux $(uname -r), Debian $(cat /etc/debian_version 2>/dev/null || echo '?')."
  echo "Load average (1/5/15 min) before: $LOAD_BEFORE; after: $LOAD_AFTER. Other processes may"
  echo "share the CPUs: compare the two sides within one run, not across runs."
} >"$OUT_MD"

[ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$W"
cat "$OUT_MD"
log "wrote ${OUT_MD#"$ROOT"/}"
