// 2-D pooling over NCHW images: max pooling (which also records the arg-max), average
// pooling, global average pooling, and their backward passes.
//
// N: batch, C: channels. A "plane" is one (n, c) image; there are N*C planes, stored one after
// another. H, W: input height and width; Ho, Wo: output height and width.
// kh, kw: kernel size; sh, sw: stride; dh, dw: dilation; pt, pl: top and left padding.
// Window (oh, ow) reads input rows oh*sh - pt + a*dh (a < kh) and columns ow*sw - pl + b*dw
// (b < kw), in row-major scan order (a outer, b inner). Taps outside the input are padding:
// they never win the max and add nothing to the average.
// Average divisor: with include_pad, the taps inside the padded extent [-pt, H + pb) x
// [-pl, W + pr) (taps past it, which only ceil_mode creates, never count); without it, the taps
// inside the input. A window with no input tap averages to NaN (0 / 0) without include_pad.
// Max: the first maximum in scan order wins ties; NaN propagates (the first NaN wins).
// Arg-max indices are flat within the plane (ih * W + iw); NONE where a window holds no input
// tap (its max is -inf).
//
// Workgroup sizes: the per-element entry points use 256, the WebGPU default maximum and a
// multiple of every SIMD width (8 on lavapipe/llvmpipe, 32/64 on GPUs): invocations share no
// memory, so the largest group means the fewest groups and the least grid splitting.
// global_avg_pool2d uses one 64-wide group per plane: typical planes there are small (7x7,
// 8x8), so 64 keeps most lanes busy, while large planes still split 64 ways before the tree.

struct Params {
    // Elements (or, for global_avg_pool2d, planes) this launch handles.
    total: u32,
    h: u32,
    w: u32,
    ho: u32,
    wo: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    dh: u32,
    dw: u32,
    pt: u32,
    pl: u32,
    // H + pb and W + pr: the end of the padded extent.
    h_end: u32,
    w_end: u32,
    // 1: the average divides by the taps in the padded extent; 0: by the taps in the input.
    include_pad: u32,
}

const NONE: u32 = 0xffffffffu;

// Backward only: 1 when windows cannot overlap along either axis (stride >= the kernel's
// extent (k - 1) * d + 1, as in the usual 2x2 stride-2 pooling), so each input element lies in
// at most one window, found with one division per axis and no loop.
override DISJOINT: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;

// Forward entry points.
@group(0) @binding(1) var<storage, read> x: array<f32>;        // (N, C, H, W)
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // (N, C, Ho, Wo); (N, C) global
@group(0) @binding(3) var<storage, read_write> idx: array<u32>; // (N, C, Ho, Wo) max only

// Backward entry points: dy is the upstream gradient of y.
@group(0) @binding(1) var<storage, read> dy: array<f32>;          // (N, C, Ho, Wo); (N, C)
@group(0) @binding(2) var<storage, read> idx_in: array<u32>;      // (N, C, Ho, Wo) max only
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;     // (N, C, H, W) avg, global
@group(0) @binding(3) var<storage, read_write> dx_max: array<f32>; // (N, C, H, W) max

// kiln:include float

fn linear_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid;
}

fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// kiln:include index

// How many of the k taps start, start + d, ... lie in [lo, hi).
fn taps_within(start: i32, k: u32, d: u32, lo: i32, hi: i32) -> u32 {
    var n = 0u;
    for (var a = 0u; a < k; a++) {
        let v = start + i32(a * d);
        if (v >= lo && v < hi) {
            n++;
        }
    }
    return n;
}

// The averaging divisor of the window whose first tap is at (h0, w0).
fn divisor(h0: i32, w0: i32) -> u32 {
    if (p.include_pad == 1u) {
        return taps_within(h0, p.kh, p.dh, -i32(p.pt), i32(p.h_end))
            * taps_within(w0, p.kw, p.dw, -i32(p.pl), i32(p.w_end));
    }
    return taps_within(h0, p.kh, p.dh, 0, i32(p.h)) * taps_within(w0, p.kw, p.dw, 0, i32(p.w));
}

