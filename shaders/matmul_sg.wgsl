// Batched matrix multiplication for CPU emulators with 8-wide subgroups (lavapipe on AVX2):
// C[b] = op(A[b]) @ op(B[b]), the same contract as shaders/matmul.wgsl, read as vec4s.
//
// M: rows of C and of op(A).  N: columns of C and of op(B).  K: the shared (inner) depth.
// b: the batch index; each operand finds its matrix through its own element stride per output
//    batch dim (0 where broadcast). TA = 1: A is stored (.., K, M) (op(A) = Aᵀ); TB = 1: B is
//    stored (.., N, K). Override constants, so each combination is its own pipeline.
// Requirements (checked by src/kernels/matmul.rs, which otherwise runs shaders/matmul.wgsl):
//    N % 4 = 0, and every operand's contiguous dimension a multiple of 4 (K for A, or M when
//    TA = 1; N for B, or K when TB = 1), so rows start on vec4 boundaries; subgroups of exactly
//    8 invocations (one workgroup is one subgroup).
//
// Why this shape. On lavapipe an invocation is one lane of an 8-wide SIMD row, and every
// storage load is a per-lane scalar loop (bounds check, branch, insert), so loads, not FMAs,
// set the speed. Three things cut them:
//  - vec4 loads: one per-lane loop fetches 4 values (about 2.5x cheaper per value measured);
//  - each invocation keeps a TM x TN = 32 x (4 TNV) block of C in registers (TNV vec4 column
//    chunks per row), so a step of 4 k costs 4 TNV B loads for 512 TNV FMAs;
//  - the 8 lanes of a workgroup share A's rows: instead of each loading all 32, lane l loads
//    rows 8 g + l (TA = 0; one vec4 holds 4 k steps) or the row chunk 4 l .. 4 l + 3 at each of
//    4 k steps (TA = 1), and subgroupBroadcast (an element extract on a CPU) hands the values
//    to every lane: 4 loads instead of 32. Measured at 1024³, GFLOP/s per CPU-second: scalar
//    32 x 12 tile 9.4, vec4 loads 13-14, vec4 + shared A rows 21-23.
// Column chunks are interleaved across lanes (lane x owns chunks c0 + 8 j), so neighbouring
// lanes read neighbouring memory. Rows and chunks past the edge of C read a clamped, valid
// address and are never stored: the hot loop has no branches.
// Workgroup 8 (one subgroup): it owns a 32 x 32 TNV tile of C, small enough that a 256 x 256
// product still makes 24-32 workgroups for the CPU's threads to share.

const TM: u32 = 32u; // rows of C per workgroup (= every invocation's row count)

override TA: u32 = 0u;
override TB: u32 = 0u;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch_count: u32,                 // product of batch_shape
    batch_rank: u32,
    sa_m: u32,                        // op(A) element strides along m and k (unused here)
    sa_k: u32,
    sb_k: u32,                        // op(B) element strides along k and n (unused here)
    sb_n: u32,
    tiles_m: u32,                     // ceil(M / TM)
    tiles_n: u32,                     // ceil(N / (32 TNV))
    _pad: u32,
    batch_shape: array<vec4<u32>, 2>, // output batch dims, 8 slots
    a_batch: array<vec4<u32>, 2>,     // A's element stride per output batch dim (0 = broadcast)
    b_batch: array<vec4<u32>, 2>,     // B's element stride per output batch dim (0 = broadcast)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> av: array<vec4<f32>>;       // (A batch.., M, K / 4), or (.., K, M / 4)
@group(0) @binding(2) var<storage, read> bv: array<vec4<f32>>;       // (B batch.., K, N / 4), or (.., N, K / 4)
@group(0) @binding(3) var<storage, read_write> cv: array<vec4<f32>>; // (batch.., M, N / 4)

// The (batch, tile row, tile column) of a linear workgroup index, with the operands' element
// offsets for that batch; `live` is false for the grid's spare workgroups.
struct Tile {
    live: bool,
    batch: u32,
    tm: u32,
    tn: u32,
    a_off: u32,
    b_off: u32,
}

fn tile_of(wg: u32) -> Tile {
    let tn = wg % p.tiles_n;
    let rest = wg / p.tiles_n;
    let tm = rest % p.tiles_m;
    let batch = rest / p.tiles_m;
    var rem = batch;
    var a_off = 0u;
    var b_off = 0u;
    for (var d = i32(p.batch_rank) - 1; d >= 0; d--) {
        let i = u32(d);
        let size = p.batch_shape[i >> 2u][i & 3u];
        let coord = rem % size;
        rem = rem / size;
        a_off += coord * p.a_batch[i >> 2u][i & 3u];
        b_off += coord * p.b_batch[i >> 2u][i & 3u];
    }
    return Tile(batch < p.batch_count, batch, tm, tn, a_off, b_off);
}

// vec4 offset of row m (clamped) of A stored (M, K) (TA = 0).
fn a_row(a_off: u32, m: u32) -> u32 {
    return (a_off + min(m, p.m - 1u) * p.k) / 4u;
}

// vec4 offset of column n (clamped) of op(B), a row of B stored (N, K) (TB = 1).
fn b_col(b_off: u32, n: u32) -> u32 {
    return (b_off + min(n, p.n - 1u) * p.k) / 4u;
}

// A row of an invocation's tile: 2 or 3 chunks of 4 columns (chunk j = columns 4 (c0 + 8 j) ..).
struct Row2 {
    c0: vec4<f32>,
    c1: vec4<f32>,
}
struct Row3 {
    c0: vec4<f32>,
    c1: vec4<f32>,
    c2: vec4<f32>,
}

