// Dropout with a counter-based mask: y = keep ? x * scale : 0.
//
// The keep decision of element i is a pure function of (seed, i): Philox4x32-10 block i / 4,
// word i % 4 (the same words as Tensor::rand with this seed, see shaders/random.wgsl), and
// element i is kept iff (word >> 8) >= threshold, i.e. iff rand(seed)[i] >= p, where the host
// sets threshold = ceil(p * 2^24). So the backward pass recomputes the mask instead of saving
// it: dx = dropout(dy) with the same seed.
//
// numel: element count.  blocks: ceil(numel / 4), computed on the host (no u32 overflow).
// x: input, (numel) contiguous.  y: output, (numel) contiguous.
// scale: 1 / (1 - p), computed in f64 on the host and rounded once.
// The host reference is src/reference/dropout.rs.
//
// Workgroup size 256 (1,024 elements per workgroup, one Philox block per invocation): a
// multiple of every GPU's SIMD width and the WebGPU default maximum; no shared state.

struct Params {
    numel: u32,
    blocks: u32,
    key_lo: u32,    // seed bits 0..32
    key_hi: u32,    // seed bits 32..64
    stream: u32,    // counter word 2
    threshold: u32, // keep iff (word >> 8) >= threshold
    scale: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;       // (numel)
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // (numel)

// kiln:include philox

@compute @workgroup_size(256)
fn dropout(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    // blocks <= 2^30 (a tensor binding is under 4 GiB), so this cannot overflow.
    let b = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (b >= p.blocks) {
        return;
    }
    let w = philox4x32_10(vec4<u32>(b, 0u, p.stream, 0u), vec2<u32>(p.key_lo, p.key_hi));
    let keep = (w >> vec4<u32>(8u)) >= vec4<u32>(p.threshold);
    let base = b * 4u;
    let count = min(p.numel - base, 4u);
    for (var k = 0u; k < count; k++) {
        y[base + k] = select(0.0, x[base + k] * p.scale, keep[k]);
    }
}
