// Softmax cross-entropy loss with mean reduction (ONNX SoftmaxCrossEntropyLoss), optional class
// weights, and its gradient with respect to the scores.
//
// Scores are (N, C, d1, ...) viewed as (N, C, D), D = d1·…·dk (1 for (N, C) input). A row is
// one (n, d) position: its C class scores at stride D, r = n·D + d, 0 <= r < R = N·D.
// l: the row's label, labels[r]. w: weights[l], or 1 without weights.
//
//   log_prob = log_softmax(scores) along C
//   loss     = Σ_r w·(−log_prob[l]) / Σ_r w
//   dscores  = (softmax − onehot(l))·w / Σ_r w · upstream
//
// A label outside [0, C) cannot be reported from a kernel: such a row is ignored, like ONNX's
// ignore_index (it adds nothing to either sum and gets a zero gradient). If every row is
// ignored the loss is 0/0 = NaN.
//
// Three steps:
// 1. `cross_entropy` (one 256-invocation workgroup per row) or `cross_entropy_small` (one
//    invocation per row, for few classes or many rows): stable log-softmax of the row (running
//    max and rescaled Σ exp, as in softmax.wgsl), log_prob written, and the row's loss term and
//    weight written to row_stats.
// 2. `cross_entropy_total`: one workgroup sums row_stats into the loss and Σ w.
// 3. `cross_entropy_backward`: elementwise dscores from log_prob (exp(log_prob) = softmax).
//
// Workgroup size 256: a multiple of every GPU's SIMD width and the WebGPU default limit; the
// width of the reduction trees (2 × 256 f32 = 2 KiB of workgroup memory).

struct Params {
    rows: u32,        // R = N·D
    classes: u32,     // C
    inner: u32,       // D
    has_weights: u32, // 1: weights are bound; 0: the weights binding is a stand-in, unread
}

const WG: u32 = 256u;
const LOWEST: f32 = -0x1.fffffep+127f; // -f32::MAX, written exactly (Tint rejects a literal past it)

@group(0) @binding(0) var<uniform> p: Params;

// Step 1 (`cross_entropy`, `cross_entropy_small`).
@group(0) @binding(1) var<storage, read> scores: array<f32>;         // (N, C, D)
@group(0) @binding(2) var<storage, read> labels: array<i32>;         // (N, D); also step 3
@group(0) @binding(3) var<storage, read> weights: array<f32>;        // (C); also step 3
@group(0) @binding(4) var<storage, read_write> log_prob: array<f32>; // (N, C, D)
@group(0) @binding(5) var<storage, read_write> row_stats: array<f32>; // (2, R): loss terms, weights

// Step 2 (`cross_entropy_total`).
@group(0) @binding(1) var<storage, read> stats_in: array<f32>;         // (2, R)
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;       // (1)
@group(0) @binding(3) var<storage, read_write> total_weight: array<f32>; // (1): Σ w

// Step 3 (`cross_entropy_backward`), besides labels and weights above.
@group(0) @binding(1) var<storage, read> log_prob_in: array<f32>;     // (N, C, D)
@group(0) @binding(4) var<storage, read> total_in: array<f32>;        // (1): Σ w
@group(0) @binding(5) var<storage, read> upstream: array<f32>;        // (1): dloss
@group(0) @binding(6) var<storage, read_write> dscores: array<f32>;   // (N, C, D)

var<workgroup> tree_a: array<f32, 256>;
var<workgroup> tree_b: array<f32, 256>;

// Offset of row r's first class score.
fn row_base(r: u32) -> u32 {
    let n = r / p.inner;
    let d = r - n * p.inner;
    return n * p.classes * p.inner + d;
}

fn push(st: vec2<f32>, v: f32) -> vec2<f32> {
    if (v > st.x) {
        return vec2<f32>(v, st.y * exp(st.x - v) + 1.0);
    }
    return vec2<f32>(st.x, st.y + exp(v - st.x));
}

fn merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let m = max(a.x, b.x);
    return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

