// Activations that need a parameter or a special function: leaky ReLU, GELU (exact, through
// erf, and the tanh approximation) and erf itself, forward and backward.
//
// x: input, (n) contiguous.  y: output, (n).
// dy: upstream gradient, (n).  dx: gradient of x, (n) (backward entry point only).
// The op is a pipeline-overridable constant (codes as ActivationOp in src/kernels/activation.rs),
// so each op is its own specialized pipeline and the switches below fold away.
//
// WGSL has no erf: `erf` below is N. Juffa's single-precision minimax approximation (a
// polynomial in x² for |x| <= 0.9277, 1 - exp(polynomial in |x|) beyond; about 6e-8 absolute
// error in f32 arithmetic). For GELU of negative x, 1 + erf(x/√2) would cancel, so the lower
// tail uses `erfc_tail` (the Numerical Recipes Chebyshev fit of erfc, relative error ~1e-7 in
// f64, a few 1e-6 in f32) to keep a relative accuracy there too.
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

const LEAKY_RELU: u32 = 0u;
const GELU: u32 = 1u;
const GELU_TANH: u32 = 2u;
const ERF: u32 = 3u;

const SQRT_HALF: f32 = 0.70710678118654752;
// √(2/π), for the tanh form of GELU.
const SQRT_2_OVER_PI: f32 = 0.79788456080286536;
// 1/√(2π), the standard normal density at 0.
const INV_SQRT_2PI: f32 = 0.39894228040143268;
// 2/√π, erf'(0).
const TWO_OVER_SQRT_PI: f32 = 1.12837916709551257;
const GELU_TANH_C: f32 = 0.044715;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;       // (n)
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // (n), forward entry point
@group(0) @binding(2) var<storage, read> dy: array<f32>;      // (n), backward entry point
@group(0) @binding(3) var<storage, read_write> dx: array<f32>; // (n), backward entry point

// erf(a), |error| < 1e-7 in f32 arithmetic (N. Juffa's coefficients, each fit <= 1 ulp).
fn erf(a: f32) -> f32 {
    let t = abs(a);
    let s = a * a;
    if (t > 0.927734375) {
        var r = fma(-1.72853470e-5, t, 3.83197126e-4);
        let u = fma(-3.88396438e-3, t, 2.42546219e-2);
        r = fma(r, s, u);
        r = fma(r, t, -1.06777877e-1);
        r = fma(r, t, -6.34846687e-1);
        r = fma(r, t, -1.28717512e-1);
        r = fma(r, t, -t);
        // exp(r) <= 0.19 here, so 1 - exp(r) loses nothing to cancellation.
        let e = 1.0 - exp(r);
        return select(e, -e, a < 0.0);
    }
    var r = -5.96761703e-4;
    r = fma(r, s, 4.99119423e-3);
    r = fma(r, s, -2.67681349e-2);
    r = fma(r, s, 1.12819925e-1);
    r = fma(r, s, -3.76125336e-1);
    r = fma(r, s, 1.28379166e-1);
    return fma(r, a, a);
}

// erfc(t) for t >= 0.9277 with a small relative error (Numerical Recipes `erfcc`), so that
// tiny upper-tail probabilities keep their significant digits.
fn erfc_tail(t: f32) -> f32 {
    let k = 1.0 / (1.0 + 0.5 * t);
    var q = 0.17087277;
    q = fma(q, k, -0.82215223);
    q = fma(q, k, 1.48851587);
    q = fma(q, k, -1.13520398);
    q = fma(q, k, 0.27886807);
    q = fma(q, k, -0.18628806);
    q = fma(q, k, 0.09678418);
    q = fma(q, k, 0.37409196);
    q = fma(q, k, 1.00002368);
    q = fma(q, k, -1.26551223);
    return k * exp(q - t * t);
}

// Φ(v) = P(Z <= v) = (1 + erf(v/√2)) / 2, the standard normal CDF, accurate in relative terms
// for negative v as well.
fn normal_cdf(v: f32) -> f32 {
    let z = v * SQRT_HALF;
    if (z < -0.927734375) {
        return 0.5 * erfc_tail(-z);
    }
    return 0.5 + 0.5 * erf(z);
}

// Logistic sigmoid that never evaluates exp of a large positive number.
fn sigmoid(v: f32) -> f32 {
    if (v >= 0.0) {
        return 1.0 / (1.0 + exp(-v));
    }
    let e = exp(v);
    return e / (1.0 + e);
}

// The tanh form of GELU written as v·σ(2u) with u = √(2/π)(v + 0.044715v³), since
// (1 + tanh u)/2 = σ(2u): no cancellation for negative v and no overflow.
fn gelu_tanh_gate(v: f32) -> f32 {
    let u = SQRT_2_OVER_PI * fma(GELU_TANH_C * v * v, v, v);
    return sigmoid(2.0 * u);
}

fn activation_op(v: f32) -> f32 {
    switch OP {
        case 0u: { return select(v, p.alpha * v, v < 0.0); }
        case 1u: { return v * normal_cdf(v); }
        case 2u: { return v * gelu_tanh_gate(v); }
        case 3u: { return erf(v); }
        default: { return v; }
    }
}

// f'(v). Leaky ReLU at 0 takes the slope of the positive side, 1.
fn activation_derivative(v: f32) -> f32 {
    switch OP {
        case 0u: { return select(1.0, p.alpha, v < 0.0); }
        case 1u: {
            // d/dv v·Φ(v) = Φ(v) + v·φ(v).
            return normal_cdf(v) + v * INV_SQRT_2PI * exp(-0.5 * v * v);
        }
        case 2u: {
            // d/dv v·σ(2u) = σ(2u) + v·2σ(2u)(1 - σ(2u))·u'.
            let s = gelu_tanh_gate(v);
            let du = SQRT_2_OVER_PI * fma(3.0 * GELU_TANH_C, v * v, 1.0);
            return s + 2.0 * v * s * (1.0 - s) * du;
        }
        case 3u: { return TWO_OVER_SQRT_PI * exp(-v * v); }
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
