#!/bin/bash
# scripts/test-vm.sh: `make test-vm`. Builds rrun (release) and, once, the Debian 12 test VM
# (cached in $RRUN_VM_DIR, default .work/vm), boots it with systemd and runs tests/vm/suite.sh
# there (AppArmor, cgroup v2 limits, cred: keys and a sealed service under systemd).
# Exits with the suite's status. Needs root (debootstrap, qemu; apt installs what is missing).
# Env: RRUN_VM_DIR, RRUN_BIN (an rrun to test instead of building one), VM_ACCEL, VM_TIMEOUT.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test-vm: needs root (it builds and boots a VM): sudo make test-vm" >&2; exit 2; }
start=$SECONDS
VM=${RRUN_VM_DIR:-$PWD/.work/vm}
tests/vm/build-vm.sh "$VM"
bin=${RRUN_BIN:-}
if [ -z "$bin" ]; then
  ${CARGO:-cargo} build --release --quiet
  bin=target/release/rrun
fi
mkdir -p .work
share=$(mktemp -d "$PWD/.work/vm-share.XXXXXX")
trap 'rm -rf "$share"' EXIT
tests/vm/prepare-share.sh "$bin" "$share"
boot=$SECONDS
set +e
tests/vm/boot-vm.sh "$VM" "$share" "bash $(printf %q "$share/suite.sh") $(printf %q "$share")"
rc=$?
set -e
echo "test-vm: exit $rc; VM boot and suite $((SECONDS - boot)) s, wall time $((SECONDS - start)) s"
exit $rc