@compute @workgroup_size(256)
fn max_pool2d(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.total) {
        return;
    }
    let t = div_u32(i, p.wo);
    let ow = i - t * p.wo;
    let plane = div_u32(t, p.ho);
    let oh = t - plane * p.ho;
    let base = plane * p.h * p.w;
    let h0 = i32(oh * p.sh) - i32(p.pt);
    let w0 = i32(ow * p.sw) - i32(p.pl);
    var best = f32_from_bits(0xff800000u); // -inf
    var arg = NONE;
    for (var a = 0u; a < p.kh; a++) {
        let ih = h0 + i32(a * p.dh);
        if (ih < 0 || ih >= i32(p.h)) {
            continue;
        }
        for (var b = 0u; b < p.kw; b++) {
            let iw = w0 + i32(b * p.dw);
            if (iw < 0 || iw >= i32(p.w)) {
                continue;
            }
            let k = u32(ih) * p.w + u32(iw);
            let v = x[base + k];
            if (arg == NONE || v > best || (is_nan(v) && !is_nan(best))) {
                best = v;
                arg = k;
            }
        }
    }
    y[i] = best;
    idx[i] = arg;
}

@compute @workgroup_size(256)
fn avg_pool2d(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.total) {
        return;
    }
    let t = div_u32(i, p.wo);
    let ow = i - t * p.wo;
    let plane = div_u32(t, p.ho);
    let oh = t - plane * p.ho;
    let base = plane * p.h * p.w;
    let h0 = i32(oh * p.sh) - i32(p.pt);
    let w0 = i32(ow * p.sw) - i32(p.pl);
    var s = 0.0;
    for (var a = 0u; a < p.kh; a++) {
        let ih = h0 + i32(a * p.dh);
        if (ih < 0 || ih >= i32(p.h)) {
            continue;
        }
        for (var b = 0u; b < p.kw; b++) {
            let iw = w0 + i32(b * p.dw);
            if (iw < 0 || iw >= i32(p.w)) {
                continue;
            }
            s += x[base + u32(ih) * p.w + u32(iw)];
        }
    }
    let n = divisor(h0, w0);
    if (n == 0u) {
        y[i] = f32_from_bits(0x7fc00000u); // NaN: an average of nothing
    } else {
        y[i] = s / f32(n);
    }
}

// Each input element gathers from the windows that contain it (no atomics, a fixed order).
// Along one axis, input position i (offset t = i + pad into the padded axis) lies under window o
// at tap a when t = o * s + a * d. The candidates run down from o = t / s while the tap offset
// t - o * s stays within the kernel's extent (k - 1) * d, so tap a runs upwards, in the
// forward's scan order; one division per axis instead of one per tap. Windows o >= the output
// size (trailing input rows that no window reaches) are skipped.
// on_tap(off, d): whether offset off within the window falls on a tap (not between dilated taps).
fn on_tap(off: u32, d: u32) -> bool {
    return d == 1u || div_u32(off, d) * d == off;
}

@compute @workgroup_size(256)
fn max_pool2d_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.total) {
        return;
    }
    let t = div_u32(i, p.w);
    let iw = i - t * p.w;
    let plane = div_u32(t, p.h);
    let ih = t - plane * p.h;
    let obase = plane * p.ho * p.wo;
    let k = ih * p.w + iw;
    let th = ih + p.pt;
    let tw = iw + p.pl;
    let oh_top = div_u32(th, p.sh);
    let ow_top = div_u32(tw, p.sw);
    let ext_h = (p.kh - 1u) * p.dh;
    let ext_w = (p.kw - 1u) * p.dw;
    var acc = 0.0;
    if (DISJOINT == 1u) {
        let offh = th - oh_top * p.sh;
        let offw = tw - ow_top * p.sw;
        if (oh_top < p.ho && ow_top < p.wo && offh <= ext_h && offw <= ext_w
            && on_tap(offh, p.dh) && on_tap(offw, p.dw)) {
            let o = obase + oh_top * p.wo + ow_top;
            if (idx_in[o] == k) {
                acc = dy[o];
            }
        }
        dx_max[i] = acc;
        return;
    }
    // oh and ow count down from their first candidates (i32, so the loops can stop below 0).
    for (var oh = i32(oh_top); oh >= 0 && th - u32(oh) * p.sh <= ext_h; oh--) {
        if (!on_tap(th - u32(oh) * p.sh, p.dh) || u32(oh) >= p.ho) {
            continue;
        }
        for (var ow = i32(ow_top); ow >= 0 && tw - u32(ow) * p.sw <= ext_w; ow--) {
            if (!on_tap(tw - u32(ow) * p.sw, p.dw) || u32(ow) >= p.wo) {
                continue;
            }
            let o = obase + u32(oh) * p.wo + u32(ow);
            if (idx_in[o] == k) {
                acc += dy[o];
            }
        }
    }
    dx_max[i] = acc;
}

