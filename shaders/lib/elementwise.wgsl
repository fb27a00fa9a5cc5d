// ---- shared: elementwise math (shaders/lib/elementwise.wgsl) ----------------------------------
// The op codes of src/kernels/unary.rs (UnaryOp) and binary.rs (BinaryOp), with the op as an
// argument: the hand-written kernels (unary.wgsl, binary.wgsl) pass their OP override, which the
// pipeline folds; the generated kernels of src/executor/fusion.rs pass a literal. Needs the
// `float` piece.

// tanh through exp(-2|x|), which cannot overflow (some drivers' tanh returns NaN for |x| > 88).
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

// f'(v) for each unary op; at kinks (abs, relu at 0) the derivative is taken as 0.
fn unary_derivative_of(op: u32, v: f32) -> f32 {
    switch op {
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

// d(u OP v)/du (which = 0) or d/dv (which = 1). Ties of max/min go to u. A tensor-scalar op's
// derivative is this with the scalar as v (tensor first) or as u (scalar first).
fn binary_partial_of(op: u32, which: u32, u: f32, v: f32) -> f32 {
    if (which == 0u) {
        switch op {
            case 0u, 1u: { return 1.0; }
            case 2u: { return v; }
            case 3u: { return 1.0 / v; }
            case 4u: { return select(0.0, 1.0, u >= v); }
            case 5u: { return select(0.0, 1.0, u <= v); }
            case 6u: { return v * safe_pow(u, v - 1.0); }
            default: { return 0.0; }
        }
    }
    switch op {
        case 0u: { return 1.0; }
        case 1u: { return -1.0; }
        case 2u: { return u; }
        case 3u: { return -u / (v * v); }
        case 4u: { return select(0.0, 1.0, v > u); }
        case 5u: { return select(0.0, 1.0, v < u); }
        case 6u: { return log(u) * safe_pow(u, v); }
        default: { return 0.0; }
    }
}
// ---- end of shaders/lib/elementwise.wgsl -------------------------------------------------------
