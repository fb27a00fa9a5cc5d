// Recurrent layers (ONNX RNN, LSTM, GRU; forward direction, layout 0, default activations)
// and their backward through time.
//
// S: sequence length; B: batch; H: hidden size; G: gates of the cell (RNN 1; LSTM 4, ONNX
// order i, o, f, c; GRU 3, ONNX order z, r, h); GH = G·H. t: a time step; b: a batch element;
// u, k: hidden units; j: a gate row (0 .. GH); n = t·B + b: a row of the (S·B, ..) matrices.
//
// The input projections x_t·Wᵀ of all steps are one matmul made before `recurrent_forward`
// (xp). The recurrence couples only the units of one batch element, so ONE workgroup owns a
// few (BT) batch elements for the whole sequence and steps through time with a storage barrier
// between steps: the whole sequence is one dispatch and one recorded node, and every step's
// state is written straight into its slice of the outputs. (The cost: B / BT workgroups of
// parallelism.)
//
// `saved` holds, per row n, SS slots of H values: everything the backward needs.
//   RNN  (SS 2): h_t, h_{t-1}
//   LSTM (SS 6): i, o, f, c~ (activations), c_{t-1}, h_{t-1}
//   GRU  (SS 5): z, r, h~ (activations), q, h_{t-1}, where q = R_h·h_{t-1} + Rb_h with
//                linear_before_reset and q = r ⊙ h_{t-1} without.
// The last slot is always h_{t-1}; the forward reads the recurrent input from there.
//
// Workgroup size 64 for the two sequence kernels: the invocations of a workgroup stride over
// the H units, so a small H leaves few of them idle, while 64 is a multiple of every SIMD
// width. The gradient kernels say why at their entry points.

struct Params {
    seq: u32,
    batch: u32,
    hidden: u32,
    gates: u32,
    // recurrent_weight_grad: rows S·B, 32 x 32 tiles per side of one gate's H x H block, and
    // in `offset` the length of a saved row. recurrent_bias_grad: rows S·B.
    // recurrent_tail: count, offset.
    rows: u32,
    tiles: u32,
    count: u32,
    offset: u32,
    // recurrent_weight_grad: the saved slot that multiplies each gate's rows of dR.
    slots: vec4<u32>,
}

// 0 = RNN, 1 = LSTM, 2 = GRU.
override CELL: u32 = 0u;
// GRU linear_before_reset (0 or 1).
override LBR: u32 = 0u;

const WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;

fn cell_gates() -> u32 {
    if (CELL == 1u) {
        return 4u;
    }
    if (CELL == 2u) {
        return 3u;
    }
    return 1u;
}

fn cell_slots() -> u32 {
    if (CELL == 1u) {
        return 6u;
    }
    if (CELL == 2u) {
        return 5u;
    }
    return 2u;
}

// Rows of R the forward multiplies by h_{t-1} in its first phase (GRU without
// linear_before_reset multiplies R_h by r ⊙ h_{t-1} in a second phase).
fn first_phase_rows() -> u32 {
    if (CELL == 2u && LBR == 0u) {
        return 2u;
    }
    return cell_gates();
}

// kiln:include sigmoid
// kiln:include tanh

// ---- forward -----------------------------------------------------------------------------
// A workgroup owns BT consecutive batch elements (BT <= 4, a pipeline constant chosen from the
// batch size): the recurrent products accumulate in vec4s whose lanes are those batch
// elements, so every R value loaded serves BT of them. Lanes past BT or past the batch read a
// valid (clamped) row and are never stored; the compiler drops lanes past BT entirely.
@group(0) @binding(1) var<storage, read> xp: array<f32>;          // (S, B, GH) x·Wᵀ, no bias
@group(0) @binding(2) var<storage, read> rt: array<f32>;          // (H, GH) Rᵀ
@group(0) @binding(3) var<storage, read> bias: array<f32>;        // (2·GH) [Wb, Rb]
@group(0) @binding(4) var<storage, read> h0: array<f32>;          // (B, H)
@group(0) @binding(5) var<storage, read> c0: array<f32>;          // (B, H), LSTM only
@group(0) @binding(6) var<storage, read_write> y: array<f32>;     // (S, B, H)
@group(0) @binding(7) var<storage, read_write> last: array<f32>;  // (B, H): h_S; LSTM: c_S
@group(0) @binding(8) var<storage, read_write> saved: array<f32>; // (S, B, SS·H)

