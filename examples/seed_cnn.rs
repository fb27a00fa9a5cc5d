//! The seed CNN through the library API: train on kiln's procedural digits, report test
//! accuracy. `cargo run --release --example seed_cnn [train_images] [epochs]`

use kiln::data::procedural_digits;
use kiln::nn::model::{FitOptions, Samples};
use kiln::nn::zoo::seed_cnn;
use kiln::Context;

/// What the run reached.
pub struct Outcome {
    /// Test accuracy after the last epoch.
    pub accuracy: f64,
    /// Training loss per epoch.
    pub losses: Vec<f64>,
}

/// Trains the seed CNN on `n` procedural digits for `epochs` epochs.
pub fn run(ctx: &Context, n: usize, epochs: usize, progress: bool) -> kiln::Result<Outcome> {
    let train = procedural_digits(n, 1);
    let test = procedural_digits((n / 4).max(64), 2);
    let mut model = seed_cnn(ctx, 1e-3, 7)?;
    if progress {
        print!("{}", model.summary());
    }
    let opts = FitOptions {
        epochs,
        batch_size: 64,
        progress,
        ..Default::default()
    };
    let (tx, ty) = (Samples::images(&test), Samples::labels(&test));
    let history = model.fit(
        &Samples::images(&train),
        &Samples::labels(&train),
        None,
        &opts,
    )?;
    let eval = model.evaluate(&tx, &ty, 128)?;
    Ok(Outcome {
        accuracy: eval.accuracy.unwrap_or(0.0),
        losses: history.epochs.iter().map(|e| e.loss).collect(),
    })
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let epochs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2);
    let ctx = Context::new()?;
    println!("adapter: {}", ctx.adapter_info().name);
    let out = run(&ctx, n, epochs, true)?;
    println!("training loss per epoch: {:.4?}", out.losses);
    println!("test accuracy: {:.2}%", out.accuracy * 100.0);
    Ok(())
}
