// Layer normalization (ONNX LayerNormalization): each row is normalized over its last dims.
//
// x is viewed as (M, K): K = product of the normalized dims X.shape[axis..], M = rows.
// scale, bias: (K), optional (has_scale / has_bias; a missing one is bound to a stand-in
// buffer that is never read). mean, rstd: (M), the row mean and 1/√(var + eps) with the biased
// variance; written by the forward pass for the backward pass.
//
//   y      = (x − mean)·rstd·scale + bias
//   xhat   = (x − mean)·rstd,  gy = dy·scale
//   dx     = rstd·(gy − mean_K(gy) − xhat·mean_K(gy·xhat))
//   dscale = Σ_M dy·xhat,  dbias = Σ_M dy
//
// Statistics are two-pass (the mean first, then Σ (x − mean)²), and the mean sums x − x[first]
// of the row, so rows with a large common offset keep their mean and variance.
//
// Entry points (src/kernels/layer_norm.rs picks per shape):
// - `layer_norm`, `layer_norm_backward_input`: one 256-invocation workgroup per row; adjacent
//   invocations read adjacent elements; sums combine in a workgroup-memory tree.
// - `layer_norm_small`, `layer_norm_backward_input_small`: one invocation per row (short rows,
//   or enough rows to fill the GPU).
// - `layer_norm_backward_params`: a 32 × 8 workgroup per 32 columns: 32 adjacent columns (so
//   reads of a row are contiguous) times 8 lanes that split the M rows, then a tree over lanes.
//
// Workgroup size 256 (all entry points): a multiple of every GPU's SIMD width and the WebGPU
// default limit; the tree holds 256 vec2<f32> = 2 KiB of workgroup memory.

struct Params {
    rows: u32,      // M
    len: u32,       // K
    has_scale: u32,
    has_bias: u32,
    eps: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

const WG: u32 = 256u;
// Columns per `layer_norm_backward_params` workgroup, and lanes splitting the rows.
const COLS: u32 = 32u;
const LANES: u32 = 8u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>; // (M, K), every entry point

// Forward (`layer_norm`, `layer_norm_small`).
@group(0) @binding(2) var<storage, read> scale: array<f32>;          // (K); also backward input
@group(0) @binding(3) var<storage, read> bias: array<f32>;           // (K)
@group(0) @binding(4) var<storage, read_write> y: array<f32>;        // (M, K)
@group(0) @binding(5) var<storage, read_write> mean_out: array<f32>; // (M)
@group(0) @binding(6) var<storage, read_write> rstd_out: array<f32>; // (M)

// Backward input (`layer_norm_backward_input[_small]`): x, scale, dy, mean, rstd -> dx.
@group(0) @binding(3) var<storage, read> dy: array<f32>;         // (M, K)
@group(0) @binding(4) var<storage, read> mean: array<f32>;       // (M)
@group(0) @binding(5) var<storage, read> rstd: array<f32>;       // (M)
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;   // (M, K)

// Backward params (`layer_norm_backward_params`): x, dy, mean, rstd -> dscale, dbias.
@group(0) @binding(2) var<storage, read> dy_p: array<f32>;          // (M, K)
@group(0) @binding(3) var<storage, read> mean_p: array<f32>;        // (M)
@group(0) @binding(4) var<storage, read> rstd_p: array<f32>;        // (M)
@group(0) @binding(5) var<storage, read_write> dscale: array<f32>;  // (K)
@group(0) @binding(6) var<storage, read_write> dbias: array<f32>;   // (K)

var<workgroup> tree: array<vec2<f32>, 256>;

// The workgroup-wide sum of v (both components). Must be reached by every invocation.
fn tree_sum(lid: u32, v: vec2<f32>) -> vec2<f32> {
    tree[lid] = v;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        if (lid < half) {
            tree[lid] += tree[lid + half];
        }
        workgroupBarrier();
    }
    let total = tree[0];
    // Everyone has read the total before the tree is reused.
    workgroupBarrier();
    return total;
}

fn scale_at(k: u32) -> f32 {
    if (p.has_scale == 1u) {
        return scale[k];
    }
    return 1.0;
}

fn bias_at(k: u32) -> f32 {
    if (p.has_bias == 1u) {
        return bias[k];
    }
    return 0.0;
}

// y for row `base`, elements first, first + step, ...
fn write_row(base: u32, mu: f32, rs: f32, first: u32, step: u32) {
    for (var k = first; k < p.len; k += step) {
        y[base + k] = (x[base + k] - mu) * rs * scale_at(k) + bias_at(k);
    }
}

