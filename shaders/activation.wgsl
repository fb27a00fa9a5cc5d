// Activations that need a parameter or a special function: leaky ReLU, GELU (exact, through
// erf, and the tanh approximation) and erf itself, forward and backward.
//
// x: input, (n) contiguous.  y: output, (n).
// dy: upstream gradient, (n).  dx: gradient of x, (n) (backward entry point only).
// The op is a pipeline-overridable constant (codes as ActivationOp in src/kernels/activation.rs),
// so each op is its own specialized pipeline and the switches below fold away. The math is
// shaders/lib/activation_ops.wgsl, shared with the fused kernels of src/executor/fusion.rs.
//
// Workgroup size 256: a multiple of every GPU's SIMD width (32 or 64) and the WebGPU default
// limit on invocations per workgroup; elementwise work needs nothing larger.

struct Params {
    n: u32,
    // Slope for x < 0 (leaky ReLU only).
    alpha: f32,
    _pad0: u32,
    _pad1: u32,
}

override OP: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;       // (n)
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // (n), forward entry point
@group(0) @binding(2) var<storage, read> dy: array<f32>;      // (n), backward entry point
@group(0) @binding(3) var<storage, read_write> dx: array<f32>; // (n), backward entry point

// kiln:include activation_ops

fn activation_op(v: f32) -> f32 {
    switch OP {
        case 0u: { return activation_leaky_relu(v, p.alpha); }
        case 1u: { return activation_gelu(v); }
        case 2u: { return activation_gelu_tanh(v); }
        case 3u: { return activation_erf(v); }
        default: { return v; }
    }
}

fn activation_derivative(v: f32) -> f32 {
    switch OP {
        case 0u: { return activation_leaky_relu_d(v, p.alpha); }
        case 1u: { return activation_gelu_d(v); }
        case 2u: { return activation_gelu_tanh_d(v); }
        case 3u: { return activation_erf_d(v); }
        default: { return 1.0; }
    }
}

@compute @workgroup_size(256)
fn activation(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p.n) {
        return;
    }
    y[i] = activation_op(x[i]);
}

@compute @workgroup_size(256)
fn activation_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p.n) {
        return;
    }
    dx[i] = dy[i] * activation_derivative(x[i]);
}