// r + Σ_s a[s] · b_s: four k steps for one row.
fn step2(r: Row2, a: vec4<f32>, b0: Row2, b1: Row2, b2: Row2, b3: Row2) -> Row2 {
    let c0 = fma(vec4<f32>(a.w), b3.c0, fma(vec4<f32>(a.z), b2.c0, fma(vec4<f32>(a.y), b1.c0, fma(vec4<f32>(a.x), b0.c0, r.c0))));
    let c1 = fma(vec4<f32>(a.w), b3.c1, fma(vec4<f32>(a.z), b2.c1, fma(vec4<f32>(a.y), b1.c1, fma(vec4<f32>(a.x), b0.c1, r.c1))));
    return Row2(c0, c1);
}
fn step3(r: Row3, a: vec4<f32>, b0: Row3, b1: Row3, b2: Row3, b3: Row3) -> Row3 {
    let c0 = fma(vec4<f32>(a.w), b3.c0, fma(vec4<f32>(a.z), b2.c0, fma(vec4<f32>(a.y), b1.c0, fma(vec4<f32>(a.x), b0.c0, r.c0))));
    let c1 = fma(vec4<f32>(a.w), b3.c1, fma(vec4<f32>(a.z), b2.c1, fma(vec4<f32>(a.y), b1.c1, fma(vec4<f32>(a.x), b0.c1, r.c1))));
    let c2 = fma(vec4<f32>(a.w), b3.c2, fma(vec4<f32>(a.z), b2.c2, fma(vec4<f32>(a.y), b1.c2, fma(vec4<f32>(a.x), b0.c2, r.c2))));
    return Row3(c0, c1, c2);
}

// Stores the in-range chunks of row m of a tile whose first chunk is c0; `c_row` is the batch's
// first row of C.
fn store_chunk(c_row: u32, m: u32, c: u32, v: vec4<f32>) {
    let n4 = p.n / 4u;
    if (c < n4) {
        cv[(c_row + m) * n4 + c] = v;
    }
}
fn store2(c_row: u32, m: u32, c0: u32, r: Row2) {
    if (m < p.m) {
        store_chunk(c_row, m, c0, r.c0);
        store_chunk(c_row, m, c0 + 8u, r.c1);
    }
}
fn store3(c_row: u32, m: u32, c0: u32, r: Row3) {
    if (m < p.m) {
        store_chunk(c_row, m, c0, r.c0);
        store_chunk(c_row, m, c0 + 8u, r.c1);
        store_chunk(c_row, m, c0 + 16u, r.c2);
    }
}

// ---- generated entry points: the code is unrolled by hand (Mesa does not unroll loops over
// private arrays and the kernel would run ~4x slower); matmul_sg: 32 x 12, matmul_sg2: 32 x 8.

