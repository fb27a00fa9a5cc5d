// Ceiling kernels: what the adapter can do at best, measured by `kiln bench` so every case can
// be reported as a fraction of it (a roofline with two measured roofs).
//
// ceiling_fma: peak arithmetic. Every invocation runs CHAINS independent vec4 FMA chains for
//   `trips` loop trips, with no memory traffic in the loop, then writes one sum so the work
//   cannot be optimized away. FLOPs = G * trips * CHAINS * 4 lanes * 2.
// ceiling_copy: peak memory bandwidth. A storage-to-storage copy of N vec4s (16-byte loads and
//   stores); invocation g copies elements g, g + S, g + 2S, ... (S = the grid's invocation count),
//   so neighbouring invocations touch neighbouring addresses on every trip.
//
// Letters: G = invocations that do work (`count` for ceiling_fma), N = vec4s to copy (`count`
// for ceiling_copy), S = `stride`.
// Workgroup size 256: a multiple of every GPU's SIMD width and the WebGPU default maximum; on
// lavapipe a workgroup is 32 trips of its 8-lane SIMD loop, which amortizes the per-workgroup cost.

struct Params {
    count: u32,  // G (fma) or N (copy)
    trips: u32,  // fma: loop trips per invocation; copy: vec4s per invocation
    stride: u32, // copy: S
    _pad: u32,
}

// Independent vec4 accumulators per invocation, 1..=8. Few chains leave a GPU's FMA pipes idle
// between dependent instructions; too many spill registers on a CPU adapter (lavapipe keeps each
// lane of each vector in a SIMD register), so the bench tries several and keeps the fastest.
override CHAINS: u32 = 4u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> seed: array<f32>;       // (4): start, multiplier, addend, unused
@group(0) @binding(2) var<storage, read_write> sums: array<f32>; // (G)

@compute @workgroup_size(256)
fn ceiling_fma(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (g >= p.count) {
        return;
    }
    // |m| < 1 and a small addend keep every chain bounded (it converges to c / (1 - m)).
    let s = seed[0] + f32(g & 1023u) * 1e-4;
    let m = vec4<f32>(seed[1]);
    let c = vec4<f32>(seed[2]);
    var a0 = vec4<f32>(s, s + 0.01, s + 0.02, s + 0.03);
    var a1 = a0 + 0.1;
    var a2 = a0 + 0.2;
    var a3 = a0 + 0.3;
    var a4 = a0 + 0.4;
    var a5 = a0 + 0.5;
    var a6 = a0 + 0.6;
    var a7 = a0 + 0.7;
    // CHAINS is a pipeline constant, so the driver folds these branches away.
    for (var t = 0u; t < p.trips; t = t + 1u) {
        a0 = fma(a0, m, c);
        if (CHAINS > 1u) { a1 = fma(a1, m, c); }
        if (CHAINS > 2u) { a2 = fma(a2, m, c); }
        if (CHAINS > 3u) { a3 = fma(a3, m, c); }
        if (CHAINS > 4u) { a4 = fma(a4, m, c); }
        if (CHAINS > 5u) { a5 = fma(a5, m, c); }
        if (CHAINS > 6u) { a6 = fma(a6, m, c); }
        if (CHAINS > 7u) { a7 = fma(a7, m, c); }
    }
    let total = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));
    sums[g] = dot(total, vec4<f32>(1.0));
}

@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;       // (N)
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>; // (N)

@compute @workgroup_size(256)
fn ceiling_copy(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let g = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (g >= p.stride) {
        return;
    }
    for (var k = 0u; k < p.trips; k = k + 1u) {
        let i = g + k * p.stride;
        if (i < p.count) {
            dst[i] = src[i];
        }
    }
}
