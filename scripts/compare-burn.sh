#!/usr/bin/env bash
# Side-by-side benchmark: runs `kiln bench --lines` and the peer burn-bench alternately on the
# same adapter, ROUNDS times each, and prints per case the median GFLOP/s of both and the
# kiln/burn ratio (for the add chain: burn's µs per op over kiln's; for the training step:
# images/s), and kiln's fraction of the adapter's measured roofline (`frac_of_ceiling`, from the
# ceiling cases kiln measures in the same run). kiln runs with `--timing wall`: every run is timed
# by the wall clock from before the ops are recorded to after the GPU has finished, exactly as
# burn-bench's `time_it` does (kiln's default, GPU timestamps, leaves recording out and would
# flatter kiln). The peer is copied from ../shared/peers/burn-bench to $BURN_BENCH_DIR and built
# there on first use (about 21 minutes on 2 cores).
#
#   scripts/compare-burn.sh                 # all cases, 2 rounds
#   ROUNDS=3 FILTER=matmul scripts/compare-burn.sh
#   KILN_BEFORE=/path/to/old/kiln scripts/compare-burn.sh
#
# With KILN_BEFORE (a kiln binary built from an earlier commit), each round also runs that
# binary, right before the current one, and the table gains its figures and the after/before
# ratio: a refactor's "before and after" measured in one run, on one machine state.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
peer_src=${BURN_BENCH_SRC:-$root/../shared/peers/burn-bench}
peer_dir=${BURN_BENCH_DIR:-$HOME/burn-bench}
rounds=${ROUNDS:-2}
filter=${FILTER:-}
out=${OUT_DIR:-$root/out/compare}
mkdir -p "$out"
: > "$out/kiln.txt"
: > "$out/burn.txt"
: > "$out/before.txt"
before=${KILN_BEFORE:-}

if [ ! -x "$peer_dir/target/release/burn-bench" ]; then
  mkdir -p "$peer_dir"
  cp -r "$peer_src/." "$peer_dir/"
  chmod -R u+w "$peer_dir"
  (cd "$peer_dir" && cargo build --release)
fi
cargo build --release --manifest-path "$root/Cargo.toml"

kiln_args=(bench --lines --timing wall)
[ -n "$filter" ] && kiln_args+=(--filter "$filter")
for r in $(seq "$rounds"); do
  if [ -n "$before" ]; then
    echo "round $r/$rounds: kiln before ($before)" >&2
    "$before" "${kiln_args[@]}" | grep '^case=' >> "$out/before.txt"
  fi
  echo "round $r/$rounds: kiln" >&2
  "$root/target/release/kiln" "${kiln_args[@]}" | grep '^case=' >> "$out/kiln.txt"
  echo "round $r/$rounds: burn" >&2
  (cd "$peer_dir" && BENCH_ONLY="$filter" ./target/release/burn-bench 2>/dev/null) | grep '^case=' >> "$out/burn.txt" || true
done

python3 - "$out/kiln.txt" "$out/burn.txt" "$out/before.txt" <<'PY'
import statistics, sys
def load(path):
    rows = {}
    for line in open(path):
        f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if f.get("status") == "failed" or "median_ms" not in f:
            continue
        rows.setdefault(f["case"], []).append(f)
    return rows
kiln, burn, before = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
def med(rows, key):
    vals = [float(r[key]) for r in rows if key in r]
    return statistics.median(vals) if vals else None
extra = f" {'before':>12} {'after/bef':>9}" if before else ""
print(f"{'case':<36} {'kiln':>12} {'burn':>12} {'kiln/burn':>10} {'kiln roof':>9}{extra}  unit")
for case in sorted(set(kiln) | set(burn)):
    k, b = kiln.get(case, []), burn.get(case, [])
    p = before.get(case, [])
    if case.startswith("add_chain"):
        kv, bv, unit = med(k, "us_per_op"), med(b, "us_per_op"), "us/op (ratio: burn/kiln)"
        ratio = bv / kv if kv and bv else None
        pv = med(p, "us_per_op")
        gain = pv / kv if kv and pv else None
    elif case.startswith("train_step"):
        kv, bv, unit = med(k, "images_per_s"), med(b, "images_per_s"), "images/s"
        ratio = kv / bv if kv and bv else None
        pv = med(p, "images_per_s")
        gain = kv / pv if kv and pv else None
    else:
        kv, bv, unit = med(k, "gflops"), med(b, "gflops"), "GFLOP/s"
        ratio = kv / bv if kv and bv else None
        pv = med(p, "gflops")
        gain = kv / pv if kv and pv else None
    fmt = lambda v: f"{v:12.3f}" if v is not None else f"{'-':>12}"
    r = f"{ratio:10.2f}" if ratio is not None else f"{'-':>10}"
    frac = med(k, "frac_of_ceiling")
    roof = f"{frac * 100:8.1f}%" if frac is not None else f"{'-':>9}"
    extra = ""
    if before:
        g = f"{gain:9.2f}" if gain is not None else f"{'-':>9}"
        extra = f" {fmt(pv)} {g}"
    print(f"{case:<36} {fmt(kv)} {fmt(bv)} {r} {roof}{extra}  {unit}")
PY
