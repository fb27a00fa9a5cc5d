// argmax / argmin along one axis, as i32 indices (ONNX ArgMax/ArgMin, select_last_index = 0).
//
// The input is viewed as (outer, n, inner): n is the reduced axis, outer and inner the dims
// before and after it. x: (outer, n, inner). y: (outer, inner) i32, the index along n.
// Ties pick the first index. A NaN wins over every number (as NumPy's argmax and argmin),
// the first NaN if there are several.
//
// One invocation per output scans its n elements: the outputs are many and n is usually small
// (class scores). Workgroup size 256: a multiple of every GPU's SIMD width and the WebGPU
// default maximum.

struct Params {
    n_out: u32, // outer * inner
    n: u32,
    inner: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;       // (outer, n, inner)
@group(0) @binding(2) var<storage, read_write> y: array<i32>; // (outer, inner)

// kiln:include index

fn base_of(i: u32) -> u32 {
    let o = div_u32(i, p.inner);
    let r = i - o * p.inner;
    return o * p.n * p.inner + r;
}

fn is_nan(v: f32) -> bool {
    // Bit test rather than v != v, which a compiler may fold away.
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

@compute @workgroup_size(256)
fn argmax(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p.n_out) {
        return;
    }
    let base = base_of(i);
    var best = x[base];
    var at = 0u;
    for (var k = 1u; k < p.n; k++) {
        if (is_nan(best)) {
            break;
        }
        let v = x[base + k * p.inner];
        if (v > best || is_nan(v)) {
            best = v;
            at = k;
        }
    }
    y[i] = i32(at);
}

@compute @workgroup_size(256)
fn argmin(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 256u + lid;
    if (i >= p.n_out) {
        return;
    }
    let base = base_of(i);
    var best = x[base];
    var at = 0u;
    for (var k = 1u; k < p.n; k++) {
        if (is_nan(best)) {
            break;
        }
        let v = x[base + k * p.inner];
        if (v < best || is_nan(v)) {
            best = v;
            at = k;
        }
    }
    y[i] = i32(at);
}
