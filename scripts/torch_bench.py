#!/usr/bin/env python3
"""The `kiln bench` cases timed in PyTorch on the same GPU, for scripts/device-bench.sh.

Case names, shapes and FLOP/byte counts mirror src/cli/bench.rs and src/cli/bench_f16.rs, so
scripts/bench_compare.py can join the two JSON files by name. Precision is the strict kind:
fp32 matmul and convolutions run with TF32 off (torch.backends.cuda.matmul.allow_tf32 and
torch.backends.cudnn.allow_tf32 both False); the fp16 products are plain fp16 torch.matmul
(cuBLAS, fp32 accumulation). Timing: CUDA events around each run, warm-up first, the median of
the timed runs (at least 5, at most 50, about --budget seconds per case). On --device cpu the
same code runs with wall-clock timing (to check the script without a GPU).

Output: a JSON array in the `kiln bench --json` format (name, median_ms, min_ms, reps, gflops,
gbps, timing, adapter; images_per_s / us_per_op where kiln prints them) to --json, and a table
on stdout. A case that fails is reported with an "error" field and the run goes on.

Differences from kiln that the numbers carry (noted in BENCHMARKS.md):
- *_bwd of conv2d runs aten.convolution_backward alone (dx and dw from dy; no forward), as
  kiln's conv _bwd case needs no forward either. *_bwd of lstm and attention run forward and
  backward, as kiln's do (their gradients need the forward's activations).
- The seed CNN ends in logits + F.cross_entropy; kiln's ends in softmax + categorical cross
  entropy on probabilities: the same function, fused differently.
- matmul_f16_nN writes an fp16 result; kiln's f16 kernels write f32 (a small share of the bytes
  at these sizes, none of the FLOPs).
"""

import argparse
import json
import statistics
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument("--json", help="write the results here (JSON array)")
    p.add_argument("--filter", default="", help="only cases whose name contains this")
    p.add_argument("--small", action="store_true",
                   help="small sizes only (for a CPU check of the script)")
    p.add_argument("--budget", type=float, default=1.0,
                   help="seconds of timed runs per case (default 1.0)")
    return p.parse_args()


