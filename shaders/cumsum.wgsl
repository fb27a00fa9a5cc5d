// Cumulative sum along one axis (ONNX CumSum with its exclusive and reverse attributes).
//
// x and y are viewed as (outer, n, inner): n is the summed axis. One invocation per line
// (outer * inner of them) walks its n elements in order, so the sum is sequential, like the
// reference. Inclusive: y_k = Σ_{j <= k} x_j; exclusive: Σ_{j < k}; reverse runs from the end.
// Workgroup size 256: a multiple of every GPU's SIMD width and the WebGPU default maximum.

struct Params {
    lines: u32, // outer * inner
    n: u32,
    inner: u32,
    flags: u32, // bit 0 exclusive, bit 1 reverse
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;       // (outer, n, inner)
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // (outer, n, inner)

// kiln:include index

@compute @workgroup_size(256)
fn cumsum(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p.lines) {
        return;
    }
    let o = div_u32(i, p.inner);
    let r = i - o * p.inner;
    let base = o * p.n * p.inner + r;
    let exclusive = (p.flags & 1u) != 0u;
    let reverse = (p.flags & 2u) != 0u;
    var acc = 0.0;
    for (var t = 0u; t < p.n; t++) {
        let k = select(t, p.n - 1u - t, reverse);
        let at = base + k * p.inner;
        let v = x[at];
        if (exclusive) {
            y[at] = acc;
            acc += v;
        } else {
            acc += v;
            y[at] = acc;
        }
    }
}
