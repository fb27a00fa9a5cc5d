// Fused optimizer updates: each entry point reads a parameter x, its gradient g and the
// optimizer's state, and writes the updated parameter and state, one element per invocation.
// The functional entries write new buffers; the `_inplace` entries (adam, sgd, sgd_momentum)
// read x and the state from read_write bindings and overwrite them, which the executor uses
// when nothing else can observe the old values (see src/executor, "donations"). Both forms
// share the per-element math below, so they agree bit for bit.
//
// x: parameter, g: gradient, s1 / s2: optimizer state (momentum, squared-gradient average, ...).
// Every tensor is (numel) contiguous, all of the same shape.
// k0..k8: per-entry coefficients, computed on the host in f64 and rounded once to f32 (their
// meaning is listed above each entry point). Scalars that depend on the step (bias
// corrections, decayed learning rates) are folded into them, so one pipeline serves every step.
// NESTEROV, FIRST (overrides): momentum variants.
// The host references are in src/reference/optim.rs.
//
// Workgroup size 256: the kernels are memory-bound and keep no shared state; 256 is a multiple
// of every GPU's SIMD width and the WebGPU default maximum.

struct Params {
    numel: u32,
    k0: f32,
    k1: f32,
    k2: f32,
    k3: f32,
    k4: f32,
    k5: f32,
    k6: f32,
    k7: f32,
    k8: f32,
    _pad0: u32,
    _pad1: u32,
}

override NESTEROV: u32 = 0u;
override FIRST: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;  // (numel) parameter
@group(0) @binding(2) var<storage, read> g: array<f32>;  // (numel) gradient
@group(0) @binding(3) var<storage, read> s1: array<f32>; // (numel) first state (3 or 4 inputs)
@group(0) @binding(4) var<storage, read> s2: array<f32>; // (numel) second state (4 inputs)

// Outputs of the two-input entry (sgd).
@group(0) @binding(3) var<storage, read_write> x_new_2: array<f32>;  // (numel)
// Outputs of the three-input entries (momentum_onnx, adagrad_onnx, sgd_momentum).
@group(0) @binding(4) var<storage, read_write> x_new_3: array<f32>;  // (numel)
@group(0) @binding(5) var<storage, read_write> s1_new_3: array<f32>; // (numel)
// Outputs of the four-input entries (adam_onnx, adam).
@group(0) @binding(5) var<storage, read_write> x_new_4: array<f32>;  // (numel)
@group(0) @binding(6) var<storage, read_write> s1_new_4: array<f32>; // (numel)
@group(0) @binding(7) var<storage, read_write> s2_new_4: array<f32>; // (numel)
// The in-place entries: the gradient, then the parameter and state, updated where they lie.
@group(0) @binding(1) var<storage, read> g_ip: array<f32>;         // (numel)
@group(0) @binding(2) var<storage, read_write> x_io: array<f32>;   // (numel)
@group(0) @binding(3) var<storage, read_write> s1_io: array<f32>;  // (numel)
@group(0) @binding(4) var<storage, read_write> s2_io: array<f32>;  // (numel)

fn element(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 256u + lid;
}

// ONNX ai.onnx.preview.training Adam. s1 = V (first moment), s2 = H (second moment).
// k0 = norm_coefficient, k1 = alpha, k2 = 1 - alpha, k3 = beta, k4 = 1 - beta,
// k5 = r (R, times sqrt(1 - beta^T) / (1 - alpha^T) when T > 0), k6 = epsilon,
// k7 = 1 - norm_coefficient_post.
@compute @workgroup_size(256)
fn adam_onnx(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    let xi = x[i];
    let gi = p.k0 * xi + g[i];
    let v = p.k1 * s1[i] + p.k2 * gi;
    let h = p.k3 * s2[i] + p.k4 * gi * gi;
    x_new_4[i] = p.k7 * (xi - p.k5 * v / (sqrt(h) + p.k6));
    s1_new_4[i] = v;
    s2_new_4[i] = h;
}

