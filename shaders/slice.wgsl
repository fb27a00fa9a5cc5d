// Strided slices (ONNX Slice) and their backward.
//
// Forward: y[c] = x[base + Σ_d c_d · step_stride_d], for c over the output shape `shape`
// (rank <= 8), where base is the input offset of the first element taken and step_stride_d
// is step_d times x's element stride along d (negative for negative steps).
// x: input, contiguous. y: output, (numel) contiguous in `shape`.
//
// Workgroup size 256: a multiple of every GPU's SIMD width and the WebGPU default maximum.

struct Params {
    numel: u32,
    rank: u32,
    base: u32,
    _pad: u32,
    shape: array<vec4<u32>, 2>,        // output dims, 8 slots
    step_strides: array<vec4<i32>, 2>, // step times input stride, per dim
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // (numel)

// kiln:include index

@compute @workgroup_size(256)
fn slice(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p.numel) {
        return;
    }
    // The i32 strides as u32: the wrapping sum is the same bits as the signed one.
    let s = array<vec4<u32>, 2>(
        bitcast<vec4<u32>>(p.step_strides[0]),
        bitcast<vec4<u32>>(p.step_strides[1]),
    );
    y[i] = x[p.base + index_offset(i, p.rank, p.shape, s)];
}

// ---- backward ----------------------------------------------------------------------------
// One invocation per input element: dx[c] = g[q] where every coordinate c_d is
// start_d + q_d · step_d for some 0 <= q_d < out_d, else 0.
// g: upstream gradient, contiguous in the output shape. dx: (numel) in the input shape.

struct BackParams {
    numel: u32,
    rank: u32,
    _pad0: u32,
    _pad1: u32,
    in_shape: array<vec4<u32>, 2>,
    starts: array<vec4<i32>, 2>,
    steps: array<vec4<i32>, 2>,
    out_shape: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<uniform> bp: BackParams;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>; // (numel)

@compute @workgroup_size(256)
fn slice_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= bp.numel) {
        return;
    }
    var rem = i;
    var at = 0u;
    var stride = 1u;
    var hit = true;
    for (var d = i32(bp.rank) - 1; d >= 0; d--) {
        let k = u32(d);
        let c = index_peel(&rem, bp.in_shape[k >> 2u][k & 3u]);
        let step = bp.steps[k >> 2u][k & 3u];
        let t = i32(c) - bp.starts[k >> 2u][k & 3u];
        let j = t / step;
        let out_n = bp.out_shape[k >> 2u][k & 3u];
        if (t != j * step || j < 0 || u32(j) >= out_n) {
            hit = false;
        } else {
            at += u32(j) * stride;
        }
        stride *= out_n;
    }
    dx[i] = select(0.0, g[at], hit);
}