@compute @workgroup_size(8)
fn matmul_sg(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let t = tile_of(wid.y * nwg.x + wid.x);
    if (!t.live) {
        return;
    }
    let m0 = t.tm * TM;
    let c0 = t.tn * 24u + lid; // the invocation's first column chunk (4 columns)
    let n4 = p.n / 4u;
    let k4 = p.k / 4u;
    let m4 = p.m / 4u;
    let last_c = n4 - 1u;
    // op(A): this lane's rows (TA = 0: rows 8 g + lane at k = 0) or row chunk (TA = 1).
    let ra0 = a_row(t.a_off, m0 + 0u + lane);
    let ra1 = a_row(t.a_off, m0 + 8u + lane);
    let ra2 = a_row(t.a_off, m0 + 16u + lane);
    let ra3 = a_row(t.a_off, m0 + 24u + lane);
    let rt = t.a_off / 4u + min(m0 / 4u + lane, max(m4, 1u) - 1u);
    // op(B): the invocation's column chunks (TB = 0), or its columns' rows of B (TB = 1).
    let cb0 = t.b_off / 4u + min(c0 + 0u, last_c);
    let cb1 = t.b_off / 4u + min(c0 + 8u, last_c);
    let cb2 = t.b_off / 4u + min(c0 + 16u, last_c);
    let bt0_0 = b_col(t.b_off, 4u * (c0 + 0u) + 0u);
    let bt0_1 = b_col(t.b_off, 4u * (c0 + 0u) + 1u);
    let bt0_2 = b_col(t.b_off, 4u * (c0 + 0u) + 2u);
    let bt0_3 = b_col(t.b_off, 4u * (c0 + 0u) + 3u);
    let bt1_0 = b_col(t.b_off, 4u * (c0 + 8u) + 0u);
    let bt1_1 = b_col(t.b_off, 4u * (c0 + 8u) + 1u);
    let bt1_2 = b_col(t.b_off, 4u * (c0 + 8u) + 2u);
    let bt1_3 = b_col(t.b_off, 4u * (c0 + 8u) + 3u);
    let bt2_0 = b_col(t.b_off, 4u * (c0 + 16u) + 0u);
    let bt2_1 = b_col(t.b_off, 4u * (c0 + 16u) + 1u);
    let bt2_2 = b_col(t.b_off, 4u * (c0 + 16u) + 2u);
    let bt2_3 = b_col(t.b_off, 4u * (c0 + 16u) + 3u);
    var r0 = Row3();
    var r1 = Row3();
    var r2 = Row3();
    var r3 = Row3();
    var r4 = Row3();
    var r5 = Row3();
    var r6 = Row3();
    var r7 = Row3();
    var r8 = Row3();
    var r9 = Row3();
    var r10 = Row3();
    var r11 = Row3();
    var r12 = Row3();
    var r13 = Row3();
    var r14 = Row3();
    var r15 = Row3();
    var r16 = Row3();
    var r17 = Row3();
    var r18 = Row3();
    var r19 = Row3();
    var r20 = Row3();
    var r21 = Row3();
    var r22 = Row3();
    var r23 = Row3();
    var r24 = Row3();
    var r25 = Row3();
    var r26 = Row3();
    var r27 = Row3();
    var r28 = Row3();
    var r29 = Row3();
    var r30 = Row3();
    var r31 = Row3();
    var kb = 0u; // vec4 offset of B's row k = 4 kk (TB = 0)
    for (var kk = 0u; kk < k4; kk++) {
        // op(B) at k = 4 kk + s, s = 0..3, over the invocation's columns.
        var b0: Row3;
        var b1: Row3;
        var b2: Row3;
        var b3: Row3;
        if (TB == 0u) {
            b0 = Row3(bv[cb0 + kb], bv[cb1 + kb], bv[cb2 + kb]);
            b1 = Row3(bv[cb0 + kb + 1u * n4], bv[cb1 + kb + 1u * n4], bv[cb2 + kb + 1u * n4]);
            b2 = Row3(bv[cb0 + kb + 2u * n4], bv[cb1 + kb + 2u * n4], bv[cb2 + kb + 2u * n4]);
            b3 = Row3(bv[cb0 + kb + 3u * n4], bv[cb1 + kb + 3u * n4], bv[cb2 + kb + 3u * n4]);
        } else {
            let q0_0 = bv[bt0_0 + kk];
            let q0_1 = bv[bt0_1 + kk];
            let q0_2 = bv[bt0_2 + kk];
            let q0_3 = bv[bt0_3 + kk];
            let q1_0 = bv[bt1_0 + kk];
            let q1_1 = bv[bt1_1 + kk];
            let q1_2 = bv[bt1_2 + kk];
            let q1_3 = bv[bt1_3 + kk];
            let q2_0 = bv[bt2_0 + kk];
            let q2_1 = bv[bt2_1 + kk];
            let q2_2 = bv[bt2_2 + kk];
            let q2_3 = bv[bt2_3 + kk];
            b0 = Row3(vec4<f32>(q0_0.x, q0_1.x, q0_2.x, q0_3.x), vec4<f32>(q1_0.x, q1_1.x, q1_2.x, q1_3.x), vec4<f32>(q2_0.x, q2_1.x, q2_2.x, q2_3.x));
            b1 = Row3(vec4<f32>(q0_0.y, q0_1.y, q0_2.y, q0_3.y), vec4<f32>(q1_0.y, q1_1.y, q1_2.y, q1_3.y), vec4<f32>(q2_0.y, q2_1.y, q2_2.y, q2_3.y));
            b2 = Row3(vec4<f32>(q0_0.z, q0_1.z, q0_2.z, q0_3.z), vec4<f32>(q1_0.z, q1_1.z, q1_2.z, q1_3.z), vec4<f32>(q2_0.z, q2_1.z, q2_2.z, q2_3.z));
            b3 = Row3(vec4<f32>(q0_0.w, q0_1.w, q0_2.w, q0_3.w), vec4<f32>(q1_0.w, q1_1.w, q1_2.w, q1_3.w), vec4<f32>(q2_0.w, q2_1.w, q2_2.w, q2_3.w));
        }
        // op(A) at k = 4 kk + 0..3: each lane loads its share (TA = 0: g = rows 8 g + lane;
        // TA = 1: g = k-step, lane = row chunk), subgroupBroadcast hands it to every lane.
        var g0: vec4<f32>;
        var g1: vec4<f32>;
        var g2: vec4<f32>;
        var g3: vec4<f32>;
        if (TA == 0u) {
            g0 = av[ra0 + kk];
            g1 = av[ra1 + kk];
            g2 = av[ra2 + kk];
            g3 = av[ra3 + kk];
        } else {
            let at = rt + 4u * kk * m4;
            g0 = av[at];
            g1 = av[at + 1u * m4];
            g2 = av[at + 2u * m4];
            g3 = av[at + 3u * m4];
        }
        var a0 = vec4<f32>(subgroupBroadcast(g0.x, 0u), subgroupBroadcast(g1.x, 0u), subgroupBroadcast(g2.x, 0u), subgroupBroadcast(g3.x, 0u));
        if (TA == 0u) {
            a0 = subgroupBroadcast(g0, 0u);
        }
        r0 = step3(r0, a0, b0, b1, b2, b3);
        var a1 = vec4<f32>(subgroupBroadcast(g0.y, 0u), subgroupBroadcast(g1.y, 0u), subgroupBroadcast(g2.y, 0u), subgroupBroadcast(g3.y, 0u));
        if (TA == 0u) {
            a1 = subgroupBroadcast(g0, 1u);
        }
        r1 = step3(r1, a1, b0, b1, b2, b3);
        var a2 = vec4<f32>(subgroupBroadcast(g0.z, 0u), subgroupBroadcast(g1.z, 0u), subgroupBroadcast(g2.z, 0u), subgroupBroadcast(g3.z, 0u));
        if (TA == 0u) {
            a2 = subgroupBroadcast(g0, 2u);
        }
        r2 = step3(r2, a2, b0, b1, b2, b3);
        var a3 = vec4<f32>(subgroupBroadcast(g0.w, 0u), subgroupBroadcast(g1.w, 0u), subgroupBroadcast(g2.w, 0u), subgroupBroadcast(g3.w, 0u));
        if (TA == 0u) {
            a3 = subgroupBroadcast(g0, 3u);
        }
        r3 = step3(r3, a3, b0, b1, b2, b3);
        var a4 = vec4<f32>(subgroupBroadcast(g0.x, 1u), subgroupBroadcast(g1.x, 1u), subgroupBroadcast(g2.x, 1u), subgroupBroadcast(g3.x, 1u));
        if (TA == 0u) {
            a4 = subgroupBroadcast(g0, 4u);
        }
        r4 = step3(r4, a4, b0, b1, b2, b3);
        var a5 = vec4<f32>(subgroupBroadcast(g0.y, 1u), subgroupBroadcast(g1.y, 1u), subgroupBroadcast(g2.y, 1u), subgroupBroadcast(g3.y, 1u));
        if (TA == 0u) {
            a5 = subgroupBroadcast(g0, 5u);
        }
        r5 = step3(r5, a5, b0, b1, b2, b3);
        var a6 = vec4<f32>(subgroupBroadcast(g0.z, 1u), subgroupBroadcast(g1.z, 1u), subgroupBroadcast(g2.z, 1u), subgroupBroadcast(g3.z, 1u));
        if (TA == 0u) {
            a6 = subgroupBroadcast(g0, 6u);
        }
        r6 = step3(r6, a6, b0, b1, b2, b3);
        var a7 = vec4<f32>(subgroupBroadcast(g0.w, 1u), subgroupBroadcast(g1.w, 1u), subgroupBroadcast(g2.w, 1u), subgroupBroadcast(g3.w, 1u));
        if (TA == 0u) {
            a7 = subgroupBroadcast(g0, 7u);
        }
        r7 = step3(r7, a7, b0, b1, b2, b3);
        var a8 = vec4<f32>(subgroupBroadcast(g0.x, 2u), subgroupBroadcast(g1.x, 2u), subgroupBroadcast(g2.x, 2u), subgroupBroadcast(g3.x, 2u));
        if (TA == 0u) {
            a8 = subgroupBroadcast(g1, 0u);
        }
        r8 = step3(r8, a8, b0, b1, b2, b3);
        var a9 = vec4<f32>(subgroupBroadcast(g0.y, 2u), subgroupBroadcast(g1.y, 2u), subgroupBroadcast(g2.y, 2u), subgroupBroadcast(g3.y, 2u));
        if (TA == 0u) {
            a9 = subgroupBroadcast(g1, 1u);
        }
        r9 = step3(r9, a9, b0, b1, b2, b3);
        var a10 = vec4<f32>(subgroupBroadcast(g0.z, 2u), subgroupBroadcast(g1.z, 2u), subgroupBroadcast(g2.z, 2u), subgroupBroadcast(g3.z, 2u));
        if (TA == 0u) {
            a10 = subgroupBroadcast(g1, 2u);
        }
        r10 = step3(r10, a10, b0, b1, b2, b3);
        var a11 = vec4<f32>(subgroupBroadcast(g0.w, 2u), subgroupBroadcast(g1.w, 2u), subgroupBroadcast(g2.w, 2u), subgroupBroadcast(g3.w, 2u));
        if (TA == 0u) {
            a11 = subgroupBroadcast(g1, 3u);
        }
        r11 = step3(r11, a11, b0, b1, b2, b3);
        var a12 = vec4<f32>(subgroupBroadcast(g0.x, 3u), subgroupBroadcast(g1.x, 3u), subgroupBroadcast(g2.x, 3u), subgroupBroadcast(g3.x, 3u));
        if (TA == 0u) {
            a12 = subgroupBroadcast(g1, 4u);
        }
        r12 = step3(r12, a12, b0, b1, b2, b3);
        var a13 = vec4<f32>(subgroupBroadcast(g0.y, 3u), subgroupBroadcast(g1.y, 3u), subgroupBroadcast(g2.y, 3u), subgroupBroadcast(g3.y, 3u));
        if (TA == 0u) {
            a13 = subgroupBroadcast(g1, 5u);
        }
        r13 = step3(r13, a13, b0, b1, b2, b3);
        var a14 = vec4<f32>(subgroupBroadcast(g0.z, 3u), subgroupBroadcast(g1.z, 3u), subgroupBroadcast(g2.z, 3u), subgroupBroadcast(g3.z, 3u));
        if (TA == 0u) {
            a14 = subgroupBroadcast(g1, 6u);
        }
        r14 = step3(r14, a14, b0, b1, b2, b3);
        var a15 = vec4<f32>(subgroupBroadcast(g0.w, 3u), subgroupBroadcast(g1.w, 3u), subgroupBroadcast(g2.w, 3u), subgroupBroadcast(g3.w, 3u));
        if (TA == 0u) {
            a15 = subgroupBroadcast(g1, 7u);
        }
        r15 = step3(r15, a15, b0, b1, b2, b3);
        var a16 = vec4<f32>(subgroupBroadcast(g0.x, 4u), subgroupBroadcast(g1.x, 4u), subgroupBroadcast(g2.x, 4u), subgroupBroadcast(g3.x, 4u));
        if (TA == 0u) {
            a16 = subgroupBroadcast(g2, 0u);
        }
        r16 = step3(r16, a16, b0, b1, b2, b3);
        var a17 = vec4<f32>(subgroupBroadcast(g0.y, 4u), subgroupBroadcast(g1.y, 4u), subgroupBroadcast(g2.y, 4u), subgroupBroadcast(g3.y, 4u));
        if (TA == 0u) {
            a17 = subgroupBroadcast(g2, 1u);
        }
        r17 = step3(r17, a17, b0, b1, b2, b3);
        var a18 = vec4<f32>(subgroupBroadcast(g0.z, 4u), subgroupBroadcast(g1.z, 4u), subgroupBroadcast(g2.z, 4u), subgroupBroadcast(g3.z, 4u));
        if (TA == 0u) {
            a18 = subgroupBroadcast(g2, 2u);
        }
        r18 = step3(r18, a18, b0, b1, b2, b3);
        var a19 = vec4<f32>(subgroupBroadcast(g0.w, 4u), subgroupBroadcast(g1.w, 4u), subgroupBroadcast(g2.w, 4u), subgroupBroadcast(g3.w, 4u));
        if (TA == 0u) {
            a19 = subgroupBroadcast(g2, 3u);
        }
        r19 = step3(r19, a19, b0, b1, b2, b3);
        var a20 = vec4<f32>(subgroupBroadcast(g0.x, 5u), subgroupBroadcast(g1.x, 5u), subgroupBroadcast(g2.x, 5u), subgroupBroadcast(g3.x, 5u));
        if (TA == 0u) {
            a20 = subgroupBroadcast(g2, 4u);
        }
        r20 = step3(r20, a20, b0, b1, b2, b3);
        var a21 = vec4<f32>(subgroupBroadcast(g0.y, 5u), subgroupBroadcast(g1.y, 5u), subgroupBroadcast(g2.y, 5u), subgroupBroadcast(g3.y, 5u));
        if (TA == 0u) {
            a21 = subgroupBroadcast(g2, 5u);
        }
        r21 = step3(r21, a21, b0, b1, b2, b3);
        var a22 = vec4<f32>(subgroupBroadcast(g0.z, 5u), subgroupBroadcast(g1.z, 5u), subgroupBroadcast(g2.z, 5u), subgroupBroadcast(g3.z, 5u));
        if (TA == 0u) {
            a22 = subgroupBroadcast(g2, 6u);
        }
        r22 = step3(r22, a22, b0, b1, b2, b3);
        var a23 = vec4<f32>(subgroupBroadcast(g0.w, 5u), subgroupBroadcast(g1.w, 5u), subgroupBroadcast(g2.w, 5u), subgroupBroadcast(g3.w, 5u));
        if (TA == 0u) {
            a23 = subgroupBroadcast(g2, 7u);
        }
        r23 = step3(r23, a23, b0, b1, b2, b3);
        var a24 = vec4<f32>(subgroupBroadcast(g0.x, 6u), subgroupBroadcast(g1.x, 6u), subgroupBroadcast(g2.x, 6u), subgroupBroadcast(g3.x, 6u));
        if (TA == 0u) {
            a24 = subgroupBroadcast(g3, 0u);
        }
        r24 = step3(r24, a24, b0, b1, b2, b3);
        var a25 = vec4<f32>(subgroupBroadcast(g0.y, 6u), subgroupBroadcast(g1.y, 6u), subgroupBroadcast(g2.y, 6u), subgroupBroadcast(g3.y, 6u));
        if (TA == 0u) {
            a25 = subgroupBroadcast(g3, 1u);
        }
        r25 = step3(r25, a25, b0, b1, b2, b3);
        var a26 = vec4<f32>(subgroupBroadcast(g0.z, 6u), subgroupBroadcast(g1.z, 6u), subgroupBroadcast(g2.z, 6u), subgroupBroadcast(g3.z, 6u));
        if (TA == 0u) {
            a26 = subgroupBroadcast(g3, 2u);
        }
        r26 = step3(r26, a26, b0, b1, b2, b3);
        var a27 = vec4<f32>(subgroupBroadcast(g0.w, 6u), subgroupBroadcast(g1.w, 6u), subgroupBroadcast(g2.w, 6u), subgroupBroadcast(g3.w, 6u));
        if (TA == 0u) {
            a27 = subgroupBroadcast(g3, 3u);
        }
        r27 = step3(r27, a27, b0, b1, b2, b3);
        var a28 = vec4<f32>(subgroupBroadcast(g0.x, 7u), subgroupBroadcast(g1.x, 7u), subgroupBroadcast(g2.x, 7u), subgroupBroadcast(g3.x, 7u));
        if (TA == 0u) {
            a28 = subgroupBroadcast(g3, 4u);
        }
        r28 = step3(r28, a28, b0, b1, b2, b3);
        var a29 = vec4<f32>(subgroupBroadcast(g0.y, 7u), subgroupBroadcast(g1.y, 7u), subgroupBroadcast(g2.y, 7u), subgroupBroadcast(g3.y, 7u));
        if (TA == 0u) {
            a29 = subgroupBroadcast(g3, 5u);
        }
        r29 = step3(r29, a29, b0, b1, b2, b3);
        var a30 = vec4<f32>(subgroupBroadcast(g0.z, 7u), subgroupBroadcast(g1.z, 7u), subgroupBroadcast(g2.z, 7u), subgroupBroadcast(g3.z, 7u));
        if (TA == 0u) {
            a30 = subgroupBroadcast(g3, 6u);
        }
        r30 = step3(r30, a30, b0, b1, b2, b3);
        var a31 = vec4<f32>(subgroupBroadcast(g0.w, 7u), subgroupBroadcast(g1.w, 7u), subgroupBroadcast(g2.w, 7u), subgroupBroadcast(g3.w, 7u));
        if (TA == 0u) {
            a31 = subgroupBroadcast(g3, 7u);
        }
        r31 = step3(r31, a31, b0, b1, b2, b3);
        kb += p.n;
    }
    let c_row = t.batch * p.m;
    store3(c_row, m0 + 0u, c0, r0);
    store3(c_row, m0 + 1u, c0, r1);
    store3(c_row, m0 + 2u, c0, r2);
    store3(c_row, m0 + 3u, c0, r3);
    store3(c_row, m0 + 4u, c0, r4);
    store3(c_row, m0 + 5u, c0, r5);
    store3(c_row, m0 + 6u, c0, r6);
    store3(c_row, m0 + 7u, c0, r7);
    store3(c_row, m0 + 8u, c0, r8);
    store3(c_row, m0 + 9u, c0, r9);
    store3(c_row, m0 + 10u, c0, r10);
    store3(c_row, m0 + 11u, c0, r11);
    store3(c_row, m0 + 12u, c0, r12);
    store3(c_row, m0 + 13u, c0, r13);
    store3(c_row, m0 + 14u, c0, r14);
    store3(c_row, m0 + 15u, c0, r15);
    store3(c_row, m0 + 16u, c0, r16);
    store3(c_row, m0 + 17u, c0, r17);
    store3(c_row, m0 + 18u, c0, r18);
    store3(c_row, m0 + 19u, c0, r19);
    store3(c_row, m0 + 20u, c0, r20);
    store3(c_row, m0 + 21u, c0, r21);
    store3(c_row, m0 + 22u, c0, r22);
    store3(c_row, m0 + 23u, c0, r23);
    store3(c_row, m0 + 24u, c0, r24);
    store3(c_row, m0 + 25u, c0, r25);
    store3(c_row, m0 + 26u, c0, r26);
    store3(c_row, m0 + 27u, c0, r27);
    store3(c_row, m0 + 28u, c0, r28);
    store3(c_row, m0 + 29u, c0, r29);
    store3(c_row, m0 + 30u, c0, r30);
    store3(c_row, m0 + 31u, c0, r31);
}

