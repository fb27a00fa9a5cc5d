//! Optimizers with their state, and learning-rate schedules. Each update is one fused kernel per
//! parameter (`kernels::optim`); the new parameter and state tensors replace the old ones, and
//! everything is recorded lazily so a training step realizes in one submission.
//!
//! Training uses PyTorch semantics: `Sgd`, `Momentum` (PyTorch SGD with momentum, optionally
//! Nesterov), `Adam` (L2 weight decay added to the gradient) and `AdamW` (decoupled decay). The
//! ONNX training-domain variants, whose Adam differs (see `kernels::optim`), are available as
//! kernels for conformance.

mod param;

pub use param::Parameter;

use crate::error::{Error, Result};
use crate::kernels::optim::{self as k, AdamConfig};
use crate::Tensor;

/// Which update rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// x -= lr · (g + wd·x)
    Sgd {
        /// L2 weight decay.
        weight_decay: f32,
    },
    /// PyTorch SGD with momentum.
    Momentum {
        /// Momentum factor.
        momentum: f32,
        /// Nesterov momentum.
        nesterov: bool,
        /// L2 weight decay.
        weight_decay: f32,
    },
    /// Adam (or AdamW when `decoupled`).
    Adam {
        /// β1.
        beta1: f32,
        /// β2.
        beta2: f32,
        /// ε.
        eps: f32,
        /// Weight decay (L2 for Adam, decoupled for AdamW).
        weight_decay: f32,
        /// AdamW.
        decoupled: bool,
    },
}

/// How the learning rate changes with the step count.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// Always the base rate.
    Constant,
    /// Multiply by `gamma` every `every` steps.
    Step {
        /// Steps between decays.
        every: u64,
        /// Factor.
        gamma: f32,
    },
    /// Cosine decay from the base rate to `min_lr` over `total` steps, then `min_lr`.
    Cosine {
        /// Steps to decay over.
        total: u64,
        /// Final rate.
        min_lr: f32,
    },
}

/// An optimizer: rule, base learning rate, schedule, step count and per-parameter state.
#[derive(Clone, Debug)]
pub struct Optimizer {
    /// The update rule.
    pub rule: Rule,
    /// Base learning rate.
    pub lr: f32,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    step: u64,
    state: Vec<Vec<Tensor>>,
}

impl Optimizer {
    fn with(rule: Rule, lr: f32) -> Self {
        Optimizer {
            rule,
            lr,
            schedule: Schedule::Constant,
            step: 0,
            state: Vec::new(),
        }
    }

    /// Plain SGD.
    pub fn sgd(lr: f32) -> Self {
        Self::with(Rule::Sgd { weight_decay: 0.0 }, lr)
    }

    /// SGD with (optionally Nesterov) momentum.
    pub fn momentum(lr: f32, momentum: f32, nesterov: bool) -> Self {
        Self::with(
            Rule::Momentum {
                momentum,
                nesterov,
                weight_decay: 0.0,
            },
            lr,
        )
    }