// Batch elements per workgroup of the two sequence kernels (1 to 4).
override BT: u32 = 1u;

// The workgroup's batch elements, one per lane, clamped into the batch.
fn lane_batch(b0: u32) -> vec4<u32> {
    return min(vec4<u32>(b0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.batch - 1u));
}

// Which lanes hold a batch element of this workgroup.
fn lane_live(b0: u32) -> vec4<bool> {
    let q = vec4<u32>(0u, 1u, 2u, 3u);
    return (vec4<u32>(b0) + q < vec4<u32>(p.batch)) & (q < vec4<u32>(BT));
}

// Values at offsets o + k of `saved`, one per lane (lanes past BT stay 0).
fn saved4(o: vec4<u32>, k: u32) -> vec4<f32> {
    var v = vec4<f32>(saved[o.x + k], 0.0, 0.0, 0.0);
    if (BT > 1u) {
        v.y = saved[o.y + k];
    }
    if (BT > 2u) {
        v.z = saved[o.z + k];
    }
    if (BT > 3u) {
        v.w = saved[o.w + k];
    }
    return v;
}

// Input projection plus both biases of gate row j at projection row x0.
fn pre(x0: u32, gh: u32, j: u32) -> f32 {
    return xp[x0 + j] + bias[j] + bias[gh + j];
}

// Stores h_t of unit u of batch element b: into y, as the next step's h_{t-1}, or (last
// step) into `last`.
fn store_h(t: u32, b: u32, u: u32, h: f32) {
    let hn = p.hidden;
    let n = t * p.batch + b;
    y[n * hn + u] = h;
    let ss = cell_slots();
    if (t + 1u < p.seq) {
        saved[(n + p.batch) * ss * hn + (ss - 1u) * hn + u] = h;
    } else if (CELL != 1u) {
        last[b * hn + u] = h;
    }
}

// The gate math of unit u of batch element b at step t, given the recurrent products
// a0..a3 of rows u, H + u, 2H + u, 3H + u (those of the first phase).
fn forward_cell(t: u32, b: u32, u: u32, a0: f32, a1: f32, a2: f32, a3: f32) {
    let hn = p.hidden;
    let gh = cell_gates() * hn;
    let ss = cell_slots();
    let n = t * p.batch + b;
    let s0 = n * ss * hn;
    let x0 = n * gh;
    let hp = saved[s0 + (ss - 1u) * hn + u];
    if (CELL == 0u) {
        let h = stable_tanh(pre(x0, gh, u) + a0);
        saved[s0 + u] = h;
        store_h(t, b, u, h);
    } else if (CELL == 1u) {
        let i = stable_sigmoid(pre(x0, gh, u) + a0);
        let o = stable_sigmoid(pre(x0, gh, hn + u) + a1);
        let f = stable_sigmoid(pre(x0, gh, 2u * hn + u) + a2);
        let g = stable_tanh(pre(x0, gh, 3u * hn + u) + a3);
        let c = f * saved[s0 + 4u * hn + u] + i * g;
        saved[s0 + u] = i;
        saved[s0 + hn + u] = o;
        saved[s0 + 2u * hn + u] = f;
        saved[s0 + 3u * hn + u] = g;
        if (t + 1u < p.seq) {
            saved[(n + p.batch) * ss * hn + 4u * hn + u] = c;
        } else {
            last[b * hn + u] = c;
        }
        store_h(t, b, u, o * stable_tanh(c));
    } else {
        let z = stable_sigmoid(pre(x0, gh, u) + a0);
        let r = stable_sigmoid(pre(x0, gh, hn + u) + a1);
        saved[s0 + u] = z;
        saved[s0 + hn + u] = r;
        if (LBR == 1u) {
            let q = a2 + bias[gh + 2u * hn + u];
            let hh = stable_tanh(xp[x0 + 2u * hn + u] + bias[2u * hn + u] + r * q);
            saved[s0 + 2u * hn + u] = hh;
            saved[s0 + 3u * hn + u] = q;
            store_h(t, b, u, (1.0 - z) * hh + z * hp);
        } else {
            saved[s0 + 3u * hn + u] = r * hp;
        }
    }
}

