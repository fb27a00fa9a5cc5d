// clamp(x, lo, hi) elementwise, and its backward.
// (`clamp` is a WGSL built-in function, hence the entry point `clamp_forward`.)
//
// x: input, (numel). y: output, (numel). lo <= hi, either may be infinite.
// NaN in x stays NaN (as NumPy's clip): it is detected by its bits, since WGSL's clamp and
// comparisons with NaN are not reliable across backends (GL drivers may fold them).
//
// Workgroup size 256: a multiple of every GPU's SIMD width and the WebGPU default maximum.

struct Params {
    numel: u32,
    lo: f32,
    hi: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;     // (numel)
@group(0) @binding(2) var<storage, read_write> y: array<f32>; // (numel)

fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

@compute @workgroup_size(256)
fn clamp_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p.numel) {
        return;
    }
    let v = x[i];
    var r = v;
    if (is_nan(v)) {
        y[i] = v;
        return;
    }
    if (v < p.lo) {
        r = p.lo;
    }
    if (v > p.hi) {
        r = p.hi;
    }
    y[i] = r;
}

// ---- backward ----------------------------------------------------------------------------
// g: upstream gradient, (numel). d: g where lo <= x <= hi, else 0 (a bound itself passes).
@group(0) @binding(2) var<storage, read> g: array<f32>;       // (numel)
@group(0) @binding(3) var<storage, read_write> d: array<f32>; // (numel)

@compute @workgroup_size(256)
fn clamp_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p.numel) {
        return;
    }
    let v = x[i];
    d[i] = select(0.0, g[i], !is_nan(v) && v >= p.lo && v <= p.hi);
}
