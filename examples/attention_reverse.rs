//! A small attention model learns to reverse digit strings: token embeddings plus learned
//! positions, two multi-head self-attention blocks, and a per-position classifier.
//! `cargo run --release --example attention_reverse [epochs]`

use kiln::data::Rng;
use kiln::nn::layers::{Activation, Dense, Embedding, LayerNorm, MultiHeadAttention};
use kiln::nn::metrics::Metric;
use kiln::nn::model::{FitOptions, Samples};
use kiln::nn::{Layer, Loss, Parameter, Sequential};
use kiln::optim::Optimizer;
use kiln::{Context, Tensor};

/// Digits per string.
pub const LEN: usize = 8;
const WIDTH: usize = 48;

/// Adds a learned embedding per position to (N, S, D) inputs.
struct Positions(Parameter);

impl Layer for Positions {
    fn describe(&self) -> String {
        format!("Positions({:?})", self.0.shape())
    }

    fn forward(&self, x: &Tensor, _training: bool) -> kiln::Result<Tensor> {
        x.add(&self.0.get())
    }

    fn parameters(&self) -> Vec<Parameter> {
        vec![self.0.clone()]
    }
}

/// x + attention(x), normalized: a residual self-attention block.
struct Block {
    attn: MultiHeadAttention,
    norm: LayerNorm,
}

impl Layer for Block {
    fn describe(&self) -> String {
        format!("Residual({})", self.attn.describe())
    }

    fn forward(&self, x: &Tensor, training: bool) -> kiln::Result<Tensor> {
        let h = x.add(&self.attn.forward(x, training)?)?;
        self.norm.forward(&h, training)
    }

    fn parameters(&self) -> Vec<Parameter> {
        let mut p = self.attn.parameters();
        p.extend(self.norm.parameters());
        p
    }
}

/// `n` random digit strings and their reversals.
pub fn strings(n: usize, seed: u64) -> (Samples, Samples) {
    let mut rng = Rng::new(seed);
    let (mut x, mut y) = (Vec::with_capacity(n * LEN), Vec::with_capacity(n * LEN));
    for _ in 0..n {
        let s: Vec<i32> = (0..LEN).map(|_| rng.below(10) as i32).collect();
        x.extend(&s);
        y.extend(s.iter().rev());
    }
    (Samples::i32(x, &[LEN]), Samples::i32(y, &[LEN]))
}

/// What the run reached.
pub struct Outcome {
    /// Per-digit accuracy on held-out strings.
    pub digit_accuracy: f64,
    /// A held-out string, its reversal as predicted, and the truth.
    pub sample: (Vec<i32>, Vec<u32>, Vec<i32>),
}

/// Trains for `epochs` epochs on 2,048 strings.
pub fn run(ctx: &Context, epochs: usize, progress: bool) -> kiln::Result<Outcome> {
    let mut model = Sequential::new(ctx);
    let block = |seed| -> kiln::Result<Block> {
        Ok(Block {
            attn: MultiHeadAttention::new(ctx, WIDTH, 4, false, seed)?,
            norm: LayerNorm::new(ctx, &[WIDTH], 1e-5)?,
        })
    };
    model
        .add(Embedding::new(ctx, 10, WIDTH, 1)?)
        .add(Positions(Parameter::new(
            "positions",
            Tensor::randn(ctx, &[LEN, WIDTH], 0.0, 1.0, 2)?,
        )))
        .add(block(3)?)
        .add(block(4)?)
        .add(Dense::new(ctx, WIDTH, WIDTH, Some(Activation::Relu), 5)?)
        .add(Dense::new(ctx, WIDTH, 10, None, 6)?);
    model.compile(
        Optimizer::adam(3e-3),
        Loss::CategoricalCrossEntropy { from_logits: true },
        &[Metric::Accuracy],
    );
    let (x, y) = strings(2048, 1);
    let (tx, ty) = strings(256, 2);
    let opts = FitOptions {
        epochs,
        batch_size: 64,
        progress,
        ..Default::default()
    };
    model.fit(&x, &y, None, &opts)?;
    let eval = model.evaluate(&tx, &ty, 256)?;
    let one = strings(1, 3);
    let probs = model.predict(&one.0, 1)?;
    let predicted = kiln::nn::metrics::argmax_rows(&probs, 10);
    let (kiln::nn::model::Array::I32(input), kiln::nn::model::Array::I32(truth)) =
        (one.0.data, one.1.data)
    else {
        return Err(kiln::Error::invalid("example", "unexpected sample type"));
    };
    Ok(Outcome {
        digit_accuracy: eval.accuracy.unwrap_or(0.0),
        sample: (input, predicted, truth),
    })
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let epochs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(30);
    let ctx = Context::new()?;
    let out = run(&ctx, epochs, true)?;
    println!(
        "held-out digit accuracy: {:.2}%",
        out.digit_accuracy * 100.0
    );
    let (input, predicted, truth) = out.sample;
    println!("input     {input:?}\npredicted {predicted:?}\ntruth     {truth:?}");
    Ok(())
}
