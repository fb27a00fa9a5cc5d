// Batch normalization over (N, C, S) inputs (S = product of the spatial dims, 1 for (N, C)):
// statistics per channel c over the count = N·S elements x[n, c, s].
//
//   inference  y = (x − mean[c])·rstd[c]·scale[c] + bias[c], rstd = 1/√(var[c] + eps)
//   training   mean, var: the batch's per-channel mean and biased variance, rstd as above;
//              running_mean' = (1 − momentum)·running_mean + momentum·mean
//              running_var'  = (1 − momentum)·running_var + momentum·var·count/(count − 1)
//   backward   xhat = (x − mean)·rstd; dscale = Σ dy·xhat; dbias = Σ dy (sums over n, s);
//              inference dx = dy·scale·rstd;
//              training  dx = scale·rstd·(dy − dbias/count − xhat·dscale/count)
//
// STAT_IS_RSTD (override constant) for `batch_norm` and `batch_norm_backward_reduce`: 1 = the
// statistic input holds rstd (training, from `batch_norm_stats`), 0 = it holds the variance
// (inference), and rstd = 1/√(var + eps) is formed here.
//
// Entry points:
// - `batch_norm`, `batch_norm_backward_input`, `batch_norm_backward_inference`: elementwise.
// - `batch_norm_stats`, `batch_norm_backward_reduce`: one 256-invocation workgroup per channel;
//   adjacent invocations take adjacent elements j of the channel (j = n·S + s, contiguous in s),
//   sums combine in a workgroup-memory tree. Statistics are two-pass (mean, then
//   Σ (x − mean)²), and the mean sums x − (the channel's first element), so channels with a
//   large common offset keep their mean and variance. Their `_small` twins use one invocation per channel (few elements per
//   channel, e.g. (N, C) input, where adjacent channels are adjacent in memory).
//
// Workgroup size 256 (all entry points): a multiple of every GPU's SIMD width and the WebGPU
// default limit; the tree holds 256 vec2<f32> = 2 KiB of workgroup memory.

struct Params {
    numel: u32,
    channels: u32, // C
    spatial: u32,  // S
    count: u32,    // N·S, elements per channel
    eps: f32,
    momentum: f32,
    _pad0: u32,
    _pad1: u32,
}

override STAT_IS_RSTD: u32 = 0u;

const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;

// `batch_norm`: x, scale, bias, mean, stat -> y.
@group(0) @binding(1) var<storage, read> x: array<f32>;         // (N, C, S); also below
@group(0) @binding(2) var<storage, read> scale: array<f32>;     // (C)
@group(0) @binding(3) var<storage, read> bias: array<f32>;      // (C)
@group(0) @binding(4) var<storage, read> mean_e: array<f32>;    // (C)
@group(0) @binding(5) var<storage, read> stat_e: array<f32>;    // (C): rstd or var
@group(0) @binding(6) var<storage, read_write> y: array<f32>;   // (N, C, S)

// `batch_norm_stats[_small]`: x, running_mean, running_var -> mean, rstd, running mean, var.
@group(0) @binding(2) var<storage, read> run_mean: array<f32>;       // (C)
@group(0) @binding(3) var<storage, read> run_var: array<f32>;        // (C)
@group(0) @binding(4) var<storage, read_write> mean_out: array<f32>; // (C)
@group(0) @binding(5) var<storage, read_write> rstd_out: array<f32>; // (C)
@group(0) @binding(6) var<storage, read_write> run_mean_out: array<f32>; // (C)
@group(0) @binding(7) var<storage, read_write> run_var_out: array<f32>;  // (C)

// `batch_norm_backward_reduce[_small]`: x, dy, mean, stat -> dscale, dbias.
// `batch_norm_backward_input`: x, dy, mean, rstd, scale, dscale, dbias -> dx.
@group(0) @binding(2) var<storage, read> dy: array<f32>;            // (N, C, S)
@group(0) @binding(3) var<storage, read> mean: array<f32>;          // (C)
@group(0) @binding(4) var<storage, read> stat: array<f32>;          // (C): rstd or var
@group(0) @binding(5) var<storage, read_write> dscale: array<f32>;  // (C)
@group(0) @binding(6) var<storage, read_write> dbias: array<f32>;   // (C)
@group(0) @binding(5) var<storage, read> scale_t: array<f32>;       // (C)
@group(0) @binding(6) var<storage, read> dscale_in: array<f32>;     // (C): Σ dy·xhat
@group(0) @binding(7) var<storage, read> dbias_in: array<f32>;      // (C): Σ dy
@group(0) @binding(8) var<storage, read_write> dx: array<f32>;      // (N, C, S)

// `batch_norm_backward_inference`: dy, scale, var -> dx.
@group(0) @binding(1) var<storage, read> dy_i: array<f32>;          // (N, C, S)
@group(0) @binding(2) var<storage, read> scale_i: array<f32>;       // (C)
@group(0) @binding(3) var<storage, read> var_i: array<f32>;         // (C)
@group(0) @binding(4) var<storage, read_write> dx_i: array<f32>;    // (N, C, S)

