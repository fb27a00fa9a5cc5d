// Materialized permutation of dims: a gather, one invocation per output element.
//
// i: an output element, 0 <= i < numel. Its coordinates in the output shape, each times the
//    input stride of the input dim that output dim comes from, give the input offset.
// x: input, (numel) contiguous row-major in the input shape.
// y: output, (numel) contiguous row-major in the permuted shape.
//
// The Rust side (src/kernels/permute.rs) drops dims of size 1 and merges output dims that are
// adjacent and in order in the input too, so a rank-6 permutation of which two blocks swap
// arrives here as rank 2 (a plain transpose).
//
// Workgroup size 256: a multiple of every GPU's SIMD width and the WebGPU default limit on
// invocations per workgroup; each invocation does one element, so nothing else constrains it.

struct Params {
    numel: u32,
    rank: u32,
    _pad0: u32,
    _pad1: u32,
    shape: array<vec4<u32>, 2>,   // merged output dims, 8 slots
    strides: array<vec4<u32>, 2>, // input element stride of each merged output dim
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;       // (numel) in the input shape
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // (numel) in the output shape

// kiln:include index

@compute @workgroup_size(256)
fn permute(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p.numel) {
        return;
    }
    var rem = i;
    var src = 0u;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        let k = u32(d);
        let c = index_peel(&rem, p.shape[k >> 2u][k & 3u]);
        src += c * p.strides[k >> 2u][k & 3u];
    }
    y[i] = x[src];
}
