#!/usr/bin/env bash
# Fuzzes the image reader/decoder (fuzz/fuzz_targets/image_reader.rs) for a short while.
# Not part of every CI run. Usage: scripts/fuzz.sh [SECONDS]   (default 60)
#
# cargo-fuzz needs a nightly toolchain (for -Zsanitizer). If rustup has a nightly it is
# used; otherwise the stable compiler is run with RUSTC_BOOTSTRAP=1, which unlocks the
# nightly flags on stable (unsupported by the Rust project, but fine for a local fuzz run).
set -euo pipefail
secs="${1:-60}"
cd "$(dirname "$0")/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    toolchain=(+nightly)
else
    export RUSTC_BOOTSTRAP=1
fi

# A small seed corpus: magic-only images of a few kinds.
corpus=fuzz/corpus/image_reader
mkdir -p "$corpus"
printf '\x16\x31\x31\x58\x02\x00\x00\x00\x08\x02' > "$corpus/inventory"
printf '\x19\x43\x56\x54\x25\x40\x08\x56\x02\x00\x00\x00\x08\x01' > "$corpus/pagemap"
printf '\x19\x43\x56\x54\x09\x37\x45\x56\x04\x00\x00\x00\x08\x01\x10\x02ab' > "$corpus/pipes-data"

cargo "${toolchain[@]}" fuzz run image_reader "$corpus" -- \
    -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10
