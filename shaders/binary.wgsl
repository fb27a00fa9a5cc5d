// Elementwise binary ops with NumPy broadcasting.
//
// a, b: inputs, contiguous in their own shapes; read through strides that are 0 along the
//       dimensions they are broadcast over.
// y: output, (numel) contiguous in the broadcast shape `shape` of rank `rank` (<= 8).
// The op is a pipeline-overridable constant (codes as in src/kernels/binary.rs).
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
// The math: one function per op, shared with the fused kernels of src/executor/fusion.rs.
// kiln:include binary_ops

fn binary_op(u: f32, v: f32) -> f32 {
    switch OP {
        case 0u: { return binary_add(u, v); }
        case 1u: { return binary_sub(u, v); }
        case 2u: { return binary_mul(u, v); }
        case 3u: { return binary_div(u, v); }
        case 4u: { return binary_maximum(u, v); }
        case 5u: { return binary_minimum(u, v); }
        case 6u: { return binary_pow(u, v); }
        default: { return u; }
    }
}

@compute @workgroup_size(256)
fn binary(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p.numel) {
        return;
    }
    if (p.same_shape == 1u) {
        y[i] = binary_op(a[i], b[i]);
        return;
    }
    var rem = i;
    var ia = 0u;
    var ib = 0u;
    for (var d = i32(p.rank) - 1; d >= 0; d--) {
        let k = u32(d);
        let c = index_peel(&rem, p.shape[k >> 2u][k & 3u]);
        ia += c * p.a_strides[k >> 2u][k & 3u];
        ib += c * p.b_strides[k >> 2u][k & 3u];
    }
    y[i] = binary_op(a[ia], b[ib]);
}

// ---- backward ----------------------------------------------------------------------------
// g: upstream gradient, (numel) in the broadcast shape.  d: the gradient of a (WHICH = 0) or
// of b (WHICH = 1), still in the broadcast shape; the caller sums it down to the operand's shape.
override WHICH: u32 = 0u;

@group(0) @binding(3) var<storage, read> g: array<f32>;      // (numel)
@group(0) @binding(4) var<storage, read_write> d: array<f32>; // (numel)

// ∂(u OP v)/∂u (WHICH = 0) or ∂/∂v (WHICH = 1). Ties of max/min go to u.
fn binary_partial(u: f32, v: f32) -> f32 {
    if (WHICH == 0u) {
        switch OP {
            case 0u: { return binary_add_da(u, v); }
            case 1u: { return binary_sub_da(u, v); }
            case 2u: { return binary_mul_da(u, v); }
            case 3u: { return binary_div_da(u, v); }
            case 4u: { return binary_maximum_da(u, v); }
            case 5u: { return binary_minimum_da(u, v); }
            case 6u: { return binary_pow_da(u, v); }
            default: { return 0.0; }
        }
    }
    switch OP {
        case 0u: { return binary_add_db(u, v); }
        case 1u: { return binary_sub_db(u, v); }
        case 2u: { return binary_mul_db(u, v); }
        case 3u: { return binary_div_db(u, v); }
        case 4u: { return binary_maximum_db(u, v); }
        case 5u: { return binary_minimum_db(u, v); }
        case 6u: { return binary_pow_db(u, v); }
        default: { return 0.0; }
    }
}

@compute @workgroup_size(256)
fn binary_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p.numel) {
        return;
    }
    var ia = i;
    var ib = i;
    if (p.same_shape != 1u) {
        var rem = i;
        ia = 0u;
        ib = 0u;
        for (var dim = i32(p.rank) - 1; dim >= 0; dim--) {
            let k = u32(dim);
            let c = index_peel(&rem, p.shape[k >> 2u][k & 3u]);
            ia += c * p.a_strides[k >> 2u][k & 3u];
            ib += c * p.b_strides[k >> 2u][k & 3u];
        }
    }
    d[i] = g[i] * binary_partial(a[ia], b[ib]);
}
