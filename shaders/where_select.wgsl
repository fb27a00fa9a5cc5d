// where(cond, a, b): y = a where cond is nonzero, else b, with NumPy broadcasting of all three.
//
// cond, a, b: inputs, contiguous in their own shapes; read through strides that are 0 along
//             the dimensions they are broadcast over. cond is f32 (a comparison's 0/1 mask):
//             any nonzero value (NaN included) selects a.
// y: output, (numel) contiguous in the broadcast shape `shape` of rank `rank` (<= 8).
//
// Workgroup size 256: a multiple of every GPU's SIMD width and the WebGPU default maximum.
// (`where` is a reserved word in WGSL, hence the name `where_select`.)

struct Params {
    numel: u32,
    rank: u32,
    _pad0: u32,
    _pad1: u32,
    shape: array<vec4<u32>, 2>,     // output dims, 8 slots
    c_strides: array<vec4<u32>, 2>, // cond's element stride per output dim (0 = broadcast)
    a_strides: array<vec4<u32>, 2>, // a's element stride per output dim (0 = broadcast)
    b_strides: array<vec4<u32>, 2>, // b's element stride per output dim (0 = broadcast)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> cond: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>; // (numel)

// kiln:include index

@compute @workgroup_size(256)
fn where_select(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p.numel) {
        return;
    }
    let at = index_offset3(i, p.rank, p.shape, p.c_strides, p.a_strides, p.b_strides);
    // Both sides are read so that the choice is a select, not a branch.
    // Nonzero by its bits (-0.0 counts as zero), so NaN selects a on every backend.
    y[i] = select(b[at.z], a[at.y], (bitcast<u32>(cond[at.x]) & 0x7fffffffu) != 0u);
}