@compute @workgroup_size(8)
fn matmul_sg2(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let t = tile_of(wid.y * nwg.x + wid.x);
    if (!t.live) {
        return;
    }
    let m0 = t.tm * TM;
    let c0 = t.tn * 16u + lid; // the invocation's first column chunk (4 columns)
    let n4 = p.n / 4u;
    let k4 = p.k / 4u;
    let m4 = p.m / 4u;
    let last_c = n4 - 1u;
    // op(A): this lane's rows (TA = 0: rows 8 g + lane at k = 0) or row chunk (TA = 1).
    let ra0 = a_row(t.a_off, m0 + 0u + lane);
    let ra1 = a_row(t.a_off, m0 + 8u + lane);
    let ra2 = a_row(t.a_off, m0 + 16u + lane);
    let ra3 = a_row(t.a_off, m0 + 24u + lane);
    let rt = t.a_off / 4u + min(m0 / 4u + lane, max(m4, 1u) - 1u);
    // op(B): the invocation's column chunks (TB = 0), or its columns' rows of B (TB = 1).
    let cb0 = t.b_off / 4u + min(c0 + 0u, last_c);
    let cb1 = t.b_off / 4u + min(c0 + 8u, last_c);
    let bt0_0 = b_col(t.b_off, 4u * (c0 + 0u) + 0u);
    let bt0_1 = b_col(t.b_off, 4u * (c0 + 0u) + 1u);
    let bt0_2 = b_col(t.b_off, 4u * (c0 + 0u) + 2u);
    let bt0_3 = b_col(t.b_off, 4u * (c0 + 0u) + 3u);
    let bt1_0 = b_col(t.b_off, 4u * (c0 + 8u) + 0u);
    let bt1_1 = b_col(t.b_off, 4u * (c0 + 8u) + 1u);
    let bt1_2 = b_col(t.b_off, 4u * (c0 + 8u) + 2u);
    let bt1_3 = b_col(t.b_off, 4u * (c0 + 8u) + 3u);
    var r0 = Row2();
    var r1 = Row2();
    var r2 = Row2();
    var r3 = Row2();
    var r4 = Row2();
    var r5 = Row2();
    var r6 = Row2();
    var r7 = Row2();
    var r8 = Row2();
    var r9 = Row2();
    var r10 = Row2();
    var r11 = Row2();
    var r12 = Row2();
    var r13 = Row2();
    var r14 = Row2();
    var r15 = Row2();
    var r16 = Row2();
    var r17 = Row2();
    var r18 = Row2();
    var r19 = Row2();
    var r20 = Row2();
    var r21 = Row2();
    var r22 = Row2();
    var r23 = Row2();
    var r24 = Row2();
    var r25 = Row2();
    var r26 = Row2();
    var r27 = Row2();
    var r28 = Row2();
    var r29 = Row2();
    var r30 = Row2();
    var r31 = Row2();
    var kb = 0u; // vec4 offset of B's row k = 4 kk (TB = 0)
    for (var kk = 0u; kk < k4; kk++) {
        // op(B) at k = 4 kk + s, s = 0..3, over the invocation's columns.
        var b0: Row2;
        var b1: Row2;
        var b2: Row2;
        var b3: Row2;
        if (TB == 0u) {
            b0 = Row2(bv[cb0 + kb], bv[cb1 + kb]);
            b1 = Row2(bv[cb0 + kb + 1u * n4], bv[cb1 + kb + 1u * n4]);
            b2 = Row2(bv[cb0 + kb + 2u * n4], bv[cb1 + kb + 2u * n4]);
            b3 = Row2(bv[cb0 + kb + 3u * n4], bv[cb1 + kb + 3u * n4]);
        } else {
            let q0_0 = bv[bt0_0 + kk];
            let q0_1 = bv[bt0_1 + kk];
            let q0_2 = bv[bt0_2 + kk];
            let q0_3 = bv[bt0_3 + kk];
            let q1_0 = bv[bt1_0 + kk];
            let q1_1 = bv[bt1_1 + kk];
            let q1_2 = bv[bt1_2 + kk];
            let q1_3 = bv[bt1_3 + kk];
            b0 = Row2(vec4<f32>(q0_0.x, q0_1.x, q0_2.x, q0_3.x), vec4<f32>(q1_0.x, q1_1.x, q1_2.x, q1_3.x));
            b1 = Row2(vec4<f32>(q0_0.y, q0_1.y, q0_2.y, q0_3.y), vec4<f32>(q1_0.y, q1_1.y, q1_2.y, q1_3.y));
            b2 = Row2(vec4<f32>(q0_0.z, q0_1.z, q0_2.z, q0_3.z), vec4<f32>(q1_0.z, q1_1.z, q1_2.z, q1_3.z));
            b3 = Row2(vec4<f32>(q0_0.w, q0_1.w, q0_2.w, q0_3.w), vec4<f32>(q1_0.w, q1_1.w, q1_2.w, q1_3.w));
        }
        // op(A) at k = 4 kk + 0..3: each lane loads its share (TA = 0: g = rows 8 g + lane;
        // TA = 1: g = k-step, lane = row chunk), subgroupBroadcast hands it to every lane.
        var g0: vec4<f32>;
        var g1: vec4<f32>;
        var g2: vec4<f32>;
        var g3: vec4<f32>;
        if (TA == 0u) {
            g0 = av[ra0 + kk];
            g1 = av[ra1 + kk];
            g2 = av[ra2 + kk];
            g3 = av[ra3 + kk];
        } else {
            let at = rt + 4u * kk * m4;
            g0 = av[at];
            g1 = av[at + 1u * m4];
            g2 = av[at + 2u * m4];
            g3 = av[at + 3u * m4];
        }
        var a0 = vec4<f32>(subgroupBroadcast(g0.x, 0u), subgroupBroadcast(g1.x, 0u), subgroupBroadcast(g2.x, 0u), subgroupBroadcast(g3.x, 0u));
        if (TA == 0u) {
            a0 = subgroupBroadcast(g0, 0u);
        }
        r0 = step2(r0, a0, b0, b1, b2, b3);
        var a1 = vec4<f32>(subgroupBroadcast(g0.y, 0u), subgroupBroadcast(g1.y, 0u), subgroupBroadcast(g2.y, 0u), subgroupBroadcast(g3.y, 0u));
        if (TA == 0u) {
            a1 = subgroupBroadcast(g0, 1u);
        }
        r1 = step2(r1, a1, b0, b1, b2, b3);
        var a2 = vec4<f32>(subgroupBroadcast(g0.z, 0u), subgroupBroadcast(g1.z, 0u), subgroupBroadcast(g2.z, 0u), subgroupBroadcast(g3.z, 0u));
        if (TA == 0u) {
            a2 = subgroupBroadcast(g0, 2u);
        }
        r2 = step2(r2, a2, b0, b1, b2, b3);
        var a3 = vec4<f32>(subgroupBroadcast(g0.w, 0u), subgroupBroadcast(g1.w, 0u), subgroupBroadcast(g2.w, 0u), subgroupBroadcast(g3.w, 0u));
        if (TA == 0u) {
            a3 = subgroupBroadcast(g0, 3u);
        }
        r3 = step2(r3, a3, b0, b1, b2, b3);
        var a4 = vec4<f32>(subgroupBroadcast(g0.x, 1u), subgroupBroadcast(g1.x, 1u), subgroupBroadcast(g2.x, 1u), subgroupBroadcast(g3.x, 1u));
        if (TA == 0u) {
            a4 = subgroupBroadcast(g0, 4u);
        }
        r4 = step2(r4, a4, b0, b1, b2, b3);
        var a5 = vec4<f32>(subgroupBroadcast(g0.y, 1u), subgroupBroadcast(g1.y, 1u), subgroupBroadcast(g2.y, 1u), subgroupBroadcast(g3.y, 1u));
        if (TA == 0u) {
            a5 = subgroupBroadcast(g0, 5u);
        }
        r5 = step2(r5, a5, b0, b1, b2, b3);
        var a6 = vec4<f32>(subgroupBroadcast(g0.z, 1u), subgroupBroadcast(g1.z, 1u), subgroupBroadcast(g2.z, 1u), subgroupBroadcast(g3.z, 1u));
        if (TA == 0u) {
            a6 = subgroupBroadcast(g0, 6u);
        }
        r6 = step2(r6, a6, b0, b1, b2, b3);
        var a7 = vec4<f32>(subgroupBroadcast(g0.w, 1u), subgroupBroadcast(g1.w, 1u), subgroupBroadcast(g2.w, 1u), subgroupBroadcast(g3.w, 1u));
        if (TA == 0u) {
            a7 = subgroupBroadcast(g0, 7u);
        }
        r7 = step2(r7, a7, b0, b1, b2, b3);
        var a8 = vec4<f32>(subgroupBroadcast(g0.x, 2u), subgroupBroadcast(g1.x, 2u), subgroupBroadcast(g2.x, 2u), subgroupBroadcast(g3.x, 2u));
        if (TA == 0u) {
            a8 = subgroupBroadcast(g1, 0u);
        }
        r8 = step2(r8, a8, b0, b1, b2, b3);
        var a9 = vec4<f32>(subgroupBroadcast(g0.y, 2u), subgroupBroadcast(g1.y, 2u), subgroupBroadcast(g2.y, 2u), subgroupBroadcast(g3.y, 2u));
        if (TA == 0u) {
            a9 = subgroupBroadcast(g1, 1u);
        }
        r9 = step2(r9, a9, b0, b1, b2, b3);
        var a10 = vec4<f32>(subgroupBroadcast(g0.z, 2u), subgroupBroadcast(g1.z, 2u), subgroupBroadcast(g2.z, 2u), subgroupBroadcast(g3.z, 2u));
        if (TA == 0u) {
            a10 = subgroupBroadcast(g1, 2u);
        }
        r10 = step2(r10, a10, b0, b1, b2, b3);
        var a11 = vec4<f32>(subgroupBroadcast(g0.w, 2u), subgroupBroadcast(g1.w, 2u), subgroupBroadcast(g2.w, 2u), subgroupBroadcast(g3.w, 2u));
        if (TA == 0u) {
            a11 = subgroupBroadcast(g1, 3u);
        }
        r11 = step2(r11, a11, b0, b1, b2, b3);
        var a12 = vec4<f32>(subgroupBroadcast(g0.x, 3u), subgroupBroadcast(g1.x, 3u), subgroupBroadcast(g2.x, 3u), subgroupBroadcast(g3.x, 3u));
        if (TA == 0u) {
            a12 = subgroupBroadcast(g1, 4u);
        }
        r12 = step2(r12, a12, b0, b1, b2, b3);
        var a13 = vec4<f32>(subgroupBroadcast(g0.y, 3u), subgroupBroadcast(g1.y, 3u), subgroupBroadcast(g2.y, 3u), subgroupBroadcast(g3.y, 3u));
        if (TA == 0u) {
            a13 = subgroupBroadcast(g1, 5u);
        }
        r13 = step2(r13, a13, b0, b1, b2, b3);
        var a14 = vec4<f32>(subgroupBroadcast(g0.z, 3u), subgroupBroadcast(g1.z, 3u), subgroupBroadcast(g2.z, 3u), subgroupBroadcast(g3.z, 3u));
        if (TA == 0u) {
            a14 = subgroupBroadcast(g1, 6u);
        }
        r14 = step2(r14, a14, b0, b1, b2, b3);
        var a15 = vec4<f32>(subgroupBroadcast(g0.w, 3u), subgroupBroadcast(g1.w, 3u), subgroupBroadcast(g2.w, 3u), subgroupBroadcast(g3.w, 3u));
        if (TA == 0u) {
            a15 = subgroupBroadcast(g1, 7u);
        }
        r15 = step2(r15, a15, b0, b1, b2, b3);
        var a16 = vec4<f32>(subgroupBroadcast(g0.x, 4u), subgroupBroadcast(g1.x, 4u), subgroupBroadcast(g2.x, 4u), subgroupBroadcast(g3.x, 4u));
        if (TA == 0u) {
            a16 = subgroupBroadcast(g2, 0u);
        }
        r16 = step2(r16, a16, b0, b1, b2, b3);
        var a17 = vec4<f32>(subgroupBroadcast(g0.y, 4u), subgroupBroadcast(g1.y, 4u), subgroupBroadcast(g2.y, 4u), subgroupBroadcast(g3.y, 4u));
        if (TA == 0u) {
            a17 = subgroupBroadcast(g2, 1u);
        }
        r17 = step2(r17, a17, b0, b1, b2, b3);
        var a18 = vec4<f32>(subgroupBroadcast(g0.z, 4u), subgroupBroadcast(g1.z, 4u), subgroupBroadcast(g2.z, 4u), subgroupBroadcast(g3.z, 4u));
        if (TA == 0u) {
            a18 = subgroupBroadcast(g2, 2u);
        }
        r18 = step2(r18, a18, b0, b1, b2, b3);
        var a19 = vec4<f32>(subgroupBroadcast(g0.w, 4u), subgroupBroadcast(g1.w, 4u), subgroupBroadcast(g2.w, 4u), subgroupBroadcast(g3.w, 4u));
        if (TA == 0u) {
            a19 = subgroupBroadcast(g2, 3u);
        }
        r19 = step2(r19, a19, b0, b1, b2, b3);
        var a20 = vec4<f32>(subgroupBroadcast(g0.x, 5u), subgroupBroadcast(g1.x, 5u), subgroupBroadcast(g2.x, 5u), subgroupBroadcast(g3.x, 5u));
        if (TA == 0u) {
            a20 = subgroupBroadcast(g2, 4u);
        }
        r20 = step2(r20, a20, b0, b1, b2, b3);
        var a21 = vec4<f32>(subgroupBroadcast(g0.y, 5u), subgroupBroadcast(g1.y, 5u), subgroupBroadcast(g2.y, 5u), subgroupBroadcast(g3.y, 5u));
        if (TA == 0u) {
            a21 = subgroupBroadcast(g2, 5u);
        }
        r21 = step2(r21, a21, b0, b1, b2, b3);
        var a22 = vec4<f32>(subgroupBroadcast(g0.z, 5u), subgroupBroadcast(g1.z, 5u), subgroupBroadcast(g2.z, 5u), subgroupBroadcast(g3.z, 5u));
        if (TA == 0u) {
            a22 = subgroupBroadcast(g2, 6u);
        }
        r22 = step2(r22, a22, b0, b1, b2, b3);
        var a23 = vec4<f32>(subgroupBroadcast(g0.w, 5u), subgroupBroadcast(g1.w, 5u), subgroupBroadcast(g2.w, 5u), subgroupBroadcast(g3.w, 5u));
        if (TA == 0u) {
            a23 = subgroupBroadcast(g2, 7u);
        }
        r23 = step2(r23, a23, b0, b1, b2, b3);
        var a24 = vec4<f32>(subgroupBroadcast(g0.x, 6u), subgroupBroadcast(g1.x, 6u), subgroupBroadcast(g2.x, 6u), subgroupBroadcast(g3.x, 6u));
        if (TA == 0u) {
            a24 = subgroupBroadcast(g3, 0u);
        }
        r24 = step2(r24, a24, b0, b1, b2, b3);
        var a25 = vec4<f32>(subgroupBroadcast(g0.y, 6u), subgroupBroadcast(g1.y, 6u), subgroupBroadcast(g2.y, 6u), subgroupBroadcast(g3.y, 6u));
        if (TA == 0u) {
            a25 = subgroupBroadcast(g3, 1u);
        }
        r25 = step2(r25, a25, b0, b1, b2, b3);
        var a26 = vec4<f32>(subgroupBroadcast(g0.z, 6u), subgroupBroadcast(g1.z, 6u), subgroupBroadcast(g2.z, 6u), subgroupBroadcast(g3.z, 6u));
        if (TA == 0u) {
            a26 = subgroupBroadcast(g3, 2u);
        }
        r26 = step2(r26, a26, b0, b1, b2, b3);
        var a27 = vec4<f32>(subgroupBroadcast(g0.w, 6u), subgroupBroadcast(g1.w, 6u), subgroupBroadcast(g2.w, 6u), subgroupBroadcast(g3.w, 6u));
        if (TA == 0u) {
            a27 = subgroupBroadcast(g3, 3u);
        }
        r27 = step2(r27, a27, b0, b1, b2, b3);
        var a28 = vec4<f32>(subgroupBroadcast(g0.x, 7u), subgroupBroadcast(g1.x, 7u), subgroupBroadcast(g2.x, 7u), subgroupBroadcast(g3.x, 7u));
        if (TA == 0u) {
            a28 = subgroupBroadcast(g3, 4u);
        }
        r28 = step2(r28, a28, b0, b1, b2, b3);
        var a29 = vec4<f32>(subgroupBroadcast(g0.y, 7u), subgroupBroadcast(g1.y, 7u), subgroupBroadcast(g2.y, 7u), subgroupBroadcast(g3.y, 7u));
        if (TA == 0u) {
            a29 = subgroupBroadcast(g3, 5u);
        }
        r29 = step2(r29, a29, b0, b1, b2, b3);
        var a30 = vec4<f32>(subgroupBroadcast(g0.z, 7u), subgroupBroadcast(g1.z, 7u), subgroupBroadcast(g2.z, 7u), subgroupBroadcast(g3.z, 7u));
        if (TA == 0u) {
            a30 = subgroupBroadcast(g3, 6u);
        }
        r30 = step2(r30, a30, b0, b1, b2, b3);
        var a31 = vec4<f32>(subgroupBroadcast(g0.w, 7u), subgroupBroadcast(g1.w, 7u), subgroupBroadcast(g2.w, 7u), subgroupBroadcast(g3.w, 7u));
        if (TA == 0u) {
            a31 = subgroupBroadcast(g3, 7u);
        }
        r31 = step2(r31, a31, b0, b1, b2, b3);
        kb += p.n;
    }
    let c_row = t.batch * p.m;
    store2(c_row, m0 + 0u, c0, r0);
    store2(c_row, m0 + 1u, c0, r1);
    store2(c_row, m0 + 2u, c0, r2);
    store2(c_row, m0 + 3u, c0, r3);
    store2(c_row, m0 + 4u, c0, r4);
    store2(c_row, m0 + 5u, c0, r5);
    store2(c_row, m0 + 6u, c0, r6);
    store2(c_row, m0 + 7u, c0, r7);
    store2(c_row, m0 + 8u, c0, r8);
    store2(c_row, m0 + 9u, c0, r9);
    store2(c_row, m0 + 10u, c0, r10);
    store2(c_row, m0 + 11u, c0, r11);
    store2(c_row, m0 + 12u, c0, r12);
    store2(c_row, m0 + 13u, c0, r13);
    store2(c_row, m0 + 14u, c0, r14);
    store2(c_row, m0 + 15u, c0, r15);
    store2(c_row, m0 + 16u, c0, r16);
    store2(c_row, m0 + 17u, c0, r17);
    store2(c_row, m0 + 18u, c0, r18);
    store2(c_row, m0 + 19u, c0, r19);
    store2(c_row, m0 + 20u, c0, r20);
    store2(c_row, m0 + 21u, c0, r21);
    store2(c_row, m0 + 22u, c0, r22);
    store2(c_row, m0 + 23u, c0, r23);
    store2(c_row, m0 + 24u, c0, r24);
    store2(c_row, m0 + 25u, c0, r25);
    store2(c_row, m0 + 26u, c0, r26);
    store2(c_row, m0 + 27u, c0, r27);
    store2(c_row, m0 + 28u, c0, r28);
    store2(c_row, m0 + 29u, c0, r29);
    store2(c_row, m0 + 30u, c0, r30);
    store2(c_row, m0 + 31u, c0, r31);
}
