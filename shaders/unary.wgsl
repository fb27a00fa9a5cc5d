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

// tanh through exp(-2|x|), which cannot overflow (some drivers' tanh returns NaN for |x| > 88).

// kiln:include float

fn stable_tanh(v: f32) -> f32 {
    let t = exp(-2.0 * abs(v));
    return sign(v) * (1.0 - t) / (1.0 + t);
}

// Logistic sigmoid that never evaluates exp of a large positive number.
fn stable_sigmoid(v: f32) -> f32 {
    if (v >= 0.0) {
        return 1.0 / (1.0 + exp(-v));
    }
    let e = exp(v);
    return e / (1.0 + e);
}

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

// pow with NumPy's results for a negative base and an integer exponent, and for a zero base.
fn safe_pow(a: f32, b: f32) -> f32 {
    if (a == 0.0) {
        if (b > 0.0) { return 0.0; }
        if (b == 0.0) { return 1.0; }
        return f32_from_bits(0x7f800000u);
    }
    let r = exp2(b * log2(abs(a)));
    if (a > 0.0) {
        return r;
    }
    if (b != floor(b)) {
        return f32_from_bits(0x7fc00000u);
    }
    let odd = abs(b - 2.0 * floor(b * 0.5)) == 1.0;
    return select(r, -r, odd);
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
        case 0u: { return -1.0; }
        case 1u: { return sign(v); }
        case 2u: { return exp(v); }
        case 3u: { return 1.0 / v; }
        case 4u: { return 0.5 / sqrt(v); }
        case 5u: { return select(0.0, 1.0, v > 0.0); }
        case 6u: {
            let s = stable_sigmoid(v);
            return s * (1.0 - s);
        }
        case 7u: {
            let t = stable_tanh(v);
            return 1.0 - t * t;
        }
        case 8u: { return 2.0 * v; }
        case 9u: { return -1.0 / (v * v); }
        case 10u: { return cos(v); }
        case 11u: { return -sin(v); }
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
    let s = p.scalar;
    if (p.scalar_first == 0u) {
        switch OP {
            case 0u, 1u: { return 1.0; }
            case 2u: { return s; }
            case 3u: { return 1.0 / s; }
            case 4u: { return select(0.0, 1.0, v >= s); }
            case 5u: { return select(0.0, 1.0, v <= s); }
            case 6u: { return s * safe_pow(v, s - 1.0); }
            default: { return 0.0; }
        }
    }
    switch OP {
        case 0u: { return 1.0; }
        case 1u: { return -1.0; }
        case 2u: { return s; }
        case 3u: { return -s / (v * v); }
        case 4u: { return select(0.0, 1.0, v > s); }
        case 5u: { return select(0.0, 1.0, v < s); }
        case 6u: { return log(s) * safe_pow(s, v); }
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
