//! Fused optimizer updates (shaders/optim.wgsl): each update is ONE elementwise kernel that
//! reads a parameter, its gradient and the optimizer state, and writes the updated parameter
//! and state.
//!
//! # Updates are recorded functionally and run in place
//!
//! Each function records a multi-output op and returns the new parameter and the new state;
//! the caller replaces its handles with them:
//!
//! ```no_run
//! # use kiln::{Tensor, kernels::optim::{adam, AdamConfig}};
//! # let ctx = kiln::Context::new()?;
//! # let mut w = Tensor::zeros(&ctx, &[4])?;
//! # let mut m = Tensor::zeros(&ctx, &[4])?;
//! # let mut v = Tensor::zeros(&ctx, &[4])?;
//! # let g = Tensor::ones(&ctx, &[4])?;
//! let cfg = AdamConfig::default();
//! (w, m, v) = adam(&w, &g, &m, &v, 1, &cfg)?;
//! ctx.realize(&[&w, &m, &v])?; // once per step, so the recorded graph does not grow
//! # Ok::<(), kiln::Error>(())
//! ```
//!
//! When the realization runs, the PyTorch-style updates ([`adam`], [`sgd`], [`sgd_momentum`])
//! write the new values over the old parameter and state buffers if nothing else can observe
//! the old values (the caller dropped its handles, as above, and no op still to run reads
//! them); otherwise they write new buffers and the old ones return to the pool once their last
//! handle is dropped. The result is the same either way. The updates are not
//! differentiable and record nothing for autograd: the new parameter is a plain tensor (call
//! [`Tensor::with_grad`] on it to make it a leaf for the next step). All scalars (learning
//! rate, step, bias corrections) travel in the kernel's parameters, so one pipeline serves
//! every step. Parameter, gradient and state must all be f32 of one shape
//! ([`Error::ShapeMismatch`] names the op otherwise).
//!
//! # Two families
//!
//! **ONNX** (`ai.onnx.preview.training`, version 1: [`adam_onnx`], [`momentum_onnx`],
//! [`adagrad_onnx`]) follow the ONNX reference implementation exactly; `r` (the learning
//! rate `R`) and `t` (the step `T`) are used as given:
//!
//! - Adam: `g = nc·x + G; V' = α·V + (1−α)·g; H' = β·H + (1−β)·g²;
//!   r' = T > 0 ? R·√(1−β^T)/(1−α^T) : R; X' = (1 − nc_post)·(X − r'·V'/(√H' + ε))`.
//! - Momentum: `g = nc·X + G; b = T > 0 ? β : 1; V' = α·V + b·g;` standard
//!   `X' = X − R·V'`, Nesterov `X' = X − R·(g + α·V')`.
//! - Adagrad: `r' = R/(1 + T·decay); g = nc·X + G; H' = H + g²; X' = X − r'·g/(√H' + ε)`.
//!
//! **PyTorch** ([`adam`], [`sgd`], [`sgd_momentum`]) follow `torch.optim` (what training
//! uses by default). ONNX Adam differs from PyTorch Adam in four ways: ONNX adds ε to √H' of
//! the *uncorrected* second moment (PyTorch adds it after the bias correction:
//! `√(v'/(1−β₂^t)) + ε`); ONNX puts the bias correction into the learning rate and uses `T`
//! itself, so `T = 0` turns it off (PyTorch's first step is `step = 1`); ONNX
//! `norm_coefficient` is L2 added to the gradient before both moments (PyTorch
//! `weight_decay` with `decoupled = false`, never AdamW); and ONNX `norm_coefficient_post`
//! scales the whole updated parameter. ONNX Momentum is PyTorch SGD momentum (dampening 0)
//! when `β = 1` (or `T = 0`), `V` starts at zero and `norm_coefficient` is PyTorch's
//! `weight_decay`; with `β < 1` and `T > 0` ONNX scales the gradient by β instead.
//!
//! Each coefficient that depends on the step is computed on the host in f64 and rounded once
//! to f32; the per-element arithmetic is f32.

use crate::error::{Error, Result};
use crate::graph::{Kernel, Launch};
use crate::kernels::groups;
use crate::kernels::registry::{self, launch, OptimParams, Spec};
use crate::shape::numel;
use crate::{DType, Tensor};

/// Which ONNX Momentum update to apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MomentumMode {
    /// `X' = X − R·V'` (ONNX `mode = "standard"`).
    Standard,
    /// `X' = X − R·(g + α·V')` (ONNX `mode = "nesterov"`).
    Nesterov,
}

/// An in-place entry point and the (input, output) pairs it updates where they lie.
type InPlace = (&'static Spec<OptimParams>, &'static [(usize, usize)]);