@compute @workgroup_size(256)
fn avg_pool2d_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.total) {
        return;
    }
    let t = div_u32(i, p.w);
    let iw = i - t * p.w;
    let plane = div_u32(t, p.h);
    let ih = t - plane * p.h;
    let obase = plane * p.ho * p.wo;
    let th = ih + p.pt;
    let tw = iw + p.pl;
    let oh_top = div_u32(th, p.sh);
    let ow_top = div_u32(tw, p.sw);
    let ext_h = (p.kh - 1u) * p.dh;
    let ext_w = (p.kw - 1u) * p.dw;
    var acc = 0.0;
    if (DISJOINT == 1u) {
        let offh = th - oh_top * p.sh;
        let offw = tw - ow_top * p.sw;
        if (oh_top < p.ho && ow_top < p.wo && offh <= ext_h && offw <= ext_w
            && on_tap(offh, p.dh) && on_tap(offw, p.dw)) {
            let h0 = i32(oh_top * p.sh) - i32(p.pt);
            let w0 = i32(ow_top * p.sw) - i32(p.pl);
            acc = dy[obase + oh_top * p.wo + ow_top] / f32(divisor(h0, w0));
        }
        dx[i] = acc;
        return;
    }
    for (var oh = i32(oh_top); oh >= 0 && th - u32(oh) * p.sh <= ext_h; oh--) {
        if (!on_tap(th - u32(oh) * p.sh, p.dh) || u32(oh) >= p.ho) {
            continue;
        }
        let h0 = i32(u32(oh) * p.sh) - i32(p.pt);
        for (var ow = i32(ow_top); ow >= 0 && tw - u32(ow) * p.sw <= ext_w; ow--) {
            if (!on_tap(tw - u32(ow) * p.sw, p.dw) || u32(ow) >= p.wo) {
                continue;
            }
            let w0 = i32(u32(ow) * p.sw) - i32(p.pl);
            // The window holds this input element, so its divisor is at least 1.
            acc += dy[obase + u32(oh) * p.wo + u32(ow)] / f32(divisor(h0, w0));
        }
    }
    dx[i] = acc;
}

// ---- global average pooling -----------------------------------------------------------------
// One workgroup per plane (total = N*C planes): each lane sums a strided slice of the plane,
// then a tree in workgroup memory adds the 64 partial sums.
var<workgroup> lane_sums: array<f32, 64>;

@compute @workgroup_size(64)
fn global_avg_pool2d(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let plane = wid.y * nwg.x + wid.x;
    let live = plane < p.total;
    let n = p.h * p.w;
    var s = 0.0;
    if (live) {
        let base = plane * n;
        for (var k = lid; k < n; k += 64u) {
            s += x[base + k];
        }
    }
    lane_sums[lid] = s;
    workgroupBarrier();
    for (var m = 32u; m > 0u; m >>= 1u) {
        if (lid < m) {
            lane_sums[lid] += lane_sums[lid + m];
        }
        workgroupBarrier();
    }
    if (live && lid == 0u) {
        y[plane] = lane_sums[0] / f32(n);
    }
}

// dx = dy / (H*W) at every element of the plane (total = N*C*H*W).
@compute @workgroup_size(256)
fn global_avg_pool2d_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = linear_index(wid, nwg, lid);
    if (i >= p.total) {
        return;
    }
    let n = p.h * p.w;
    dx[i] = dy[div_u32(i, n)] / f32(n);
}
