// Elementwise unary math, and binary ops between a tensor and a scalar.
//
// x: input, (numel) contiguous.  y: output, (numel) contiguous.
// The op is a pipeline-overridable constant, so each op is its own specialized pipeline and the
// branch below folds away at pipeline creation.
//
// Workgroup size 256: a multiple of every GPU's SIMD width (32 or 64) and the WebGPU default
// limit on invocations per workgroup.

struct Params {
    numel: u32,
    // scalar: the other operand of `scalar` ops.
    scalar: f32,
    // 1: y = scalar OP x; 0: y = x OP scalar.
    scalar_first: u32,
    _pad: u32,
}

override OP: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;       // (numel)
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // (numel)

// The math: one function per op, shared with the fused kernels of src/executor/fusion.rs.
// kiln:include unary_ops
// kiln:include binary_ops

// Op codes as UnaryOp in src/ir.rs.
fn unary_op(v: f32) -> f32 {
    switch OP {
        case 0u: { return unary_neg(v); }
        case 1u: { return unary_abs(v); }
        case 2u: { return unary_exp(v); }
        case 3u: { return unary_log(v); }
        case 4u: { return unary_sqrt(v); }
        case 5u: { return unary_relu(v); }
        case 6u: { return unary_sigmoid(v); }
        case 7u: { return unary_tanh(v); }
        case 8u: { return unary_square(v); }
        case 9u: { return unary_recip(v); }
        case 10u: { return unary_sin(v); }
        case 11u: { return unary_cos(v); }
        default: { return v; }
    }
}

// Linear element index from a 2-D grid of 256-wide workgroups (the executor splits large
// dispatches over x and y to stay under 65,535 workgroups per dimension).
fn element_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid;
}

@compute @workgroup_size(256)
fn unary(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element_index(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    y[i] = unary_op(x[i]);
}

// Op codes as BinaryOp in src/ir.rs.
fn binary_op(a: f32, b: f32) -> f32 {
    switch OP {
        case 0u: { return binary_add(a, b); }
        case 1u: { return binary_sub(a, b); }
        case 2u: { return binary_mul(a, b); }
        case 3u: { return binary_div(a, b); }
        case 4u: { return binary_maximum(a, b); }
        case 5u: { return binary_minimum(a, b); }
        case 6u: { return binary_pow(a, b); }
        default: { return a; }
    }
}

@compute @workgroup_size(256)
fn scalar(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element_index(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    if (p.scalar_first == 1u) {
        y[i] = binary_op(p.scalar, x[i]);
    } else {
        y[i] = binary_op(x[i], p.scalar);
    }
}

// ---- backward ----------------------------------------------------------------------------
// dy: upstream gradient, (numel).  dx: gradient of x, (numel).  Bound after x for the
// backward entry points (the forward entry points bind y there instead).
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

// f'(v) for each unary op; at kinks (abs, relu at 0) the derivative is taken as 0.
fn unary_derivative(v: f32) -> f32 {
    switch OP {
        case 0u: { return unary_neg_d(v); }
        case 1u: { return unary_abs_d(v); }
        case 2u: { return unary_exp_d(v); }
        case 3u: { return unary_log_d(v); }
        case 4u: { return unary_sqrt_d(v); }
        case 5u: { return unary_relu_d(v); }
        case 6u: { return unary_sigmoid_d(v); }
        case 7u: { return unary_tanh_d(v); }
        case 8u: { return unary_square_d(v); }
        case 9u: { return unary_recip_d(v); }
        case 10u: { return unary_sin_d(v); }
        case 11u: { return unary_cos_d(v); }
        default: { return 0.0; }
    }
}

@compute @workgroup_size(256)
fn unary_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element_index(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    dx[i] = dy[i] * unary_derivative(x[i]);
}

// d/dv of (v OP scalar), or of (scalar OP v) when scalar_first. Ties of max/min go to the
// tensor operand when it comes first, to the scalar otherwise.
fn scalar_derivative(v: f32) -> f32 {
    if (p.scalar_first == 0u) {
        switch OP {
            case 0u: { return binary_add_da(v, p.scalar); }
            case 1u: { return binary_sub_da(v, p.scalar); }
            case 2u: { return binary_mul_da(v, p.scalar); }
            case 3u: { return binary_div_da(v, p.scalar); }
            case 4u: { return binary_maximum_da(v, p.scalar); }
            case 5u: { return binary_minimum_da(v, p.scalar); }
            case 6u: { return binary_pow_da(v, p.scalar); }
            default: { return 0.0; }
        }
    }
    switch OP {
        case 0u: { return binary_add_db(p.scalar, v); }
        case 1u: { return binary_sub_db(p.scalar, v); }
        case 2u: { return binary_mul_db(p.scalar, v); }
        case 3u: { return binary_div_db(p.scalar, v); }
        case 4u: { return binary_maximum_db(p.scalar, v); }
        case 5u: { return binary_minimum_db(p.scalar, v); }
        case 6u: { return binary_pow_db(p.scalar, v); }
        default: { return 0.0; }
    }
}

@compute @workgroup_size(256)
fn scalar_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element_index(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    dx[i] = dy[i] * scalar_derivative(x[i]);
}
