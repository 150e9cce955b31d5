#!/usr/bin/env bash
# Installs what the tests need and runs every test. Run as root. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v crit >/dev/null || need+=(criu)
# bash's loadable `sleep` builtin, for the canonical "shell loop that counts" test without forking.
[ -e /usr/lib/bash/sleep ] || need+=(bash-builtins)
# Terminal multiplexers: pty pairs the tree holds both ends of (tests/e2e/pty.rs).
command -v tmux >/dev/null || need+=(tmux)
command -v screen >/dev/null || need+=(screen)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo test --workspace --release -- --test-threads=2
