#!/usr/bin/env bash
# Installs what rcr needs, builds it, and runs its main job on the built-in demo: start a counter
# process, checkpoint it (the process is gone), restore it at the same PID, and show it keeps counting.
# Run as root (ptrace, clone3 with set_tid and PR_SET_MM_MAP need it).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "demo: run as root (sudo $0)" >&2; exit 1; fi
. scripts/ensure-rust.sh
if ! command -v cc >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null
fi
cargo build --release --bin rcr --example counter
RCR=$PWD/target/release/rcr
work=$(mktemp -d /tmp/rcr-demo.XXXXXX)
log=$work/counter.log
cleanup() { [ -n "${pid:-}" ] && kill -9 "$pid" 2>/dev/null; true; }
trap cleanup EXIT

setsid ./target/release/examples/counter </dev/null >"$log" 2>&1 &
pid=$!
sleep 2
echo "== counter running as pid $pid, last lines: $(tail -n 3 "$log" | tr '\n' ' ')"
"$RCR" dump -t "$pid" -D "$work/img" -v4 -o dump.log
wait "$pid" 2>/dev/null || true
before=$(tail -n 1 "$log")
echo "== dumped; pid $pid is gone: $( [ -e /proc/$pid ] && echo NO || echo yes ); last count $before"
"$RCR" show -D "$work/img"
"$RCR" restore -D "$work/img" -d --pidfile "$work/pid" -v4 -o restore.log
echo "== restored as pid $(cat "$work/pid")"
sleep 2
echo "== after restore, the counter goes on: $(tail -n 4 "$log" | tr '\n' ' ')"
after=$(tail -n 1 "$log")
if [ "$after" -gt "$before" ]; then echo "demo: OK ($before -> $after)"; else echo "demo: FAILED" >&2; exit 1; fi
