// Elementwise comparisons with NumPy broadcasting: y = (a OP b) as 1.0 or 0.0.
//
// a, b: inputs, contiguous in their own shapes; read through strides that are 0 along the
//       dimensions they are broadcast over.
// y: output, (numel) contiguous in the broadcast shape `shape` of rank `rank` (<= 8).
// OP (override): 0 eq, 1 ne, 2 lt, 3 le, 4 gt, 5 ge (codes as in src/kernels/compare.rs).
// NaN compares as IEEE 754 says: unequal to everything, so only `ne` is 1 beside a NaN. NaN is
// detected by its bits, since some backends (GL) may fold comparisons with NaN.
//
// Workgroup size 256: a multiple of every GPU's SIMD width and the WebGPU default maximum.

struct Params {
    numel: u32,
    rank: u32,
    // 1 when a and b both have the output's shape: no index arithmetic needed.
    same_shape: u32,
    _pad: u32,
    shape: array<vec4<u32>, 2>,     // output dims, 8 slots
    a_strides: array<vec4<u32>, 2>, // a's element stride per output dim (0 = broadcast)
    b_strides: array<vec4<u32>, 2>, // b's element stride per output dim (0 = broadcast)
}

override OP: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>; // (numel)

// kiln:include index

fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

fn compare_op(u: f32, v: f32) -> bool {
    if (is_nan(u) || is_nan(v)) {
        return OP == 1u;
    }
    switch OP {
        case 0u: { return u == v; }
        case 1u: { return u != v; }
        case 2u: { return u < v; }
        case 3u: { return u <= v; }
        case 4u: { return u > v; }
        default: { return u >= v; }
    }
}

@compute @workgroup_size(256)
fn compare(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p.numel) {
        return;
    }
    var at = vec2<u32>(i);
    if (p.same_shape != 1u) {
        at = index_offset2(i, p.rank, p.shape, p.a_strides, p.b_strides);
    }
    y[i] = select(0.0, 1.0, compare_op(a[at.x], b[at.y]));
}