    /// Adam with PyTorch's defaults (β 0.9/0.999, ε 1e-8).
    pub fn adam(lr: f32) -> Self {
        Self::with(
            Rule::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
                decoupled: false,
            },
            lr,
        )
    }

    /// AdamW: Adam with decoupled weight decay.
    pub fn adamw(lr: f32, weight_decay: f32) -> Self {
        Self::with(
            Rule::Adam {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay,
                decoupled: true,
            },
            lr,
        )
    }

    /// Sets the learning-rate schedule.
    pub fn with_schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Updates taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The learning rate of update number `step` (0-based).
    pub fn lr_at(&self, step: u64) -> f32 {
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Step { every, gamma } => {
                self.lr * gamma.powi((step / every.max(1)).min(i32::MAX as u64) as i32)
            }
            Schedule::Cosine { total, min_lr } => {
                let t = (step.min(total) as f64) / (total.max(1) as f64);
                let c = 0.5 * (1.0 + (std::f64::consts::PI * t).cos());
                (f64::from(min_lr) + (f64::from(self.lr) - f64::from(min_lr)) * c) as f32
            }
        }
    }

    fn state_len(&self) -> usize {
        match self.rule {
            Rule::Sgd { .. } => 0,
            Rule::Momentum { .. } => 1,
            Rule::Adam { .. } => 2,
        }
    }

    /// Records one update of every parameter with its gradient and replaces the parameters
    /// (and the optimizer's state) with the results. Nothing runs until realized: realize the
    /// parameters and [`Optimizer::state`] (as `Sequential::realize_step` does).
    pub fn update(&mut self, params: &[Parameter], grads: &[Tensor]) -> Result<()> {
        if params.len() != grads.len() {
            return Err(Error::invalid(
                "Optimizer::update",
                format!("{} parameters but {} gradients", params.len(), grads.len()),
            ));
        }
        if self.state.is_empty() {
            for p in params {
                let v = p.value();
                let zeros = (0..self.state_len())
                    .map(|_| Tensor::zeros(v.context(), v.shape()))
                    .collect::<Result<Vec<_>>>()?;
                self.state.push(zeros);
            }
        }
        if self.state.len() != params.len() {
            return Err(Error::invalid(
                "Optimizer::update",
                format!(
                    "state for {} parameters, asked to update {}",
                    self.state.len(),
                    params.len()
                ),
            ));
        }
        let lr = self.lr_at(self.step);
        self.step += 1;
        for ((p, g), st) in params.iter().zip(grads).zip(self.state.iter_mut()) {
            let x = p.value();
            let g = g.detach();
            match self.rule {
                Rule::Sgd { weight_decay } => p.set(k::sgd(&x, &g, lr, weight_decay)?),
                Rule::Momentum {
                    momentum,
                    nesterov,
                    weight_decay,
                } => {
                    let (nx, nb) = k::sgd_momentum(
                        &x,
                        &g,
                        &st[0],
                        lr,
                        momentum,
                        weight_decay,
                        nesterov,
                        self.step == 1,
                    )?;
                    p.set(nx);
                    st[0] = nb;
                }
                Rule::Adam {
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    decoupled,
                } => {
                    let c = AdamConfig {
                        lr,
                        beta1,
                        beta2,
                        eps,
                        weight_decay,
                        decoupled,
                        amsgrad: false,
                    };
                    let (nx, m, v) = k::adam(&x, &g, &st[0], &st[1], self.step, &c)?;
                    p.set(nx);
                    st[0] = m;
                    st[1] = v;
                }
            }
        }
        Ok(())
    }

    /// The state tensors (to realize with a step, or to save), in parameter order.
    pub fn state(&self) -> Vec<Tensor> {
        self.state.iter().flatten().cloned().collect()
    }

    /// Restores state saved by [`Optimizer::state`] for `n_params` parameters, and the step.
    pub fn load_state(&mut self, tensors: Vec<Tensor>, n_params: usize, step: u64) -> Result<()> {
        let per = self.state_len();
        if tensors.len() != per * n_params {
            return Err(Error::invalid(
                "Optimizer::load_state",
                format!(
                    "{} tensors for {n_params} parameters with {per} state tensors each",
                    tensors.len()
                ),
            ));
        }
        let mut it = tensors.into_iter();
        self.state = (0..n_params)
            .map(|_| (0..per).filter_map(|_| it.next()).collect())
            .collect();
        self.step = step;
        Ok(())
    }

    /// Names of the state tensors per parameter (`m`, `v`, `momentum_buffer`).
    pub fn state_names(&self) -> &'static [&'static str] {
        match self.rule {
            Rule::Sgd { .. } => &[],
            Rule::Momentum { .. } => &["momentum_buffer"],
            Rule::Adam { .. } => &["m", "v"],
        }
    }
}
