//! References for shaders/optim.wgsl: the optimizer updates of `kiln::kernels::optim`, in f64,
//! element by element, exactly as written in its module docs. Each returns the new parameter
//! followed by the new states.

/// ONNX Adam: `(X', V', H')`.
#[allow(clippy::too_many_arguments)]
pub fn adam_onnx(
    r: f64,
    t: i64,
    x: &[f64],
    g: &[f64],
    v: &[f64],
    h: &[f64],
    alpha: f64,
    beta: f64,
    epsilon: f64,
    norm_coefficient: f64,
    norm_coefficient_post: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let rate = if t > 0 {
        r * (1.0 - beta.powf(t as f64)).sqrt() / (1.0 - alpha.powf(t as f64))
    } else {
        r
    };
    let (mut xo, mut vo, mut ho) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..x.len() {
        let gi = norm_coefficient * x[i] + g[i];
        let vi = alpha * v[i] + (1.0 - alpha) * gi;
        let hi = beta * h[i] + (1.0 - beta) * gi * gi;
        xo.push((1.0 - norm_coefficient_post) * (x[i] - rate * vi / (hi.sqrt() + epsilon)));
        vo.push(vi);
        ho.push(hi);
    }
    (xo, vo, ho)
}

/// ONNX Momentum: `(X', V')`; `nesterov` selects the mode.
#[allow(clippy::too_many_arguments)]
pub fn momentum_onnx(
    r: f64,
    t: i64,
    x: &[f64],
    g: &[f64],
    v: &[f64],
    alpha: f64,
    beta: f64,
    nesterov: bool,
    norm_coefficient: f64,
) -> (Vec<f64>, Vec<f64>) {
    let b = if t > 0 { beta } else { 1.0 };
    let (mut xo, mut vo) = (Vec::new(), Vec::new());
    for i in 0..x.len() {
        let gi = norm_coefficient * x[i] + g[i];
        let vi = alpha * v[i] + b * gi;
        let step = if nesterov { gi + alpha * vi } else { vi };
        xo.push(x[i] - r * step);
        vo.push(vi);
    }
    (xo, vo)
}

/// ONNX Adagrad: `(X', H')`.
#[allow(clippy::too_many_arguments)]
pub fn adagrad_onnx(
    r: f64,
    t: i64,
    x: &[f64],
    g: &[f64],
    h: &[f64],
    decay_factor: f64,
    epsilon: f64,
    norm_coefficient: f64,
) -> (Vec<f64>, Vec<f64>) {
    let rate = r / (1.0 + t as f64 * decay_factor);
    let (mut xo, mut ho) = (Vec::new(), Vec::new());
    for i in 0..x.len() {
        let gi = norm_coefficient * x[i] + g[i];
        let hi = h[i] + gi * gi;
        xo.push(x[i] - rate * gi / (hi.sqrt() + epsilon));
        ho.push(hi);
    }
    (xo, ho)
}

/// PyTorch Adam (`decoupled` false) / AdamW (`decoupled` true) at 1-based `step`:
/// `(x', m', v')`.
#[allow(clippy::too_many_arguments)]
pub fn adam(
    x: &[f64],
    g: &[f64],
    m: &[f64],
    v: &[f64],
    step: u64,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let bc1 = 1.0 - beta1.powf(step as f64);
    let bc2 = 1.0 - beta2.powf(step as f64);
    let (mut xo, mut mo, mut vo) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..x.len() {
        let (mut xi, mut gi) = (x[i], g[i]);
        if decoupled {
            xi *= 1.0 - lr * weight_decay;
        } else {
            gi += weight_decay * x[i];
        }
        let mi = beta1 * m[i] + (1.0 - beta1) * gi;
        let vi = beta2 * v[i] + (1.0 - beta2) * gi * gi;
        let denom = vi.sqrt() / bc2.sqrt() + eps;
        xo.push(xi - lr / bc1 * mi / denom);
        mo.push(mi);
        vo.push(vi);
    }
    (xo, mo, vo)
}

/// PyTorch SGD: `x − lr·(g + weight_decay·x)`.
pub fn sgd(x: &[f64], g: &[f64], lr: f64, weight_decay: f64) -> Vec<f64> {
    x.iter()
        .zip(g)
        .map(|(&xi, &gi)| xi - lr * (gi + weight_decay * xi))
        .collect()
}

/// PyTorch SGD with momentum, dampening 0: `(x', buf')`. `first` makes the buffer the
/// (decayed) gradient, ignoring `buf`.
#[allow(clippy::too_many_arguments)]
pub fn sgd_momentum(
    x: &[f64],
    g: &[f64],
    buf: &[f64],
    lr: f64,
    momentum: f64,
    weight_decay: f64,
    nesterov: bool,
    first: bool,
) -> (Vec<f64>, Vec<f64>) {
    let (mut xo, mut bo) = (Vec::new(), Vec::new());
    for i in 0..x.len() {
        let d = g[i] + weight_decay * x[i];
        let b = if first { d } else { momentum * buf[i] + d };
        let step = if nesterov { d + momentum * b } else { b };
        xo.push(x[i] - lr * step);
        bo.push(b);
    }
    (xo, bo)
}
