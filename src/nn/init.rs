//! Seeded weight initializers, generated on the GPU with Philox (reproducible per seed).

use crate::error::Result;
use crate::{Context, Tensor};

/// He (Kaiming) normal: N(0, 2 / fan_in), for layers followed by ReLU.
pub fn he_normal(ctx: &Context, shape: &[usize], fan_in: usize, seed: u64) -> Result<Tensor> {
    let std = (2.0 / fan_in.max(1) as f64).sqrt() as f32;
    Tensor::randn(ctx, shape, 0.0, std, seed)
}

/// Glorot (Xavier) uniform: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)).
pub fn glorot_uniform(
    ctx: &Context,
    shape: &[usize],
    fan_in: usize,
    fan_out: usize,
    seed: u64,
) -> Result<Tensor> {
    let a = (6.0 / (fan_in + fan_out).max(1) as f64).sqrt() as f32;
    Tensor::rand_uniform(ctx, shape, -a, a, seed)
}

/// How a layer's weights start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Init {
    /// He normal (the default for layers followed by ReLU).
    #[default]
    HeNormal,
    /// Glorot uniform.
    GlorotUniform,
}

impl Init {
    /// A tensor of `shape` with this initializer.
    pub fn make(
        self,
        ctx: &Context,
        shape: &[usize],
        fan_in: usize,
        fan_out: usize,
        seed: u64,
    ) -> Result<Tensor> {
        match self {
            Init::HeNormal => he_normal(ctx, shape, fan_in, seed),
            Init::GlorotUniform => glorot_uniform(ctx, shape, fan_in, fan_out, seed),
        }
    }
}
