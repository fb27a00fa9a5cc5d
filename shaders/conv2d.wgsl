// 2-D convolution, direct (ONNX Conv) or transposed (ONNX ConvTranspose), NCHW, as an implicit
// GEMM (no im2col buffer), and the weight gradient of both.
//
// Letters: N batch; C input channels, cg = C / groups per group; H, W input height and width;
// M output channels, mg = M / groups per group; Ho, Wo output height and width; kH, kW kernel
// height and width; g the group.
//
// ---- conv2d: forward, both directions ----------------------------------------------------
// GEMM rows = output pixels (n, oh, ow), columns = one group's output channels, reduction =
// (c, kh, kw) over the group's cg input channels and the kernel window.
//
// Both directions find input row ih for output row oh and kernel tap kh the same way (likewise
// for columns): oh = rh + os * i, and tap kh is valid iff num = base + rh + kh * kstep divides
// exactly by dv, and then ih = a * i + num / dv - unshift must lie in [0, H):
//   direct:     a = stride, base = -pad_top, kstep = dilation,  dv = 1,      os = 1,      rh = 0
//   transposed: a = 1,      base = pad_top,  kstep = -dilation, dv = stride, os = stride,
//               rh = oh mod stride (the "phase")
// where base already includes unshift * dv, the smallest multiple of dv that keeps num >= 0
// for every tap and phase (GLSL leaves % and / of negative integers undefined).
// Output pixels are grouped by phase (rh, rw), so one workgroup's pixels all share the set of
// valid taps: a transposed convolution with stride s skips the taps that hit no input (all but
// 1 / s^2 of them) with a uniform branch, never a per-pixel one. A direct convolution has one
// phase. The weight is read through strides: element (g, in-group output channel mo, c, kh, kw)
// sits at g * w_group + mo * w_m + c * w_c + kh * kW + kw, which covers Conv's (M, cg, kH, kW)
// and ConvTranspose's (C, mg, kH, kW) layouts.
//
// Register tiling. Every load on lavapipe / llvmpipe (Mesa 22, CPU SIMD emulation) is a per-lane
// gather, even when all lanes read the same address, so speed comes from doing many FMAs per
// loaded value: each invocation keeps a block of pixels x channels in registers, every loaded
// input value serving all the block's channels and every weight all its pixels. The blocks are
// spelled out (acc0, acc1, ...) because these drivers do not unroll loops over private arrays
// (a looped version measured 3.3x slower). No shared memory and no barriers: on these drivers
// they cost more than they save.
//   conv2d:        12 consecutive pixels x 16 channels per invocation (28 loads per 192 FMAs);
//                  a workgroup covers 768 pixels x the same 16 channels.
//   conv2d_narrow: 16 pixels x 4 channels, for groups of fewer than 8 output channels
//                  (depthwise), where 16-channel blocks would be mostly idle.
// Workgroup size 64: a multiple of every SIMD width (lavapipe runs 8 lanes at a time), small
// enough that small images still make several workgroups; 8-lane chunks past the last pixel
// return at once and cost almost nothing.