// Class weight of a valid label.
fn class_weight(l: u32) -> f32 {
    if (p.has_weights == 1u) {
        return weights[l];
    }
    return 1.0;
}

// Writes row r's log-probabilities (elements k = first, first + step, ...) and, when `stats`,
// the row's loss term and weight. st: the row's (max, Σ exp(x − max)).
fn finish_row(r: u32, st: vec2<f32>, first: u32, step: u32, stats: bool) {
    let base = row_base(r);
    let lse = log(st.y);
    for (var k = first; k < p.classes; k += step) {
        let at = base + k * p.inner;
        log_prob[at] = (scores[at] - st.x) - lse;
    }
    if (stats) {
        let l = labels[r];
        var term = 0.0;
        var w = 0.0;
        if (l >= 0 && u32(l) < p.classes) {
            w = class_weight(u32(l));
            term = -w * ((scores[base + u32(l) * p.inner] - st.x) - lse);
        }
        row_stats[r] = term;
        row_stats[p.rows + r] = w;
    }
}

@compute @workgroup_size(256)
fn cross_entropy(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = wid.y * nwg.x + wid.x;
    // Workgroups past the last row still take part in the barriers (no early return).
    let live = r < p.rows;
    var st = vec2<f32>(LOWEST, 0.0);
    if (live) {
        let base = row_base(r);
        for (var k = lid; k < p.classes; k += WG) {
            st = push(st, scores[base + k * p.inner]);
        }
    }
    tree_a[lid] = st.x;
    tree_b[lid] = st.y;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        if (lid < half) {
            let c = merge(
                vec2<f32>(tree_a[lid], tree_b[lid]),
                vec2<f32>(tree_a[lid + half], tree_b[lid + half]),
            );
            tree_a[lid] = c.x;
            tree_b[lid] = c.y;
        }
        workgroupBarrier();
    }
    let row = vec2<f32>(tree_a[0], tree_b[0]);
    if (live) {
        finish_row(r, row, lid, WG, lid == 0u);
    }
}

@compute @workgroup_size(256)
fn cross_entropy_small(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = (wid.y * nwg.x + wid.x) * WG + lid;
    if (r >= p.rows) {
        return;
    }
    let base = row_base(r);
    var st = vec2<f32>(LOWEST, 0.0);
    for (var k = 0u; k < p.classes; k++) {
        st = push(st, scores[base + k * p.inner]);
    }
    finish_row(r, st, 0u, 1u, true);
}

// One workgroup: the loss (Σ terms / Σ weights) and Σ weights.
@compute @workgroup_size(256)
fn cross_entropy_total(@builtin(local_invocation_index) lid: u32) {
    var a = 0.0;
    var b = 0.0;
    for (var r = lid; r < p.rows; r += WG) {
        a += stats_in[r];
        b += stats_in[p.rows + r];
    }
    tree_a[lid] = a;
    tree_b[lid] = b;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        if (lid < half) {
            tree_a[lid] += tree_a[lid + half];
            tree_b[lid] += tree_b[lid + half];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        loss[0] = tree_a[0] / tree_b[0];
        total_weight[0] = tree_b[0];
    }
}

// dscores[e] for every element e = (n, c, d) of the scores.
@compute @workgroup_size(256)
fn cross_entropy_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let e = (wid.y * nwg.x + wid.x) * WG + lid;
    let plane = p.classes * p.inner;
    if (e >= p.rows * p.classes) {
        return;
    }
    let n = e / plane;
    let rem = e - n * plane;
    let c = rem / p.inner;
    let d = rem - c * p.inner;
    let l = labels[n * p.inner + d];
    var g = 0.0;
    if (l >= 0 && u32(l) < p.classes) {
        let scale = class_weight(u32(l)) * upstream[0] / total_in[0];
        let onehot = select(0.0, 1.0, u32(l) == c);
        g = (exp(log_prob_in[e]) - onehot) * scale;
    }
    dscores[e] = g;
}
