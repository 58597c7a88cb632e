#!/bin/bash
# tests/vm/boot-vm.sh DIR SHARE 'command': boot the VM of tests/vm/build-vm.sh DIR with systemd,
# mount SHARE (9p, read-write) at the same path, run `bash -c 'command'` there as root from
# guest-run.service, power off; the command's output streams to stdout, its exit code is ours.
# The disk is a snapshot: the guest's writes to / vanish. No network device.
# Exit codes: the command's; 124 on timeout; 125 when the VM reported none.
# Env: VM_ACCEL=auto|kvm|tcg, VM_MEM=2048, VM_CPUS=2, VM_TIMEOUT=1800, VM_CONSOLE_LOG=FILE.
set -uo pipefail
[ $# -eq 3 ] || { echo "usage: $0 DIR SHARE 'command'" >&2; exit 2; }
D=$(realpath -e "$1") || exit 2
S=$(realpath -e "$2") || exit 2
for f in initrd.img rootfs.img; do
  [ -f "$D/$f" ] || { echo "boot-vm: $D/$f is missing: run tests/vm/build-vm.sh $D" >&2; exit 2; }
done
ctl=$(mktemp -d "${TMPDIR:-/tmp}/boot-vm.XXXXXX")
qemu_pid= tail_pid=
cleanup() {
  [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
  [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null
  rm -rf "$ctl"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
printf '%s\n' "$3" > "$ctl/cmd"
printf '%s\n' "$S" > "$ctl/share"
: > "$ctl/out"

accel=${VM_ACCEL:-auto}
if [ "$accel" = auto ]; then
  # a PVM-only /dev/kvm (no vmx/svm) cannot boot the stock Debian kernel
  if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ] && grep -qE 'vmx|svm' /proc/cpuinfo; then accel=kvm; else accel=tcg; fi
fi
case $accel in
  kvm) accel_args=(-accel kvm -cpu host) ;;
  tcg) accel_args=(-accel tcg,thread=multi,tb-size=512 -cpu max) ;;
  *) echo "boot-vm: VM_ACCEL must be auto, kvm or tcg" >&2; exit 2 ;;
esac
kernel=$D/vmlinuz; [ -f "$D/vmlinux" ] && kernel=$D/vmlinux
bios=()
for fw in /usr/share/qemu/qboot.rom /usr/share/qboot/bios.bin; do [ -f "$fw" ] && { bios=(-bios "$fw"); break; }; done
q() { printf '%s' "${1//,/,,}"; }   # ',' doubles inside qemu option values

timeout -k 10 "${VM_TIMEOUT:-1800}" qemu-system-x86_64 "${accel_args[@]}" -machine q35 \
  -smp "${VM_CPUS:-2}" -m "${VM_MEM:-2048}" -nodefaults -no-user-config -display none -no-reboot \
  -kernel "$kernel" "${bios[@]}" -initrd "$D/initrd.img" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 systemd.unit=guest-run.target systemd.show_status=false" \
  -drive "file=$(q "$D/rootfs.img"),if=virtio,format=raw,snapshot=on,cache=unsafe" \
  -virtfs "local,path=$(q "$S"),mount_tag=share,security_model=none,id=share" \
  -virtfs "local,path=$(q "$ctl"),mount_tag=ctl,security_model=none,id=ctl" \
  -serial "file:$ctl/console.log" -device virtio-serial-pci \
  -chardev "file,id=out,path=$(q "$ctl/out")" -device virtserialport,chardev=out,name=out \
  -nic none < /dev/null > "$ctl/qemu.log" 2>&1 &
qemu_pid=$!
tail -n +1 -f -s 0.2 --pid=$qemu_pid "$ctl/out" 2>/dev/null &
tail_pid=$!
wait $qemu_pid; qrc=$?; qemu_pid=
wait $tail_pid; tail_pid=
grep -v 'terminating on signal' "$ctl/qemu.log" >&2
[ -n "${VM_CONSOLE_LOG:-}" ] && cp "$ctl/console.log" "$VM_CONSOLE_LOG"
if [ -s "$ctl/rc" ]; then exit "$(cat "$ctl/rc")"; fi
if [ $qrc -eq 124 ] || [ $qrc -eq 137 ]; then
  echo "boot-vm: timed out after ${VM_TIMEOUT:-1800} s" >&2; rc=124
else
  echo "boot-vm: the VM stopped (qemu exit $qrc) without an exit code" >&2; rc=125
fi
echo "---- guest console (last 40 lines) ----" >&2; tail -n 40 "$ctl/console.log" >&2
exit $rc
