#!/usr/bin/env python3
"""Writes tests/data/conformance-extra/: ONNX-style conformance cases for kiln's comparison,
selection and indexing primitives, in the format of ../shared/conformance/README.md
(cases.json + cases.safetensors).

Expected values follow the ONNX operator definitions (opset 23), computed in float64 with
NumPy from float32 inputs and rounded to float32 (`oracle: numpy-f64`). Every differentiated
op here is linear in the inputs it is differentiated by (Where, Clip away from its bounds,
Concat, Slice, Gather, GatherElements, ScatterElements add, CumSum), so the VJP
dX = dL/dX with L = sum(dY * Y) is computed exactly by its formula rather than by finite
differences; the script checks each one against central differences too.

Boolean tensors (the outputs of Equal/Less/..., the condition of Where) are stored as F32
0.0/1.0, kiln's mask type; the case says so with `"_bool_as_f32": true`. Integer tensors
(indices, Slice starts/ends/axes/steps, CumSum axis, ArgMax outputs) are I64.

Usage: python3 scripts/gen/conformance_extra.py [OUT_DIR]   (needs numpy)
"""

import json
import os
import struct
import sys

import numpy as np

SEED = 20261208
rng = np.random.default_rng(SEED)

cases = []
tensors = {}  # key -> np.ndarray (float32 or int64), in insertion order


def f32(a):
    return np.asarray(a, dtype=np.float32)


def normal(*shape, scale=1.0):
    return f32(rng.standard_normal(shape) * scale)


def coarse(*shape):
    """Values on a grid of 0.5, so comparisons and arg-reductions meet ties."""
    return f32(np.round(rng.standard_normal(shape) * 2.0) / 2.0)


def tol_of(expected, rtol, f):
    """(rtol, atol) with atol = f * max|expected| as the shared README's classes do."""
    m = float(np.max(np.abs(expected))) if expected.size else 0.0
    return rtol, f * m


def add_case(name, op, inputs, outputs, attrs=None, cls=(0.0, 0.0), grads=None, upstream=None,
             extra=None):
    """inputs/outputs: lists of (tensor name, array). grads: {input name: array}."""
    assert name not in {c["name"] for c in cases} and "/" not in name
    case = {"name": name, "op": op, "domain": "", "opset": 23, "attrs": dict(attrs or {}),
            "inputs": [n for n, _ in inputs], "outputs": [n for n, _ in outputs]}
    rtol, f = cls
    first = outputs[0][1]
    case["rtol"], case["atol"] = tol_of(first.astype(np.float64), rtol, f)
    tol = {}
    for n, a in outputs[1:]:
        tol[n] = list(tol_of(a.astype(np.float64), rtol, f))
    if grads:
        names = {n for n, _ in inputs + outputs}
        assert all("d" + k not in names and "d" + k != "dY" for k in grads), name
        case["grads"] = {k: "d" + k for k in grads}
        case["upstream"] = "dY"
        for k, g in grads.items():
            tol["d" + k] = list(tol_of(g.astype(np.float64), max(rtol, 1e-5), max(f, 1e-5)))
    if tol:
        case["tol"] = tol
    case["oracle"] = "numpy-f64"
    if extra:
        case["attrs"].update(extra)
    for n, a in inputs + outputs:
        tensors[f"{name}/{n}"] = a
    if grads:
        tensors[f"{name}/dY"] = upstream
        for k, g in grads.items():
            tensors[f"{name}/d{k}"] = f32(g)
    cases.append(case)


def fd_check(fn, xs, k, dy, expected):
    """Central differences of sum(dy * fn(xs)) with respect to xs[k], against `expected`."""
    x = xs[k].astype(np.float64)
    g = np.zeros_like(x)
    flat = x.reshape(-1)
    for i in range(flat.size):
        h = 1e-6 * max(1.0, abs(flat[i]))
        up, down = flat.copy(), flat.copy()
        up[i] += h
        down[i] -= h
        a = [v.astype(np.float64) for v in xs]
        a[k] = up.reshape(x.shape)
        b = [v.astype(np.float64) for v in xs]
        b[k] = down.reshape(x.shape)
        g.reshape(-1)[i] = (np.sum(dy * fn(*a)) - np.sum(dy * fn(*b))) / (2 * h)
    err = np.max(np.abs(g - expected)) if g.size else 0.0
    assert err <= 1e-6 * max(1.0, np.max(np.abs(expected)) if g.size else 1.0), err