// The GRU's h gate without linear_before_reset, given a = R_h (r ⊙ h_{t-1}) of unit u.
fn forward_gru_h(t: u32, b: u32, u: u32, a: f32) {
    let hn = p.hidden;
    let gh = 3u * hn;
    let n = t * p.batch + b;
    let s0 = n * 5u * hn;
    let hh = stable_tanh(pre(n * gh, gh, 2u * hn + u) + a);
    let z = saved[s0 + u];
    saved[s0 + 2u * hn + u] = hh;
    store_h(t, b, u, (1.0 - z) * hh + z * saved[s0 + 4u * hn + u]);
}

@compute @workgroup_size(64)
fn recurrent_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // The first batch element; uniform across the workgroup, so returning here is uniform too.
    let b0 = (wid.y * nwg.x + wid.x) * BT;
    if (b0 >= p.batch) {
        return;
    }
    let hn = p.hidden;
    let gh = cell_gates() * hn;
    let row = cell_slots() * hn;
    let hp_slot = (cell_slots() - 1u) * hn;
    let nr = first_phase_rows();
    let bl = lane_batch(b0);
    let live = lane_live(b0);

    // Step 0's h_{t-1} (and c_{t-1}) are the initial states.
    for (var u = lid; u < hn; u += WG) {
        for (var q = 0u; q < 4u; q++) {
            if (live[q]) {
                let b = bl[q];
                saved[b * row + hp_slot + u] = h0[b * hn + u];
                if (CELL == 1u) {
                    saved[b * row + 4u * hn + u] = c0[b * hn + u];
                }
            }
        }
    }
    storageBarrier();

    for (var t = 0u; t < p.seq; t++) {
        let s0 = (vec4<u32>(t * p.batch) + bl) * row; // each lane's saved row
        let hp0 = s0 + vec4<u32>(hp_slot);
        for (var u = lid; u < hn; u += WG) {
            // R h_{t-1} for rows u, H + u, 2H + u, 3H + u. Rᵀ is read along its rows, so
            // neighbouring invocations read neighbouring addresses.
            var a0 = vec4<f32>(0.0);
            var a1 = vec4<f32>(0.0);
            var a2 = vec4<f32>(0.0);
            var a3 = vec4<f32>(0.0);
            var rk = u;
            for (var k = 0u; k < hn; k++) {
                let hk = saved4(hp0, k);
                a0 = fma(vec4<f32>(rt[rk]), hk, a0);
                if (nr > 1u) {
                    a1 = fma(vec4<f32>(rt[rk + hn]), hk, a1);
                }
                if (nr > 2u) {
                    a2 = fma(vec4<f32>(rt[rk + 2u * hn]), hk, a2);
                }
                if (nr > 3u) {
                    a3 = fma(vec4<f32>(rt[rk + 3u * hn]), hk, a3);
                }
                rk += gh;
            }
            for (var q = 0u; q < 4u; q++) {
                if (live[q]) {
                    forward_cell(t, bl[q], u, a0[q], a1[q], a2[q], a3[q]);
                }
            }
        }
        if (CELL == 2u && LBR == 0u) {
            // Second phase: R_h (r ⊙ h_{t-1}) needs every unit's r.
            storageBarrier();
            let m0 = s0 + vec4<u32>(3u * hn);
            for (var u = lid; u < hn; u += WG) {
                var a = vec4<f32>(0.0);
                var rk = 2u * hn + u;
                for (var k = 0u; k < hn; k++) {
                    a = fma(vec4<f32>(rt[rk]), saved4(m0, k), a);
                    rk += gh;
                }
                for (var q = 0u; q < 4u; q++) {
                    if (live[q]) {
                        forward_gru_h(t, bl[q], u, a[q]);
                    }
                }
            }
        }
        storageBarrier();
    }
}

