// Half precision: f32 <-> f16 casts and a tiled f16 matrix product with f32 accumulation.
// Needs the SHADER_F16 feature (`enable f16`); src/kernels/matmul_f16.rs refuses clearly on
// adapters without it, so this module is only compiled where it can run.
//
// Casts: n elements, one per invocation (f32 -> f16 rounds to nearest even, as WGSL's f16()
// conversion does; values past the f16 range become +-inf).
//
// Matmul: C[b] = A[b] @ B[b] for b < batch, all contiguous row-major.
// M: rows of A and C.  N: columns of B and C.  K: columns of A and rows of B.
// A and B are f16, C is f32; products are summed in f32 (f16 inputs, f32 accumulation, the
// mixed precision cuBLAS and tensor cores use).
//
// Tiling: a workgroup of 16 x 16 = 256 invocations (WebGPU's default maximum: one workgroup
// spans many SIMD lanes on GPUs and eight rows of lanes on lavapipe) owns a 64 x 64 tile of C
// and walks K in steps of 16. Each step stages a 64 x 16 slice of A and a 16 x 64 slice of B in
// workgroup memory (2 + 2 KiB), zero-padded past the edges so the inner loop has no branches;
// each invocation then keeps a 4 x 4 block of C in registers: rows 4 ty .. 4 ty + 3 and
// columns tx + 16 j (neighbouring invocations take neighbouring columns, so the stores are
// contiguous across a row of invocations).

enable f16;

const TILE: u32 = 64u;   // rows and columns of C per workgroup (= TILE in src/kernels/matmul_f16.rs)
const BK: u32 = 16u;     // depth of one staged step

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,      // matrices in the batch (1 for plain 2-D operands)
    tiles_m: u32,    // ceil(M / TILE)
    tiles_n: u32,    // ceil(N / TILE)
    count: u32,      // casts: elements to convert
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// ---- casts (bindings: 1 = input, 2 = output) ----

@group(0) @binding(1) var<storage, read> x32: array<f32>;        // (count) f32, for to_f16
@group(0) @binding(2) var<storage, read_write> y16: array<f16>;  // (count) f16, for to_f16

@compute @workgroup_size(256)
fn to_f16(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + li;
    if (i < p.count) {
        y16[i] = f16(x32[i]);
    }
}

@group(0) @binding(1) var<storage, read> x16: array<f16>;        // (count) f16, for to_f32
@group(0) @binding(2) var<storage, read_write> y32: array<f32>;  // (count) f32, for to_f32

@compute @workgroup_size(256)
fn to_f32(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + li;
    if (i < p.count) {
        y32[i] = f32(x16[i]);
    }
}

// ---- matmul (bindings: 1 = A, 2 = B, 3 = C) ----

@group(0) @binding(1) var<storage, read> a: array<f16>;        // (batch, M, K)
@group(0) @binding(2) var<storage, read> b: array<f16>;        // (batch, K, N)
@group(0) @binding(3) var<storage, read_write> c: array<f32>;  // (batch, M, N)

var<workgroup> tile_a: array<f16, 1024>; // [k][m]: 16 x 64, k-major so a column of A is contiguous
var<workgroup> tile_b: array<f16, 1024>; // [k][n]: 16 x 64

@compute @workgroup_size(16, 16)
fn matmul_f16(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    // Linear workgroup index -> (batch, tile row, tile column). Workgroups past the end (the
    // executor may round the grid up) still take part in the barriers but store nothing.
    let wg = wid.y * nwg.x + wid.x;
    let tn = wg % p.tiles_n;
    let rest = wg / p.tiles_n;
    let tm = rest % p.tiles_m;
    let batch = rest / p.tiles_m;
    let live = batch < p.batch;
    let bb = min(batch, p.batch - 1u);
    let a_off = bb * p.m * p.k;
    let b_off = bb * p.k * p.n;
    let m0 = tm * TILE;
    let n0 = tn * TILE;

    var acc: array<vec4<f32>, 4>; // acc[i][j]: row 4 ty + i, column tx + 16 j
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        // Stage 1024 elements of each slice, 4 per invocation. For A, element e = li + 256 q
        // has k = e % 16 and m = e / 16: sixteen neighbouring invocations read one contiguous
        // run of a row of A.
        for (var q = 0u; q < 4u; q++) {
            let e = li + 256u * q;
            let ak = e % BK;
            let am = e / BK;
            let gm = m0 + am;
            let gk = k0 + ak;
            var va = f16(0.0);
            if (gm < p.m && gk < p.k) {
                va = a[a_off + gm * p.k + gk];
            }
            tile_a[ak * TILE + am] = va;
            // For B, element e has n = e % 64, k = e / 64: a row of B is contiguous.
            let bn = e % TILE;
            let bk = e / TILE;
            let gn = n0 + bn;
            let gkb = k0 + bk;
            var vb = f16(0.0);
            if (gn < p.n && gkb < p.k) {
                vb = b[b_off + gkb * p.n + gn];
            }
            tile_b[bk * TILE + bn] = vb;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let ra = kk * TILE + lid.y * 4u;
            let av = vec4<f32>(
                f32(tile_a[ra]),
                f32(tile_a[ra + 1u]),
                f32(tile_a[ra + 2u]),
                f32(tile_a[ra + 3u]),
            );
            let rb = kk * TILE + lid.x;
            let bv = vec4<f32>(
                f32(tile_b[rb]),
                f32(tile_b[rb + 16u]),
                f32(tile_b[rb + 32u]),
                f32(tile_b[rb + 48u]),
            );
            acc[0] = fma(vec4<f32>(av.x), bv, acc[0]);
            acc[1] = fma(vec4<f32>(av.y), bv, acc[1]);
            acc[2] = fma(vec4<f32>(av.z), bv, acc[2]);
            acc[3] = fma(vec4<f32>(av.w), bv, acc[3]);
        }
        workgroupBarrier();
    }

    if (!live) {
        return;
    }
    let c_off = batch * p.m * p.n;
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + lid.y * 4u + i;
        if (m < p.m) {
            let row = acc[i];
            for (var j = 0u; j < 4u; j++) {
                let n = n0 + lid.x + 16u * j;
                if (n < p.n) {
                    c[c_off + m * p.n + n] = row[j];
                }
            }
        }
    }
}
