// Matrix product on cooperative matrices (tensor cores): C[b] = A[b] @ B[b], f16 inputs, f32
// accumulation and output. Needs wgpu's EXPERIMENTAL_COOPERATIVE_MATRIX feature with a 16x16x16
// f16 x f16 -> f32 configuration (NVIDIA's Vulkan driver offers it; VK_KHR_cooperative_matrix),
// SHADER_F16, and one fixed subgroup size; src/kernels/matmul_f16.rs checks all three and
// refuses with an error naming what is missing, so this module is never compiled elsewhere.
//
// M: rows of A and C.  N: columns of B and C.  K: columns of A and rows of B.  All contiguous
// row-major; b < batch.
//
// One workgroup is exactly one subgroup (`SG` invocations, set from the adapter's subgroup
// size: 32 on NVIDIA), because cooperative-matrix operations are subgroup-scoped and naga's
// uniformity analysis only accepts them in workgroup-uniform control flow: with one subgroup
// per workgroup every branch below depends on the workgroup index and the uniforms alone.
// The workgroup owns a 64 x 64 tile of C as 4 x 4 accumulators of 16 x 16 (16 x 8 f32
// registers per lane on NVIDIA) and walks K in steps of 16: per step 4 A tiles and 4 B tiles
// feed 16 multiply-adds.
//
// Tiles wholly inside C (with K and N multiples of 8, for alignment) load their operands
// straight from storage (coopLoadT, row-major with the matrix's row stride) and store C
// straight back. Other tiles, and the last partial step of K, stage zero-padded 64 x 16 and
// 16 x 64 slices through workgroup memory instead, and store each 16 x 16 block of C through
// a workgroup scratch block, writing only in-range elements.
// So any M, N, K >= 1 works and nothing outside the buffers is touched.

enable f16;
enable wgpu_cooperative_matrix;
// naga's uniformity analysis treats every function-local variable (so every loop counter) as
// non-uniform and reports cooperative operations inside loops under the derivative_uniformity
// rule. Here every branch and loop bound depends only on the workgroup index, the uniforms and
// constants, so the whole subgroup (= the workgroup) runs each cooperative operation together,
// as VK_KHR_cooperative_matrix requires.
diagnostic(off, derivative_uniformity);

override SG: u32 = 32u; // invocations per workgroup = the adapter's (fixed) subgroup size

const TILE: u32 = 64u;  // rows and columns of C per workgroup (= TILE in src/kernels/matmul_f16.rs)
const BK: u32 = 16u;    // depth of one step

alias MA = coop_mat16x16<f16, A>;
alias MB = coop_mat16x16<f16, B>;
alias MC = coop_mat16x16<f32, C>;