def main():
    args = parse_args()
    import torch
    import torch.nn.functional as F

    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("torch_bench: CUDA is not available (use --device cpu to check the script)")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    torch.set_float32_matmul_precision("highest")
    if cuda:
        adapter = f"{torch.cuda.get_device_name(dev)} (torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()})"
    else:
        adapter = f"cpu (torch {torch.__version__})"
    gen = torch.Generator(device="cpu").manual_seed(1)

    def rand(*shape, dtype=torch.float32, requires_grad=False):
        t = (torch.rand(*shape, generator=gen) * 2 - 1).to(device=dev, dtype=dtype)
        return t.requires_grad_(requires_grad)

    def sync():
        if cuda:
            torch.cuda.synchronize(dev)

    def time_once(fn):
        if cuda:
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end)  # ms
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3

    results = []

    def run(name, fn, flops, bytes_, ops=1, per_item=None):
        if args.filter and args.filter not in name:
            return
        rec = {"name": name, "adapter": adapter,
               "timing": "cuda-event" if cuda else "wall"}
        try:
            # Warm-up: cuDNN autotuning, cuBLAS handles, allocator; until two runs agree.
            prev = time_once(fn)
            for _ in range(8):
                t = time_once(fn)
                agree = abs(t - prev) <= 0.2 * max(t, prev)
                prev = t
                if agree:
                    break
            samples = []
            t_start = time.perf_counter()
            while len(samples) < 5 or (len(samples) < 50 and time.perf_counter() - t_start < args.budget):
                samples.append(time_once(fn))
            med = statistics.median(samples)
            rec.update(median_ms=med, min_ms=min(samples), reps=len(samples),
                       gflops=flops / (med * 1e-3) / 1e9, gbps=bytes_ / (med * 1e-3) / 1e9)
            if ops > 1:
                rec["us_per_op"] = med * 1e3 / ops
            if per_item:
                rec["images_per_s"] = per_item / (med * 1e-3)
        except Exception as e:  # report and go on: one case must not lose the others
            rec["error"] = f"{type(e).__name__}: {e}"
        results.append(rec)
        if "error" in rec:
            print(f"{name:<36} ERROR {rec['error']}", flush=True)
        else:
            print(f"{name:<36} {rec['median_ms']:>11.4f} ms {rec['gflops']:>11.1f} GFLOP/s "
                  f"{rec['gbps']:>9.1f} GB/s  reps={rec['reps']}", flush=True)
        if cuda:
            torch.cuda.empty_cache()

    print(f"# torch bench on {adapter}", flush=True)

    # ---- fp32 matmul (TF32 off), the sizes of src/cli/bench.rs and src/cli/bench_f16.rs ----
    sizes = [256, 512] if args.small else [256, 512, 1024, 2048, 4096, 8192]
    for n in sizes:
        a, b = rand(n, n), rand(n, n)
        run(f"matmul_f32_n{n}", lambda: torch.matmul(a, b), 2.0 * n**3, 3 * 4.0 * n * n)
    a, b = rand(8, 256, 64), rand(8, 64, 256)
    run("bmm_f32_8x256x64_8x64x256", lambda: torch.matmul(a, b),
        2.0 * 8 * 256 * 256 * 64, 4.0 * 8 * (256 * 64 * 2 + 256 * 256))

    # ---- fp16 matmul (cuBLAS, fp32 accumulation; on the CPU only in --small, as a check) ----
    if cuda or args.small:
        for n in ([256] if args.small else [1024, 2048, 4096, 8192]):
            a, b = rand(n, n, dtype=torch.float16), rand(n, n, dtype=torch.float16)
            run(f"matmul_f16_n{n}", lambda: torch.matmul(a, b), 2.0 * n**3, 3 * 2.0 * n * n)
    else:
        print("# matmul_f16_* skipped on cpu", flush=True)

    # ---- conv2d via cuDNN (fp32, TF32 off), forward and backward ----
    conv_cases = [(32, 1, 28, 32), (32, 32, 28, 64), (16, 64, 56, 64)]
    if args.small:
        conv_cases = conv_cases[:1]
    for (n, c, h, m) in conv_cases:
        x, w, dy = rand(n, c, h, h), rand(m, c, 3, 3), rand(n, m, h, h)
        flops = 2.0 * n * m * h * h * c * 9
        bytes_ = 4.0 * (n * c * h * h + m * c * 9 + n * m * h * h)
        name = f"conv2d_n{n}_c{c}_{h}x{h}_k{m}_3x3_p1"
        run(name, lambda: F.conv2d(x, w, padding=1), flops, bytes_)
        run(f"{name}_bwd", lambda: torch.ops.aten.convolution_backward(
            dy, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1, [True, True, False]),
            2 * flops, 2 * bytes_)

    # ---- LSTM (cuDNN), forward and forward + backward ----
    if not args.small:
        s, bsz, i, h = 64, 32, 256, 256
        lstm = torch.nn.LSTM(i, h, bias=False).to(dev)
        x, dy = rand(s, bsz, i, requires_grad=True), rand(s, bsz, h)
        flops = 2.0 * s * bsz * 4 * h * (i + h)
        bytes_ = 4.0 * (s * bsz * (i + h) + 4 * h * (i + h))

        def lstm_fwd():
            with torch.no_grad():
                return lstm(x)

        def lstm_bwd():
            y, _ = lstm(x)
            return torch.autograd.grad(y, [x, lstm.weight_ih_l0, lstm.weight_hh_l0], dy)

        run(f"lstm_s{s}_b{bsz}_h{h}", lstm_fwd, flops, bytes_)
        run(f"lstm_s{s}_b{bsz}_h{h}_bwd", lstm_bwd, 3 * flops, 2 * bytes_)

    # ---- attention: scaled_dot_product_attention (fp32), forward and forward + backward ----
    for s in ([256] if args.small else [256, 1024]):
        bsz, hh, d = 4, 8, 64
        q, k, v = (rand(bsz, hh, s, d, requires_grad=True) for _ in range(3))
        dy = rand(bsz, hh, s, d)
        flops = 4.0 * bsz * hh * s * s * d
        bytes_ = 4.0 * 4.0 * bsz * hh * s * d
        name = f"attn_fused_b{bsz}_h{hh}_s{s}_d{d}"

        def attn_fwd():
            with torch.no_grad():
                return F.scaled_dot_product_attention(q, k, v)

        def attn_bwd():
            y = F.scaled_dot_product_attention(q, k, v)
            return torch.autograd.grad(y, [q, k, v], dy)

        run(name, attn_fwd, flops, bytes_)
        run(f"{name}_bwd", attn_bwd, 2.5 * flops, 2 * bytes_)

    # ---- one training step of the seed CNN (src/nn/zoo.rs seed_cnn), batch 64, Adam ----
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1),
        torch.nn.Conv2d(32, 64, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64 * 14 * 14, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    ).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    x = rand(64, 1, 28, 28)
    labels = torch.tensor([i * 7 % 10 for i in range(64)], device=dev)

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        return loss

    fwd = 2.0 * 64 * (784 * 32 * 9 + 784 * 64 * 32 * 9 + 12544 * 128 + 1280)
    run("train_step_cnn_b64", train_step, 3 * fwd, 4.0 * 3 * 1_625_866, per_item=64)

    # ---- launch-bound: 1000 dependent adds of 1024 elements (eager, one kernel each) ----
    x, y = rand(1024), rand(1024)

    def add_chain():
        acc = x
        for _ in range(1000):
            acc = acc + y
        return acc

    run("add_chain_1000_n1024", add_chain, 1000.0 * 1024, 1000 * 3 * 4.0 * 1024, ops=1000)

    # ---- memory-bound, 2^26 elements: the copy bandwidth ceiling and kiln's two cases ----
    n = 1 << (20 if args.small else 26)
    x, y, out = rand(n), rand(n), torch.empty(n, device=dev)
    run(f"copy_f32_n{n}", lambda: out.copy_(x), 0.0, 2 * 4.0 * n)
    run(f"add_f32_n{n}", lambda: torch.add(x, y, out=out), float(n), 3 * 4.0 * n)
    run(f"relu_f32_n{n}", lambda: torch.relu(x), float(n), 2 * 4.0 * n)

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
        print(f"# wrote {args.json}", flush=True)
    failed = [r["name"] for r in results if "error" in r]
    if failed:
        print(f"# {len(failed)} case(s) failed: {', '.join(failed)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