// ---- backward through time ---------------------------------------------------------------
// dg: the gradient of every gate's pre-activation (the sum x·Wᵀ + R·h + Wb + Rb), which is
// also the gradient of the x·Wᵀ and Wb terms. For the GRU with linear_before_reset the h gate's
// recurrent term is r ⊙ (R_h h + Rb_h), so its R-side gradient differs: dgr (in `aux`) holds
// the R-side gradient of every row. dh0 (and dc0, in `aux`) carry the running dh_t (dc_t)
// between steps and end as the initial states' gradients. Batch tiling as in the forward.
@group(0) @binding(1) var<storage, read> rw: array<f32>;             // (GH, H) R
@group(0) @binding(2) var<storage, read> sv: array<f32>;             // (S, B, SS·H) saved
@group(0) @binding(3) var<storage, read> dy: array<f32>;             // (S, B, H)
@group(0) @binding(4) var<storage, read> dh_last: array<f32>;        // (B, H)
@group(0) @binding(5) var<storage, read> dc_last: array<f32>;        // (B, H), LSTM only
@group(0) @binding(6) var<storage, read_write> dg: array<f32>;       // (S, B, GH)
@group(0) @binding(7) var<storage, read_write> dh0: array<f32>;      // (B, H)
// LSTM: dc0 (B, H). GRU with linear_before_reset: dgr (S, B, GH). Otherwise unused (1).
@group(0) @binding(8) var<storage, read_write> aux: array<f32>;

// Values at offsets o + j of dg (or of aux when `from_aux`), one per lane.
fn grads4(o: vec4<u32>, j: u32, from_aux: bool) -> vec4<f32> {
    if (from_aux) {
        var v = vec4<f32>(aux[o.x + j], 0.0, 0.0, 0.0);
        if (BT > 1u) {
            v.y = aux[o.y + j];
        }
        if (BT > 2u) {
            v.z = aux[o.z + j];
        }
        if (BT > 3u) {
            v.w = aux[o.w + j];
        }
        return v;
    }
    var v = vec4<f32>(dg[o.x + j], 0.0, 0.0, 0.0);
    if (BT > 1u) {
        v.y = dg[o.y + j];
    }
    if (BT > 2u) {
        v.z = dg[o.z + j];
    }
    if (BT > 3u) {
        v.w = dg[o.w + j];
    }
    return v;
}

// Phase A: the gate gradients of unit u of batch element b at step t, from
// dh_t = dy_t + (the carry from step t + 1).
fn backward_cell(t: u32, b: u32, u: u32) {
    let hn = p.hidden;
    let gh = cell_gates() * hn;
    let ss = cell_slots();
    let n = t * p.batch + b;
    let s0 = n * ss * hn;
    let g0 = n * gh;
    let hb = b * hn;
    let dh = dy[n * hn + u] + dh0[hb + u];
    if (CELL == 0u) {
        let a = sv[s0 + u];
        dg[g0 + u] = dh * (1.0 - a * a);
    } else if (CELL == 1u) {
        let i = sv[s0 + u];
        let o = sv[s0 + hn + u];
        let f = sv[s0 + 2u * hn + u];
        let g = sv[s0 + 3u * hn + u];
        let cp = sv[s0 + 4u * hn + u];
        let tc = stable_tanh(f * cp + i * g);
        let dc = aux[hb + u] + dh * o * (1.0 - tc * tc);
        aux[hb + u] = dc * f;
        dg[g0 + u] = dc * g * i * (1.0 - i);
        dg[g0 + hn + u] = dh * tc * o * (1.0 - o);
        dg[g0 + 2u * hn + u] = dc * cp * f * (1.0 - f);
        dg[g0 + 3u * hn + u] = dc * i * (1.0 - g * g);
    } else {
        let z = sv[s0 + u];
        let r = sv[s0 + hn + u];
        let hh = sv[s0 + 2u * hn + u];
        let hp = sv[s0 + 4u * hn + u];
        let dpn = dh * (1.0 - z) * (1.0 - hh * hh);
        let dpz = dh * (hp - hh) * z * (1.0 - z);
        dg[g0 + u] = dpz;
        dg[g0 + 2u * hn + u] = dpn;
        dh0[hb + u] = dh * z;
        if (LBR == 1u) {
            let dpr = dpn * sv[s0 + 3u * hn + u] * r * (1.0 - r);
            dg[g0 + hn + u] = dpr;
            aux[g0 + u] = dpz;
            aux[g0 + hn + u] = dpr;
            aux[g0 + 2u * hn + u] = dpn * r;
        }
    }
}