struct Params {
    m: u32,
    n: u32,
    k: u32,
    batch: u32,    // matrices in the batch (1 for plain 2-D operands)
    tiles_m: u32,  // ceil(M / TILE)
    tiles_n: u32,  // ceil(N / TILE)
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f16>;        // (batch, M, K)
@group(0) @binding(2) var<storage, read> b: array<f16>;        // (batch, K, N)
@group(0) @binding(3) var<storage, read_write> c: array<f32>;  // (batch, M, N)

var<workgroup> tile_a: array<f16, 1024>;  // [m][k]: 64 x 16, row stride 16
var<workgroup> tile_b: array<f16, 1024>;  // [k][n]: 16 x 64, row stride 64
var<workgroup> tile_c: array<f32, 256>;   // [m][n]: one 16 x 16 block of C, row stride 16

// Stores the in-range part of the 16 x 16 block `v` whose top-left element is C[m0, n0].
fn store_edge(v: MC, c_off: u32, m0: u32, n0: u32, li: u32) {
    coopStoreT(v, &tile_c[0], 16u);
    workgroupBarrier();
    for (var e = li; e < 256u; e += SG) {
        let m = m0 + e / 16u;
        let n = n0 + e % 16u;
        if (m < p.m && n < p.n) {
            c[c_off + m * p.n + n] = tile_c[e];
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(SG)
fn matmul_coop(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    // Linear workgroup index -> (batch, tile row, tile column). Workgroups past the end (the
    // executor may round the grid up) run the staged path on clamped data and store nothing.
    let wg = wid.y * nwg.x + wid.x;
    let tn = wg % p.tiles_n;
    let rest = wg / p.tiles_n;
    let tm = rest % p.tiles_m;
    let batch = rest / p.tiles_m;
    let live = batch < p.batch;
    let bb = min(batch, p.batch - 1u);
    let a_off = bb * p.m * p.k;
    let b_off = bb * p.k * p.n;
    let c_off = bb * p.m * p.n;
    let m0 = tm * TILE;
    let n0 = tn * TILE;
    // Workgroup-uniform: the whole 64 x 64 tile lies inside C, and the row strides allow the
    // direct path. Vulkan wants a cooperative load's pointer and stride 16-byte aligned
    // (VUID-RuntimeSpirv-OpCooperativeMatrixLoadKHR-08986): K and N multiples of 8 f16 (and
    // so of 4 f32 for C); the offsets then are too, since k0, m0 and n0 are multiples of 16.
    // (Non-short-circuit `&` on purpose: naga lowers `&&` through a local variable that its
    // uniformity analysis treats as non-uniform.)
    let aligned = (p.k % 8u == 0u) & (p.n % 8u == 0u);
    let full = live & aligned & (m0 + TILE <= p.m) & (n0 + TILE <= p.n);

    var c00 = MC();
    var c01 = MC();
    var c02 = MC();
    var c03 = MC();
    var c10 = MC();
    var c11 = MC();
    var c12 = MC();
    var c13 = MC();
    var c20 = MC();
    var c21 = MC();
    var c22 = MC();
    var c23 = MC();
    var c30 = MC();
    var c31 = MC();
    var c32 = MC();
    var c33 = MC();
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        var a0: MA;
        var a1: MA;
        var a2: MA;
        var a3: MA;
        var b0: MB;
        var b1: MB;
        var b2: MB;
        var b3: MB;
        if (full & (k0 + BK <= p.k)) {
            let ab = a_off + m0 * p.k + k0;
            a0 = coopLoadT<MA>(&a[ab], p.k);
            a1 = coopLoadT<MA>(&a[ab + 16u * p.k], p.k);
            a2 = coopLoadT<MA>(&a[ab + 32u * p.k], p.k);
            a3 = coopLoadT<MA>(&a[ab + 48u * p.k], p.k);
            let bq = b_off + k0 * p.n + n0;
            b0 = coopLoadT<MB>(&b[bq], p.n);
            b1 = coopLoadT<MB>(&b[bq + 16u], p.n);
            b2 = coopLoadT<MB>(&b[bq + 32u], p.n);
            b3 = coopLoadT<MB>(&b[bq + 48u], p.n);
        } else {
            // Zero-padded staging. A: element e has m = e / 16, k = e % 16 (sixteen neighbouring
            // lanes read a contiguous run of one row); B: n = e % 64, k = e / 64.
            for (var e = li; e < 1024u; e += SG) {
                let gm = m0 + e / BK;
                let gk = k0 + e % BK;
                var va = f16(0.0);
                if (gm < p.m && gk < p.k) {
                    va = a[a_off + gm * p.k + gk];
                }
                tile_a[e] = va;
                let gn = n0 + e % TILE;
                let gkb = k0 + e / TILE;
                var vb = f16(0.0);
                if (gn < p.n && gkb < p.k) {
                    vb = b[b_off + gkb * p.n + gn];
                }
                tile_b[e] = vb;
            }
            workgroupBarrier();
            a0 = coopLoadT<MA>(&tile_a[0u], BK);
            a1 = coopLoadT<MA>(&tile_a[256u], BK);
            a2 = coopLoadT<MA>(&tile_a[512u], BK);
            a3 = coopLoadT<MA>(&tile_a[768u], BK);
            b0 = coopLoadT<MB>(&tile_b[0u], TILE);
            b1 = coopLoadT<MB>(&tile_b[16u], TILE);
            b2 = coopLoadT<MB>(&tile_b[32u], TILE);
            b3 = coopLoadT<MB>(&tile_b[48u], TILE);
            workgroupBarrier();
        }
        c00 = coopMultiplyAdd(a0, b0, c00);
        c01 = coopMultiplyAdd(a0, b1, c01);
        c02 = coopMultiplyAdd(a0, b2, c02);
        c03 = coopMultiplyAdd(a0, b3, c03);
        c10 = coopMultiplyAdd(a1, b0, c10);
        c11 = coopMultiplyAdd(a1, b1, c11);
        c12 = coopMultiplyAdd(a1, b2, c12);
        c13 = coopMultiplyAdd(a1, b3, c13);
        c20 = coopMultiplyAdd(a2, b0, c20);
        c21 = coopMultiplyAdd(a2, b1, c21);
        c22 = coopMultiplyAdd(a2, b2, c22);
        c23 = coopMultiplyAdd(a2, b3, c23);
        c30 = coopMultiplyAdd(a3, b0, c30);
        c31 = coopMultiplyAdd(a3, b1, c31);
        c32 = coopMultiplyAdd(a3, b2, c32);
        c33 = coopMultiplyAdd(a3, b3, c33);
    }

    if (full) {
        let cb = c_off + m0 * p.n + n0;
        // Operands of coopStoreT are bound with `let` first: naga 30's WGSL front end pushes
        // the store before emitting expressions written inside its arguments, and its SPIR-V
        // writer then panics on them ("Expression [..] is not cached").
        let ldc = p.n;
        let o00 = cb + 0u * ldc + 0u;
        let o01 = cb + 0u * ldc + 16u;
        let o02 = cb + 0u * ldc + 32u;
        let o03 = cb + 0u * ldc + 48u;
        let o10 = cb + 16u * ldc + 0u;
        let o11 = cb + 16u * ldc + 16u;
        let o12 = cb + 16u * ldc + 32u;
        let o13 = cb + 16u * ldc + 48u;
        let o20 = cb + 32u * ldc + 0u;
        let o21 = cb + 32u * ldc + 16u;
        let o22 = cb + 32u * ldc + 32u;
        let o23 = cb + 32u * ldc + 48u;
        let o30 = cb + 48u * ldc + 0u;
        let o31 = cb + 48u * ldc + 16u;
        let o32 = cb + 48u * ldc + 32u;
        let o33 = cb + 48u * ldc + 48u;
        let v00 = c00;
        let v01 = c01;
        let v02 = c02;
        let v03 = c03;
        let v10 = c10;
        let v11 = c11;
        let v12 = c12;
        let v13 = c13;
        let v20 = c20;
        let v21 = c21;
        let v22 = c22;
        let v23 = c23;
        let v30 = c30;
        let v31 = c31;
        let v32 = c32;
        let v33 = c33;
        coopStoreT(v00, &c[o00], ldc);
        coopStoreT(v01, &c[o01], ldc);
        coopStoreT(v02, &c[o02], ldc);
        coopStoreT(v03, &c[o03], ldc);
        coopStoreT(v10, &c[o10], ldc);
        coopStoreT(v11, &c[o11], ldc);
        coopStoreT(v12, &c[o12], ldc);
        coopStoreT(v13, &c[o13], ldc);
        coopStoreT(v20, &c[o20], ldc);
        coopStoreT(v21, &c[o21], ldc);
        coopStoreT(v22, &c[o22], ldc);
        coopStoreT(v23, &c[o23], ldc);
        coopStoreT(v30, &c[o30], ldc);
        coopStoreT(v31, &c[o31], ldc);
        coopStoreT(v32, &c[o32], ldc);
        coopStoreT(v33, &c[o33], ldc);
    } else if (live) {
        store_edge(c00, c_off, m0 + 0u, n0 + 0u, li);
        store_edge(c01, c_off, m0 + 0u, n0 + 16u, li);
        store_edge(c02, c_off, m0 + 0u, n0 + 32u, li);
        store_edge(c03, c_off, m0 + 0u, n0 + 48u, li);
        store_edge(c10, c_off, m0 + 16u, n0 + 0u, li);
        store_edge(c11, c_off, m0 + 16u, n0 + 16u, li);
        store_edge(c12, c_off, m0 + 16u, n0 + 32u, li);
        store_edge(c13, c_off, m0 + 16u, n0 + 48u, li);
        store_edge(c20, c_off, m0 + 32u, n0 + 0u, li);
        store_edge(c21, c_off, m0 + 32u, n0 + 16u, li);
        store_edge(c22, c_off, m0 + 32u, n0 + 32u, li);
        store_edge(c23, c_off, m0 + 32u, n0 + 48u, li);
        store_edge(c30, c_off, m0 + 48u, n0 + 0u, li);
        store_edge(c31, c_off, m0 + 48u, n0 + 16u, li);
        store_edge(c32, c_off, m0 + 48u, n0 + 32u, li);
        store_edge(c33, c_off, m0 + 48u, n0 + 48u, li);
    }
}
