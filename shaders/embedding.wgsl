// Embedding lookup and its deterministic weight gradient.
//
// V: vocabulary size (rows of the weight), D: embedding width, N: number of indices.
// w: weight, (V, D) contiguous.  idx: indices, (N) contiguous, i32 or u32 read as u32 (a
// negative i32 reads as a value >= 2^31 > V, so it is out of range like any index >= V).
// y: (N, D) = w[idx[n], :], or zeros for an out-of-range index (a kernel cannot raise).
// dy: upstream gradient, (N, D).  dw: weight gradient, (V, D): dw[v, :] = sum of dy[n, :] over
// the n with idx[n] == v, added in increasing n (out-of-range indices contribute nothing).
// The host reference is src/reference/embedding.rs.

struct Params {
    numel: u32,      // forward: N * D
    dim: u32,        // D
    vocab: u32,      // V
    count: u32,      // N
    row_blocks: u32, // backward: ceil(V / ROWS)
    col_blocks: u32, // backward: ceil(D / COLS)
    tiles: u32,      // backward: ceil(N / COLS)
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// ---- forward -------------------------------------------------------------------------------
@group(0) @binding(1) var<storage, read> w: array<f32>;         // (V, D)
@group(0) @binding(2) var<storage, read> idx: array<u32>;       // (N)
@group(0) @binding(3) var<storage, read_write> y: array<f32>;   // (N, D)

// Workgroup size 256, one output element per invocation: a multiple of every GPU's SIMD width
// and the WebGPU default maximum; consecutive invocations copy consecutive columns of a row.
@compute @workgroup_size(256)
fn embedding(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p.numel) {
        return;
    }
    let n = i / p.dim;
    let d = i - n * p.dim;
    let v = idx[n];
    var out = 0.0;
    if (v < p.vocab) {
        out = w[v * p.dim + d];
    }
    y[i] = out;
}

// ---- backward (weight) ---------------------------------------------------------------------
// WGSL has no f32 atomics, so each dw element has exactly one owner that sums its
// contributions in a fixed order. A workgroup owns a block of ROWS vocabulary rows and COLS
// columns; invocation c owns column c of each of those rows and keeps ROWS accumulators. The
// workgroup walks the indices in tiles of COLS: each invocation tests one index for "falls in
// my rows", a prefix sum (in workgroup memory) compacts the hits in increasing n, and every
// invocation then adds dy[n, c] for each hit to the accumulator of the hit's row.
// Cost: every workgroup reads all N indices, so ceil(V / ROWS) * ceil(D / COLS) * N index
// reads and as many tests, plus N * D reads of dy (each read once) and V * D writes.
//
// Workgroup size COLS = 64: one tile of indices per round and 64 columns per block, small
// enough that narrow embeddings (D <= 64) waste few invocations; ROWS = 16 accumulators fit
// in registers.
const ROWS: u32 = 16u;
const COLS: u32 = 64u;

@group(0) @binding(1) var<storage, read> b_idx: array<u32>;          // (N)
@group(0) @binding(2) var<storage, read> dy: array<f32>;             // (N, D)
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;       // (V, D)

var<workgroup> scan: array<u32, 64>;  // inclusive prefix sum of the hit flags
var<workgroup> hit_n: array<u32, 64>; // compacted hits: index position n
var<workgroup> hit_r: array<u32, 64>; // compacted hits: row within the block

@compute @workgroup_size(64)
fn embedding_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let wg = wid.y * nwg.x + wid.x;
    // Spare workgroups of the grid run the same barriers but test and write nothing.
    let live = wg < p.row_blocks * p.col_blocks;
    let rb = wg / max(p.col_blocks, 1u);
    let cb = wg - rb * p.col_blocks;
    let v0 = rb * ROWS;
    let col = cb * COLS + lid;
    var acc: array<f32, 16>;
    for (var r = 0u; r < ROWS; r++) {
        acc[r] = 0.0;
    }
    for (var t = 0u; t < p.tiles; t++) {
        let n = t * COLS + lid;
        var flag = 0u;
        var row = 0u;
        if (live && n < p.count) {
            let v = b_idx[n];
            row = v - v0; // wraps to a large value when v < v0
            if (v < p.vocab && row < ROWS) {
                flag = 1u;
            }
        }
        scan[lid] = flag;
        workgroupBarrier();
        for (var off = 1u; off < COLS; off = off * 2u) {
            var add = 0u;
            if (lid >= off) {
                add = scan[lid - off];
            }
            workgroupBarrier();
            scan[lid] = scan[lid] + add;
            workgroupBarrier();
        }
        if (flag == 1u) {
            let at = scan[lid] - 1u;
            hit_n[at] = n;
            hit_r[at] = row;
        }
        workgroupBarrier();
        let hits = scan[COLS - 1u];
        if (col < p.dim) {
            for (var h = 0u; h < hits; h++) {
                let r = hit_r[h];
                acc[r] = acc[r] + dy[hit_n[h] * p.dim + col];
            }
        }
        // Everyone is done with this tile's hits before the next tile overwrites them.
        workgroupBarrier();
    }
    if (live && col < p.dim) {
        for (var r = 0u; r < ROWS; r++) {
            let v = v0 + r;
            if (v < p.vocab) {
                dw[v * p.dim + col] = acc[r];
            }
        }
    }
}
