# rrun: the README's commands. `make demo` and `make test` work on a fresh Debian 12 machine (root).

CARGO ?= cargo
# rustup installs into ~/.cargo/bin; a fresh login shell may not have it on PATH yet.
export PATH := $(HOME)/.cargo/bin:$(PATH)

.PHONY: all deps build test demo bench fmt clippy

all: build

deps:
	@scripts/deps.sh

build: deps
	$(CARGO) build --release

test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --release
	scripts/test-vm.sh

demo: build
	scripts/demo.sh

# scripts/bench.sh writes bench/results.md; each scripts/bench-AREA.sh writes bench/AREA.md.
bench: build
	scripts/bench.sh
	@set -e; for s in scripts/bench-*.sh; do [ -e "$$s" ] || continue; echo "== $$s"; "$$s"; done

fmt:
	$(CARGO) fmt --all

clippy:
	$(CARGO) clippy --all-targets -- -D warnings

# AppArmor, cgroup v2 and systemd units in a Debian 12 VM (built once into .work/vm; needs root).
.PHONY: test-vm
test-vm:
	scripts/test-vm.sh
