#!/usr/bin/env bash
# `make bench` area "run": latency of starting a container that runs `true`, rrun against runc,
# crun and podman IN THE SAME RUN, on the same busybox-static rootfs.
#
# runc and crun run a bundle whose config.json is rrun's own spec for that rootfs (same
# namespaces, capabilities, seccomp profile, masked paths, mounts, cgroup), and, for reference,
# the default `runc spec` bundle. podman runs the same rootfs imported into a podman store in the
# work dir (`podman run --rm --network none`). Runs are interleaved (round i runs every command
# once, in order), each under /usr/bin/time for peak RSS; wall time from bash's $EPOCHREALTIME.
# Writes bench/run.md. Knobs: RUN_BENCH_RUNS (default 20, at least 15 for the report),
# RUN_BENCH_WARMUP (default 2), RUN_BENCH_DIR (work dir, default bench/work/run).
# To add a command: one `bench_cmd LABEL COMMAND...` line below.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
need jq umoci runc crun podman unshare /usr/bin/time

RUNS=${RUN_BENCH_RUNS:-20}
WARMUP=${RUN_BENCH_WARMUP:-2}
W=${RUN_BENCH_DIR:-$ROOT/bench/work/run}
OUT_MD=$ROOT/bench/run.md
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "RUN_BENCH_RUNS must be a positive number"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "RUN_BENCH_WARMUP must be a number"
[ "$(id -u)" = 0 ] || die "the run bench creates containers: run it as root"
case "$W" in *[[:space:]]*) die "RUN_BENCH_DIR must not contain spaces: $W" ;; esac

log() { echo "[bench-run] $*" >&2; }

mkdir -p "$W"
W=$(cd "$W" && pwd)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
R=$W/rootfs
STATE=$W/state
P=$W/podman
rm -rf "$R" "$W/bundle-rrun-spec" "$W/bundle-runc-spec" "$W/times"
mkdir -p "$W/times"
make_busybox_rootfs "$R"

# --- the peers' setup ---------------------------------------------------------------------------
# crun 1.8 refuses this host's hybrid cgroups (the v2 tree holds a controller): it runs through a
# wrapper that makes a private mount namespace with the v2 tree hidden by an empty tmpfs.
CRUN_WRAP=()
if [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
  cat >"$W/private-cgroup-view" <<'EOF'
#!/bin/sh
exec unshare -m --propagation private sh -c 'mount -t tmpfs rrun-cg-hide /sys/fs/cgroup/unified && exec "$@"' sh "$@"
EOF
  chmod 755 "$W/private-cgroup-view"
  CRUN_WRAP=("$W/private-cgroup-view")
fi

# rrun's spec for the rootfs: from a detached container's bundle, its /etc files copied along.
log "taking rrun's spec from a detached container"
"$RRUN" --state "$STATE" rm -f bench-spec >/dev/null 2>&1 || true
id=$("$RRUN" --state "$STATE" run -d --name bench-spec --rootfs "$R" sleep 1000)
B=$W/bundle-rrun-spec
mkdir -p "$B/etc"
cdir=$STATE/containers/$id
for f in hosts hostname resolv.conf; do
  src=$(jq -r --arg d "$cdir/" --arg f "$f" '.mounts[] | select(.source | startswith($d)) | select(.destination == "/etc/" + $f) | .source' "$cdir/config.json")
  [ -n "$src" ] && cp "$src" "$B/etc/$f"
done
jq --arg d "$cdir/" --arg b "$B/etc/" --arg r "$R" \
  '.mounts |= map(if (.source // "" | startswith($d)) then .source = $b + (.destination | ltrimstr("/etc/")) else . end)
   | .root.path = $r | .process.args = ["true"] | .process.terminal = false
   | .linux.cgroupsPath = "/rrun-bench/peer"' "$cdir/config.json" >"$B/config.json"
"$RRUN" --state "$STATE" rm -f bench-spec >/dev/null

# The default `runc spec` bundle on the same rootfs.
D=$W/bundle-runc-spec
mkdir -p "$D"
(cd "$D" && runc spec)
jq --arg r "$R" '.root.path = $r | .root.readonly = false | .process.terminal = false | .process.args = ["true"]' \
  "$D/config.json" >"$D/config.json.new"
mv "$D/config.json.new" "$D/config.json"

# podman: storage, runroot and events in the work dir; ulimits this host allows.
mkdir -p "$P"
cat >"$P/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Sn):$(ulimit -Hn)", "nproc=32768:32768"]
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$P/events.log"
runtime = "runc"
tmp_dir = "$P/tmp"
[network]
network_config_dir = "$P/networks"
EOF
cat >"$P/storage.conf" <<EOF
[storage]
driver = "overlay"
runroot = "$P/runroot"
graphroot = "$P/graphroot"
EOF
export CONTAINERS_CONF=$P/containers.conf CONTAINERS_STORAGE_CONF=$P/storage.conf
log "importing the rootfs into podman's store in $P"
tar -C "$R" -c . | podman import -q - localhost/rrun-bench:latest >/dev/null

# rrun's image path: the same rootfs imported into a store in the work dir (unpacked on first run).
rm -rf "$W/store"
"$RRUN" --root "$W/store" image import --cmd /bin/sh "$R" rrun-bench >/dev/null

