// ---- shared: stable tanh (shaders/lib/tanh.wgsl) ---------------------------------------------
// tanh through exp(-2|v|), which cannot overflow (some drivers' tanh returns NaN for |v| > 88).
fn stable_tanh(v: f32) -> f32 {
    let t = exp(-2.0 * abs(v));
    return sign(v) * (1.0 - t) / (1.0 + t);
}
// ---- end of shaders/lib/tanh.wgsl ------------------------------------------------------------