/// One fused update: the shader entry, its bindings and its coefficients.
#[derive(Debug)]
struct Update {
    name: &'static str,
    spec: &'static Spec<OptimParams>,
    constants: Vec<(&'static str, u32)>,
    /// k0..k8 of the shader's `Params`, already rounded to f32.
    k: [f32; 9],
    /// The entry that updates the parameter and state where they lie, and its (input,
    /// output) pairs: the executor uses it when no one else can see the old values.
    in_place: Option<InPlace>,
}

impl Update {
    fn launch_entry(&self, spec: &'static Spec<OptimParams>, out: &[usize]) -> Launch {
        let n = numel(out);
        let [k0, k1, k2, k3, k4, k5, k6, k7, k8] = self.k;
        let params = OptimParams {
            numel: n as u32,
            k0,
            k1,
            k2,
            k3,
            k4,
            k5,
            k6,
            k7,
            k8,
            ..Default::default()
        };
        launch(spec, self.constants.clone(), &params, groups(n, 256))
    }
}

impl Kernel for Update {
    fn name(&self) -> &'static str {
        self.name
    }

    fn launch(&self, _inputs: &[&[usize]], out: &[usize]) -> Launch {
        self.launch_entry(self.spec, out)
    }

    fn donations(&self) -> &'static [(usize, usize)] {
        self.in_place.map_or(&[], |(_, pairs)| pairs)
    }

    fn launch_in_place(&self, _inputs: &[&[usize]], out: &[usize]) -> Option<Launch> {
        let (spec, _) = self.in_place?;
        Some(self.launch_entry(spec, out))
    }
}

/// Checks that every tensor is f32 with the parameter's shape.
fn check(op: &'static str, x: &Tensor, others: &[&Tensor]) -> Result<()> {
    x.check_dtype(op, DType::F32)?;
    for t in others {
        t.check_dtype(op, DType::F32)?;
        if t.shape != x.shape {
            return Err(Error::shape(op, &x.shape, &t.shape));
        }
    }
    Ok(())
}

/// Records the update and returns its outputs (the new parameter, then the new states).
fn run(update: Update, inputs: Vec<Tensor>) -> Result<Vec<Tensor>> {
    let x = inputs[0].clone();
    let outs = (0..update.spec.writes())
        .map(|_| (x.shape.clone(), DType::F32))
        .collect();
    Tensor::from_op_multi(&x.ctx, update, inputs, outs)
}

fn three(v: Vec<Tensor>, op: &'static str) -> Result<(Tensor, Tensor, Tensor)> {
    let mut it = v.into_iter();
    match (it.next(), it.next(), it.next()) {
        (Some(a), Some(b), Some(c)) => Ok((a, b, c)),
        _ => Err(Error::invalid(op, "update produced too few outputs")),
    }
}

fn two(v: Vec<Tensor>, op: &'static str) -> Result<(Tensor, Tensor)> {
    let mut it = v.into_iter();
    match (it.next(), it.next()) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(Error::invalid(op, "update produced too few outputs")),
    }
}

/// ONNX `ai.onnx.preview.training` Adam (version 1) for one tensor: returns `(X', V', H')`.
///
/// `r` is the learning rate `R`, `t` the step `T` (bias correction only when `t > 0`), `x`
/// the parameter, `g` its gradient, `v` and `h` the first and second moments. ONNX defaults:
/// `alpha = 0.9, beta = 0.999, epsilon = 1e-6, norm_coefficient = 0,
/// norm_coefficient_post = 0`. Values are used as given (no range checks, like the ONNX
/// reference). See the [module docs](self) for the formulas.
#[allow(clippy::too_many_arguments)]
pub fn adam_onnx(
    r: f32,
    t: i64,
    x: &Tensor,
    g: &Tensor,
    v: &Tensor,
    h: &Tensor,
    alpha: f32,
    beta: f32,
    epsilon: f32,
    norm_coefficient: f32,
    norm_coefficient_post: f32,
) -> Result<(Tensor, Tensor, Tensor)> {
    const OP: &str = "adam_onnx";
    check(OP, x, &[g, v, h])?;
    let (a, b) = (f64::from(alpha), f64::from(beta));
    let rate = if t > 0 {
        let tf = t as f64;
        f64::from(r) * (1.0 - b.powf(tf)).sqrt() / (1.0 - a.powf(tf))
    } else {
        f64::from(r)
    };
    let update = Update {
        name: OP,
        spec: &registry::ADAM_ONNX,
        constants: vec![],
        k: [
            norm_coefficient,
            alpha,
            (1.0 - a) as f32,
            beta,
            (1.0 - b) as f32,
            rate as f32,
            epsilon,
            (1.0 - f64::from(norm_coefficient_post)) as f32,
            0.0,
        ],
        in_place: None,
    };
    let outs = run(update, vec![x.clone(), g.clone(), v.clone(), h.clone()])?;
    three(outs, OP)
}

