//! An LSTM learns to continue a noisy sine wave: from 24 past samples it predicts the next one.
//! `cargo run --release --example lstm_sine [steps]`

use kiln::data::Rng;
use kiln::nn::layers::{Cell, Dense, Recurrent};
use kiln::nn::model::{FitOptions, Samples};
use kiln::nn::{Loss, Sequential};
use kiln::optim::Optimizer;
use kiln::Context;

const WINDOW: usize = 24;

/// `n` windows of a noisy sine with random phase and frequency, and the next clean value.
pub fn sine_windows(n: usize, seed: u64) -> (Samples, Samples, Vec<f32>) {
    let mut rng = Rng::new(seed);
    let (mut x, mut y) = (Vec::with_capacity(n * WINDOW), Vec::with_capacity(n));
    for _ in 0..n {
        let phase = rng.uniform(0.0, std::f32::consts::TAU);
        let freq = rng.uniform(0.15, 0.35);
        for t in 0..WINDOW {
            x.push((phase + freq * t as f32).sin() + 0.05 * rng.normal());
        }
        y.push((phase + freq * WINDOW as f32).sin());
    }
    let truth = y.clone();
    (Samples::f32(x, &[WINDOW, 1]), Samples::f32(y, &[1]), truth)
}

/// What the run reached.
pub struct Outcome {
    /// Mean squared error on held-out windows, before and after training.
    pub mse_before: f64,
    /// After training.
    pub mse_after: f64,
    /// (prediction, truth) for a few held-out windows.
    pub samples: Vec<(f32, f32)>,
}

/// Trains for `epochs` epochs on 1,024 windows.
pub fn run(ctx: &Context, epochs: usize, progress: bool) -> kiln::Result<Outcome> {
    let mut model = Sequential::new(ctx);
    model
        .add(Recurrent::new(ctx, Cell::Lstm, 1, 32, false, 3)?)
        .add(Dense::with_init(
            ctx,
            32,
            1,
            None,
            kiln::nn::init::Init::GlorotUniform,
            4,
        )?);
    model.compile(Optimizer::adam(1e-2), Loss::Mse, &[]);
    let (x, y, _) = sine_windows(1024, 1);
    let (tx, ty, truth) = sine_windows(128, 2);
    let mse_before = model.evaluate(&tx, &ty, 128)?.loss;
    let opts = FitOptions {
        epochs,
        batch_size: 64,
        progress,
        ..Default::default()
    };
    model.fit(&x, &y, None, &opts)?;
    let mse_after = model.evaluate(&tx, &ty, 128)?.loss;
    let pred = model.predict(&tx, 128)?;
    let samples = pred
        .iter()
        .zip(&truth)
        .take(5)
        .map(|(&p, &t)| (p, t))
        .collect();
    Ok(Outcome {
        mse_before,
        mse_after,
        samples,
    })
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let epochs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(15);
    let ctx = Context::new()?;
    let out = run(&ctx, epochs, true)?;
    println!(
        "held-out MSE: {:.4} before training, {:.4} after",
        out.mse_before, out.mse_after
    );
    for (p, t) in out.samples {
        println!("next value: predicted {p:+.3}, true {t:+.3}");
    }
    Ok(())
}
