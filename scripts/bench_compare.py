#!/usr/bin/env python3
"""Joins `kiln bench --json` and scripts/torch_bench.py results by case name and prints
kiln/PyTorch ratios and issue 5's targets.

    python3 scripts/bench_compare.py KILN.json TORCH.json [--markdown]

ratio = PyTorch median time / kiln median time (kiln's speed as a fraction of PyTorch's; 1.0 is
parity, 0.5 is half as fast). kiln's f16 cases are named matmul_f16_{tiled,coop}_nN and are
compared with PyTorch's matmul_f16_nN.

Targets (issue 5):
- fp32 matmul (matmul_f32_n*)              >= 0.50 of cuBLAS fp32 with TF32 off
- fp16 matmul on cooperative matrices
  (matmul_f16_coop_n*)                     >= 0.50 of cuBLAS fp16
- memory-bound kernels (add_f32_n*, relu_f32_n*): GB/s >= 0.70 of the copy bandwidth PyTorch
  measured (copy_f32_n*, bytes read + written)
Each target is judged on the largest size both sides ran; every size is listed.
Exit status 0 whatever the verdicts (the run is a measurement, not a test); 2 on bad input.
"""

import json
import re
import sys


def load(path):
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON array of cases")
    return {d["name"]: d for d in data if "name" in d}


def torch_name(kiln_name):
    return re.sub(r"^matmul_f16_(tiled|coop)_n", "matmul_f16_n", kiln_name)


def size_of(name):
    m = re.search(r"_n(\d+)$", name)
    return int(m.group(1)) if m else 0


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    markdown = "--markdown" in argv
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        kiln, torch = load(args[0]), load(args[1])
    except (OSError, ValueError, KeyError) as e:
        print(f"bench_compare: {e}", file=sys.stderr)
        return 2

    rows = []
    for name, k in kiln.items():
        t = torch.get(torch_name(name))
        if t is None or "median_ms" not in t or "median_ms" not in k:
            rows.append((name, k.get("median_ms"), None, None, t.get("error") if t else "no PyTorch case"))
            continue
        rows.append((name, k["median_ms"], t["median_ms"], t["median_ms"] / k["median_ms"], ""))

    copy = [t for n, t in torch.items() if n.startswith("copy_f32_n") and "gbps" in t]
    copy_gbps = max((t["gbps"] for t in copy), default=None)

    def fmt(v, spec):
        width = int(re.match(r"\d*", spec).group() or 0)
        return "-".rjust(width) if v is None else format(v, spec)

    if markdown:
        print("| case | kiln ms | PyTorch ms | kiln/PyTorch |")
        print("| --- | ---: | ---: | ---: |")
        for name, km, tm, r, note in rows:
            print(f"| {name} | {fmt(km, '.4f')} | {fmt(tm, '.4f')} | {fmt(r, '.3f')}{(' ' + note) if note else ''} |")
    else:
        print(f"{'case':<36} {'kiln ms':>11} {'torch ms':>11} {'kiln/torch':>10}")
        for name, km, tm, r, note in rows:
            print(f"{name:<36} {fmt(km, '11.4f')} {fmt(tm, '11.4f')} {fmt(r, '10.3f')}  {note}")
    only_torch = sorted(n for n in torch if n not in {torch_name(k) for k in kiln})
    if only_torch:
        print(f"# PyTorch-only cases: {', '.join(only_torch)}")

    # ---- targets ----
    print()
    print("targets (issue 5), judged on the largest size both sides ran:")
    ratio = {name: r for name, _, _, r, _ in rows if r is not None}

    def largest(prefix):
        cands = [n for n in ratio if n.startswith(prefix)]
        return max(cands, key=size_of) if cands else None

    verdicts = []
    for label, prefix, goal in [
        ("fp32 matmul vs cuBLAS (TF32 off)", "matmul_f32_n", 0.50),
        ("fp16 matmul, cooperative matrices, vs cuBLAS fp16", "matmul_f16_coop_n", 0.50),
        ("fp16 matmul, tiled (no target; for reference)", "matmul_f16_tiled_n", None),
    ]:
        name = largest(prefix)
        if name is None:
            verdicts.append(f"  {label}: NOT MEASURED (no {prefix}* case on both sides)")
            continue
        r = ratio[name]
        if goal is None:
            verdicts.append(f"  {label}: {name} at {r:.3f} of PyTorch")
        else:
            ok = "MET" if r >= goal else "MISSED"
            verdicts.append(f"  {label}: {name} at {r:.3f} (target >= {goal:.2f}): {ok}")
    if copy_gbps is None:
        verdicts.append("  memory-bound vs copy bandwidth: NOT MEASURED (no copy_f32_n* case)")
    else:
        for prefix in ("add_f32_n", "relu_f32_n"):
            cands = [n for n in kiln if n.startswith(prefix) and "gbps" in kiln[n]]
            if not cands:
                verdicts.append(f"  {prefix}*: NOT MEASURED on kiln")
                continue
            name = max(cands, key=size_of)
            frac = kiln[name]["gbps"] / copy_gbps
            ok = "MET" if frac >= 0.70 else "MISSED"
            verdicts.append(
                f"  memory-bound {name}: {kiln[name]['gbps']:.1f} GB/s = {frac:.3f} of the "
                f"{copy_gbps:.1f} GB/s copy (target >= 0.70): {ok}")
    print("\n".join(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