/// ONNX `ai.onnx.preview.training` Momentum (version 1) for one tensor: returns `(X', V')`.
///
/// `r` is the learning rate `R`, `t` the step `T` (at `t <= 0` the gradient is not scaled by
/// `beta`), `v` the momentum. Values are used as given. See the [module docs](self).
#[allow(clippy::too_many_arguments)]
pub fn momentum_onnx(
    r: f32,
    t: i64,
    x: &Tensor,
    g: &Tensor,
    v: &Tensor,
    alpha: f32,
    beta: f32,
    mode: MomentumMode,
    norm_coefficient: f32,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "momentum_onnx";
    check(OP, x, &[g, v])?;
    let b = if t > 0 { beta } else { 1.0 };
    let update = Update {
        name: OP,
        spec: &registry::MOMENTUM_ONNX,
        constants: vec![("NESTEROV", u32::from(mode == MomentumMode::Nesterov))],
        k: [norm_coefficient, alpha, b, r, 0.0, 0.0, 0.0, 0.0, 0.0],
        in_place: None,
    };
    let outs = run(update, vec![x.clone(), g.clone(), v.clone()])?;
    two(outs, OP)
}

/// ONNX `ai.onnx.preview.training` Adagrad (version 1) for one tensor: returns `(X', H')`.
///
/// `r` is the learning rate `R`, decayed to `R / (1 + t·decay_factor)`; `h` is the running
/// sum of squared gradients. ONNX defaults: `decay_factor = 0, epsilon = 1e-6,
/// norm_coefficient = 0`. Values are used as given. See the [module docs](self).
#[allow(clippy::too_many_arguments)]
pub fn adagrad_onnx(
    r: f32,
    t: i64,
    x: &Tensor,
    g: &Tensor,
    h: &Tensor,
    decay_factor: f32,
    epsilon: f32,
    norm_coefficient: f32,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "adagrad_onnx";
    check(OP, x, &[g, h])?;
    let rate = f64::from(r) / (1.0 + t as f64 * f64::from(decay_factor));
    let update = Update {
        name: OP,
        spec: &registry::ADAGRAD_ONNX,
        constants: vec![],
        k: [
            norm_coefficient,
            rate as f32,
            epsilon,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
        ],
        in_place: None,
    };
    let outs = run(update, vec![x.clone(), g.clone(), h.clone()])?;
    two(outs, OP)
}

/// Settings of PyTorch-style Adam ([`adam`]).
#[derive(Clone, Debug)]
pub struct AdamConfig {
    /// Learning rate (>= 0).
    pub lr: f32,
    /// Decay of the first moment, in [0, 1).
    pub beta1: f32,
    /// Decay of the second moment, in [0, 1).
    pub beta2: f32,
    /// Added to the bias-corrected √v (>= 0).
    pub eps: f32,
    /// Weight decay (>= 0): L2 added to the gradient, or decoupled when `decoupled`.
    pub weight_decay: f32,
    /// `true`: AdamW (`x ← x·(1 − lr·weight_decay)` before the update); `false`: Adam (L2
    /// `g ← g + weight_decay·x` before the moments).
    pub decoupled: bool,
    /// AMSGrad. Not supported: [`adam`] returns an error when set.
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    /// PyTorch's `torch.optim.Adam` defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, no
    /// weight decay.
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled: false,
            amsgrad: false,
        }
    }
}

fn check_scalar(op: &'static str, name: &str, v: f32, lo: f32, hi: Option<f32>) -> Result<()> {
    let ok = v.is_finite() && v >= lo && hi.is_none_or(|h| v < h);
    if ok {
        return Ok(());
    }
    let range = match hi {
        Some(h) => format!("[{lo}, {h})"),
        None => format!(">= {lo}"),
    };
    Err(Error::invalid(op, format!("{name} = {v} must be {range}")))
}

