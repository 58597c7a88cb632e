#!/bin/bash
# tests/vm/suite.sh SHARE: the VM tests, run as root inside the test VM (systemd booted) by
# scripts/test-vm.sh. SHARE holds rrun, rootfs/ (busybox-static) and keys/ (an RSA pair).
# Prints one "ok"/"not ok" line per check and exits 1 when any check failed.
set -u
S=$1
failures=0 checks=0
ok() { checks=$((checks + 1)); echo "ok $checks - $1"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "not ok $checks - $1"; shift; for l in "$@"; do echo "    $l"; done; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what" "command: $*"; fi; }
t0=$SECONDS

install -m 755 "$S/rrun" /usr/local/bin/rrun
R=/usr/local/bin/rrun
FS=$(mktemp -d /var/tmp/rrun-rootfs.XXXXXX)
cp -a "$S/rootfs/." "$FS/"
# (a --rootfs container has no image config, hence no PATH of its own)
run() { "$R" run --rm -e PATH=/bin --rootfs "$FS" "$@"; }
# The suite itself runs inside guest-run.service; only the units it starts are containers' services.
unset INVOCATION_ID
echo "# kernel $(uname -r), lsm $(cat /sys/kernel/security/lsm), $(systemctl --version | head -n1)"

# ------------------------------------------------------------------ AppArmor
attr=$(run cat /proc/self/attr/current 2>&1)
check "default containers run under rrun-default ($attr)" test "$attr" = "rrun-default (enforce)"
out=$(run sh -c 'echo x > /proc/sysrq-trigger' 2>&1); rc=$?
check "rrun-default denies writing /proc/sysrq-trigger (rc $rc: $out)" test $rc -ne 0
dmesg -C
out=$(run --cap-add SYS_ADMIN --security-opt seccomp=unconfined sh -c 'mkdir -p /old && pivot_root / /old' 2>&1); rc=$?
sleep 1
line=$(dmesg | grep 'apparmor="DENIED"' | grep 'profile="rrun-default"' | head -n1)
if [ $rc -ne 0 ] && [ -n "$line" ]; then ok "a denial under rrun-default is logged: ${line#*apparmor=}"
else fail "a denial under rrun-default is logged" "rc=$rc out=$out" "$(dmesg | grep -i apparmor | tail -n 3)"; fi

echo secret > "$FS/secret"
cat > /etc/apparmor.d/rrun-vmtest <<'P'
#include <tunables/global>
profile rrun-vmtest flags=(attach_disconnected,mediate_deleted) {
  #include <abstractions/base>
  file,
  capability,
  network,
  umount,
  audit deny /secret r,
}
P
check "the custom profile loads" apparmor_parser -r /etc/apparmor.d/rrun-vmtest
dmesg -C
attr=$(run --security-opt apparmor=rrun-vmtest cat /proc/self/attr/current 2>&1)
check "--security-opt apparmor=rrun-vmtest confines the container ($attr)" test "$attr" = "rrun-vmtest (enforce)"
out=$(run --security-opt apparmor=rrun-vmtest cat /secret 2>&1); rc=$?
sleep 1
line=$(dmesg | grep 'apparmor="DENIED"' | grep 'profile="rrun-vmtest"' | grep 'name="/secret"' | head -n1)
if [ $rc -ne 0 ] && [ -n "$line" ]; then ok "the custom profile denies /secret and logs it"
else fail "the custom profile denies /secret and logs it" "rc=$rc out=$out" "$(dmesg | tail -n 3)"; fi
out=$(run --security-opt apparmor=no-such-profile true 2>&1); rc=$?
check "an unknown profile is an error, exit 125 ($out)" test $rc -eq 125
attr=$(run --security-opt apparmor=unconfined cat /proc/self/attr/current /secret 2>&1 | tr '\n' ' ')
check "--security-opt apparmor=unconfined ($attr)" test "$attr" = "unconfined secret "

# ------------------------------------------------------------------ cgroup v2 limits
check "cgroup v2 is mounted" test -f /sys/fs/cgroup/cgroup.controllers
out=$(run --memory 32m sh -c 'cat /sys/fs/cgroup/memory.max; x=0123456789; while :; do x=$x$x; done' 2>&1); rc=$?
check "--memory 32m: memory.max and the OOM kill, exit 137 (rc $rc: $(echo $out))" test $rc -eq 137 -a "${out%%$'\n'*}" = 33554432
out=$(run --pids-limit 8 sh -c 'cat /sys/fs/cgroup/pids.max; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 3 & done 2>&1; wait' 2>&1); rc=$?
case $out in 8*fork*) ok "--pids-limit 8: pids.max 8, the 9th process cannot fork" ;;
  *) fail "--pids-limit 8: pids.max 8, the 9th process cannot fork" "rc=$rc out=$(echo $out)" ;; esac
out=$(run --cpus 0.5 sh -c 'cat /sys/fs/cgroup/cpu.max; end=$(($(date +%s) + 3)); while [ $(date +%s) -lt $end ]; do :; done; grep nr_throttled /sys/fs/cgroup/cpu.stat' 2>&1)
throttled=$(echo "$out" | awk '/nr_throttled/{print $2}')
check "--cpus 0.5: cpu.max 50000 100000, a busy loop is throttled (${throttled:-?} periods)" \
  test "${out%%$'\n'*}" = "50000 100000" -a "${throttled:-0}" -gt 0

