//! The demo page's "train here" loop run natively, for comparing images/s with the browser on
//! the same machine: a fresh seed CNN (seed 7, Adam 1e-3) on 2,048 procedural digits, batches
//! taken in order, every step waiting for its loss, images/s counted over the steps after the
//! first (which compiles the pipelines) — exactly what examples/web/app.js and src/web.rs do.
//!
//! ```sh
//! cargo run --release --example web -- [steps] [batch]      # defaults: 16 steps of 32
//! ```

use kiln::nn::model::Samples;
use kiln::{Context, Result};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let steps: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(16);
    let batch: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(32);
    let ctx = Context::new()?;
    let info = ctx.adapter_info();
    eprintln!("adapter: {} ({:?})", info.name, info.backend);
    let ds = kiln::data::procedural_digits(2048, 7);
    let (x, y) = (Samples::images(&ds), Samples::labels(&ds));
    let mut model = kiln::nn::zoo::seed_cnn(&ctx, 1e-3, 7)?;
    let n = x.len();
    let mut cursor = 0;
    let mut losses = Vec::with_capacity(steps);
    let mut after_first = None;
    for s in 0..steps {
        let idx: Vec<usize> = (0..batch).map(|i| (cursor + i) % n).collect();
        cursor = (cursor + batch) % n;
        let (loss, _) = model.train_step(&x.gather(&ctx, &idx)?, &y.gather(&ctx, &idx)?, None)?;
        model.realize_step(&[&loss])?;
        losses.push(loss.item::<f32>()?);
        if s == 0 {
            after_first = Some(web_time::Instant::now());
        }
    }
    let rate = match after_first {
        Some(t) if steps > 1 => (batch * (steps - 1)) as f64 / t.elapsed().as_secs_f64(),
        _ => f64::NAN,
    };
    let shown: Vec<String> = losses.iter().map(|l| format!("{l:.3}")).collect();
    println!("losses: {}", shown.join(" "));
    println!("native_train_images_per_s={rate:.1} steps={steps} batch={batch}");
    Ok(())
}
