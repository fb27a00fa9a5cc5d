// ---- shared: f32 bit patterns (shaders/lib/float.wgsl) -----------------------------------------
// inf, -inf and NaN from their bits. A function argument keeps the bitcast out of constant
// evaluation: Chrome's WGSL compiler (Tint) rejects a constant that is not a finite f32, and WGSL
// lets compilers assume floats are finite, so these values are made at run time.
fn f32_from_bits(bits: u32) -> f32 {
    return bitcast<f32>(bits);
}
// ---- end of shaders/lib/float.wgsl -----------------------------------------------------------
