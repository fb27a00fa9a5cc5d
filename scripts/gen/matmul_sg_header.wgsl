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

