// Batched matrix multiplication: C[b] = op(A[b]) @ op(B[b]), NumPy matmul semantics.
//
// M: rows of C and of op(A).  N: columns of C and of op(B).  K: the shared (inner) depth.
// b: the batch index over the output batch shape `batch_shape` (rank `batch_rank`, <= 6). Each
//    operand finds its matrix through its own element stride per output batch dim, which is 0
//    where that operand is broadcast.
// op(A)[m, k] is a[a_off + m * sa_m + k * sa_k] and op(B)[k, n] is b[b_off + k * sb_k + n * sb_n]:
//    a transposed operand just swaps its two strides, nothing is copied.
//
// Register tiling, tuned for lavapipe/llvmpipe (Mesa's CPU SIMD emulation): there every storage
// load inside a loop is a per-lane scalar loop costing a few cycles per lane and element, while
// arithmetic on registers runs 8 lanes at a time, so the kernel loads as few elements per FMA as
// it can. Each invocation keeps a TM x TN = 32 x 12 block of C in registers (32 `Row`s of three
// vec4s) and per step of k loads 32 values of A and 12 of B for 384 FMAs. There is no shared
// memory and no barrier (on lavapipe those only add cost). This is the portable fallback:
// adapters with 8-wide subgroups run shaders/matmul_sg.wgsl when the rows are vec4-aligned, and
// real GPUs run `matmul_tiled` below (shared-memory tiles); src/kernels/matmul.rs chooses.
// The code is unrolled by hand: written as loops over arrays, Mesa does not unroll it and the
// kernel runs ~4x slower. Measured at 1024^3 on lavapipe, in GFLOP/s per CPU-second, with tiles
// TM x TN per invocation: 4 x 4: 2.7, 8 x 8: 5.0, 16 x 16: 7.4, 32 x 8: 7.8, 32 x 12: 9.2,
// 32 x 32: 10.8 but 14 s (uncached) to compile, against ~1.5 s for 32 x 12.
//
// Lanes next to each other along x take neighbouring columns (n = n0 + x + 8 j), so the B
// elements a SIMD row of lanes loads lie in one or two cache lines, and all of them read the
// same A rows. Rows and columns past the edge of C load a clamped (valid) address and are never
// stored, so the hot loop has no branches and works for any M, N, K >= 1; K = 0 skips the loop
// and stores zeros. M, N or batch = 0 means no workgroups at all.
//
// Workgroup 8 x 2 = 16 invocations: one 8-lane SIMD row along x covers 8 x 12 = 96 columns, two
// rows of invocations cover 2 x 32 = 64 rows, so a workgroup owns a 64 x 96 tile of C; small
// enough that modest products still spread over the CPU's threads.

const WX: u32 = 8u;       // invocations along x; column stride between an invocation's columns
const TM: u32 = 32u;      // rows of C per invocation
const TILE_M: u32 = 64u;  // rows of C per workgroup: 2 * TM (= TILE_M in src/kernels/matmul.rs)
const TILE_N: u32 = 96u;  // columns of C per workgroup: WX * 12 (= TILE_N in src/kernels/matmul.rs)

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch_count: u32,                 // product of batch_shape
    batch_rank: u32,
    sa_m: u32,                        // op(A) element strides along m and k
    sa_k: u32,
    sb_k: u32,                        // op(B) element strides along k and n
    sb_n: u32,
    tiles_m: u32,                     // ceil(M / TILE_M)
    tiles_n: u32,                     // ceil(N / TILE_N)
    _pad: u32,
    batch_shape: array<vec4<u32>, 2>, // output batch dims, 8 slots
    a_batch: array<vec4<u32>, 2>,     // A's element stride per output batch dim (0 = broadcast)
    b_batch: array<vec4<u32>, 2>,     // B's element stride per output batch dim (0 = broadcast)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;       // (A batch.., M, K), or (.., K, M)
@group(0) @binding(2) var<storage, read> b: array<f32>;       // (B batch.., K, N), or (.., N, K)
@group(0) @binding(3) var<storage, read_write> c: array<f32>; // (batch.., M, N)