@compute @workgroup_size(256)
fn layer_norm(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = wid.y * nwg.x + wid.x;
    // Workgroups past the last row still take part in the barriers (no early return).
    let live = r < p.rows;
    let base = r * p.len;
    var shift = 0.0;
    var s = 0.0;
    if (live) {
        shift = x[base];
        for (var k = lid; k < p.len; k += WG) {
            s += x[base + k] - shift;
        }
    }
    let mu = shift + tree_sum(lid, vec2<f32>(s, 0.0)).x / f32(p.len);
    var q = 0.0;
    if (live) {
        for (var k = lid; k < p.len; k += WG) {
            let d = x[base + k] - mu;
            q += d * d;
        }
    }
    let rs = 1.0 / sqrt(tree_sum(lid, vec2<f32>(q, 0.0)).x / f32(p.len) + p.eps);
    if (live) {
        write_row(base, mu, rs, lid, WG);
        if (lid == 0u) {
            mean_out[r] = mu;
            rstd_out[r] = rs;
        }
    }
}

@compute @workgroup_size(256)
fn layer_norm_small(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = (wid.y * nwg.x + wid.x) * WG + lid;
    if (r >= p.rows) {
        return;
    }
    let base = r * p.len;
    let shift = x[base];
    var s = 0.0;
    for (var k = 0u; k < p.len; k++) {
        s += x[base + k] - shift;
    }
    let mu = shift + s / f32(p.len);
    var q = 0.0;
    for (var k = 0u; k < p.len; k++) {
        let d = x[base + k] - mu;
        q += d * d;
    }
    let rs = 1.0 / sqrt(q / f32(p.len) + p.eps);
    write_row(base, mu, rs, 0u, 1u);
    mean_out[r] = mu;
    rstd_out[r] = rs;
}

// ---- backward ----------------------------------------------------------------------------

// (gy, gy·xhat) summed over elements first, first + step, ... of row r.
fn grad_sums(r: u32, first: u32, step: u32) -> vec2<f32> {
    let base = r * p.len;
    let mu = mean[r];
    let rs = rstd[r];
    var acc = vec2<f32>(0.0, 0.0);
    for (var k = first; k < p.len; k += step) {
        let gy = dy[base + k] * scale_at(k);
        acc += vec2<f32>(gy, gy * (x[base + k] - mu) * rs);
    }
    return acc;
}

fn write_dx(r: u32, sums: vec2<f32>, first: u32, step: u32) {
    let base = r * p.len;
    let mu = mean[r];
    let rs = rstd[r];
    let inv_k = 1.0 / f32(p.len);
    let m_gy = sums.x * inv_k;
    let m_gyx = sums.y * inv_k;
    for (var k = first; k < p.len; k += step) {
        let gy = dy[base + k] * scale_at(k);
        let xhat = (x[base + k] - mu) * rs;
        dx[base + k] = rs * (gy - m_gy - xhat * m_gyx);
    }
}

@compute @workgroup_size(256)
fn layer_norm_backward_input(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = wid.y * nwg.x + wid.x;
    let live = r < p.rows;
    var part = vec2<f32>(0.0, 0.0);
    if (live) {
        part = grad_sums(r, lid, WG);
    }
    let sums = tree_sum(lid, part);
    if (live) {
        write_dx(r, sums, lid, WG);
    }
}

@compute @workgroup_size(256)
fn layer_norm_backward_input_small(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = (wid.y * nwg.x + wid.x) * WG + lid;
    if (r >= p.rows) {
        return;
    }
    write_dx(r, grad_sums(r, 0u, 1u), 0u, 1u);
}

@compute @workgroup_size(32, 8)
fn layer_norm_backward_params(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) li: vec3<u32>,
) {
    let col = (wid.y * nwg.x + wid.x) * COLS + li.x;
    let live = col < p.len;
    var acc = vec2<f32>(0.0, 0.0);
    if (live) {
        for (var r = li.y; r < p.rows; r += LANES) {
            let at = r * p.len + col;
            let g = dy_p[at];
            acc += vec2<f32>(g * (x[at] - mean_p[r]) * rstd_p[r], g);
        }
    }
    let slot = li.y * COLS + li.x;
    tree[slot] = acc;
    workgroupBarrier();
    for (var half = LANES / 2u; half > 0u; half >>= 1u) {
        if (li.y < half) {
            tree[slot] += tree[slot + half * COLS];
        }
        workgroupBarrier();
    }
    if (live && li.y == 0u) {
        let total = tree[li.x];
        dscale[col] = total.x;
        dbias[col] = total.y;
    }
}
