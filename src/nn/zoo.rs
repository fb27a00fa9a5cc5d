//! Ready-made models.

use crate::error::Result;
use crate::nn::layers::{Activation, Conv2d, Dense, Flatten, MaxPool2d};
use crate::nn::metrics::Metric;
use crate::nn::{Loss, Sequential};
use crate::optim::Optimizer;
use crate::Context;

/// The seed CNN for 28x28 grey digits: Conv2d 32 3x3 'same' (no activation) -> Conv2d 64 3x3
/// 'same' -> ReLU -> MaxPool 2x2 -> Flatten -> Dense 128 ReLU -> Dense 10 softmax, compiled with
/// Adam (`lr`) and categorical cross-entropy (on probabilities; fused with the softmax).
pub fn seed_cnn(ctx: &Context, lr: f32, seed: u64) -> Result<Sequential> {
    let mut m = Sequential::new(ctx);
    m.add(Conv2d::same(ctx, 1, 32, 3, None, seed)?)
        .add(Conv2d::same(
            ctx,
            32,
            64,
            3,
            Some(Activation::Relu),
            seed ^ 1,
        )?)
        .add(MaxPool2d::new(2))
        .add(Flatten)
        .add(Dense::new(
            ctx,
            64 * 14 * 14,
            128,
            Some(Activation::Relu),
            seed ^ 2,
        )?)
        .add(Dense::with_init(
            ctx,
            128,
            10,
            Some(Activation::Softmax),
            crate::nn::init::Init::GlorotUniform,
            seed ^ 3,
        )?);
    m.compile(
        Optimizer::adam(lr),
        Loss::CategoricalCrossEntropy { from_logits: false },
        &[Metric::Accuracy],
    );
    Ok(m)
}
