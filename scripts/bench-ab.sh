#!/usr/bin/env bash
# Side-by-side benchmark of two rcr binaries: runs BENCH (dump_restore, files, tree_threads) with one
# run each, alternating OLD and NEW ROUNDS times (so that the noise of a shared machine falls on both
# alike), and prints the median of every figure for each binary.
#   scripts/bench-ab.sh OLD_RCR NEW_RCR BENCH [ROUNDS=5]
# Other RCR_BENCH_* variables reach the benchmark as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1 new=$2 bench=$3 rounds=${4:-5}
exe=$(cargo bench --bench "$bench" --no-run 2>&1 | sed -n 's/.*Executable.*(\(.*\)).*/\1/p' | tail -1)
[ -x "$exe" ] || { echo "bench-ab: no executable for bench $bench" >&2; exit 1; }
out=$(mktemp -d)
for i in $(seq "$rounds"); do
  for side in old new; do
    bin=$old; [ "$side" = new ] && bin=$new
    RCR_BENCH_RUNS=1 RCR_BIN=$bin "$exe" > "$out/$side.$i.txt"
  done
done
python3 - "$out" "$rounds" <<'PY'
import re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def rows(side):
    table = {}
    for i in range(1, rounds + 1):
        for line in open(f"{out}/{side}.{i}.txt"):
            m = re.match(r"^(\S.*?)\s{2,}(-?[\d.]+ (?:ms|GB/s|MiB|s)\b.*)$", line.rstrip())
            if not m:
                continue
            nums = re.findall(r"(-?[\d.]+) (ms|GB/s|MiB|s)\b", m.group(2))
            table.setdefault(m.group(1), []).append(nums)
    return table
old, new = rows("old"), rows("new")
print(f"medians of {rounds} alternating runs: old | new")
for label, runs in old.items():
    cols = []
    for c in range(len(runs[0])):
        unit = runs[0][c][1]
        o = statistics.median(float(r[c][0]) for r in runs if len(r) > c)
        n = statistics.median(float(r[c][0]) for r in new.get(label, []) if len(r) > c) if label in new else float("nan")
        cols.append(f"{o:.3f} | {n:.3f} {unit}")
    print(f"{label:<28} " + "    ".join(cols))
PY
rm -rf "$out"
