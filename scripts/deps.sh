#!/usr/bin/env bash
# Install what rrun's build, tests, demo and bench need on Debian 12, only what is missing.
# Silent when everything is present; runs `apt-get update` only when something is missing.
# Waits for the dpkg/apt locks (another apt may be running). Fails with advice if cargo is missing.
set -euo pipefail

PKGS=(
  gcc libc6-dev pkg-config libssl-dev   # build: the linker, openssl-sys
  libseccomp-dev                        # build: libcontainer's seccomp (links -lseccomp)
  make
  skopeo                                # the ocicrypt peer the tests run against
  gnupg                                 # OpenPGP recipients: tests against gpg
  notary                                # notary-server, notary-signer, notary CLI: trust tests
  python3 python3-venv                  # trust tests: python-tuf repositories, http.server
  umoci                                 # builds the test images
  docker-registry apache2-utils         # registry tests: distribution 2.8, htpasswd
  runc crun podman hyperfine            # bench: the runtime baseline (run latency peers)
  busybox-static                        # rootfs of the test and demo images
  softhsm2 opensc                       # pkcs11 tests: a SoftHSM token, pkcs11-tool
  jq openssl xxd file curl              # scripts and key generation, registry health checks
  time gnuplot-nox                      # bench: /usr/bin/time -f, chart
  containerd python3-grpcio             # decoder tests: containerd 1.6 + a CRI PullImage client
)
LOCK_WAIT=${DEPS_LOCK_WAIT:-900}        # seconds to wait for another apt/dpkg

say() { echo "deps: $*" >&2; }

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
if ! command -v dpkg-query >/dev/null; then
  say "dpkg-query not found: this script installs with apt on Debian 12; install these yourself: ${PKGS[*]}"
  exit 1
fi
for p in "${PKGS[@]}"; do
  installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then
      SUDO=(sudo)
    else
      say "missing packages ${missing[*]} and not root: run 'make deps' as root"
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt=("${SUDO[@]}" apt-get -o "DPkg::Lock::Timeout=$LOCK_WAIT" -q -y)
  say "installing ${missing[*]}"
  # apt-get update takes the lists lock, which DPkg::Lock::Timeout does not cover on every apt:
  # retry while another apt holds it.
  deadline=$((SECONDS + LOCK_WAIT))
  until "${apt[@]}" update -qq </dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      say "apt-get update kept failing for ${LOCK_WAIT}s; check the network and /etc/apt/sources.list"
      exit 1
    fi
    say "apt-get update failed (another apt running?); retrying in 5 s"
    sleep 5
  done
  "${apt[@]}" -qq install --no-install-recommends "${missing[@]}" </dev/null >/dev/null
  still=()
  for p in "${missing[@]}"; do installed "$p" || still+=("$p"); done
  if [ ${#still[@]} -gt 0 ]; then
    say "still missing after apt-get install: ${still[*]}"
    exit 1
  fi
  say "installed ${missing[*]}"
fi

if ! command -v cargo >/dev/null; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    say "cargo is installed in ~/.cargo/bin but not on PATH: run 'source ~/.cargo/env' and retry"
  else
    say "cargo not found: install Rust (1.89 or newer; Debian 12's cargo is too old) with"
    say "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y && source ~/.cargo/env"
  fi
  exit 1
fi
for tool in fmt clippy; do
  if ! cargo "$tool" --version >/dev/null 2>&1; then
    say "cargo $tool not found: run 'rustup component add rustfmt clippy'"
    exit 1
  fi
done