// Twelve columns of one row of C: n0 + 8 j for j = 0..11, four per vec4.
struct Row {
    c0: vec4<f32>,
    c1: vec4<f32>,
    c2: vec4<f32>,
}

// r + x * bk, elementwise over the row.
fn fma_row(r: Row, x: f32, bk: Row) -> Row {
    let av = vec4<f32>(x);
    return Row(fma(av, bk.c0, r.c0), fma(av, bk.c1, r.c1), fma(av, bk.c2, r.c2));
}

// Stores the in-range part of row m of an invocation's tile: columns n0 + 8 j, j = 0..11.
fn store_row(c_off: u32, m: u32, n0: u32, r: Row) {
    if (m >= p.m) {
        return;
    }
    let base = c_off + m * p.n;
    store4(base, n0, r.c0);
    store4(base, n0 + 4u * WX, r.c1);
    store4(base, n0 + 8u * WX, r.c2);
}

// Stores v to columns n, n + 8, n + 16, n + 24 of the row at `base`, those that are in range.
fn store4(base: u32, n: u32, v: vec4<f32>) {
    if (n < p.n) {
        c[base + n] = v.x;
    }
    if (n + WX < p.n) {
        c[base + n + WX] = v.y;
    }
    if (n + 2u * WX < p.n) {
        c[base + n + 2u * WX] = v.z;
    }
    if (n + 3u * WX < p.n) {
        c[base + n + 3u * WX] = v.w;
    }
}