def sum_to(g, shape):
    """A broadcast gradient summed down to an operand's shape."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for d, n in enumerate(shape):
        if n == 1 and g.shape[d] != 1:
            g = g.sum(axis=d, keepdims=True)
    return g


# ---- comparisons: Equal, Less, LessOrEqual, Greater, GreaterOrEqual ----------------------
compare = {"Equal": np.equal, "Less": np.less, "LessOrEqual": np.less_equal,
           "Greater": np.greater, "GreaterOrEqual": np.greater_equal}
for op, fn in compare.items():
    for tag, sa, sb in [("same", (3, 67), (3, 67)), ("bcast", (2, 1, 5), (4, 1))]:
        a, b = coarse(*sa), coarse(*sb)
        y = f32(fn(a.astype(np.float64), b.astype(np.float64)))
        add_case(f"{op.lower()}_{tag}", op, [("A", a), ("B", b)], [("C", y)],
                 extra={"_bool_as_f32": True})

# ---- Where ---------------------------------------------------------------------------------
for tag, sc, sx, sy in [("same", (4, 33), (4, 33), (4, 33)), ("bcast", (3, 4, 5), (4, 1), (5,))]:
    c = f32(rng.standard_normal(sc) > 0)
    x, yv = normal(*sx), normal(*sy)
    fn = lambda c_, x_, y_: np.where(c_ != 0, x_, y_)
    out = f32(fn(c, x.astype(np.float64), yv.astype(np.float64)))
    dy = normal(*out.shape)
    dX = sum_to(np.where(c != 0, dy.astype(np.float64), 0.0), sx)
    dY_ = sum_to(np.where(c != 0, 0.0, dy.astype(np.float64)), sy)
    fd_check(lambda x_, y_: fn(c, x_, y_), [x, yv], 0, dy.astype(np.float64), dX)
    fd_check(lambda x_, y_: fn(c, x_, y_), [x, yv], 1, dy.astype(np.float64), dY_)
    # ONNX calls the branches X and Y; here they are A and B, so that Y's gradient would not
    # be named dY, the upstream gradient's name.
    add_case(f"where_{tag}", "Where", [("condition", c), ("A", x), ("B", yv)], [("Z", out)],
             grads={"A": dX, "B": dY_}, upstream=dy, extra={"_bool_as_f32": True})

# ---- Clip ----------------------------------------------------------------------------------
for tag, lo, hi in [("both", -0.5, 0.75), ("low_only", -0.25, None)]:
    x = normal(5, 41)
    # Keep inputs off the bounds, so the VJP is defined.
    x = np.where(np.abs(x - lo) < 1e-3, x + 0.01, x)
    if hi is not None:
        x = np.where(np.abs(x - hi) < 1e-3, x + 0.01, x)
    x = f32(x)
    hi_v = np.inf if hi is None else hi
    fn = lambda x_: np.clip(x_, lo, hi_v)
    out = f32(fn(x.astype(np.float64)))
    dy = normal(*out.shape)
    dX = np.where((x >= lo) & (x <= hi_v), dy.astype(np.float64), 0.0)
    fd_check(fn, [x], 0, dy.astype(np.float64), dX)
    inputs = [("input", x), ("min", f32(lo))]
    if hi is not None:
        inputs.append(("max", f32(hi)))
    add_case(f"clip_{tag}", "Clip", inputs, [("output", out)], grads={"input": dX}, upstream=dy)

# ---- ArgMax / ArgMin -----------------------------------------------------------------------
for op, fn in [("ArgMax", np.argmax), ("ArgMin", np.argmin)]:
    for axis, keepdims in [(1, 1), (-1, 0), (0, 1)]:
        x = coarse(3, 7, 5)
        y = fn(x, axis=axis)
        if keepdims:
            y = np.expand_dims(y, axis)
        y = y.astype(np.int64)
        add_case(f"{op.lower()}_axis{axis}_keep{keepdims}".replace("-", "m"), op, [("data", x)],
                 [("reduced", y)], attrs={"axis": axis, "keepdims": keepdims})

# ---- Concat --------------------------------------------------------------------------------
for axis in [1, -1]:
    shapes = [(2, 3, 4), (2, 5, 4), (2, 1, 4)] if axis == 1 else [(3, 2, 1), (3, 2, 6)]
    xs = [normal(*s) for s in shapes]
    out = f32(np.concatenate(xs, axis=axis))
    dy = normal(*out.shape)
    cuts = np.cumsum([s[axis] for s in shapes])[:-1]
    parts = np.split(dy.astype(np.float64), cuts, axis=axis)
    names = [f"x{k}" for k in range(len(xs))]
    add_case(f"concat_axis{axis}".replace("-", "m"), "Concat", list(zip(names, xs)),
             [("concat_result", out)], attrs={"axis": axis}, grads=dict(zip(names, parts)),
             upstream=dy)


# ---- Slice ---------------------------------------------------------------------------------
def onnx_slice(x, starts, ends, axes, steps):
    """ONNX Slice: negative starts/ends count from the end, then are clamped."""
    sl = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        n = x.shape[a]
        s = s + n if s < 0 else s
        e = e + n if e < 0 else e
        if st > 0:
            s, e = min(max(s, 0), n), min(max(e, 0), n)
        else:
            s, e = min(max(s, 0), n - 1), min(max(e, -1), n - 1)
        idx = list(range(s, e, st))
        sl[a] = idx
    out = x
    for a, idx in enumerate(sl):
        if isinstance(idx, list):
            out = np.take(out, idx, axis=a)
    return out


for tag, shape, starts, ends, axes, steps in [
    ("basic", (6, 9), [1, 2], [5, 8], [0, 1], [1, 1]),
    ("steps", (7, 9, 11), [-6, 1], [100, -1], [0, 2], [2, 3]),
    ("negative_steps", (7, 9, 11), [9, -1], [1, -100], [-1, 1], [-2, -3]),
]:
    x = normal(*shape)
    fn = lambda x_: onnx_slice(x_, starts, ends, axes, steps)
    out = f32(fn(x.astype(np.float64)))
    dy = normal(*out.shape)
    # The VJP of a slice: dY placed back at the positions taken, zero elsewhere.
    pos = onnx_slice(np.arange(x.size).reshape(shape), starts, ends, axes, steps).reshape(-1)
    dX = np.zeros(x.size)
    np.add.at(dX, pos, dy.astype(np.float64).reshape(-1))
    dX = dX.reshape(shape)
    fd_check(fn, [x], 0, dy.astype(np.float64), dX)
    ints = lambda v: np.asarray(v, dtype=np.int64)
    add_case(f"slice_{tag}", "Slice",
             [("data", x), ("starts", ints(starts)), ("ends", ints(ends)), ("axes", ints(axes)),
              ("steps", ints(steps))], [("output", out)], grads={"data": dX}, upstream=dy)

# ---- Gather --------------------------------------------------------------------------------
for axis, ishape in [(0, (2, 3)), (1, (4,)), (-1, (2, 2))]:
    x = normal(5, 6, 4)
    n = x.shape[axis]
    idx = rng.integers(-n, n, size=ishape).astype(np.int64)
    fn = lambda x_: np.take(x_, idx, axis=axis)
    out = f32(fn(x.astype(np.float64)))
    dy = normal(*out.shape)
    pos = np.take(np.arange(x.size).reshape(x.shape), idx, axis=axis).reshape(-1)
    dX = np.zeros(x.size)
    np.add.at(dX, pos, dy.astype(np.float64).reshape(-1))
    dX = dX.reshape(x.shape)
    fd_check(fn, [x], 0, dy.astype(np.float64), dX)
    add_case(f"gather_axis{axis}".replace("-", "m"), "Gather", [("data", x), ("indices", idx)],
             [("output", out)], attrs={"axis": axis}, grads={"data": dX}, upstream=dy)


# ---- GatherElements / ScatterElements (reduction add) --------------------------------------
def along(shape, idx, axis):
    """Flat positions in `shape` of idx's elements along `axis` (negative indices wrapped)."""
    axis = axis % len(shape)
    grid = np.indices(idx.shape)
    coords = [grid[d] for d in range(len(shape))]
    coords[axis] = np.where(idx < 0, idx + shape[axis], idx)
    return np.ravel_multi_index(coords, shape)


