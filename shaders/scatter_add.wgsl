// scatter_add along one axis (ONNX ScatterElements with reduction "add"): the backward of the
// gathers. y = x, then y[c with c_axis = idx[u]] += upd[u] for every position u of upd.
//
// x, y: (numel) contiguous in `shape` (rank <= 8). upd: contiguous in `upd_shape`, which is no
// larger than `shape` off the axis. idx: i32, read through `idx_strides` over upd's shape
// (0 along dims it is broadcast over, as the backward of Gather uses it); a negative index
// counts from the end of the axis, and an index outside [-n, n) adds nothing.
//
// Deterministic and atomic-free (WGSL has no float atomics): one invocation per output element
// walks the k positions of upd along the axis that could land on it, in order.
// Workgroup size 256: a multiple of every GPU's SIMD width and the WebGPU default maximum.

struct Params {
    numel: u32,
    rank: u32,
    axis: u32,
    k: u32, // upd's size along the axis
    shape: array<vec4<u32>, 2>,       // x and y dims
    upd_shape: array<vec4<u32>, 2>,   // upd dims
    upd_strides: array<vec4<u32>, 2>, // upd's element strides
    idx_strides: array<vec4<u32>, 2>, // idx's element strides over upd's shape
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read> upd: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>; // (numel)

// kiln:include index

@compute @workgroup_size(256)
fn scatter_add(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p.numel) {
        return;
    }
    var rem = i;
    var bu = 0u;
    var bi = 0u;
    var tgt = 0u;
    var inside = true;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        let k = u32(d);
        let c = index_peel(&rem, p.shape[k >> 2u][k & 3u]);
        if (k == p.axis) {
            tgt = c;
        } else {
            if (c >= p.upd_shape[k >> 2u][k & 3u]) {
                inside = false;
            }
            bu += c * p.upd_strides[k >> 2u][k & 3u];
            bi += c * p.idx_strides[k >> 2u][k & 3u];
        }
    }
    var acc = x[i];
    if (inside) {
        let n = p.shape[p.axis >> 2u][p.axis & 3u];
        let su = p.upd_strides[p.axis >> 2u][p.axis & 3u];
        let si = p.idx_strides[p.axis >> 2u][p.axis & 3u];
        for (var t = 0u; t < p.k; t++) {
            var j = idx[bi + t * si];
            if (j < 0) {
                j += i32(n);
            }
            if (j == i32(tgt)) {
                acc += upd[bu + t * su];
            }
        }
    }
    y[i] = acc;
}
