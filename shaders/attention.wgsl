// Scaled dot-product attention, flash-attention style, and its backward (FlashAttention-2):
//
//   y = softmax(s) · V,   s(i, j) = q_i · k_j · scale + mask(i, j)   per (batch, query head)
//
// B: batch; HQ: query heads; HKV: key/value heads, HQ = R · HKV, and kv head h / R serves query
// head h (grouped-query attention); SQ, SKV: query and key lengths; D: q/k head dim; DV: v head
// dim. i indexes queries, j keys, c vec4 chunks of a head dim, r the rows an invocation owns.
// CAUSAL = 1: query i sees keys j <= i (top-left aligned, as ONNX does when SQ != SKV).
// MASKED = 1: `mask` is an additive f32 mask read through `mstride`, its element strides over
// (B, HQ, SQ, SKV) (0 where it is broadcast); it may hold -inf.
// Scores are kept in base 2 (s2 = s · log2 e, so softmax uses exp2): q (or k) rows are
// pre-multiplied by scale · log2 e when they are loaded. lse is stored in natural-log units.
// q, k, v and dO are read as rows of ND4 = ceil(D / 4) (NDV4 = ceil(DV / 4)) vec4 chunks: the
// caller zero-pads head dims that are not multiples of 4 (`attention_pad`).
// The score matrix is never stored: the forward keeps a running max and sum per row (online
// softmax); the backward recomputes probabilities from q, k and the saved logsumexp.
//
// Why this shape. The test targets (lavapipe, llvmpipe) run invocations as SIMD lanes on a CPU,
// where every storage or workgroup-memory access is a per-lane scalar loop costing about as much
// as a dozen vec4 FMAs, while arithmetic on registers is cheap. So each invocation owns 8 (or
// 4, see ROWS8) whole rows (in the forward: q and the output accumulator, each an array of vec4
// chunks) and reuses every k/v chunk it loads for all of them.
//  - Register rows are function variables of the entry points handed to helpers by pointer
//    (private variables cost the compiler far more: it zero-fills every element of them), and
//    are indexed only by constants: every loop over chunks runs to a constant (the override
//    HD4 / HDV4, the head dims' capacity class) and has a tiny body, so the compiler unrolls it
//    and the rows stay in registers. Loops with large bodies (guarded stores) only touch `tmp`.
//    Rows are loaded and stored in a loop over r whose body picks the row with a switch, so the
//    load and store code exists once, not once per row.
//  - The hot loops have no barriers: the CPU emulators run workgroups as coroutines, and a
//    suspend point (barrier) in a loop measured ~60 % slower than streaming k/v rows straight
//    from storage (whose loads cost the same as workgroup memory's there). Workgroup memory
//    holds each invocation's scores of the current tile of 16 keys (its own slots: no barrier
//    needed), so the forward rescales its accumulators once per tile instead of once per key.
// This file is not a module by itself: src/kernels/mod.rs appends shaders/attention_plain.wgsl
// (module "attention") or shaders/attention_sg.wgsl (module "attention_sg"), which define
// lane_id and the fetch_*_shared row loads of the hot loops (plain, or shared across 8-wide
// subgroups).
// Workgroup size 32 (WG): with 8 (4) rows each, a workgroup covers a block of 256 (128) queries
// (keys in the dK/dV kernel): a sequence of 1024 spreads over 4 (8) workgroups per head. A
// multiple of every SIMD width. Row r of an invocation is row lid + WG · r of its block; rows
// 0-3 ("lo") and 4-7 ("hi") carry their per-row values as vec4s.

