// ---- shared: index arithmetic (shaders/lib/index.wgsl) ----------------------------------------
// n / d for n < 2^31 and d >= 1, exactly. Kernels that turn a flat index into coordinates
// divide per element; a vector u32 division has no SIMD instruction on CPU adapters (lavapipe
// and llvmpipe split it into one scalar division per lane, ~10x this function's cost), and GPUs
// expand it into a long instruction sequence too. So for d < 2^23 the quotient comes from f32
// arithmetic: q0 = n * (1/d) is within 3e-7 n + 1 of n / d, so its remainder r0
// (|r0| < 650 + d) is exact in f32; one refinement brings the quotient within 1 and the last
// comparison makes it exact. Larger d divide in u32: d is uniform in every caller, so that
// branch never diverges, whereas a test of n would make CPU adapters run both sides.
// n < 2^31 holds for every element index: a storage binding is under 4 GiB, so under 2^30
// four-byte elements.
fn div_u32(n: u32, d: u32) -> u32 {
    if (d >= 0x800000u) {
        return n / d;
    }
    let rcp = 1.0 / f32(d);
    let q0 = u32(f32(n) * rcp);
    let r0 = bitcast<i32>(n - q0 * d);
    var q = i32(q0) + i32(floor(f32(r0) * rcp));
    let r = i32(n) - q * i32(d);
    if (r < 0) {
        q -= 1;
    } else if (r >= i32(d)) {
        q += 1;
    }
    return u32(q);
}
// ---- end of shaders/lib/index.wgsl ------------------------------------------------------------