@compute @workgroup_size(8, 2)
fn matmul(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    // Linear workgroup index -> (batch, tile row, tile column); the same for the whole group.
    let wg = wid.y * nwg.x + wid.x;
    let tn = wg % p.tiles_n;
    let rest = wg / p.tiles_n;
    let tm = rest % p.tiles_m;
    let batch = rest / p.tiles_m;
    if (batch >= p.batch_count) {
        return;
    }
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

    let m0 = tm * TILE_M + lid.y * TM;
    let n0 = tn * TILE_N + lid.x;
    let last_m = p.m - 1u;
    let last_n = p.n - 1u;
    // Offsets of the invocation's 32 rows of op(A) and 12 columns of op(B) at k = 0, clamped
    // into the matrix.
    let ra0 = a_off + min(m0 + 0u, last_m) * p.sa_m;
    let ra1 = a_off + min(m0 + 1u, last_m) * p.sa_m;
    let ra2 = a_off + min(m0 + 2u, last_m) * p.sa_m;
    let ra3 = a_off + min(m0 + 3u, last_m) * p.sa_m;
    let ra4 = a_off + min(m0 + 4u, last_m) * p.sa_m;
    let ra5 = a_off + min(m0 + 5u, last_m) * p.sa_m;
    let ra6 = a_off + min(m0 + 6u, last_m) * p.sa_m;
    let ra7 = a_off + min(m0 + 7u, last_m) * p.sa_m;
    let ra8 = a_off + min(m0 + 8u, last_m) * p.sa_m;
    let ra9 = a_off + min(m0 + 9u, last_m) * p.sa_m;
    let ra10 = a_off + min(m0 + 10u, last_m) * p.sa_m;
    let ra11 = a_off + min(m0 + 11u, last_m) * p.sa_m;
    let ra12 = a_off + min(m0 + 12u, last_m) * p.sa_m;
    let ra13 = a_off + min(m0 + 13u, last_m) * p.sa_m;
    let ra14 = a_off + min(m0 + 14u, last_m) * p.sa_m;
    let ra15 = a_off + min(m0 + 15u, last_m) * p.sa_m;
    let ra16 = a_off + min(m0 + 16u, last_m) * p.sa_m;
    let ra17 = a_off + min(m0 + 17u, last_m) * p.sa_m;
    let ra18 = a_off + min(m0 + 18u, last_m) * p.sa_m;
    let ra19 = a_off + min(m0 + 19u, last_m) * p.sa_m;
    let ra20 = a_off + min(m0 + 20u, last_m) * p.sa_m;
    let ra21 = a_off + min(m0 + 21u, last_m) * p.sa_m;
    let ra22 = a_off + min(m0 + 22u, last_m) * p.sa_m;
    let ra23 = a_off + min(m0 + 23u, last_m) * p.sa_m;
    let ra24 = a_off + min(m0 + 24u, last_m) * p.sa_m;
    let ra25 = a_off + min(m0 + 25u, last_m) * p.sa_m;
    let ra26 = a_off + min(m0 + 26u, last_m) * p.sa_m;
    let ra27 = a_off + min(m0 + 27u, last_m) * p.sa_m;
    let ra28 = a_off + min(m0 + 28u, last_m) * p.sa_m;
    let ra29 = a_off + min(m0 + 29u, last_m) * p.sa_m;
    let ra30 = a_off + min(m0 + 30u, last_m) * p.sa_m;
    let ra31 = a_off + min(m0 + 31u, last_m) * p.sa_m;
    let cb0 = b_off + min(n0 + 0u * WX, last_n) * p.sb_n;
    let cb1 = b_off + min(n0 + 1u * WX, last_n) * p.sb_n;
    let cb2 = b_off + min(n0 + 2u * WX, last_n) * p.sb_n;
    let cb3 = b_off + min(n0 + 3u * WX, last_n) * p.sb_n;
    let cb4 = b_off + min(n0 + 4u * WX, last_n) * p.sb_n;
    let cb5 = b_off + min(n0 + 5u * WX, last_n) * p.sb_n;
    let cb6 = b_off + min(n0 + 6u * WX, last_n) * p.sb_n;
    let cb7 = b_off + min(n0 + 7u * WX, last_n) * p.sb_n;
    let cb8 = b_off + min(n0 + 8u * WX, last_n) * p.sb_n;
    let cb9 = b_off + min(n0 + 9u * WX, last_n) * p.sb_n;
    let cb10 = b_off + min(n0 + 10u * WX, last_n) * p.sb_n;
    let cb11 = b_off + min(n0 + 11u * WX, last_n) * p.sb_n;

    var r0 = Row();
    var r1 = Row();
    var r2 = Row();
    var r3 = Row();
    var r4 = Row();
    var r5 = Row();
    var r6 = Row();
    var r7 = Row();
    var r8 = Row();
    var r9 = Row();
    var r10 = Row();
    var r11 = Row();
    var r12 = Row();
    var r13 = Row();
    var r14 = Row();
    var r15 = Row();
    var r16 = Row();
    var r17 = Row();
    var r18 = Row();
    var r19 = Row();
    var r20 = Row();
    var r21 = Row();
    var r22 = Row();
    var r23 = Row();
    var r24 = Row();
    var r25 = Row();
    var r26 = Row();
    var r27 = Row();
    var r28 = Row();
    var r29 = Row();
    var r30 = Row();
    var r31 = Row();
    var ka = 0u;
    var kb = 0u;
    for (var k = 0u; k < p.k; k++) {
        let bk = Row(
            vec4<f32>(b[cb0 + kb], b[cb1 + kb], b[cb2 + kb], b[cb3 + kb]),
            vec4<f32>(b[cb4 + kb], b[cb5 + kb], b[cb6 + kb], b[cb7 + kb]),
            vec4<f32>(b[cb8 + kb], b[cb9 + kb], b[cb10 + kb], b[cb11 + kb]),
        );
        r0 = fma_row(r0, a[ra0 + ka], bk);
        r1 = fma_row(r1, a[ra1 + ka], bk);
        r2 = fma_row(r2, a[ra2 + ka], bk);
        r3 = fma_row(r3, a[ra3 + ka], bk);
        r4 = fma_row(r4, a[ra4 + ka], bk);
        r5 = fma_row(r5, a[ra5 + ka], bk);
        r6 = fma_row(r6, a[ra6 + ka], bk);
        r7 = fma_row(r7, a[ra7 + ka], bk);
        r8 = fma_row(r8, a[ra8 + ka], bk);
        r9 = fma_row(r9, a[ra9 + ka], bk);
        r10 = fma_row(r10, a[ra10 + ka], bk);
        r11 = fma_row(r11, a[ra11 + ka], bk);
        r12 = fma_row(r12, a[ra12 + ka], bk);
        r13 = fma_row(r13, a[ra13 + ka], bk);
        r14 = fma_row(r14, a[ra14 + ka], bk);
        r15 = fma_row(r15, a[ra15 + ka], bk);
        r16 = fma_row(r16, a[ra16 + ka], bk);
        r17 = fma_row(r17, a[ra17 + ka], bk);
        r18 = fma_row(r18, a[ra18 + ka], bk);
        r19 = fma_row(r19, a[ra19 + ka], bk);
        r20 = fma_row(r20, a[ra20 + ka], bk);
        r21 = fma_row(r21, a[ra21 + ka], bk);
        r22 = fma_row(r22, a[ra22 + ka], bk);
        r23 = fma_row(r23, a[ra23 + ka], bk);
        r24 = fma_row(r24, a[ra24 + ka], bk);
        r25 = fma_row(r25, a[ra25 + ka], bk);
        r26 = fma_row(r26, a[ra26 + ka], bk);
        r27 = fma_row(r27, a[ra27 + ka], bk);
        r28 = fma_row(r28, a[ra28 + ka], bk);
        r29 = fma_row(r29, a[ra29 + ka], bk);
        r30 = fma_row(r30, a[ra30 + ka], bk);
        r31 = fma_row(r31, a[ra31 + ka], bk);
        ka += p.sa_k;
        kb += p.sb_k;
    }

    let c_off = batch * p.m * p.n;
    store_row(c_off, m0 + 0u, n0, r0);
    store_row(c_off, m0 + 1u, n0, r1);
    store_row(c_off, m0 + 2u, n0, r2);
    store_row(c_off, m0 + 3u, n0, r3);
    store_row(c_off, m0 + 4u, n0, r4);
    store_row(c_off, m0 + 5u, n0, r5);
    store_row(c_off, m0 + 6u, n0, r6);
    store_row(c_off, m0 + 7u, n0, r7);
    store_row(c_off, m0 + 8u, n0, r8);
    store_row(c_off, m0 + 9u, n0, r9);
    store_row(c_off, m0 + 10u, n0, r10);
    store_row(c_off, m0 + 11u, n0, r11);
    store_row(c_off, m0 + 12u, n0, r12);
    store_row(c_off, m0 + 13u, n0, r13);
    store_row(c_off, m0 + 14u, n0, r14);
    store_row(c_off, m0 + 15u, n0, r15);
    store_row(c_off, m0 + 16u, n0, r16);
    store_row(c_off, m0 + 17u, n0, r17);
    store_row(c_off, m0 + 18u, n0, r18);
    store_row(c_off, m0 + 19u, n0, r19);
    store_row(c_off, m0 + 20u, n0, r20);
    store_row(c_off, m0 + 21u, n0, r21);
    store_row(c_off, m0 + 22u, n0, r22);
    store_row(c_off, m0 + 23u, n0, r23);
    store_row(c_off, m0 + 24u, n0, r24);
    store_row(c_off, m0 + 25u, n0, r25);
    store_row(c_off, m0 + 26u, n0, r26);
    store_row(c_off, m0 + 27u, n0, r27);
    store_row(c_off, m0 + 28u, n0, r28);
    store_row(c_off, m0 + 29u, n0, r29);
    store_row(c_off, m0 + 30u, n0, r30);
    store_row(c_off, m0 + 31u, n0, r31);
}