# ------------------------------------------------------------------ cred: keys in a unit
# An encrypted image in the store; its private key only as an encrypted systemd credential.
mkdir -p /etc/credstore.encrypted /var/lib/rrun
"$R" image import "$FS" vmtest:plain >/dev/null \
  && "$R" image encrypt --recipient "jwe:$S/keys/pub.pem" vmtest:plain vmtest:sealed >/dev/null
check "an encrypted image vmtest:sealed is in the store" test $? -eq 0
systemd-creds encrypt --with-key=host --name=imagekey "$S/keys/priv.pem" /etc/credstore.encrypted/imagekey
check "systemd-creds encrypt --with-key=host wrote the credential" test -s /etc/credstore.encrypted/imagekey
out=$(systemd-run --wait --pipe --quiet -p LoadCredentialEncrypted=imagekey:/etc/credstore.encrypted/imagekey \
  "$R" image decrypt --key cred:imagekey vmtest:sealed vmtest:opened 2>&1); rc=$?
check "a unit decrypts with --key cred:imagekey (rc $rc $out)" test $rc -eq 0
out=$(systemd-run --wait --pipe --quiet "$R" image decrypt --key cred:imagekey vmtest:sealed vmtest:opened2 2>&1); rc=$?
check "without the credential: a clear error ($out)" grep -q 'CREDENTIALS_DIRECTORY is not set' <<< "$out"

# ------------------------------------------------------------------ a sealed service
# With `rrun run IMAGE` (and --key on run) the service runs the encrypted image; before that
# lands it runs the rootfs and the unit still loads the credential.
cmd='trap "echo stopping; exit 0" TERM; echo serving; while :; do sleep 1; done'
if "$R" run --help | grep -q -- '--key'; then
  mode=image
  "$R" generate systemd --name sealed --stop-timeout 5 -e PATH=/bin --key cred:imagekey vmtest:sealed /bin/sh -c "$cmd" \
    > /etc/systemd/system/sealed.service
else
  mode=rootfs
  "$R" generate systemd --name sealed --stop-timeout 5 -e PATH=/bin --rootfs "$FS" /bin/sh -c "$cmd" > /etc/systemd/system/sealed.service
  sed -i '/^Type=/a LoadCredentialEncrypted=imagekey:/etc/credstore.encrypted/imagekey' /etc/systemd/system/sealed.service
fi
echo "# sealed service mode: $mode"
sed 's/^/    | /' /etc/systemd/system/sealed.service
systemctl daemon-reload
s=$SECONDS
systemctl start sealed; rc=$?
state=$(systemctl is-active sealed)
check "systemctl start (Type=notify) returns and the unit is active right after, in $((SECONDS - s)) s ($state)" test $rc -eq 0 -a "$state" = active \
  || journalctl -u sealed -o cat | tail -n 15 | sed 's/^/    journal: /'
main=$(systemctl show -p MainPID --value sealed)
check "rrun is the main process (MainPID $main)" grep -q rrun "/proc/$main/cmdline"
svc=/sys/fs/cgroup/system.slice/sealed.service
ctr=$(ls "$svc" | grep -m1 -E '^[0-9a-f]{64}$')
check "the container's cgroup is inside the service's (${ctr:0:12}... next to $(ls -d "$svc"/rrun-* | xargs -n1 basename))" \
  test -n "$ctr" -a -d "$svc/rrun-supervisor"
sleep 1
check "the container's output is in the journal" sh -c 'journalctl -u sealed -o cat | grep -q serving'
init=$(pgrep -P "$main" | head -n1)
check "the container's init ($init) is rrun's child" test -n "$init"
kill -9 "$init"
for _ in $(seq 60); do
  [ "$(systemctl show -p NRestarts --value sealed)" -ge 1 ] && [ "$(systemctl is-active sealed)" = active ] && break
  sleep 1
done
restarts=$(systemctl show -p NRestarts --value sealed)
check "after the container is killed, systemd restarts the service (NRestarts $restarts)" \
  test "$(systemctl is-active sealed)" = active -a "$restarts" -ge 1
s=$SECONDS
systemctl stop sealed
state=$(systemctl is-active sealed); result=$(systemctl show -p Result --value sealed)
check "systemctl stop: SIGTERM reaches the container, clean stop in $((SECONDS - s)) s ($state, $result)" \
  test "$state" = inactive -a "$result" = success
check "the container said it was stopping" sh -c 'journalctl -u sealed -o cat | grep -q stopping'
check "nothing is left in the service's cgroup" test ! -d "$svc"
mv /etc/credstore.encrypted/imagekey /root/imagekey.moved
systemctl start sealed; rc=$?
sleep 1
msg=$(journalctl -u sealed -o cat | grep -i -m1 -E 'credential|imagekey')
check "without the credential the unit fails (rc $rc, $(systemctl is-failed sealed)) and the journal says why: $msg" \
  test $rc -ne 0 -a -n "$msg"

echo "# $checks checks, $failures failed, $((SECONDS - t0)) s in the guest"
[ $failures -eq 0 ]