# --- the commands ---------------------------------------------------------------------------------
LABELS=()
CMDS=()
# bench_cmd LABEL COMMAND...: one timed command (words split on spaces when run).
bench_cmd() {
  LABELS+=("$1")
  shift
  CMDS+=("$*")
}
bench_cmd "rrun run --rm --rootfs R true" "$RRUN" --state "$STATE" run --rm --rootfs "$R" true
bench_cmd "runc run (rrun's spec)" runc run -b "$B" rrun-bench-runc
bench_cmd "crun run (rrun's spec)" "${CRUN_WRAP[@]}" crun run -b "$B" rrun-bench-crun
bench_cmd "runc run (runc spec)" runc run -b "$D" rrun-bench-runc-default
bench_cmd "podman run --rm --network none" podman run --rm --network none localhost/rrun-bench:latest true
bench_cmd "rrun run --rm IMAGE true (store image, overlay)" "$RRUN" --root "$W/store" --state "$STATE" run --rm rrun-bench true
if [ ${#CRUN_WRAP[@]} -gt 0 ]; then
  bench_cmd "(crun's cgroup-view wrapper alone)" "${CRUN_WRAP[@]}" true
fi

# run_one I FILE: run command I once; append "wall_ms maxrss_kib" to FILE.
run_one() {
  local i=$1 f=$2 t0 t1 cmd
  read -r -a cmd <<<"${CMDS[$i]}"
  t0=$EPOCHREALTIME
  if ! /usr/bin/time -f '%M' -o "$W/rss" "${cmd[@]}" >"$W/out" 2>&1; then
    log "failed: ${CMDS[$i]}"
    tail -3 "$W/out" >&2
    exit 1
  fi
  t1=$EPOCHREALTIME
  [ -n "$f" ] || return 0
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", (b - a) * 1000}') $(tail -1 "$W/rss")" >>"$f"
}

n=${#CMDS[@]}
log "smoke test and $WARMUP warmup runs of each of $n commands"
for _ in $(seq 0 "$WARMUP"); do
  for i in $(seq 0 $((n - 1))); do run_one "$i" ""; done
done
log "$RUNS interleaved rounds"
for r in $(seq 1 "$RUNS"); do
  for i in $(seq 0 $((n - 1))); do run_one "$i" "$W/times/$i"; done
  [ $((r % 5)) -ne 0 ] || log "round $r/$RUNS"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
# runc and crun remove the container's cgroup, not its parent.
for d in /sys/fs/cgroup/*/rrun-bench; do rmdir "$d/peer" "$d" 2>/dev/null || true; done

# --- the report -------------------------------------------------------------------------------------
# column FILE K: the K-th column's median, min and max.
column() {
  awk -v k="$2" '{print $k}' "$1" | sort -g | awk '{a[NR] = $1} END {
    m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    printf "%.1f %.1f %.1f\n", m, a[1], a[NR] }'
}
declare -a MED
{
  echo "# Run latency: \`rrun run --rm --rootfs R true\` against runc, crun and podman"
  echo
  echo "Generated by \`scripts/bench-run.sh\` ($(date -u '+%Y-%m-%d %H:%M UTC')): $RUNS interleaved rounds"
  echo "($WARMUP warmup rounds before), each command once a round, wall time per run, peak RSS from"
  echo "/usr/bin/time (the largest single process of the run). Host: $(nproc) cores, kernel $(uname -r),"
  echo "cgroups: /sys/fs/cgroup is $(stat -fc %T /sys/fs/cgroup) (tmpfs means v1; v2 controllers in the hybrid tree: '$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)')."
  echo "Load average before: $LOAD_BEFORE; after: $LOAD_AFTER (2 cores shared with other work: the"
  echo "load skews every number, the ratios less than the absolute times)."
  echo
  echo "| command | median ms | min ms | max ms | peak RSS MiB (median) |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  for i in $(seq 0 $((n - 1))); do
    read -r med lo hi < <(column "$W/times/$i" 1)
    read -r rss _ _ < <(column "$W/times/$i" 2)
    MED[i]=$med
    printf '| %s | %s | %s | %s | %.1f |\n' "${LABELS[$i]}" "$med" "$lo" "$hi" "$(awk -v k="$rss" 'BEGIN {print k / 1024}')"
  done
  echo
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
  verdict() { awk -v r="$1" -v g="$2" -v op="$3" 'BEGIN {ok = (op == "le") ? r <= g : r < g; print ok ? "met" : "NOT met"}'; }
  r_runc=$(ratio "${MED[0]}" "${MED[1]}")
  r_runc_default=$(ratio "${MED[0]}" "${MED[3]}")
  r_podman=$(ratio "${MED[0]}" "${MED[4]}")
  echo "- rrun / runc (same spec): **$r_runc** (goal <= 1.5: $(verdict "$r_runc" 1.5 le))"
  echo "- rrun / runc (runc's default spec: no seccomp, fewer masks): $r_runc_default"
  r_podman_image=$(ratio "${MED[5]}" "${MED[4]}")
  r_runc_image=$(ratio "${MED[5]}" "${MED[1]}")
  echo "- rrun / podman: **$r_podman** (goal < 0.125: $(verdict "$r_podman" 0.125 lt))"
  echo "- rrun run IMAGE (overlay over the store's snapshots) / podman run IMAGE: **$r_podman_image**;"
  echo "  rrun run IMAGE / runc (same spec, no overlay): $r_runc_image"
  if [ ${#CRUN_WRAP[@]} -gt 0 ]; then
    echo "- crun runs inside a private mount namespace that hides the cgroup v2 tree (crun 1.8 refuses"
    echo "  hybrid cgroups); the wrapper's own cost is the last row."
  fi
  echo
  echo "Versions: rrun $("$RRUN" --version | awk '{print $2}'), $(runc --version | head -1),"
  echo "crun $(crun --version | head -1 | awk '{print $3}'), $(podman --version)."
  echo "runc/crun run rrun's own config.json (from a detached container of the same rootfs, /etc"
  echo "files copied, cgroupsPath /rrun-bench/peer); podman runs the rootfs imported with"
  echo "\`podman import\` into a store in the work dir (overlay, cgroupfs, events to a file)."
} >"$OUT_MD"
cat "$OUT_MD"