/// PyTorch Adam / AdamW (`torch.optim.Adam`, `torch.optim.AdamW`) for one tensor: returns
/// `(x', m', v')`.
///
/// With `step` the 1-based number of this update:
/// `g ← g + wd·x` (Adam) or `x ← x·(1 − lr·wd)` (AdamW); `m' = β₁·m + (1−β₁)·g`;
/// `v' = β₂·v + (1−β₂)·g²`; `x' = x − lr/(1−β₁^step) · m' / (√v'/√(1−β₂^step) + eps)`.
///
/// Errors with [`Error::InvalidArgument`] when `step` is 0, `amsgrad` is set (unsupported),
/// or a setting is out of range (`lr, eps, weight_decay >= 0`, betas in [0, 1), all finite).
pub fn adam(
    x: &Tensor,
    g: &Tensor,
    m: &Tensor,
    v: &Tensor,
    step: u64,
    c: &AdamConfig,
) -> Result<(Tensor, Tensor, Tensor)> {
    const OP: &str = "adam";
    check(OP, x, &[g, m, v])?;
    if step == 0 {
        return Err(Error::invalid(OP, "step counts from 1"));
    }
    if c.amsgrad {
        return Err(Error::invalid(OP, "amsgrad is not supported"));
    }
    check_scalar(OP, "lr", c.lr, 0.0, None)?;
    check_scalar(OP, "beta1", c.beta1, 0.0, Some(1.0))?;
    check_scalar(OP, "beta2", c.beta2, 0.0, Some(1.0))?;
    check_scalar(OP, "eps", c.eps, 0.0, None)?;
    check_scalar(OP, "weight_decay", c.weight_decay, 0.0, None)?;
    let (lr, b1, b2, wd) = (
        f64::from(c.lr),
        f64::from(c.beta1),
        f64::from(c.beta2),
        f64::from(c.weight_decay),
    );
    let s = step as f64;
    let bc1 = 1.0 - b1.powf(s);
    let bc2 = 1.0 - b2.powf(s);
    let (l2, shrink) = if c.decoupled {
        (0.0, 1.0 - lr * wd)
    } else {
        (wd, 1.0)
    };
    let update = Update {
        name: OP,
        spec: &registry::ADAM,
        constants: vec![],
        k: [
            l2 as f32,
            shrink as f32,
            c.beta1,
            (1.0 - b1) as f32,
            c.beta2,
            (1.0 - b2) as f32,
            (lr / bc1) as f32,
            (1.0 / bc2.sqrt()) as f32,
            c.eps,
        ],
        in_place: Some((&registry::ADAM_INPLACE, &[(0, 0), (2, 1), (3, 2)])),
    };
    let outs = run(update, vec![x.clone(), g.clone(), m.clone(), v.clone()])?;
    three(outs, OP)
}

/// PyTorch SGD without momentum (`torch.optim.SGD`): `x' = x − lr·(g + weight_decay·x)`.
///
/// Errors with [`Error::InvalidArgument`] unless `lr` and `weight_decay` are finite and >= 0.
pub fn sgd(x: &Tensor, g: &Tensor, lr: f32, weight_decay: f32) -> Result<Tensor> {
    const OP: &str = "sgd";
    check(OP, x, &[g])?;
    check_scalar(OP, "lr", lr, 0.0, None)?;
    check_scalar(OP, "weight_decay", weight_decay, 0.0, None)?;
    let update = Update {
        name: OP,
        spec: &registry::SGD,
        constants: vec![],
        k: [weight_decay, lr, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        in_place: Some((&registry::SGD_INPLACE, &[(0, 0)])),
    };
    let mut outs = run(update, vec![x.clone(), g.clone()])?;
    outs.pop()
        .ok_or_else(|| Error::invalid(OP, "update produced no output"))
}

/// PyTorch SGD with momentum (`torch.optim.SGD`, dampening 0): returns `(x', buf')`.
///
/// `d = g + weight_decay·x`; `buf' = d` when `first` (the first step: `buf` is not read, but
/// must still have the parameter's shape), else `buf' = momentum·buf + d`; the step is
/// `buf'`, or `d + momentum·buf'` when `nesterov`; `x' = x − lr·step`.
///
/// Errors with [`Error::InvalidArgument`] unless `lr`, `momentum` and `weight_decay` are
/// finite and >= 0.
#[allow(clippy::too_many_arguments)]
pub fn sgd_momentum(
    x: &Tensor,
    g: &Tensor,
    buf: &Tensor,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    nesterov: bool,
    first: bool,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "sgd_momentum";
    check(OP, x, &[g, buf])?;
    check_scalar(OP, "lr", lr, 0.0, None)?;
    check_scalar(OP, "momentum", momentum, 0.0, None)?;
    check_scalar(OP, "weight_decay", weight_decay, 0.0, None)?;
    let update = Update {
        name: OP,
        spec: &registry::SGD_MOMENTUM,
        constants: vec![
            ("NESTEROV", u32::from(nesterov)),
            ("FIRST", u32::from(first)),
        ],
        k: [weight_decay, lr, momentum, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        in_place: Some((&registry::SGD_MOMENTUM_INPLACE, &[(0, 0), (2, 1)])),
    };
    let outs = run(update, vec![x.clone(), g.clone(), buf.clone()])?;
    two(outs, OP)
}
