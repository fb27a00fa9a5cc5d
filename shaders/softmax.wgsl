// Softmax and log-softmax along one axis, forward and backward.
//
// A tensor is viewed as (outer, len, inner): the softmax axis has `len` elements, and a row is
// the `len` elements that share the other coordinates (o, i). Row r = o·inner + i
// (0 <= r < rows = outer·inner) starts at o·len·inner + i and steps by `inner`, so for the last
// axis (inner = 1) rows are contiguous, and for other axes adjacent rows are adjacent in memory.
//
// x: input, contiguous (outer, len, inner).  y: output, the same shape.
// Backward: y is the forward output, dy its upstream gradient, dx the result, all that shape:
//   softmax      dx = y·(dy − Σ dy·y)
//   log-softmax  dx = dy − exp(y)·Σ dy
//
// Forward rows are stable (max-subtracted): one pass keeps a running maximum m and the sum
// s = Σ exp(x − m), rescaling s when m grows ("online softmax"), a second pass writes
// exp(x − m)/s or (x − m) − log s. -inf entries get exactly 0 (or -inf); NaN spreads to its row.
//
// Two entry points per direction (src/kernels/softmax.rs picks one):
// - `softmax`, `softmax_backward`: one 256-invocation workgroup per row. Invocation `lid`
//   folds elements lid, lid + 256, ... (adjacent invocations read adjacent elements when rows
//   are contiguous); a workgroup-memory tree combines the 256 partial states.
// - `softmax_small`, `softmax_backward_small`: one invocation per row, for short rows or when
//   there are enough rows to fill the GPU (adjacent invocations then read adjacent elements
//   when inner > 1).
// LOG (override constant): 0 = softmax, 1 = log-softmax.
//
// Workgroup size 256: a multiple of every GPU's SIMD width and the WebGPU default limit; it is
// also the width of the reduction tree (2 × 256 f32 = 2 KiB of workgroup memory).

struct Params {
    rows: u32,
    len: u32,
    inner: u32,
    _pad: u32,
}

override LOG: u32 = 0u;

const WG: u32 = 256u;
// The lowest finite f32: the running maximum starts here, so exp(m_old − m_new) and
// exp(x − m) never see inf − inf, even for rows of -inf.
const LOWEST: f32 = -0x1.fffffep+127f; // -f32::MAX, written exactly (Tint rejects a literal past it)

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;        // (outer, len, inner), forward
@group(0) @binding(2) var<storage, read_write> y: array<f32>;  // (outer, len, inner), forward
@group(0) @binding(1) var<storage, read> ys: array<f32>;       // forward output, backward
@group(0) @binding(2) var<storage, read> dy: array<f32>;       // (outer, len, inner), backward
@group(0) @binding(3) var<storage, read_write> dx: array<f32>; // (outer, len, inner), backward

var<workgroup> tree_m: array<f32, 256>;
var<workgroup> tree_s: array<f32, 256>;

// Offset of row r's first element.
fn row_base(r: u32) -> u32 {
    let o = r / p.inner;
    let i = r - o * p.inner;
    return o * p.len * p.inner + i;
}

// The running state (max m, Σ exp(x − m)) after one more element v.
fn push(st: vec2<f32>, v: f32) -> vec2<f32> {
    if (v > st.x) {
        return vec2<f32>(v, st.y * exp(st.x - v) + 1.0);
    }
    return vec2<f32>(st.x, st.y + exp(v - st.x));
}

// Two running states combined.
fn merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let m = max(a.x, b.x);
    return vec2<f32>(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

// The output for element v of a row with state st.
fn finish(v: f32, st: vec2<f32>) -> f32 {
    if (LOG == 1u) {
        return (v - st.x) - log(st.y);
    }
    return exp(v - st.x) / st.y;
}

@compute @workgroup_size(256)
fn softmax(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = wid.y * nwg.x + wid.x;
    // Workgroups past the last row still take part in the barriers (no early return).
    let live = r < p.rows;
    let base = row_base(r);
    var st = vec2<f32>(LOWEST, 0.0);
    if (live) {
        for (var k = lid; k < p.len; k += WG) {
            st = push(st, x[base + k * p.inner]);
        }
    }
    tree_m[lid] = st.x;
    tree_s[lid] = st.y;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        if (lid < half) {
            let c = merge(
                vec2<f32>(tree_m[lid], tree_s[lid]),
                vec2<f32>(tree_m[lid + half], tree_s[lid + half]),
            );
            tree_m[lid] = c.x;
            tree_s[lid] = c.y;
        }
        workgroupBarrier();
    }
    let row = vec2<f32>(tree_m[0], tree_s[0]);
    if (live) {
        for (var k = lid; k < p.len; k += WG) {
            let at = base + k * p.inner;
            y[at] = finish(x[at], row);
        }
    }
}

@compute @workgroup_size(256)
fn softmax_small(
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
    for (var k = 0u; k < p.len; k++) {
        st = push(st, x[base + k * p.inner]);
    }
    for (var k = 0u; k < p.len; k++) {
        let at = base + k * p.inner;
        y[at] = finish(x[at], st);
    }
}

// ---- backward ----------------------------------------------------------------------------

// The term summed over a row: dy·y for softmax, dy for log-softmax.
fn grad_term(at: u32) -> f32 {
    if (LOG == 1u) {
        return dy[at];
    }
    return dy[at] * ys[at];
}

// dx for one element, given the row's sum of grad_term.
fn grad_finish(at: u32, total: f32) -> f32 {
    if (LOG == 1u) {
        return dy[at] - exp(ys[at]) * total;
    }
    return ys[at] * (dy[at] - total);
}

@compute @workgroup_size(256)
fn softmax_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = wid.y * nwg.x + wid.x;
    let live = r < p.rows;
    let base = row_base(r);
    var acc = 0.0;
    if (live) {
        for (var k = lid; k < p.len; k += WG) {
            acc += grad_term(base + k * p.inner);
        }
    }
    tree_s[lid] = acc;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        if (lid < half) {
            tree_s[lid] += tree_s[lid + half];
        }
        workgroupBarrier();
    }
    let total = tree_s[0];
    if (live) {
        for (var k = lid; k < p.len; k += WG) {
            let at = base + k * p.inner;
            dx[at] = grad_finish(at, total);
        }
    }
}

@compute @workgroup_size(256)
fn softmax_backward_small(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let r = (wid.y * nwg.x + wid.x) * WG + lid;
    if (r >= p.rows) {
        return;
    }
    let base = row_base(r);
    var total = 0.0;
    for (var k = 0u; k < p.len; k++) {
        total += grad_term(base + k * p.inner);
    }
    for (var k = 0u; k < p.len; k++) {
        let at = base + k * p.inner;
        dx[at] = grad_finish(at, total);
    }
}