// PyTorch Adam / AdamW. s1 = m (first moment), s2 = v (second moment).
// k0 = weight_decay for coupled L2 (0 for AdamW), k1 = 1 - lr * weight_decay for AdamW (1 for
// Adam), k2 = beta1, k3 = 1 - beta1, k4 = beta2, k5 = 1 - beta2, k6 = lr / (1 - beta1^step),
// k7 = 1 / sqrt(1 - beta2^step), k8 = eps.
// Updated (x, m, v) from x, the gradient and the old moments.
fn adam_step(xi: f32, g0: f32, m0: f32, v0: f32) -> vec3<f32> {
    let gi = g0 + p.k0 * xi;
    let m = p.k2 * m0 + p.k3 * gi;
    let v = p.k4 * v0 + p.k5 * gi * gi;
    let denom = sqrt(v) * p.k7 + p.k8;
    return vec3<f32>(xi * p.k1 - p.k6 * m / denom, m, v);
}

@compute @workgroup_size(256)
fn adam(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    let r = adam_step(x[i], g[i], s1[i], s2[i]);
    x_new_4[i] = r.x;
    s1_new_4[i] = r.y;
    s2_new_4[i] = r.z;
}

@compute @workgroup_size(256)
fn adam_inplace(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    let r = adam_step(x_io[i], g_ip[i], s1_io[i], s2_io[i]);
    x_io[i] = r.x;
    s1_io[i] = r.y;
    s2_io[i] = r.z;
}

// ONNX ai.onnx.preview.training Momentum. s1 = V.
// k0 = norm_coefficient, k1 = alpha, k2 = beta when T > 0 else 1, k3 = R.
// NESTEROV: 0 = standard, 1 = nesterov.
@compute @workgroup_size(256)
fn momentum_onnx(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    let xi = x[i];
    let gi = p.k0 * xi + g[i];
    let v = p.k1 * s1[i] + p.k2 * gi;
    var step = v;
    if (NESTEROV == 1u) {
        step = gi + p.k1 * v;
    }
    x_new_3[i] = xi - p.k3 * step;
    s1_new_3[i] = v;
}

// ONNX ai.onnx.preview.training Adagrad. s1 = H (sum of squared gradients).
// k0 = norm_coefficient, k1 = r = R / (1 + T * decay_factor), k2 = epsilon.
@compute @workgroup_size(256)
fn adagrad_onnx(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    let xi = x[i];
    let gi = p.k0 * xi + g[i];
    let h = s1[i] + gi * gi;
    x_new_3[i] = xi - p.k1 * gi / (sqrt(h) + p.k2);
    s1_new_3[i] = h;
}

// PyTorch SGD without momentum. k0 = weight_decay, k1 = lr.
fn sgd_step(xi: f32, gi: f32) -> f32 {
    return xi - p.k1 * (gi + p.k0 * xi);
}

@compute @workgroup_size(256)
fn sgd(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    x_new_2[i] = sgd_step(x[i], g[i]);
}

@compute @workgroup_size(256)
fn sgd_inplace(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    x_io[i] = sgd_step(x_io[i], g_ip[i]);
}

// PyTorch SGD with momentum (dampening 0). s1 = the momentum buffer.
// k0 = weight_decay, k1 = lr, k2 = momentum.
// FIRST: 1 = the buffer starts as the gradient (s1 is not read). NESTEROV: 1 = nesterov.
// Updated (x, b) from x, the gradient and the old buffer (not read on the first step).
fn sgd_momentum_step(xi: f32, g0: f32, b0: f32) -> vec2<f32> {
    let gi = g0 + p.k0 * xi;
    var b = gi;
    if (FIRST == 0u) {
        b = p.k2 * b0 + gi;
    }
    var step = b;
    if (NESTEROV == 1u) {
        step = gi + p.k2 * b;
    }
    return vec2<f32>(xi - p.k1 * step, b);
}

@compute @workgroup_size(256)
fn sgd_momentum(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    var b0 = 0.0;
    if (FIRST == 0u) {
        b0 = s1[i];
    }
    let r = sgd_momentum_step(x[i], g[i], b0);
    x_new_3[i] = r.x;
    s1_new_3[i] = r.y;
}

@compute @workgroup_size(256)
fn sgd_momentum_inplace(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = element(wid, nwg, lid);
    if (i >= p.numel) {
        return;
    }
    var b0 = 0.0;
    if (FIRST == 0u) {
        b0 = s1_io[i];
    }
    let r = sgd_momentum_step(x_io[i], g_ip[i], b0);
    x_io[i] = r.x;
    s1_io[i] = r.y;
}