for axis, xshape, ishape in [(1, (4, 5, 3), (4, 7, 3)), (0, (5, 3), (2, 3)), (-1, (3, 6), (2, 4))]:
    x = normal(*xshape)
    n = xshape[axis]
    idx = rng.integers(-n, n, size=ishape).astype(np.int64)
    pos = along(xshape, idx, axis)
    fn = lambda x_: x_.reshape(-1)[pos]
    out = f32(fn(x.astype(np.float64)))
    dy = normal(*out.shape)
    dX = np.zeros(x.size)
    np.add.at(dX, pos.reshape(-1), dy.astype(np.float64).reshape(-1))
    dX = dX.reshape(xshape)
    fd_check(fn, [x], 0, dy.astype(np.float64), dX)
    tag = f"axis{axis}".replace("-", "m")
    add_case(f"gather_elements_{tag}", "GatherElements", [("data", x), ("indices", idx)],
             [("output", out)], attrs={"axis": axis}, grads={"data": dX}, upstream=dy)

    upd = normal(*ishape)

    def scatter(x_, u_):
        y = x_.astype(np.float64).reshape(-1).copy()
        np.add.at(y, pos.reshape(-1), u_.astype(np.float64).reshape(-1))
        return y.reshape(xshape)

    out = f32(scatter(x, upd))
    dy = normal(*xshape)
    dX = dy.astype(np.float64)
    dU = dy.astype(np.float64).reshape(-1)[pos]
    fd_check(scatter, [x, upd], 0, dy.astype(np.float64), dX)
    fd_check(scatter, [x, upd], 1, dy.astype(np.float64), dU)
    add_case(f"scatter_elements_add_{tag}", "ScatterElements",
             [("data", x), ("indices", idx), ("updates", upd)], [("output", out)],
             attrs={"axis": axis, "reduction": "add"}, cls=(1e-5, 1e-5),
             grads={"data": dX, "updates": dU}, upstream=dy)