// Phase B of the GRU without linear_before_reset, given dm = R_hᵀ dpn for unit u: dr, and
// the r ⊙ term of dh_{t-1}.
fn backward_gru_r(t: u32, b: u32, u: u32, dm: f32) {
    let hn = p.hidden;
    let n = t * p.batch + b;
    let s0 = n * 5u * hn;
    let r = sv[s0 + hn + u];
    dg[n * 3u * hn + hn + u] = dm * sv[s0 + 4u * hn + u] * r * (1.0 - r);
    dh0[b * hn + u] += dm * r;
}

@compute @workgroup_size(64)
fn recurrent_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let b0 = (wid.y * nwg.x + wid.x) * BT;
    if (b0 >= p.batch) {
        return;
    }
    let hn = p.hidden;
    let gh = cell_gates() * hn;
    let bl = lane_batch(b0);
    let live = lane_live(b0);

    // Each invocation reads and writes only its own units' carries: no barrier needed.
    for (var u = lid; u < hn; u += WG) {
        for (var q = 0u; q < 4u; q++) {
            if (live[q]) {
                let hb = bl[q] * hn;
                dh0[hb + u] = dh_last[hb + u];
                if (CELL == 1u) {
                    aux[hb + u] = dc_last[hb + u];
                }
            }
        }
    }

    for (var step = 0u; step < p.seq; step++) {
        let t = p.seq - 1u - step;
        let g0 = (vec4<u32>(t * p.batch) + bl) * gh; // each lane's gate row
        for (var u = lid; u < hn; u += WG) {
            for (var q = 0u; q < 4u; q++) {
                if (live[q]) {
                    backward_cell(t, bl[q], u);
                }
            }
        }
        storageBarrier();
        if (CELL == 2u && LBR == 0u) {
            // Phase B: d(r ⊙ h_{t-1}) = R_hᵀ dpn needs every unit's dpn; it gives dr.
            let n0 = g0 + vec4<u32>(2u * hn);
            for (var u = lid; u < hn; u += WG) {
                var dm = vec4<f32>(0.0);
                var jr = 2u * hn * hn + u;
                for (var j = 0u; j < hn; j++) {
                    dm = fma(grads4(n0, j, false), vec4<f32>(rw[jr]), dm);
                    jr += hn;
                }
                for (var q = 0u; q < 4u; q++) {
                    if (live[q]) {
                        backward_gru_r(t, bl[q], u, dm[q]);
                    }
                }
            }
            storageBarrier();
        }
        // Phase C: dh_{t-1} = Rᵀ (R-side gate gradients) (+ the direct GRU terms). The GRU
        // without linear_before_reset handled R_h in phase B.
        var rows = gh;
        if (CELL == 2u && LBR == 0u) {
            rows = 2u * hn;
        }
        let from_aux = CELL == 2u && LBR == 1u;
        for (var u = lid; u < hn; u += WG) {
            var acc = vec4<f32>(0.0);
            var jr = u;
            for (var j = 0u; j < rows; j++) {
                acc = fma(grads4(g0, j, from_aux), vec4<f32>(rw[jr]), acc);
                jr += hn;
            }
            for (var q = 0u; q < 4u; q++) {
                if (live[q]) {
                    let i = bl[q] * hn + u;
                    if (CELL == 2u) {
                        dh0[i] += acc[q];
                    } else {
                        dh0[i] = acc[q];
                    }
                }
            }
        }
    }
}

// ---- dR ----------------------------------------------------------------------------------
// dR[g·H + j, k] = Σ_n dgr[n, g·H + j] · saved[n, slots[g]·H + k]: per gate a (H, H) product
// over the S·B rows, with the gate's own multiplier (h_{t-1}, or r ⊙ h_{t-1} for the GRU's h
// gate without linear_before_reset). Register tiling as in matmul.wgsl: 8 x 8 invocations of
// 4 x 4 outputs cover a 32 x 32 tile; workgroup index -> (gate, tile row, tile column).
@group(0) @binding(1) var<storage, read> wg_a: array<f32>;       // (S·B, GH) dgr
@group(0) @binding(2) var<storage, read> wg_s: array<f32>;       // (S·B, SS·H) saved
@group(0) @binding(3) var<storage, read_write> wg_c: array<f32>; // (GH, H) dR