// ---- workgroup-tiled kernel for real GPUs ------------------------------------------------------
// The GPU habit, chosen on discrete and integrated GPUs (src/kernels/matmul.rs): a workgroup of
// 16 x 16 invocations owns a 64 x 64 tile of C; per step of TK = 16 along k, all 256 invocations
// stage a 64 x 16 slice of op(A) and a 16 x 64 slice of op(B) in workgroup memory (4 elements
// each, zero outside the matrices, any strides), then each invocation accumulates a 4 x 4 block
// of C from it: 16 FMAs per 2 workgroup-memory vec4 reads. On a CPU emulator the two barriers
// per step cost more than they save (see the top of this file), so there it is used only when
// tests force it.
const GT: u32 = 64u; // rows and columns of C per workgroup (= TILE_G in src/kernels/matmul.rs)
const GK: u32 = 16u; // depth of one staged step

// Staged slices, k-major: g_a[k][m / 4] holds op(A)[m0 + m .. m0 + m + 3, k0 + k] as a vec4,
// g_b[k][n / 4] holds op(B)[k0 + k, n0 + n .. n0 + n + 3]. 2 x 16 x 16 vec4 = 8 KiB.
var<workgroup> g_a: array<array<vec4<f32>, 16>, 16>;
var<workgroup> g_b: array<array<vec4<f32>, 16>, 16>;

