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

// Codes shared with src/kernels/unary.rs (UnaryOp).
const NEG: u32 = 0u;
const ABS: u32 = 1u;
const EXP: u32 = 2u;
const LOG: u32 = 3u;
const SQRT: u32 = 4u;
const RELU: u32 = 5u;
const SIGMOID: u32 = 6u;
const TANH: u32 = 7u;
const SQUARE: u32 = 8u;
const RECIP: u32 = 9u;
const SIN: u32 = 10u;
const COS: u32 = 11u;

// kiln:include float
// kiln:include elementwise



fn unary_op(v: f32) -> f32 {
    switch OP {
        case 0u: { return -v; }
        case 1u: { return abs(v); }
        case 2u: { return exp(v); }
        case 3u: { return log(v); }
        case 4u: { return sqrt(v); }
        case 5u: { return max(v, 0.0); }
        case 6u: { return stable_sigmoid(v); }
        case 7u: { return stable_tanh(v); }
        case 8u: { return v * v; }
        case 9u: { return 1.0 / v; }
        case 10u: { return sin(v); }
        case 11u: { return cos(v); }
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

// Binary op codes shared with shaders/binary.wgsl and src/kernels/binary.rs (BinaryOp).
fn binary_op(a: f32, b: f32) -> f32 {
    switch OP {
        case 0u: { return a + b; }
        case 1u: { return a - b; }
        case 2u: { return a * b; }
        case 3u: { return a / b; }
        case 4u: { return max(a, b); }
        case 5u: { return min(a, b); }
        case 6u: { return safe_pow(a, b); }
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
    return unary_derivative_of(OP, v);
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
        return binary_partial_of(OP, 0u, v, p.scalar);
    }
    return binary_partial_of(OP, 1u, p.scalar, v);
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
