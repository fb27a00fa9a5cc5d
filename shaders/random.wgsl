// Counter-based random numbers: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random
// numbers: as easy as 1, 2, 3", SC 2011), the generator of cuRAND, PyTorch and JAX.
//
// Each invocation owns one Philox block b: counter (b lo, b hi, stream, 0), key (seed lo,
// seed hi), 10 rounds, four u32 outputs x0..x3, which become elements 4b..4b+3 (the last
// block writes only the elements that exist). So element i is a pure function of
// (seed, stream, i): the same seed gives the same tensor whatever else runs, on any grid.
//
// numel: element count.  blocks: ceil(numel / 4), computed on the host (no u32 overflow).
// y: output, (numel) contiguous.
// DIST (override): 0 = uniform: y = min(a + b * u, cap), u = (x >> 8) * 2^-24 in [0, 1),
//                      a = lo, b = hi - lo, cap = the largest f32 below hi (so y < hi even
//                      when a + b * u rounds up);
//                  1 = normal: Box-Muller on the pairs (x0, x1) and (x2, x3):
//                      u1 = ((x >> 8) + 1) * 2^-24 in (0, 1], u2 = (x >> 8) * 2^-24,
//                      r = sqrt(-2 ln u1), y = a + b * (r cos 2 pi u2, r sin 2 pi u2),
//                      a = mean, b = std.
// The host reference is src/reference/random.rs.
//
// Workgroup size 256 (1,024 elements per workgroup): a multiple of every GPU's SIMD width and
// the WebGPU default maximum; the kernel keeps no shared state, so the size only sets how many
// blocks a workgroup covers.

struct Params {
    numel: u32,
    blocks: u32,
    key_lo: u32, // seed bits 0..32
    key_hi: u32, // seed bits 32..64
    stream: u32, // counter word 2
    a: f32,
    b: f32,
    cap: f32,
}

override DIST: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<f32>; // (numel)

// kiln:include philox

// 2^-24, and 2 pi / 2^24 (one step of the 24-bit angle grid), rounded once to f32.
const INV_2_24: f32 = 1.0 / 16777216.0;
const ANGLE_STEP: f32 = 6.283185307179586 / 16777216.0;

// -2 ln u for u in (0, 1]. Near 1 the builtin log may only promise an absolute error of 2^-21
// (WGSL), which sqrt would turn into a large relative error of r, so there ln u comes from
// ln u = 2 atanh(t), t = (u - 1) / (u + 1), |t| <= 1/15: the series to t^9 is exact in f32.
fn minus_two_log(u: f32) -> f32 {
    if (u > 0.875) {
        let t = (u - 1.0) / (u + 1.0);
        let t2 = t * t;
        let s = 1.0 + t2 * (1.0 / 3.0 + t2 * (0.2 + t2 * (1.0 / 7.0 + t2 * (1.0 / 9.0))));
        return -4.0 * t * s;
    }
    return -2.0 * log(u);
}

// (sin, cos) of 2 pi k / 2^24 for a 24-bit k. WGSL's sin and cos only promise an absolute
// error of 2^-11, so this reduces exactly in integers to a quadrant q and an offset s in
// [-2^21, 2^21) (angle = q pi / 2 + s * ANGLE_STEP, |s * ANGLE_STEP| <= pi / 4), evaluates
// the Cephes single-precision minimax polynomials there (about 1 ulp) and rotates by q.
fn sincos_turn(k: u32) -> vec2<f32> {
    let qf = (k + 0x200000u) >> 22u; // nearest quadrant, 0..4
    let s = i32(k) - i32(qf << 22u);
    let x = f32(s) * ANGLE_STEP;
    let z = x * x;
    let sn = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * x + x;
    let cs = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2)
        * z * z - 0.5 * z + 1.0;
    switch (qf & 3u) {
        case 0u: { return vec2<f32>(sn, cs); }
        case 1u: { return vec2<f32>(cs, -sn); }
        case 2u: { return vec2<f32>(-sn, -cs); }
        default: { return vec2<f32>(-cs, sn); }
    }
}

// Two standard normals from a pair of words: (r cos, r sin).
fn box_muller(x1: u32, x2: u32) -> vec2<f32> {
    let u1 = (f32(x1 >> 8u) + 1.0) * INV_2_24;
    let r = sqrt(minus_two_log(u1));
    let sc = sincos_turn(x2 >> 8u);
    return vec2<f32>(r * sc.y, r * sc.x);
}

@compute @workgroup_size(256)
fn random(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // blocks <= 2^30 (a tensor binding is under 4 GiB), so wg * 256 stays far below 2^32 even
    // with the executor's few spare workgroups.
    let b = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (b >= p.blocks) {
        return;
    }
    // Tensors hold fewer than 2^32 elements, so the block index's high word is 0.
    let x = philox4x32_10(vec4<u32>(b, 0u, p.stream, 0u), vec2<u32>(p.key_lo, p.key_hi));
    var v: vec4<f32>;
    if (DIST == 0u) {
        let u = vec4<f32>(x >> vec4<u32>(8u)) * INV_2_24;
        v = min(vec4<f32>(p.a) + vec4<f32>(p.b) * u, vec4<f32>(p.cap));
    } else {
        let z = vec4<f32>(box_muller(x.x, x.y), box_muller(x.z, x.w));
        v = vec4<f32>(p.a) + vec4<f32>(p.b) * z;
    }
    let base = b * 4u;
    let count = min(p.numel - base, 4u);
    for (var k = 0u; k < count; k++) {
        y[base + k] = v[k];
    }
}