struct Params {
    batch: u32,
    c: u32,
    h: u32,
    w: u32,
    m: u32,
    ho: u32,
    wo: u32,
    kh: u32,
    kw: u32,
    cg: u32,
    mg: u32,
    groups: u32,
    hq: u32,      // pixel rows per phase: ceil(Ho / os_h)
    wq: u32,      // pixel columns per phase: ceil(Wo / os_w)
    a_h: u32,
    a_w: u32,
    os_h: u32,
    os_w: u32,
    ph_h: u32,    // phases along H (1 direct, stride transposed)
    ph_w: u32,
    base_h: i32,
    base_w: i32,
    kstep_h: i32,
    kstep_w: i32,
    dv_h: u32,
    dv_w: u32,
    tiles_q: u32, // pixel tiles per phase
    tiles_m: u32, // channel tiles per group
    w_group: u32,
    w_m: u32,
    w_c: u32,
    has_bias: u32,
    unshift_h: i32,
    unshift_w: i32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;       // (N, C, H, W)
@group(0) @binding(2) var<storage, read> wt: array<f32>;      // (M, cg, kH, kW) or (C, mg, kH, kW)
@group(0) @binding(3) var<storage, read> bias: array<f32>;    // (M); read only if has_bias
@group(0) @binding(4) var<storage, read_write> y: array<f32>; // (N, M, Ho, Wo)


// Four consecutive output pixels (q .. q + 3 in the phase's pixel order) of an invocation.
struct Quad {
    xoff: vec4<u32>,  // offset of (n, first channel of group g, 0, 0) in x
    ia: vec4<i32>,    // a_h * i: input row before the tap's shift
    ja: vec4<i32>,    // a_w * j
    yoff: vec4<u32>,  // offset of (n, 0, oh, ow) in y
    live: vec4<bool>, // inside the output
}

fn quad(q: u32, g: u32, rh: u32, rw: u32) -> Quad {
    let qv = vec4<u32>(q) + vec4<u32>(0u, 1u, 2u, 3u);
    let hqwq = p.hq * p.wq;
    let n = qv / hqwq;
    let r = qv % hqwq;
    let i = r / p.wq;
    let j = r % p.wq;
    let oh = rh + p.os_h * i;
    let ow = rw + p.os_w * j;
    var t: Quad;
    t.live = (n < vec4<u32>(p.batch)) & (oh < vec4<u32>(p.ho)) & (ow < vec4<u32>(p.wo));
    t.xoff = (n * p.c + g * p.cg) * (p.h * p.w);
    t.ia = vec4<i32>(p.a_h * i);
    t.ja = vec4<i32>(p.a_w * j);
    t.yoff = n * (p.m * p.ho * p.wo) + oh * p.wo + ow;
    return t;
}

// Where a quad's pixels read channel 0 of their group for one kernel tap, whose input rows and
// columns are shifted by (sh, sw). Padding gets offset 0 (a valid address) and ok = false.
struct Tap {
    o: vec4<u32>,
    ok: vec4<bool>,
}

fn tap(t: Quad, sh: i32, sw: i32) -> Tap {
    let ih = t.ia + vec4<i32>(sh);
    let iw = t.ja + vec4<i32>(sw);
    let h = vec4<i32>(i32(p.h));
    let w = vec4<i32>(i32(p.w));
    var r: Tap;
    r.ok = t.live & (ih >= vec4<i32>(0)) & (ih < h) & (iw >= vec4<i32>(0)) & (iw < w);
    r.o = select(vec4<u32>(0u), t.xoff + vec4<u32>(ih * w + iw), r.ok);
    return r;
}

// The quad's 4 input values at channel offset `co` (= c * H * W), 0 where padding.
fn load_quad(t: Tap, co: u32) -> vec4<f32> {
    let o = t.o + vec4<u32>(co);
    return select(vec4<f32>(0.0), vec4<f32>(x[o.x], x[o.y], x[o.z], x[o.w]), t.ok);
}

// Offset of in-group output channel mo's weights (clamped into the group: channels past its end
// compute on the last one's weights and are never stored).
fn weight_base(g: u32, mo: u32) -> u32 {
    return g * p.w_group + min(mo, p.mg - 1u) * p.w_m;
}

// The tap's input shift along one axis, or NO_TAP when no input lands on it (transposed
// convolutions, for phases the tap misses).
const NO_TAP: i32 = -1073741824;

fn shift(base: i32, phase: u32, k: u32, kstep: i32, dv: u32, unshift: i32) -> i32 {
    let num = u32(base + i32(phase) + i32(k) * kstep);
    if (num % dv != 0u) {
        return NO_TAP;
    }
    return i32(num / dv) - unshift;
}

// Adds the bias and stores the live pixels of one quad for in-group output channel mo.
fn store_quad(g: u32, mo: u32, acc: vec4<f32>, t: Quad) {
    if (mo >= p.mg) {
        return;
    }
    let m = g * p.mg + mo;
    var b = 0.0;
    if (p.has_bias == 1u) {
        b = bias[m];
    }
    let o = t.yoff + vec4<u32>(m * p.ho * p.wo);
    if (t.live.x) { y[o.x] = acc.x + b; }
    if (t.live.y) { y[o.y] = acc.y + b; }
    if (t.live.z) { y[o.z] = acc.z + b; }
    if (t.live.w) { y[o.w] = acc.w + b; }
}

// Twelve pixels of one channel (conv2d's block row).
struct Px12 {
    a: vec4<f32>,
    b: vec4<f32>,
    c: vec4<f32>,
}

fn fma12(acc: Px12, w: f32, v: Px12) -> Px12 {
    let s = vec4<f32>(w);
    return Px12(fma(s, v.a, acc.a), fma(s, v.b, acc.b), fma(s, v.c, acc.c));
}

fn store12(g: u32, mo: u32, acc: Px12, qa: Quad, qb: Quad, qc: Quad) {
    store_quad(g, mo, acc.a, qa);
    store_quad(g, mo, acc.b, qb);
    store_quad(g, mo, acc.c, qc);
}

// Sixteen pixels of one channel (conv2d_narrow's block row).
struct Px16 {
    a: vec4<f32>,
    b: vec4<f32>,
    c: vec4<f32>,
    d: vec4<f32>,
}

fn fma16(acc: Px16, w: f32, v: Px16) -> Px16 {
    let s = vec4<f32>(w);
    return Px16(fma(s, v.a, acc.a), fma(s, v.b, acc.b), fma(s, v.c, acc.c), fma(s, v.d, acc.d));
}

fn store16(g: u32, mo: u32, acc: Px16, qa: Quad, qb: Quad, qc: Quad, qd: Quad) {
    store_quad(g, mo, acc.a, qa);
    store_quad(g, mo, acc.b, qb);
    store_quad(g, mo, acc.c, qc);
    store_quad(g, mo, acc.d, qd);
}

// Linear workgroup index -> (phase, group, channel tile, pixel tile); see `tiles_q`, `tiles_m`.
struct Tile {
    phase: u32,
    rh: u32,
    rw: u32,
    g: u32,
    mt: u32,
    tq: u32,
}

fn tile(wid: vec3<u32>, nwg: vec3<u32>) -> Tile {
    let wg = wid.y * nwg.x + wid.x;
    var t: Tile;
    t.tq = wg % p.tiles_q;
    var rest = wg / p.tiles_q;
    t.mt = rest % p.tiles_m;
    rest = rest / p.tiles_m;
    t.g = rest % p.groups;
    t.phase = rest / p.groups;
    t.rh = t.phase / p.ph_w;
    t.rw = t.phase % p.ph_w;
    return t;
}


@compute @workgroup_size(64)
fn conv2d(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = tile(wid, nwg);
    let q0 = t.tq * 768u + lid * 12u;
    if (t.phase >= p.ph_h * p.ph_w || q0 >= p.batch * p.hq * p.wq) {
        return;
    }
    let qa = quad(q0, t.g, t.rh, t.rw);
    let qb = quad(q0 + 4u, t.g, t.rh, t.rw);
    let qc = quad(q0 + 8u, t.g, t.rh, t.rw);
    let mo = t.mt * 16u;
    let w0 = weight_base(t.g, mo);
    let w1 = weight_base(t.g, mo + 1u);
    let w2 = weight_base(t.g, mo + 2u);
    let w3 = weight_base(t.g, mo + 3u);
    let w4 = weight_base(t.g, mo + 4u);
    let w5 = weight_base(t.g, mo + 5u);
    let w6 = weight_base(t.g, mo + 6u);
    let w7 = weight_base(t.g, mo + 7u);
    let w8 = weight_base(t.g, mo + 8u);
    let w9 = weight_base(t.g, mo + 9u);
    let w10 = weight_base(t.g, mo + 10u);
    let w11 = weight_base(t.g, mo + 11u);
    let w12 = weight_base(t.g, mo + 12u);
    let w13 = weight_base(t.g, mo + 13u);
    let w14 = weight_base(t.g, mo + 14u);
    let w15 = weight_base(t.g, mo + 15u);
    var acc0 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc1 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc2 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc3 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc4 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc5 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc6 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc7 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc8 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc9 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc10 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc11 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc12 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc13 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc14 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc15 = Px12(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let hw = p.h * p.w;
    for (var kh = 0u; kh < p.kh; kh++) {
        let sh = shift(p.base_h, t.rh, kh, p.kstep_h, p.dv_h, p.unshift_h);
        if (sh == NO_TAP) {
            continue;
        }
        for (var kw = 0u; kw < p.kw; kw++) {
            let sw = shift(p.base_w, t.rw, kw, p.kstep_w, p.dv_w, p.unshift_w);
            if (sw == NO_TAP) {
                continue;
            }
            let ta = tap(qa, sh, sw);
            let tb = tap(qb, sh, sw);
            let tc = tap(qc, sh, sw);
            var wo = kh * p.kw + kw;
            var co = 0u;
            for (var c = 0u; c < p.cg; c++) {
                let v = Px12(load_quad(ta, co), load_quad(tb, co), load_quad(tc, co));
                acc0 = fma12(acc0, wt[w0 + wo], v);
                acc1 = fma12(acc1, wt[w1 + wo], v);
                acc2 = fma12(acc2, wt[w2 + wo], v);
                acc3 = fma12(acc3, wt[w3 + wo], v);
                acc4 = fma12(acc4, wt[w4 + wo], v);
                acc5 = fma12(acc5, wt[w5 + wo], v);
                acc6 = fma12(acc6, wt[w6 + wo], v);
                acc7 = fma12(acc7, wt[w7 + wo], v);
                acc8 = fma12(acc8, wt[w8 + wo], v);
                acc9 = fma12(acc9, wt[w9 + wo], v);
                acc10 = fma12(acc10, wt[w10 + wo], v);
                acc11 = fma12(acc11, wt[w11 + wo], v);
                acc12 = fma12(acc12, wt[w12 + wo], v);
                acc13 = fma12(acc13, wt[w13 + wo], v);
                acc14 = fma12(acc14, wt[w14 + wo], v);
                acc15 = fma12(acc15, wt[w15 + wo], v);
                co += hw;
                wo += p.w_c;
            }
        }
    }
    store12(t.g, mo, acc0, qa, qb, qc);
    store12(t.g, mo + 1u, acc1, qa, qb, qc);
    store12(t.g, mo + 2u, acc2, qa, qb, qc);
    store12(t.g, mo + 3u, acc3, qa, qb, qc);
    store12(t.g, mo + 4u, acc4, qa, qb, qc);
    store12(t.g, mo + 5u, acc5, qa, qb, qc);
    store12(t.g, mo + 6u, acc6, qa, qb, qc);
    store12(t.g, mo + 7u, acc7, qa, qb, qc);
    store12(t.g, mo + 8u, acc8, qa, qb, qc);
    store12(t.g, mo + 9u, acc9, qa, qb, qc);
    store12(t.g, mo + 10u, acc10, qa, qb, qc);
    store12(t.g, mo + 11u, acc11, qa, qb, qc);
    store12(t.g, mo + 12u, acc12, qa, qb, qc);
    store12(t.g, mo + 13u, acc13, qa, qb, qc);
    store12(t.g, mo + 14u, acc14, qa, qb, qc);
    store12(t.g, mo + 15u, acc15, qa, qb, qc);
}

@compute @workgroup_size(64)
fn conv2d_narrow(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = tile(wid, nwg);
    let q0 = t.tq * 1024u + lid * 16u;
    if (t.phase >= p.ph_h * p.ph_w || q0 >= p.batch * p.hq * p.wq) {
        return;
    }
    let qa = quad(q0, t.g, t.rh, t.rw);
    let qb = quad(q0 + 4u, t.g, t.rh, t.rw);
    let qc = quad(q0 + 8u, t.g, t.rh, t.rw);
    let qd = quad(q0 + 12u, t.g, t.rh, t.rw);
    let mo = t.mt * 4u;
    let w0 = weight_base(t.g, mo);
    let w1 = weight_base(t.g, mo + 1u);
    let w2 = weight_base(t.g, mo + 2u);
    let w3 = weight_base(t.g, mo + 3u);
    var acc0 = Px16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc1 = Px16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc2 = Px16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc3 = Px16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let hw = p.h * p.w;
    for (var kh = 0u; kh < p.kh; kh++) {
        let sh = shift(p.base_h, t.rh, kh, p.kstep_h, p.dv_h, p.unshift_h);
        if (sh == NO_TAP) {
            continue;
        }
        for (var kw = 0u; kw < p.kw; kw++) {
            let sw = shift(p.base_w, t.rw, kw, p.kstep_w, p.dv_w, p.unshift_w);
            if (sw == NO_TAP) {
                continue;
            }
            let ta = tap(qa, sh, sw);
            let tb = tap(qb, sh, sw);
            let tc = tap(qc, sh, sw);
            let td = tap(qd, sh, sw);
            var wo = kh * p.kw + kw;
            var co = 0u;
            for (var c = 0u; c < p.cg; c++) {
                let v = Px16(load_quad(ta, co), load_quad(tb, co), load_quad(tc, co), load_quad(td, co));
                acc0 = fma16(acc0, wt[w0 + wo], v);
                acc1 = fma16(acc1, wt[w1 + wo], v);
                acc2 = fma16(acc2, wt[w2 + wo], v);
                acc3 = fma16(acc3, wt[w3 + wo], v);
                co += hw;
                wo += p.w_c;
            }
        }
    }
    store16(t.g, mo, acc0, qa, qb, qc, qd);
    store16(t.g, mo + 1u, acc1, qa, qb, qc, qd);
    store16(t.g, mo + 2u, acc2, qa, qb, qc, qd);
    store16(t.g, mo + 3u, acc3, qa, qb, qc, qd);
}

// ---- conv2d_backward_weight --------------------------------------------------------------
// dW[m, c, kh, kw] = sum over (n, oh, ow) of dY[n, m, oh, ow] * X[n, g cg + c, ih, iw] with
// ih = oh * stride_h - pad_top + kh * dilation_h (likewise iw), m in group g: the weight
// gradient of a direct convolution X -> dY. (A transposed convolution's weight gradient is this
// with the roles swapped: X := its dY, dY := its X.)
// GEMM rows = a group's output channels, columns = (c, kh, kw) (ncols = cg kH kW), reduction
// over the N Ho Wo output pixels, split into `splits` slices of whole rows (n, oh) so that small
// weights with long reductions still spread over many workgroups; slice s writes its partial
// sums to out[s], and the caller sums the slices.
//
// conv2d_backward_weight: an invocation holds one tap (kh, kw) x 16 input channels x 16 output
//   channels (32 loads per 256 FMAs); its 16 columns share the tap, so one bounds check serves
//   them all. A workgroup covers 64 (tap, 16-channel block) units x the same 16 output channels.
// conv2d_backward_weight_narrow, for groups of fewer than 8 output or 4 input channels
//   (depthwise, first layers): an invocation holds one (output channel, input channel) pair x 4
//   taps, and units run over all groups.
// Workgroup size 64: see conv2d.

struct WParams {
    batch: u32,
    c: u32,
    h: u32,
    w: u32,
    m: u32,
    ho: u32,
    wo: u32,
    kh: u32,
    kw: u32,
    cg: u32,
    mg: u32,
    groups: u32,
    sh: u32,
    sw: u32,
    pt: i32,
    pl: i32,
    dh: u32,
    dw: u32,
    ncols: u32,          // cg kH kW
    tiles_col: u32,      // column tiles (of 64 units) per channel tile
    tiles_m: u32,        // output channel tiles per group (1 for the narrow kernel)
    splits: u32,         // reduction slices
    rows_per_split: u32, // output rows (n, oh) per slice
    _pad: u32,
}

@group(0) @binding(0) var<uniform> q: WParams;
@group(0) @binding(1) var<storage, read> xin: array<f32>;      // (N, C, H, W)
@group(0) @binding(2) var<storage, read> dy: array<f32>;       // (N, M, Ho, Wo)
@group(0) @binding(3) var<storage, read_write> dw: array<f32>; // (splits, M, cg, kH, kW)

fn store_ch4(row: u32, c0: u32, v: vec4<f32>) {
    let kk = q.kh * q.kw;
    for (var j = 0u; j < 4u; j++) {
        if (c0 + j < q.cg) {
            dw[row + (c0 + j) * kk] = v[j];
        }
    }
}

// Offset of dY channel g mg + mo (clamped into the group: see weight_base).
fn dy_base(g: u32, mo: u32) -> u32 {
    return (g * q.mg + min(mo, q.mg - 1u)) * q.ho * q.wo;
}

// Offset of X channel g cg + c (clamped into the group).
fn x_base(g: u32, c: u32) -> u32 {
    return (g * q.cg + min(c, q.cg - 1u)) * q.h * q.w;
}

// Sixteen input channels of one tap (conv2d_backward_weight's block row).
struct Ch16 {
    a: vec4<f32>,
    b: vec4<f32>,
    c: vec4<f32>,
    d: vec4<f32>,
}

fn fma_ch16(acc: Ch16, dv: f32, v: Ch16) -> Ch16 {
    let s = vec4<f32>(dv);
    return Ch16(fma(s, v.a, acc.a), fma(s, v.b, acc.b), fma(s, v.c, acc.c), fma(s, v.d, acc.d));
}

// Stores output channel g mg + mo's partial sums for input channels c0 .. c0 + 15 at one tap.
fn store_ch16(s: u32, g: u32, mo: u32, c0: u32, tap: u32, acc: Ch16) {
    if (mo >= q.mg) {
        return;
    }
    let row = (s * q.m + g * q.mg + mo) * q.ncols + tap;
    store_ch4(row, c0, acc.a);
    store_ch4(row, c0 + 4u, acc.b);
    store_ch4(row, c0 + 8u, acc.c);
    store_ch4(row, c0 + 12u, acc.d);
}

@compute @workgroup_size(64)
fn conv2d_backward_weight(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Linear workgroup index -> (slice, group, channel tile, column tile).
    let wg = wid.y * nwg.x + wid.x;
    let ct = wg % q.tiles_col;
    var rest = wg / q.tiles_col;
    let mt = rest % q.tiles_m;
    rest = rest / q.tiles_m;
    let g = rest % q.groups;
    let s = rest / q.groups;
    // This invocation's unit: one tap, input channels c0 .. c0 + 15.
    let kk = q.kh * q.kw;
    let unit = ct * 64u + lid;
    let tap = unit % kk;
    let c0 = (unit / kk) * 16u;
    if (s >= q.splits || c0 >= q.cg) {
        return;
    }
    let ih0 = i32((tap / q.kw) * q.dh) - q.pt;
    let iw0 = i32((tap % q.kw) * q.dw) - q.pl;
    let xa = vec4<u32>(x_base(g, c0 + 0u), x_base(g, c0 + 1u), x_base(g, c0 + 2u), x_base(g, c0 + 3u));
    let xb = vec4<u32>(x_base(g, c0 + 4u), x_base(g, c0 + 5u), x_base(g, c0 + 6u), x_base(g, c0 + 7u));
    let xc = vec4<u32>(x_base(g, c0 + 8u), x_base(g, c0 + 9u), x_base(g, c0 + 10u), x_base(g, c0 + 11u));
    let xd = vec4<u32>(x_base(g, c0 + 12u), x_base(g, c0 + 13u), x_base(g, c0 + 14u), x_base(g, c0 + 15u));

    let mo = mt * 16u;
    let d0 = dy_base(g, mo);
    let d1 = dy_base(g, mo + 1u);
    let d2 = dy_base(g, mo + 2u);
    let d3 = dy_base(g, mo + 3u);
    let d4 = dy_base(g, mo + 4u);
    let d5 = dy_base(g, mo + 5u);
    let d6 = dy_base(g, mo + 6u);
    let d7 = dy_base(g, mo + 7u);
    let d8 = dy_base(g, mo + 8u);
    let d9 = dy_base(g, mo + 9u);
    let d10 = dy_base(g, mo + 10u);
    let d11 = dy_base(g, mo + 11u);
    let d12 = dy_base(g, mo + 12u);
    let d13 = dy_base(g, mo + 13u);
    let d14 = dy_base(g, mo + 14u);
    let d15 = dy_base(g, mo + 15u);
    var acc0 = Ch16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc1 = Ch16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc2 = Ch16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc3 = Ch16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc4 = Ch16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc5 = Ch16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc6 = Ch16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc7 = Ch16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc8 = Ch16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc9 = Ch16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc10 = Ch16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc11 = Ch16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc12 = Ch16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc13 = Ch16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc14 = Ch16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var acc15 = Ch16(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    let h = i32(q.h);
    let w = i32(q.w);
    let r0 = s * q.rows_per_split;
    let r1 = min(r0 + q.rows_per_split, q.batch * q.ho);
    for (var r = r0; r < r1; r++) {
        let n = r / q.ho;
        let oh = r % q.ho;
        let ih = i32(oh * q.sh) + ih0;
        let row_ok = ih >= 0 && ih < h;
        let xrow = i32(n * q.c * q.h * q.w) + ih * w;
        let dyrow = n * q.m * q.ho * q.wo + oh * q.wo;
        var iw = iw0;
        for (var ow = 0u; ow < q.wo; ow++) {
            // Padding reads the channels' first elements (valid addresses), masked to 0.
            let ok = row_ok && iw >= 0 && iw < w;
            let at = select(0u, u32(xrow + iw), ok);
            let v = Ch16(
                select(vec4<f32>(0.0), vec4<f32>(xin[at + xa.x], xin[at + xa.y], xin[at + xa.z], xin[at + xa.w]), ok),
                select(vec4<f32>(0.0), vec4<f32>(xin[at + xb.x], xin[at + xb.y], xin[at + xb.z], xin[at + xb.w]), ok),
                select(vec4<f32>(0.0), vec4<f32>(xin[at + xc.x], xin[at + xc.y], xin[at + xc.z], xin[at + xc.w]), ok),
                select(vec4<f32>(0.0), vec4<f32>(xin[at + xd.x], xin[at + xd.y], xin[at + xd.z], xin[at + xd.w]), ok),
            );
            let d = dyrow + ow;
            acc0 = fma_ch16(acc0, dy[d0 + d], v);
            acc1 = fma_ch16(acc1, dy[d1 + d], v);
            acc2 = fma_ch16(acc2, dy[d2 + d], v);
            acc3 = fma_ch16(acc3, dy[d3 + d], v);
            acc4 = fma_ch16(acc4, dy[d4 + d], v);
            acc5 = fma_ch16(acc5, dy[d5 + d], v);
            acc6 = fma_ch16(acc6, dy[d6 + d], v);
            acc7 = fma_ch16(acc7, dy[d7 + d], v);
            acc8 = fma_ch16(acc8, dy[d8 + d], v);
            acc9 = fma_ch16(acc9, dy[d9 + d], v);
            acc10 = fma_ch16(acc10, dy[d10 + d], v);
            acc11 = fma_ch16(acc11, dy[d11 + d], v);
            acc12 = fma_ch16(acc12, dy[d12 + d], v);
            acc13 = fma_ch16(acc13, dy[d13 + d], v);
            acc14 = fma_ch16(acc14, dy[d14 + d], v);
            acc15 = fma_ch16(acc15, dy[d15 + d], v);
            iw += i32(q.sw);
        }
    }
    store_ch16(s, g, mo, c0, tap, acc0);
    store_ch16(s, g, mo + 1u, c0, tap, acc1);
    store_ch16(s, g, mo + 2u, c0, tap, acc2);
    store_ch16(s, g, mo + 3u, c0, tap, acc3);
    store_ch16(s, g, mo + 4u, c0, tap, acc4);
    store_ch16(s, g, mo + 5u, c0, tap, acc5);
    store_ch16(s, g, mo + 6u, c0, tap, acc6);
    store_ch16(s, g, mo + 7u, c0, tap, acc7);
    store_ch16(s, g, mo + 8u, c0, tap, acc8);
    store_ch16(s, g, mo + 9u, c0, tap, acc9);
    store_ch16(s, g, mo + 10u, c0, tap, acc10);
    store_ch16(s, g, mo + 11u, c0, tap, acc11);
    store_ch16(s, g, mo + 12u, c0, tap, acc12);
    store_ch16(s, g, mo + 13u, c0, tap, acc13);
    store_ch16(s, g, mo + 14u, c0, tap, acc14);
    store_ch16(s, g, mo + 15u, c0, tap, acc15);
}

@compute @workgroup_size(64)
fn conv2d_backward_weight_narrow(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // Linear workgroup index -> (slice, column tile); unit -> (output channel m, input channel c
    // of its group, block of 4 taps).
    let wg = wid.y * nwg.x + wid.x;
    let ct = wg % q.tiles_col;
    let s = wg / q.tiles_col;
    let kk = q.kh * q.kw;
    let blocks = (kk + 3u) / 4u;
    let unit = ct * 64u + lid;
    let t0 = (unit % blocks) * 4u;
    let c = (unit / blocks) % q.cg;
    let m = unit / (blocks * q.cg);
    if (s >= q.splits || m >= q.m) {
        return;
    }
    let g = m / q.mg;
    // The 4 taps, clamped to the last one (extra ones are not stored).
    let taps = min(vec4<u32>(t0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(kk - 1u));
    let ih0 = vec4<i32>((taps / q.kw) * q.dh) - vec4<i32>(q.pt);
    let iw0 = vec4<i32>((taps % q.kw) * q.dw) - vec4<i32>(q.pl);
    let xc = i32(x_base(g, c));
    let dm = m * q.ho * q.wo;
    var acc = vec4<f32>(0.0);
    let h = vec4<i32>(i32(q.h));
    let w = vec4<i32>(i32(q.w));
    let r0 = s * q.rows_per_split;
    let r1 = min(r0 + q.rows_per_split, q.batch * q.ho);
    for (var r = r0; r < r1; r++) {
        let n = r / q.ho;
        let oh = r % q.ho;
        let ih = vec4<i32>(i32(oh * q.sh)) + ih0;
        let row_ok = (ih >= vec4<i32>(0)) & (ih < h);
        let xrow = vec4<i32>(i32(n * q.c * q.h * q.w) + xc) + ih * w;
        let dyrow = n * q.m * q.ho * q.wo + dm + oh * q.wo;
        var iw = iw0;
        for (var ow = 0u; ow < q.wo; ow++) {
            let ok = row_ok & (iw >= vec4<i32>(0)) & (iw < w);
            let at = select(vec4<u32>(0u), vec4<u32>(xrow + iw), ok);
            let v = select(vec4<f32>(0.0), vec4<f32>(xin[at.x], xin[at.y], xin[at.z], xin[at.w]), ok);
            acc = fma(vec4<f32>(dy[dyrow + ow]), v, acc);
            iw += vec4<i32>(i32(q.sw));
        }
    }
    let row = (s * q.m + m) * q.ncols + c * kk;
    for (var j = 0u; j < 4u; j++) {
        if (t0 + j < kk) {
            dw[row + t0 + j] = acc[j];
        }
    }
}