# ---- CumSum --------------------------------------------------------------------------------
def cumsum(x, axis, exclusive, reverse):
    y = np.flip(x, axis) if reverse else x
    c = np.cumsum(y, axis=axis)
    if exclusive:
        c = c - y
    return np.flip(c, axis) if reverse else c


for axis, exclusive, reverse in [(1, 0, 0), (1, 1, 0), (0, 0, 1), (-1, 1, 1)]:
    x = normal(4, 9, 3)
    fn = lambda x_: cumsum(x_, axis, exclusive, reverse)
    out = f32(fn(x.astype(np.float64)))
    dy = normal(*out.shape)
    dX = cumsum(dy.astype(np.float64), axis, exclusive, not reverse)
    fd_check(fn, [x], 0, dy.astype(np.float64), dX)
    tag = f"axis{axis}_ex{exclusive}_rev{reverse}".replace("-", "m")
    add_case(f"cumsum_{tag}", "CumSum", [("x", x), ("axis", np.asarray(axis, dtype=np.int64))],
             [("y", out)], attrs={"exclusive": exclusive, "reverse": reverse},
             cls=(1e-5, 1e-5), grads={"x": dX}, upstream=dy)


# ---- write ---------------------------------------------------------------------------------
def write_safetensors(path, named):
    header, blobs, offset = {}, [], 0
    for key, a in named.items():
        if a.dtype == np.float32:
            dtype = "F32"
        elif a.dtype == np.int64:
            dtype = "I64"
        else:
            raise TypeError(f"{key}: {a.dtype}")
        raw = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        header[key] = {"dtype": dtype, "shape": list(a.shape),
                       "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data",
        "conformance-extra")
    os.makedirs(out_dir, exist_ok=True)
    gen = {"script": "scripts/gen/conformance_extra.py", "numpy": np.__version__, "seed": SEED}
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        f.write('{"format": 1, "generator": ' + json.dumps(gen) + ', "cases": [\n')
        f.write(",\n".join(json.dumps(c) for c in cases))
        f.write("\n]}\n")
    write_safetensors(os.path.join(out_dir, "cases.safetensors"),
                      {k: (v if v.dtype == np.int64 else f32(v)) for k, v in tensors.items()})
    ops = sorted({c["op"] for c in cases})
    grads = sum(1 for c in cases if "grads" in c)
    print(f"{len(cases)} cases, {len(ops)} op kinds, {grads} gradient cases -> {out_dir}")


main()