@compute @workgroup_size(16, 16)
fn matmul_tiled(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    // Linear workgroup index -> (batch, tile row, tile column); uniform over the workgroup, so
    // spare workgroups still pass every barrier (`live` guards their loads and stores).
    let wg = wid.y * nwg.x + wid.x;
    let tn = wg % p.tiles_n;
    let rest = wg / p.tiles_n;
    let tm = rest % p.tiles_m;
    let batch = rest / p.tiles_m;
    let live = batch < p.batch_count;
    var rem = batch;
    var a_off = 0u;
    var b_off = 0u;
    if (live) {
        for (var d = i32(p.batch_rank) - 1; d >= 0; d--) {
            let i = u32(d);
            let size = p.batch_shape[i >> 2u][i & 3u];
            let coord = rem % size;
            rem = rem / size;
            a_off += coord * p.a_batch[i >> 2u][i & 3u];
            b_off += coord * p.b_batch[i >> 2u][i & 3u];
        }
    }
    let m0 = tm * GT;
    let n0 = tn * GT;
    // Staging assignment: invocation li loads 4 consecutive rows of op(A) at one k (a vec4 of
    // g_a) and 4 consecutive columns of op(B) at one k (a vec4 of g_b).
    let sk = li / 16u;        // k within the step
    let sq = li % 16u;        // which group of 4 rows (columns)
    var acc0 = vec4<f32>(0.0); // C rows m0 + 4 ty + i, columns n0 + 4 tx .. + 3
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.k; k0 += GK) {
        let k = k0 + sk;
        var av4 = vec4<f32>(0.0);
        var bv4 = vec4<f32>(0.0);
        if (live && k < p.k) {
            let ka = a_off + k * p.sa_k;
            let kb = b_off + k * p.sb_k;
            for (var e = 0u; e < 4u; e++) {
                let m = m0 + 4u * sq + e;
                if (m < p.m) {
                    av4[e] = a[ka + m * p.sa_m];
                }
                let n = n0 + 4u * sq + e;
                if (n < p.n) {
                    bv4[e] = b[kb + n * p.sb_n];
                }
            }
        }
        g_a[sk][sq] = av4;
        g_b[sk][sq] = bv4;
        workgroupBarrier();
        for (var kk = 0u; kk < GK; kk++) {
            let x = g_a[kk][lid.y];
            let y = g_b[kk][lid.x];
            acc0 = fma(vec4<f32>(x.x), y, acc0);
            acc1 = fma(vec4<f32>(x.y), y, acc1);
            acc2 = fma(vec4<f32>(x.z), y, acc2);
            acc3 = fma(vec4<f32>(x.w), y, acc3);
        }
        workgroupBarrier();
    }
    if (live) {
        let c_off = batch * p.m * p.n;
        let n = n0 + 4u * lid.x;
        let m = m0 + 4u * lid.y;
        store_tiled(c_off, m, n, acc0);
        store_tiled(c_off, m + 1u, n, acc1);
        store_tiled(c_off, m + 2u, n, acc2);
        store_tiled(c_off, m + 3u, n, acc3);
    }
}

// Stores columns n .. n + 3 of row m of C, those in range.
fn store_tiled(c_off: u32, m: u32, n: u32, v: vec4<f32>) {
    if (m >= p.m) {
        return;
    }
    let base = c_off + m * p.n;
    for (var e = 0u; e < 4u; e++) {
        if (n + e < p.n) {
            c[base + n + e] = v[e];
        }
    }
}
