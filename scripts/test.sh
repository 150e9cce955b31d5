#!/usr/bin/env bash
# Installs what the tests need and runs every test. Run as root. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/ensure-rust.sh
need=()
command -v cc >/dev/null || need+=(gcc libc6-dev)
command -v crit >/dev/null || need+=(criu)
# bash's loadable `sleep` builtin, for the canonical "shell loop that counts" test without forking.
[ -e /usr/lib/bash/sleep ] || need+=(bash-builtins)
# Real programs the tests checkpoint (tests/e2e/programs.rs, signals.rs): Debian's python3, nginx, redis;
# util-linux's setpriv and unshare narrow what rcr may do in the refusal tests.
[ -x /usr/bin/python3 ] || need+=(python3)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ -x /usr/bin/redis-server ] || need+=(redis-server)
command -v setpriv >/dev/null || need+=(util-linux)
# Terminal multiplexers: pty pairs the tree holds both ends of (tests/e2e/pty.rs).
command -v tmux >/dev/null || need+=(tmux)
command -v screen >/dev/null || need+=(screen)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Lints first (warnings are errors): a clippy finding fails the run like a test.
cargo clippy --workspace --all-targets --release -- -D warnings
cargo test --workspace --release -- --test-threads=2