const LOG2E: f32 = 1.4426950408889634;
// Running max before any score: below every finite score, above the masked-out scores.
const NO_MAX: f32 = -3.0e38;
// A masked-out (causal) score: exp2 of it minus any running max is 0.
const MASKED_OUT: f32 = -3.4e38;
// The logsumexp stored for a row that sees no key: exp(s - lse) is then 0 in the backward.
const EMPTY_LSE: f32 = 3.0e38;
const MAXC: u32 = 32u; // largest head dim, in vec4 chunks (D, DV <= 128)
const TMF: u32 = 8u;   // most rows (keys) per invocation (ROWS8 = 1)
const WG: u32 = 32u;   // invocations per workgroup
const TILE: u32 = 16u; // keys per forward tile (scores stashed in workgroup memory)

override HD4: u32 = 16u;  // chunks per q/k row this pipeline handles (>= ND4, <= MAXC)
override HDV4: u32 = 16u; // chunks per v/dO/y row (>= NDV4, <= MAXC)
// Rows (keys) per invocation: 8 (ROWS8 = 1; the forward runs ~1.5x and the backward ~1.25x
// faster) or 4 (ROWS8 = 0; compiles ~2x faster: chosen for wide heads, whose unrolled code is
// largest, and for sequences too short to fill blocks of 256).
override ROWS8: u32 = 1u;
override CAUSAL: u32 = 0u;
override MASKED: u32 = 0u;

alias Row = array<vec4<f32>, MAXC>;
alias Rows = array<Row, TMF>;

