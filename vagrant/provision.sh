#!/bin/bash
# vagrant/provision.sh: inside the Vagrant VM (Debian 12, root): install Rust and the test
# dependencies, check AppArmor, cgroup v2 and systemd, then run `make test` and the VM suite
# (tests/vm/suite.sh) directly on this machine. RRUN_SKIP_TESTS=1 only installs.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends ca-certificates curl build-essential pkg-config \
  libssl-dev libseccomp-dev apparmor apparmor-utils busybox-static openssl make git
if ! command -v cargo >/dev/null && [ ! -x /root/.cargo/bin/cargo ]; then
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
fi
export PATH=/root/.cargo/bin:$PATH

# The VM must be what the suite proves things about.
[ "$(cat /sys/module/apparmor/parameters/enabled)" = Y ] || { echo "provision: AppArmor is not enabled" >&2; exit 1; }
[ -f /sys/fs/cgroup/cgroup.controllers ] || { echo "provision: cgroup v2 is not the unified hierarchy" >&2; exit 1; }
[ -d /run/systemd/system ] || { echo "provision: systemd is not PID 1" >&2; exit 1; }

cd /rrun
[ -n "${RRUN_SKIP_TESTS:-}" ] && exit 0
make test
cargo build --release
# The VM suite of `make test-vm`, run here without the qemu VM: same files, same checks.
share=$(mktemp -d /var/tmp/rrun-vm-suite.XXXXXX)
trap 'rm -rf "$share"' EXIT
tests/vm/prepare-share.sh target/release/rrun "$share"
# The suite leaves a unit and a credential behind on a persistent machine: clean them first.
systemctl stop sealed 2>/dev/null || true
rm -f /etc/systemd/system/sealed.service /etc/credstore.encrypted/imagekey
bash "$share/suite.sh" "$share"
