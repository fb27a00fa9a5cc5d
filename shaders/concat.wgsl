// Concatenation of two tensors along one axis (longer lists are joined pairwise).
//
// Both inputs and the output are viewed as (outer, c, inner): c is the joined axis, outer and
// inner the dims before and after it, equal for all three.
// a: (outer, ca, inner). b: (outer, cb, inner). y: (outer, ca + cb, inner).
//
// Workgroup size 256: a multiple of every GPU's SIMD width and the WebGPU default maximum.

struct Params {
    numel: u32,
    inner: u32,
    ca: u32,
    cb: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;       // (outer, ca, inner)
@group(0) @binding(2) var<storage, read> b: array<f32>;       // (outer, cb, inner)
@group(0) @binding(3) var<storage, read_write> y: array<f32>; // (outer, ca + cb, inner)

// kiln:include index

@compute @workgroup_size(256)
fn concat(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p.numel) {
        return;
    }
    let c = p.ca + p.cb;
    let row = div_u32(i, p.inner); // o * c + k
    let r = i - row * p.inner;
    let o = div_u32(row, c);
    let k = row - o * c;
    if (k < p.ca) {
        y[i] = a[(o * p.ca + k) * p.inner + r];
    } else {
        y[i] = b[(o * p.cb + (k - p.ca)) * p.inner + r];
    }
}
