// ---- shared: Philox4x32-10 (shaders/lib/philox.wgsl) -----------------------------------------
// The counter-based generator of random.wgsl and dropout.wgsl (Salmon et al., SC 2011): both
// must produce the same words for the same (seed, counter), so there is one copy.
const M0: u32 = 0xD2511F53u;
const M1: u32 = 0xCD9E8D57u;
const W0: u32 = 0x9E3779B9u;
const W1: u32 = 0xBB67AE85u;

// (hi, lo) words of the 64-bit product a * b. WGSL has no 32x32 -> 64 multiply, so the high
// word is assembled from 16-bit halves: a * b = p11 2^32 + (p01 + p10) 2^16 + p00. `mid` sums
// the three contributions to bits 16..32 (each < 2^16, so mid < 3 * 2^16: no overflow); its
// carry goes into the high word. Every partial sum of `hi` is at most the true high word
// (< 2^32), so that sum cannot wrap either. The low word is the wrapping product.
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xFFFFu;
    let a1 = a >> 16u;
    let b0 = b & 0xFFFFu;
    let b1 = b >> 16u;
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 16u) + (p01 & 0xFFFFu) + (p10 & 0xFFFFu);
    let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
    return vec2<u32>(hi, a * b);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    var c = counter;
    var k = key;
    for (var round = 0u; round < 10u; round++) {
        if (round > 0u) {
            k = k + vec2<u32>(W0, W1);
        }
        let m0 = mulhilo(M0, c.x);
        let m1 = mulhilo(M1, c.z);
        c = vec4<u32>(m1.x ^ c.y ^ k.x, m1.y, m0.x ^ c.w ^ k.y, m0.y);
    }
    return c;
}
// ---- end of shaders/lib/philox.wgsl -----------------------------------------------------------