var<workgroup> tree: array<vec2<f32>, 256>;

// The workgroup-wide sum of v. Must be reached by every invocation.
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

fn element_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + lid;
}

// The channel of element i of x.
fn channel_of(i: u32) -> u32 {
    return (i / p.spatial) % p.channels;
}

// Offset in x of element j (= n·S + s) of channel c.
fn channel_at(c: u32, j: u32) -> u32 {
    let n = j / p.spatial;
    return (n * p.channels + c) * p.spatial + (j - n * p.spatial);
}

fn rstd_of(v: f32) -> f32 {
    if (STAT_IS_RSTD == 1u) {
        return v;
    }
    return 1.0 / sqrt(v + p.eps);
}

@compute @workgroup_size(256)
fn batch_norm(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element_index(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    let c = channel_of(i);
    y[i] = (x[i] - mean_e[c]) * rstd_of(stat_e[c]) * scale[c] + bias[c];
}

// ---- training statistics -----------------------------------------------------------------

// Σ (x − shift) over elements first, first + step, ... of channel c.
fn sum_x(c: u32, shift: f32, first: u32, step: u32) -> f32 {
    var s = 0.0;
    for (var j = first; j < p.count; j += step) {
        s += x[channel_at(c, j)] - shift;
    }
    return s;
}

fn sum_sq(c: u32, mu: f32, first: u32, step: u32) -> f32 {
    var s = 0.0;
    for (var j = first; j < p.count; j += step) {
        let d = x[channel_at(c, j)] - mu;
        s += d * d;
    }
    return s;
}

fn write_stats(c: u32, mu: f32, sq: f32) {
    let n = f32(p.count);
    let var_biased = sq / n;
    mean_out[c] = mu;
    rstd_out[c] = 1.0 / sqrt(var_biased + p.eps);
    let m = p.momentum;
    run_mean_out[c] = (1.0 - m) * run_mean[c] + m * mu;
    run_var_out[c] = (1.0 - m) * run_var[c] + m * (sq / (n - 1.0));
}

@compute @workgroup_size(256)
fn batch_norm_stats(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = wid.y * nwg.x + wid.x;
    // Workgroups past the last channel still take part in the barriers (no early return).
    let live = c < p.channels;
    var shift = 0.0;
    var s = 0.0;
    if (live) {
        shift = x[channel_at(c, 0u)];
        s = sum_x(c, shift, lid, WG);
    }
    let mu = shift + tree_sum(lid, vec2<f32>(s, 0.0)).x / f32(p.count);
    var q = 0.0;
    if (live) {
        q = sum_sq(c, mu, lid, WG);
    }
    let sq = tree_sum(lid, vec2<f32>(q, 0.0)).x;
    if (live && lid == 0u) {
        write_stats(c, mu, sq);
    }
}

@compute @workgroup_size(256)
fn batch_norm_stats_small(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = element_index(wid, nwg, lid);
    if (c >= p.channels) {
        return;
    }
    let shift = x[channel_at(c, 0u)];
    let mu = shift + sum_x(c, shift, 0u, 1u) / f32(p.count);
    write_stats(c, mu, sum_sq(c, mu, 0u, 1u));
}

// ---- backward ----------------------------------------------------------------------------

// (Σ dy·xhat, Σ dy) over elements first, first + step, ... of channel c.
fn grad_sums(c: u32, first: u32, step: u32) -> vec2<f32> {
    let mu = mean[c];
    let rs = rstd_of(stat[c]);
    var acc = vec2<f32>(0.0, 0.0);
    for (var j = first; j < p.count; j += step) {
        let at = channel_at(c, j);
        let g = dy[at];
        acc += vec2<f32>(g * (x[at] - mu) * rs, g);
    }
    return acc;
}

@compute @workgroup_size(256)
fn batch_norm_backward_reduce(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = wid.y * nwg.x + wid.x;
    let live = c < p.channels;
    var part = vec2<f32>(0.0, 0.0);
    if (live) {
        part = grad_sums(c, lid, WG);
    }
    let total = tree_sum(lid, part);
    if (live && lid == 0u) {
        dscale[c] = total.x;
        dbias[c] = total.y;
    }
}

@compute @workgroup_size(256)
fn batch_norm_backward_reduce_small(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let c = element_index(wid, nwg, lid);
    if (c >= p.channels) {
        return;
    }
    let total = grad_sums(c, 0u, 1u);
    dscale[c] = total.x;
    dbias[c] = total.y;
}

@compute @workgroup_size(256)
fn batch_norm_backward_input(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element_index(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    let c = channel_of(i);
    let rs = stat[c];
    let inv_n = 1.0 / f32(p.count);
    let xhat = (x[i] - mean[c]) * rs;
    dx[i] = scale_t[c] * rs * (dy[i] - dbias_in[c] * inv_n - xhat * dscale_in[c] * inv_n);
}

@compute @workgroup_size(256)
fn batch_norm_backward_inference(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element_index(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    let c = channel_of(i);
    dx_i[i] = dy_i[i] * scale_i[c] / sqrt(var_i[c] + p.eps);
}
