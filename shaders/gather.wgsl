// Gathers along one axis: ONNX Gather (`gather`) and GatherElements (`gather_elements`).
//
// Indices are i32; a negative index counts from the end of the axis. An index outside
// [-n, n) reads 0 (the kernel cannot report an error; the caller documents it).
//
// Workgroup size 256: a multiple of every GPU's SIMD width and the WebGPU default maximum.

// kiln:include index

fn wrap(j: i32, n: u32) -> i32 {
    return select(j, j + i32(n), j < 0);
}

// ---- gather ------------------------------------------------------------------------------
// x viewed as (outer, n, inner); idx flattened to (q); y: (outer, q, inner), so that
// y[o, k, r] = x[o, idx[k], r].
struct Params {
    numel: u32,
    n: u32,
    q: u32,
    inner: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;       // (outer, n, inner)
@group(0) @binding(2) var<storage, read> idx: array<i32>;     // (q)
@group(0) @binding(3) var<storage, read_write> y: array<f32>; // (outer, q, inner)

@compute @workgroup_size(256)
fn gather(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p.numel) {
        return;
    }
    let row = div_u32(i, p.inner); // o * q + k
    let r = i - row * p.inner;
    let o = div_u32(row, p.q);
    let k = row - o * p.q;
    let j = wrap(idx[k], p.n);
    var v = 0.0;
    if (j >= 0 && u32(j) < p.n) {
        v = x[(o * p.n + u32(j)) * p.inner + r];
    }
    y[i] = v;
}

// ---- gather_elements ---------------------------------------------------------------------
// idx and y share the shape `shape` (rank <= 8); y[c] = x[c with c_axis replaced by idx[c]].
// x is read through its own element strides, so idx may be smaller than x off the axis.
struct ElemParams {
    numel: u32,
    rank: u32,
    axis: u32,
    n: u32, // x's size along the axis
    shape: array<vec4<u32>, 2>,     // idx and y dims
    x_strides: array<vec4<u32>, 2>, // x's element strides
}

@group(0) @binding(0) var<uniform> ep: ElemParams;

@compute @workgroup_size(256)
fn gather_elements(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= ep.numel) {
        return;
    }
    let j = wrap(idx[i], ep.n);
    if (j < 0 || u32(j) >= ep.n) {
        y[i] = 0.0;
        return;
    }
    var rem = i;
    var at = 0u;
    for (var d = i32(ep.rank) - 1; d >= 0; d--) {
        let k = u32(d);
        var c = index_peel(&rem, ep.shape[k >> 2u][k & 3u]);
        if (k == ep.axis) {
            c = u32(j);
        }
        at += c * ep.x_strides[k >> 2u][k & 3u];
    }
    y[i] = x[at];
}
