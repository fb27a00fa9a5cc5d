// Batched matrix multiplication: C[b] = op(A[b]) @ op(B[b]).
//
// M: rows of C (and of op(A)); N: columns of C (and of op(B)); K: the shared depth.
// b: the batch index, decomposed over the output batch shape `batch_shape` (rank `batch_rank`);
//    each operand finds its matrix through its own per-batch-dim element strides (0 where it is
//    broadcast).
// op(A) element (m, k) sits at a_batch_offset + m * sa_m + k * sa_k, op(B) element (k, n) at
// b_batch_offset + k * sb_k + n * sb_n: a transposed operand just swaps its two strides.
//
// Register tiling: each invocation accumulates a TM x TN block of C in registers; a workgroup
// of WX x WY invocations covers TILE_M x TILE_N. No shared memory and no barriers: on lavapipe
// (CPU SIMD emulation) those cost more than they save, and every load is a per-lane gather, so
// the win is in reusing each loaded value TM or TN times from registers.
// Lanes of one SIMD row (consecutive x) take consecutive columns (n = n0 + x + WX * j), so the
// B values one row of lanes loads are contiguous, and all share the same A rows.
//
// Workgroup size 8 x 8 = 64: a multiple of every SIMD width (lavapipe runs 8 lanes at a time
// along x), and with 4 x 4 per invocation a 32 x 32 tile, small enough that thin or small
// products still spread over many workgroups.

const WX: u32 = 8u;
const WY: u32 = 8u;
const TM: u32 = 4u;
const TN: u32 = 4u;
const TILE_M: u32 = 32u; // WY * TM
const TILE_N: u32 = 32u; // WX * TN

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch_count: u32,
    batch_rank: u32,
    sa_m: u32,
    sa_k: u32,
    sb_k: u32,
    sb_n: u32,
    tiles_m: u32,
    tiles_n: u32,
    _pad: u32,
    batch_shape: array<vec4<u32>, 2>, // output batch dims, 8 slots
    a_batch: array<vec4<u32>, 2>,     // A's element stride per output batch dim (0 = broadcast)
    b_batch: array<vec4<u32>, 2>,     // B's element stride per output batch dim (0 = broadcast)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;       // (A batch.., M, K) or (.., K, M)
@group(0) @binding(2) var<storage, read> b: array<f32>;       // (B batch.., K, N) or (.., N, K)
@group(0) @binding(3) var<storage, read_write> c: array<f32>; // (batch.., M, N)

@compute @workgroup_size(8, 8)
fn matmul(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    // Linear workgroup index -> (batch, tile row, tile column). Uniform across the workgroup.
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
    // Rows and columns past the edge read a clamped (valid) address and are never stored,
    // so the hot loop has no branches. With M or N = 0 there are no workgroups at all.
    let last_m = p.m - 1u;
    let last_n = p.n - 1u;
    let ra0 = a_off + min(m0, last_m) * p.sa_m;
    let ra1 = a_off + min(m0 + 1u, last_m) * p.sa_m;
    let ra2 = a_off + min(m0 + 2u, last_m) * p.sa_m;
    let ra3 = a_off + min(m0 + 3u, last_m) * p.sa_m;
    let cb0 = b_off + min(n0, last_n) * p.sb_n;
    let cb1 = b_off + min(n0 + WX, last_n) * p.sb_n;
    let cb2 = b_off + min(n0 + 2u * WX, last_n) * p.sb_n;
    let cb3 = b_off + min(n0 + 3u * WX, last_n) * p.sb_n;

    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var ka = 0u;
    var kb = 0u;
    for (var k = 0u; k < p.k; k++) {
        let bv = vec4<f32>(b[cb0 + kb], b[cb1 + kb], b[cb2 + kb], b[cb3 + kb]);
        acc0 = fma(vec4<f32>(a[ra0 + ka]), bv, acc0);
        acc1 = fma(vec4<f32>(a[ra1 + ka]), bv, acc1);
        acc2 = fma(vec4<f32>(a[ra2 + ka]), bv, acc2);
        acc3 = fma(vec4<f32>(a[ra3 + ka]), bv, acc3);
        ka += p.sa_k;
        kb += p.sb_k;
    }

    // K = 0 leaves the accumulators at 0, which is the right product.
    let c_off = batch * p.m * p.n;
    store_row(c_off, m0, n0, acc0);
    store_row(c_off, m0 + 1u, n0, acc1);
    store_row(c_off, m0 + 2u, n0, acc2);
    store_row(c_off, m0 + 3u, n0, acc3);
}

// Stores the in-range part of one accumulator row: columns n0, n0 + WX, n0 + 2 WX, n0 + 3 WX.
fn store_row(c_off: u32, m: u32, n0: u32, v: vec4<f32>) {
    if (m >= p.m) {
        return;
    }
    let row = c_off + m * p.n;
    for (var j = 0u; j < TN; j++) {
        let n = n0 + j * WX;
        if (n < p.n) {
            c[row + n] = v[j];
        }
    }
}
