// ---- shared: stable logistic sigmoid (shaders/lib/sigmoid.wgsl) ------------------------------
// 1 / (1 + e^-v) that never evaluates exp of a large positive number.
fn stable_sigmoid(v: f32) -> f32 {
    if (v >= 0.0) {
        return 1.0 / (1.0 + exp(-v));
    }
    let e = exp(v);
    return e / (1.0 + e);
}
// ---- end of shaders/lib/sigmoid.wgsl ---------------------------------------------------------