struct Params {
    batch: u32,
    hq: u32,
    group: u32,  // R = HQ / HKV
    sq: u32,
    skv: u32,
    d: u32,
    dv: u32,
    scale2: f32, // scale · log2 e
    nblk: u32,   // blocks of WG · 8 (WG · 4 when ROWS8 = 0) rows (keys in dK/dV) per head
    nd4: u32,    // ND4: vec4 chunks per stored q/k row
    ndv4: u32,   // NDV4: vec4 chunks per stored v/dO row
    scale: f32,
    mstride: vec4<u32>, // mask element strides over (B, HQ, SQ, SKV), 0 = broadcast
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>; // (B, HQ, SQ, ND4)
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>; // (B, HKV, SKV, ND4)
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>; // (B, HKV, SKV, NDV4)
@group(0) @binding(4) var<storage, read> mask: array<f32>;    // see MASKED; unused otherwise

// ---- loads of one stored row into a register row -------------------------------------------
// Chunks past the stored row (c >= ND4) read a valid address and are 0.
fn fetch_q(x: ptr<function, Row>, row: u32) {
    let base = row * p.nd4;
    let last = max(p.nd4, 1u) - 1u;
    for (var c = 0u; c < HD4; c++) {
        (*x)[c] = select(vec4<f32>(0.0), q[base + min(c, last)], c < p.nd4);
    }
}
fn fetch_k(x: ptr<function, Row>, row: u32) {
    let base = row * p.nd4;
    let last = max(p.nd4, 1u) - 1u;
    for (var c = 0u; c < HD4; c++) {
        (*x)[c] = select(vec4<f32>(0.0), k[base + min(c, last)], c < p.nd4);
    }
}
fn fetch_v(x: ptr<function, Row>, row: u32) {
    let base = row * p.ndv4;
    let last = max(p.ndv4, 1u) - 1u;
    for (var c = 0u; c < HDV4; c++) {
        (*x)[c] = select(vec4<f32>(0.0), v[base + min(c, last)], c < p.ndv4);
    }
}

// Mask element (b, h, i, j), times log2 e.
fn mask_at(b: u32, h: u32, i: u32, j: u32) -> f32 {
    let s = p.mstride;
    return mask[b * s.x + h * s.y + i * s.z + j * s.w] * LOG2E;
}
// Mask elements for four rows and one key, or for one row and four keys.
fn mask_rows(b: u32, h: u32, rows: vec4<u32>, j: u32) -> vec4<f32> {
    return vec4<f32>(mask_at(b, h, rows.x, j), mask_at(b, h, rows.y, j), mask_at(b, h, rows.z, j), mask_at(b, h, rows.w, j));
}
fn mask_keys(b: u32, h: u32, i: u32, keys: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(mask_at(b, h, i, keys.x), mask_at(b, h, i, keys.y), mask_at(b, h, i, keys.z), mask_at(b, h, i, keys.w));
}

// ---- register rows: r and n (HD4 or HDV4) are constants at every call --------------------------
fn hsum(a: vec4<f32>) -> f32 {
    return (a.x + a.y) + (a.z + a.w);
}
// rows[r] · x over n chunks.
fn dot(rows: ptr<function, Rows>, r: u32, x: ptr<function, Row>, n: u32) -> f32 {
    var s = vec4<f32>(0.0);
    for (var c = 0u; c < n; c++) {
        s = fma((*rows)[r][c], (*x)[c], s);
    }
    return hsum(s);
}
// rows[r] += w · x over n chunks.
fn axpy(rows: ptr<function, Rows>, r: u32, w: f32, x: ptr<function, Row>, n: u32) {
    for (var c = 0u; c < n; c++) {
        (*rows)[r][c] = fma(vec4<f32>(w), (*x)[c], (*rows)[r][c]);
    }
}
// rows[r] *= w over n chunks.
fn scale_row(rows: ptr<function, Rows>, r: u32, w: f32, n: u32) {
    for (var c = 0u; c < n; c++) {
        (*rows)[r][c] *= w;
    }
}
// Four rows r0 .. r0 + 3 at once, one value per row in a vec4.
fn dots4(rows: ptr<function, Rows>, r0: u32, x: ptr<function, Row>, n: u32) -> vec4<f32> {
    return vec4<f32>(dot(rows, r0, x, n), dot(rows, r0 + 1u, x, n), dot(rows, r0 + 2u, x, n), dot(rows, r0 + 3u, x, n));
}
fn axpys4(rows: ptr<function, Rows>, r0: u32, w: vec4<f32>, x: ptr<function, Row>, n: u32) {
    axpy(rows, r0, w.x, x, n);
    axpy(rows, r0 + 1u, w.y, x, n);
    axpy(rows, r0 + 2u, w.z, x, n);
    axpy(rows, r0 + 3u, w.w, x, n);
}
fn scales4(rows: ptr<function, Rows>, r0: u32, w: vec4<f32>, n: u32) {
    scale_row(rows, r0, w.x, n);
    scale_row(rows, r0 + 1u, w.y, n);
    scale_row(rows, r0 + 2u, w.z, n);
    scale_row(rows, r0 + 3u, w.w, n);
}
// rows[r] <- x · s and x <- rows[r] · s (n chunks), r known at the call.
fn put_row(rows: ptr<function, Rows>, r: u32, x: ptr<function, Row>, s: f32, n: u32) {
    for (var c = 0u; c < n; c++) {
        (*rows)[r][c] = (*x)[c] * s;
    }
}
fn get_row(x: ptr<function, Row>, rows: ptr<function, Rows>, r: u32, s: f32, n: u32) {
    for (var c = 0u; c < n; c++) {
        (*x)[c] = (*rows)[r][c] * s;
    }
}
// The same for r known only at run time (r < 8): a switch, so each case indexes by constants.
fn put_row_at(rows: ptr<function, Rows>, r: u32, x: ptr<function, Row>, s: f32, n: u32) {
    switch r {
        case 0u: { put_row(rows, 0u, x, s, n); }
        case 1u: { put_row(rows, 1u, x, s, n); }
        case 2u: { put_row(rows, 2u, x, s, n); }
        case 3u: { put_row(rows, 3u, x, s, n); }
        case 4u: { put_row(rows, 4u, x, s, n); }
        case 5u: { put_row(rows, 5u, x, s, n); }
        case 6u: { put_row(rows, 6u, x, s, n); }
        case 7u: { put_row(rows, 7u, x, s, n); }
        default: {}
    }
}
fn get_row_at(x: ptr<function, Row>, rows: ptr<function, Rows>, r: u32, s: f32, n: u32) {
    switch r {
        case 0u: { get_row(x, rows, 0u, s, n); }
        case 1u: { get_row(x, rows, 1u, s, n); }
        case 2u: { get_row(x, rows, 2u, s, n); }
        case 3u: { get_row(x, rows, 3u, s, n); }
        case 4u: { get_row(x, rows, 4u, s, n); }
        case 5u: { get_row(x, rows, 5u, s, n); }
        case 6u: { get_row(x, rows, 6u, s, n); }
        case 7u: { get_row(x, rows, 7u, s, n); }
        default: {}
    }
}
// Copies n chunks of x into tmp, which a store loop may index at run time.
fn spill(tmp: ptr<function, Row>, x: ptr<function, Row>, n: u32) {
    for (var c = 0u; c < n; c++) {
        (*tmp)[c] = (*x)[c];
    }
}
// Component r (< 8) of the row pair (lo, hi).
fn pick(r: u32, lo: vec4<f32>, hi: vec4<f32>) -> f32 {
    return select(hi[r & 3u], lo[r & 3u], r < 4u);
}

// Rows (or keys) an invocation owns: row0 + WG · r for r in 0..4.
fn rows4(row0: u32) -> vec4<u32> {
    return vec4<u32>(row0, row0 + WG, row0 + 2u * WG, row0 + 3u * WG);
}

// The (batch, head, block) a workgroup works on, and whether it exists (the grid may be larger).
struct Head {
    live: bool,
    b: u32,
    h: u32, // query head (forward, dQ) or kv head (dK/dV)
    blk: u32,
}
fn head_of(wg: u32, heads: u32) -> Head {
    let blk = wg % p.nblk;
    let bh = wg / p.nblk;
    let total = p.batch * heads;
    let c = min(bh, max(total, 1u) - 1u);
    return Head(bh < total, c / heads, c % heads, blk);
}

// ---- forward -----------------------------------------------------------------------------------
// 8 rows per invocation (4 when ROWS8 = 0: rows 4-7 then go unused): the forward is the hot
// path, worth its longer compile.
@group(0) @binding(5) var<storage, read_write> y: array<f32>;   // (B, HQ, SQ, DV)
@group(0) @binding(6) var<storage, read_write> lse: array<f32>; // (B, HQ, SQ)

// Each invocation's scores of the current tile: 2 slots (rows 0-3, rows 4-7) per key.
var<workgroup> stash: array<vec4<f32>, 1024>; // WG * TILE * 2

@compute @workgroup_size(32)
fn attention(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    var qr: Rows;  // q rows, times scale · log2 e
    var acc: Rows; // y rows, unnormalized (rows 0-3 "lo", 4-7 "hi")
    var x: Row;    // the k or v row in use
    var tmp: Row;
    let lane = lane_id(lid);
    let hd = head_of(wid.y * nwg.x + wid.x, p.hq);
    if (!hd.live) {
        return;
    }
    let b = hd.b;
    let h = hd.h;
    let bq = b * p.hq + h;
    let bkv = b * (p.hq / p.group) + h / p.group;
    let tm = select(4u, TMF, ROWS8 != 0u);
    let block = WG * tm;
    let row0 = hd.blk * block + lid;
    let lo = rows4(row0);
    let hi = rows4(row0 + 4u * WG);
    // Rows past the end compute on the last row and are never stored.
    let last = max(p.sq, 1u) - 1u;
    let clo = min(lo, vec4<u32>(last));
    let chi = min(hi, vec4<u32>(last));
    let qrow = bq * p.sq;
    for (var r = 0u; r < tm; r++) {
        fetch_q(&x, qrow + min(row0 + r * WG, last));
        put_row_at(&qr, r, &x, p.scale2, HD4);
    }

    var mlo = vec4<f32>(NO_MAX);
    var mhi = vec4<f32>(NO_MAX);
    var llo = vec4<f32>(0.0);
    var lhi = vec4<f32>(0.0);
    // Keys this block needs: all of them, or (causal) those up to its last row.
    var kend = p.skv;
    if (CAUSAL != 0u) {
        kend = min(kend, min(hd.blk * block + block, p.sq));
    }
    let krow = bkv * p.skv;
    let slot = lid * (2u * TILE);
    for (var t0 = 0u; t0 < kend; t0 += TILE) {
        let nk = min(TILE, kend - t0);
        // Scores of the tile and their max per row.
        var xlo = vec4<f32>(NO_MAX);
        var xhi = vec4<f32>(NO_MAX);
        for (var jl = 0u; jl < nk; jl++) {
            let j = t0 + jl;
            fetch_k_shared(&x, krow + j, lane);
            var slo = dots4(&qr, 0u, &x, HD4);
            var shi = vec4<f32>(NO_MAX);
            if (ROWS8 != 0u) {
                shi = dots4(&qr, 4u, &x, HD4);
            }
            if (MASKED != 0u) {
                slo += mask_rows(b, h, clo, j);
                if (ROWS8 != 0u) {
                    shi += mask_rows(b, h, chi, j);
                }
            }
            if (CAUSAL != 0u) {
                slo = select(slo, vec4<f32>(MASKED_OUT), vec4<u32>(j) > lo);
                shi = select(shi, vec4<f32>(MASKED_OUT), vec4<u32>(j) > hi);
            }
            stash[slot + 2u * jl] = slo;
            stash[slot + 2u * jl + 1u] = shi;
            xlo = max(xlo, slo);
            xhi = max(xhi, shi);
        }
        // Online softmax: rescale what was accumulated under the old max.
        let nlo = max(mlo, xlo);
        let nhi = max(mhi, xhi);
        let alo = exp2(mlo - nlo);
        let ahi = exp2(mhi - nhi);
        mlo = nlo;
        mhi = nhi;
        llo *= alo;
        lhi *= ahi;
        scales4(&acc, 0u, alo, HDV4);
        if (ROWS8 != 0u) {
            scales4(&acc, 4u, ahi, HDV4);
        }
        for (var jl = 0u; jl < nk; jl++) {
            let plo = exp2(stash[slot + 2u * jl] - mlo);
            let phi = exp2(stash[slot + 2u * jl + 1u] - mhi);
            llo += plo;
            lhi += phi;
            fetch_v_shared(&x, krow + t0 + jl, lane);
            axpys4(&acc, 0u, plo, &x, HDV4);
            if (ROWS8 != 0u) {
                axpys4(&acc, 4u, phi, &x, HDV4);
            }
        }
    }

    // A row that saw no finite score (no keys, or all masked) gets 0 and an "empty" lse.
    let elo = mlo == vec4<f32>(NO_MAX);
    let ehi = mhi == vec4<f32>(NO_MAX);
    let ilo = select(1.0 / llo, vec4<f32>(0.0), elo);
    let ihi = select(1.0 / lhi, vec4<f32>(0.0), ehi);
    let slo = select((mlo + log2(llo)) / LOG2E, vec4<f32>(EMPTY_LSE), elo);
    let shi = select((mhi + log2(lhi)) / LOG2E, vec4<f32>(EMPTY_LSE), ehi);
    for (var r = 0u; r < tm; r++) {
        let row = row0 + r * WG;
        get_row_at(&x, &acc, r, pick(r, ilo, ihi), HDV4);
        spill(&tmp, &x, HDV4);
        if (row < p.sq) {
            let base = (qrow + row) * p.dv;
            for (var col = 0u; col < p.dv; col++) {
                y[base + col] = tmp[col >> 2u][col & 3u];
            }
            lse[qrow + row] = pick(r, slo, shi);
        }
    }
}

// ---- backward ----------------------------------------------------------------------------------
// Rows (keys) per invocation as in the forward: 8, or 4 when ROWS8 = 0.
//
// delta_i = dO_i · y_i, and the saved lse in base 2: the per-row terms of
// dS(i, j) = P(i, j) · (dO_i · v_j - delta_i).
@group(0) @binding(1) var<storage, read> dl_y: array<f32>;                  // y (B, HQ, SQ, DV)
@group(0) @binding(2) var<storage, read> dl_gy: array<f32>;                 // dO (B, HQ, SQ, DV)
@group(0) @binding(3) var<storage, read> dl_lse: array<f32>;                // (B, HQ, SQ)
@group(0) @binding(4) var<storage, read_write> dl_stats: array<vec2<f32>>; // (B, HQ, SQ): (lse · log2 e, delta)

// Workgroup size 64: one row per invocation, a plain elementwise-style kernel.
@compute @workgroup_size(64)
fn attention_delta(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 64u + lid;
    if (i >= p.batch * p.hq * p.sq) {
        return;
    }
    let base = i * p.dv;
    var s = 0.0;
    for (var c = 0u; c < p.dv; c++) {
        s = fma(dl_y[base + c], dl_gy[base + c], s);
    }
    dl_stats[i] = vec2<f32>(dl_lse[i] * LOG2E, s);
}

@group(0) @binding(5) var<storage, read> gy: array<vec4<f32>>;    // dO (B, HQ, SQ, NDV4)
@group(0) @binding(6) var<storage, read> stats: array<vec2<f32>>; // (B, HQ, SQ): (lse · log2 e, delta)

fn fetch_gy(x: ptr<function, Row>, row: u32) {
    let base = row * p.ndv4;
    let last = max(p.ndv4, 1u) - 1u;
    for (var c = 0u; c < HDV4; c++) {
        (*x)[c] = select(vec4<f32>(0.0), gy[base + min(c, last)], c < p.ndv4);
    }
}

// dQ: per block of query rows, a loop over the keys.
//   P = exp2(s2 - lse2), dP = dO · v, dS = P · (dP - delta), dQ = scale · Σ_j dS · k_j
@group(0) @binding(7) var<storage, read_write> dq: array<f32>; // (B, HQ, SQ, D)

@compute @workgroup_size(32)
fn attention_backward_q(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    var qr: Rows;  // q rows, times scale · log2 e
    var gr: Rows;  // dO rows
    var acc: Rows; // dQ rows, unscaled
    var xk: Row;
    var xv: Row;
    var tmp: Row;
    let lane = lane_id(lid);
    let hd = head_of(wid.y * nwg.x + wid.x, p.hq);
    if (!hd.live) {
        return;
    }
    let b = hd.b;
    let h = hd.h;
    let bq = b * p.hq + h;
    let bkv = b * (p.hq / p.group) + h / p.group;
    let tm = select(4u, TMF, ROWS8 != 0u);
    let block = WG * tm;
    let row0 = hd.blk * block + lid;
    let lo = rows4(row0);
    let hi = rows4(row0 + 4u * WG);
    let last = max(p.sq, 1u) - 1u;
    let clo = min(lo, vec4<u32>(last));
    let chi = min(hi, vec4<u32>(last));
    let qrow = bq * p.sq;
    // q and dO rows into registers, with each row's lse and delta.
    var lse_lo = vec4<f32>(0.0);
    var lse_hi = vec4<f32>(0.0);
    var del_lo = vec4<f32>(0.0);
    var del_hi = vec4<f32>(0.0);
    for (var r = 0u; r < tm; r++) {
        let row = qrow + min(row0 + r * WG, last);
        fetch_q(&xk, row);
        put_row_at(&qr, r, &xk, p.scale2, HD4);
        fetch_gy(&xv, row);
        put_row_at(&gr, r, &xv, 1.0, HDV4);
        let st = stats[row];
        let hit = vec4<u32>(r) == vec4<u32>(0u, 1u, 2u, 3u);
        let hit_hi = vec4<u32>(r) == vec4<u32>(4u, 5u, 6u, 7u);
        lse_lo = select(lse_lo, vec4<f32>(st.x), hit);
        del_lo = select(del_lo, vec4<f32>(st.y), hit);
        lse_hi = select(lse_hi, vec4<f32>(st.x), hit_hi);
        del_hi = select(del_hi, vec4<f32>(st.y), hit_hi);
    }

    var kend = p.skv;
    if (CAUSAL != 0u) {
        kend = min(kend, min(hd.blk * block + block, p.sq));
    }
    let krow = bkv * p.skv;
    for (var j = 0u; j < kend; j++) {
        fetch_k_shared(&xk, krow + j, lane);
        fetch_v_shared(&xv, krow + j, lane);
        var slo = dots4(&qr, 0u, &xk, HD4);
        if (MASKED != 0u) {
            slo += mask_rows(b, h, clo, j);
        }
        if (CAUSAL != 0u) {
            slo = select(slo, vec4<f32>(MASKED_OUT), vec4<u32>(j) > lo);
        }
        let plo = exp2(slo - lse_lo);
        axpys4(&acc, 0u, plo * (dots4(&gr, 0u, &xv, HDV4) - del_lo), &xk, HD4);
        if (ROWS8 != 0u) {
            var shi = dots4(&qr, 4u, &xk, HD4);
            if (MASKED != 0u) {
                shi += mask_rows(b, h, chi, j);
            }
            if (CAUSAL != 0u) {
                shi = select(shi, vec4<f32>(MASKED_OUT), vec4<u32>(j) > hi);
            }
            let phi = exp2(shi - lse_hi);
            axpys4(&acc, 4u, phi * (dots4(&gr, 4u, &xv, HDV4) - del_hi), &xk, HD4);
        }
    }

    for (var r = 0u; r < tm; r++) {
        let row = row0 + r * WG;
        get_row_at(&xk, &acc, r, p.scale, HD4);
        spill(&tmp, &xk, HD4);
        if (row < p.sq) {
            let base = (qrow + row) * p.d;
            for (var col = 0u; col < p.d; col++) {
                dq[base + col] = tmp[col >> 2u][col & 3u];
            }
        }
    }
}

// dK, dV: per block of keys (of one kv head), a loop over the query rows of every query head
// the kv head serves (grouped-query attention sums them here, deterministically).
//   dV_j = Σ_i P · dO_i,   dK_j = scale · Σ_i dS · q_i
@group(0) @binding(7) var<storage, read_write> dk: array<f32>; // (B, HKV, SKV, D)
@group(0) @binding(8) var<storage, read_write> dv: array<f32>; // (B, HKV, SKV, DV)

@compute @workgroup_size(32)
fn attention_backward_kv(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    var kr: Rows;  // k rows, times scale · log2 e
    var vr: Rows;  // v rows
    var dkr: Rows; // dK rows, unscaled
    var dvr: Rows; // dV rows
    var xq: Row;
    var xg: Row;
    var tmp: Row;
    let hkv = p.hq / p.group;
    let lane = lane_id(lid);
    let hd = head_of(wid.y * nwg.x + wid.x, hkv);
    if (!hd.live) {
        return;
    }
    let b = hd.b;
    let bkv = b * hkv + hd.h;
    let tm = select(4u, TMF, ROWS8 != 0u);
    let block = WG * tm;
    let key0 = hd.blk * block + lid;
    let lo = rows4(key0);
    let hi = rows4(key0 + 4u * WG);
    // Keys past the end compute on the last key and are never stored.
    let last = max(p.skv, 1u) - 1u;
    let clo = min(lo, vec4<u32>(last));
    let chi = min(hi, vec4<u32>(last));
    let krow = bkv * p.skv;
    for (var r = 0u; r < tm; r++) {
        let key = krow + min(key0 + r * WG, last);
        fetch_k(&xq, key);
        put_row_at(&kr, r, &xq, p.scale2, HD4);
        fetch_v(&xg, key);
        put_row_at(&vr, r, &xg, 1.0, HDV4);
    }

    // Causal: rows before the block's first key see none of its keys.
    var istart = 0u;
    if (CAUSAL != 0u) {
        istart = hd.blk * block;
    }
    for (var hh = 0u; hh < p.group; hh++) {
        let h = hd.h * p.group + hh;
        let qrow = (b * p.hq + h) * p.sq;
        for (var i = istart; i < p.sq; i++) {
            fetch_q_shared(&xq, qrow + i, lane);
            fetch_gy_shared(&xg, qrow + i, lane);
            let st = stats[qrow + i];
            var slo = dots4(&kr, 0u, &xq, HD4);
            if (MASKED != 0u) {
                slo += mask_keys(b, h, i, clo);
            }
            if (CAUSAL != 0u) {
                slo = select(slo, vec4<f32>(MASKED_OUT), lo > vec4<u32>(i));
            }
            let plo = exp2(slo - st.x);
            axpys4(&dvr, 0u, plo, &xg, HDV4);
            axpys4(&dkr, 0u, plo * (dots4(&vr, 0u, &xg, HDV4) - st.y), &xq, HD4);
            if (ROWS8 != 0u) {
                var shi = dots4(&kr, 4u, &xq, HD4);
                if (MASKED != 0u) {
                    shi += mask_keys(b, h, i, chi);
                }
                if (CAUSAL != 0u) {
                    shi = select(shi, vec4<f32>(MASKED_OUT), hi > vec4<u32>(i));
                }
                let phi = exp2(shi - st.x);
                axpys4(&dvr, 4u, phi, &xg, HDV4);
                axpys4(&dkr, 4u, phi * (dots4(&vr, 4u, &xg, HDV4) - st.y), &xq, HD4);
            }
        }
    }

    for (var r = 0u; r < tm; r++) {
        let key = key0 + r * WG;
        get_row_at(&xq, &dkr, r, p.scale, HD4);
        spill(&tmp, &xq, HD4);
        if (key < p.skv) {
            let base = (krow + key) * p.d;
            for (var col = 0u; col < p.d; col++) {
                dk[base + col] = tmp[col >> 2u][col & 3u];
            }
        }
        get_row_at(&xg, &dvr, r, 1.0, HDV4);
        spill(&tmp, &xg, HDV4);
        if (key < p.skv) {
            let base = (krow + key) * p.dv;
            for (var col = 0u; col < p.dv; col++) {
                dv[base + col] = tmp[col >> 2u][col & 3u];
            }
        }
    }
}

// ---- padding -----------------------------------------------------------------------------------
// Copies rows of n values into rows of np >= n values (a multiple of 4), zero-filling, so the
// kernels above can read every row as whole vec4 chunks.
struct PadParams {
    rows: u32,
    n: u32,
    np: u32,
    _pad: u32,
}
@group(0) @binding(0) var<uniform> pp: PadParams;
@group(0) @binding(1) var<storage, read> pad_x: array<f32>;       // (rows, n)
@group(0) @binding(2) var<storage, read_write> pad_y: array<f32>; // (rows, np)

// Workgroup size 64: one output element per invocation.
@compute @workgroup_size(64)
fn attention_pad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = (wid.y * nwg.x + wid.x) * 64u + lid;
    if (e >= pp.rows * pp.np) {
        return;
    }
    let row = e / pp.np;
    let col = e - row * pp.np;
    let n = max(pp.n, 1u);
    pad_y[e] = select(0.0, pad_x[row * pp.n + min(col, n - 1u)], col < pp.n);
}