@compute @workgroup_size(8, 8)
fn recurrent_weight_grad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let wg = wid.y * nwg.x + wid.x;
    let tn = wg % p.tiles;
    let rest = wg / p.tiles;
    let tm = rest % p.tiles;
    let g = rest / p.tiles;
    if (g >= p.gates) {
        return;
    }
    let hn = p.hidden;
    let gh = p.gates * hn;
    let ld = p.offset; // saved row length SS·H
    let m0 = tm * 32u + lid.y * 4u;
    let n0 = tn * 32u + lid.x;
    // Rows and columns past the edge read a clamped address and are never stored.
    let edge = hn - 1u;
    let ca0 = g * hn + min(m0, edge);
    let ca1 = g * hn + min(m0 + 1u, edge);
    let ca2 = g * hn + min(m0 + 2u, edge);
    let ca3 = g * hn + min(m0 + 3u, edge);
    let so = p.slots[g] * hn;
    let cb0 = so + min(n0, edge);
    let cb1 = so + min(n0 + 8u, edge);
    let cb2 = so + min(n0 + 16u, edge);
    let cb3 = so + min(n0 + 24u, edge);
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var ra = 0u;
    var rs = 0u;
    for (var n = 0u; n < p.rows; n++) {
        let bv = vec4<f32>(wg_s[rs + cb0], wg_s[rs + cb1], wg_s[rs + cb2], wg_s[rs + cb3]);
        acc0 = fma(vec4<f32>(wg_a[ra + ca0]), bv, acc0);
        acc1 = fma(vec4<f32>(wg_a[ra + ca1]), bv, acc1);
        acc2 = fma(vec4<f32>(wg_a[ra + ca2]), bv, acc2);
        acc3 = fma(vec4<f32>(wg_a[ra + ca3]), bv, acc3);
        ra += gh;
        rs += ld;
    }
    let c0 = g * hn * hn;
    store_dr(c0, m0, n0, acc0);
    store_dr(c0, m0 + 1u, n0, acc1);
    store_dr(c0, m0 + 2u, n0, acc2);
    store_dr(c0, m0 + 3u, n0, acc3);
}

// Stores the in-range part of one accumulator row: columns n0, n0 + 8, n0 + 16, n0 + 24.
fn store_dr(c0: u32, m: u32, n0: u32, v: vec4<f32>) {
    let hn = p.hidden;
    if (m >= hn) {
        return;
    }
    for (var q = 0u; q < 4u; q++) {
        let k = n0 + q * 8u;
        if (k < hn) {
            wg_c[c0 + m * hn + k] = v[q];
        }
    }
}

// ---- db ----------------------------------------------------------------------------------
// db = [Σ_n dg[n, :], Σ_n dgr[n, :]] = [dWb, dRb]. One invocation per output column; 256 per
// workgroup (the WebGPU maximum; neighbouring invocations read neighbouring columns).
@group(0) @binding(1) var<storage, read> bg_x: array<f32>;       // (S·B, GH) dg
@group(0) @binding(2) var<storage, read> bg_r: array<f32>;       // (S·B, GH) dgr
@group(0) @binding(3) var<storage, read_write> bg_out: array<f32>; // (2·GH)

@compute @workgroup_size(256)
fn recurrent_bias_grad(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let j = (wid.y * nwg.x + wid.x) * 256u + lid;
    let gh = p.gates * p.hidden;
    if (j >= 2u * gh) {
        return;
    }
    var acc = 0.0;
    if (j < gh) {
        for (var n = 0u; n < p.rows; n++) {
            acc += bg_x[n * gh + j];
        }
    } else {
        for (var n = 0u; n < p.rows; n++) {
            acc += bg_r[n * gh + j - gh];
        }
    }
    bg_out[j] = acc;
}

// ---- last step ---------------------------------------------------------------------------
// out[i] = src[offset + i] for i < count: the LSTM's h_S = y[S - 1]. 256 per workgroup.
@group(0) @binding(1) var<storage, read> tail_src: array<f32>;       // (S, B, H)
@group(0) @binding(2) var<storage, read_write> tail_out: array<f32>; // (B, H)

@compute @workgroup_size(256)
fn recurrent_tail(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p.count) {
        return;
    }
    tail_out[i] = tail_src[p.offset + i];
}
