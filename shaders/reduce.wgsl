// Reductions (sum, mean, max, min) over any set of axes.
//
// The Rust side (src/kernels/reduce.rs) splits the input's dims into "kept" dims (they index
// the output) and "reduced" dims (they are folded into one value), drops dims of size 1, and
// merges adjacent dims of the same kind, so [N, C, H, W] reduced over (H, W) arrives here as
// kept (N*C) and reduced (H*W). Each side has rank <= 4 after merging (kinds alternate).
//
// o: an output element, 0 <= o < n_out; its kept coordinates give a base offset into x.
// r: a reduced element, 0 <= r < n_red; its reduced coordinates give an offset from the base.
// x: input, contiguous row-major f32, read at base(o) + off(r) through the element strides
//    in Params.
// y: output, (n_out) contiguous: the kept dims in their input order.
//
// Two entry points (the Rust side picks one):
// - `reduce`: one 256-invocation workgroup per output element. Invocation `lid` folds
//   r = lid, lid + 256, ... (adjacent invocations read adjacent elements when the reduced part
//   is one contiguous dim), then a workgroup-memory tree combines the 256 partials pairwise.
//   When the innermost reduced dim has at least 128 elements, the lanes instead walk it row by
//   row (lane lid folds elements lid, lid + 256, ... of every row).
// - `reduce_small`: one invocation per output element folds all of its reduced elements in
//   order; for small reduced sizes, or when there are enough outputs to fill the GPU.
//
// The op is a pipeline-overridable constant (codes as in ReduceOp in src/kernels/reduce.rs).
// Max and min propagate NaN like NumPy: any NaN input makes the result NaN. NaN and infinities
// are tested and made through bit patterns, because WGSL lets compilers assume floats are
// finite.
//
// Workgroup size 256 (both entry points): a multiple of every GPU's SIMD width and the WebGPU
// default limit on invocations per workgroup; for `reduce` it is also the width of the tree
// (256 f32 = 1 KiB of workgroup memory).

struct Params {
    n_out: u32,
    n_red: u32,
    kept_rank: u32,
    red_rank: u32,
    kept_shape: array<vec4<u32>, 2>,   // merged kept dims, 8 slots
    kept_strides: array<vec4<u32>, 2>, // x's element stride per merged kept dim
    red_shape: array<vec4<u32>, 2>,    // merged reduced dims, 8 slots
    red_strides: array<vec4<u32>, 2>,  // x's element stride per merged reduced dim
}

override OP: u32 = 0u;

const SUM: u32 = 0u;
const MEAN: u32 = 1u;
const MAX: u32 = 2u;
const MIN: u32 = 3u;

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;       // (numel of the input)
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // (n_out)

var<workgroup> partial: array<f32, 256>;

// kiln:include index
// kiln:include float

fn nan() -> f32 {
    return f32_from_bits(0x7fc00000u);
}

fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// The value that changes nothing: 0 for sums, -inf for max, +inf for min.
fn identity() -> f32 {
    switch OP {
        case 2u: { return f32_from_bits(0xff800000u); }
        case 3u: { return f32_from_bits(0x7f800000u); }
        default: { return 0.0; }
    }
}

fn combine(a: f32, b: f32) -> f32 {
    switch OP {
        case 2u: {
            if (is_nan(a) || is_nan(b)) { return nan(); }
            return max(a, b);
        }
        case 3u: {
            if (is_nan(a) || is_nan(b)) { return nan(); }
            return min(a, b);
        }
        default: { return a + b; }
    }
}

// The output value from the combined value of all n_red elements.
fn finish(v: f32) -> f32 {
    if (OP == MEAN) {
        if (p.n_red == 0u) { return nan(); }
        return v / f32(p.n_red);
    }
    return v;
}

// Offset in x of output element o's first reduced element.
fn kept_offset(o: u32) -> u32 {
    var rem = o;
    var off = 0u;
    for (var d = i32(p.kept_rank) - 1; d >= 0; d--) {
        let k = u32(d);
        let c = index_peel(&rem, p.kept_shape[k >> 2u][k & 3u]);
        off += c * p.kept_strides[k >> 2u][k & 3u];
    }
    return off;
}

// Offset of reduced element r from its output's base.
fn red_offset(r: u32) -> u32 {
    var rem = r;
    var off = 0u;
    for (var d = i32(p.red_rank) - 1; d >= 0; d--) {
        let k = u32(d);
        let c = index_peel(&rem, p.red_shape[k >> 2u][k & 3u]);
        off += c * p.red_strides[k >> 2u][k & 3u];
    }
    return off;
}

@compute @workgroup_size(256)
fn reduce(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let o = wid.y * nwg.x + wid.x;
    // Workgroups past the last output still take part in the barriers below (no early return
    // before a barrier); they just fold nothing and write nothing.
    let live = o < p.n_out;
    var acc = identity();
    if (live) {
        let base = kept_offset(o);
        if (p.red_rank <= 1u) {
            // Fast path: one reduced dim (stride 1 when it is the innermost).
            let s = p.red_strides[0][0];
            for (var r = lid; r < p.n_red; r += WG) {
                acc = combine(acc, x[base + r * s]);
            }
        } else {
            let last = p.red_rank - 1u;
            let inner = p.red_shape[last >> 2u][last & 3u];
            if (inner >= WG / 2u) {
                // Rows of the innermost reduced dim: the lanes share each row, so only the row's
                // start (the same for every lane) needs dividing, once per row.
                let s = p.red_strides[last >> 2u][last & 3u];
                let rows = p.n_red / inner;
                for (var row = 0u; row < rows; row++) {
                    let start = base + red_offset(row * inner);
                    for (var r = lid; r < inner; r += WG) {
                        acc = combine(acc, x[start + r * s]);
                    }
                }
            } else {
                for (var r = lid; r < p.n_red; r += WG) {
                    acc = combine(acc, x[base + red_offset(r)]);
                }
            }
        }
    }
    partial[lid] = acc;
    workgroupBarrier();
    // Pairwise tree: each level combines the upper half of the partials into the lower half.
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        if (lid < half) {
            partial[lid] = combine(partial[lid], partial[lid + half]);
        }
        workgroupBarrier();
    }
    if (live && lid == 0u) {
        y[o] = finish(partial[0]);
    }
}

@compute @workgroup_size(256)
fn reduce_small(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let o = (wid.y * nwg.x + wid.x) * WG + lid;
    if (o >= p.n_out) {
        return;
    }
    let base = kept_offset(o);
    var acc = identity();
    if (p.red_rank <= 1u) {
        let s = p.red_strides[0][0];
        for (var r = 0u; r < p.n_red; r++) {
            acc = combine(acc, x[base + r * s]);
        }
    } else {
        // Walk the reduced coordinates like an odometer: no divisions per element.
        var c = array<u32, 8>(0u, 0u, 0u, 0u, 0u, 0u, 0u, 0u);
        var off = base;
        let last = p.red_rank - 1u;
        for (var r = 0u; r < p.n_red; r++) {
            acc = combine(acc, x[off]);
            var d = last;
            loop {
                c[d] += 1u;
                off += p.red_strides[d >> 2u][d & 3u];
                let n = p.red_shape[d >> 2u][d & 3u];
                if (c[d] < n || d == 0u) {
                    break;
                }
                off -= n * p.red_strides[d >> 2u][d & 3u];
                c[d] = 0u;
                d -= 1u;
            }
        }
    }
    y[o] = finish(acc);
}
