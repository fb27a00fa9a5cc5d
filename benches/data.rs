//! `cargo bench --bench data`: how fast the CPU side of the input pipeline runs, the figures a
//! test must not assert. Prints the median of several runs (after a warm-up) of drawing
//! procedural digits, and of one shuffled, augmented epoch of batches over them, in images/s.
//! No GPU needed.

use std::hint::black_box;
use std::time::Instant;

use kiln::data::{procedural_digits, Batches};

/// Runs of each measurement; the median is printed.
const RUNS: usize = 5;
/// Images per run.
const N: usize = 2000;

/// The median over `RUNS` runs of `work` (after one warm-up run), in images per second.
fn images_per_s(mut work: impl FnMut(u64) -> usize) -> f64 {
    work(0);
    let mut rates: Vec<f64> = (1..=RUNS as u64)
        .map(|run| {
            let t = Instant::now();
            let images = work(run);
            images as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[RUNS / 2]
}

/// One line of the table: what was measured and its rate.
fn report(what: &str, rate: f64) {
    println!("{what:<40} {rate:>9.0} images/s (median of {RUNS} runs of {N})");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let draw = images_per_s(|seed| black_box(procedural_digits(N, seed)).n);
    report("procedural digits, 28x28", draw);

    let data = procedural_digits(N, 1);
    let batches = Batches::new(&data, 64)?;
    let epoch = images_per_s(|run| {
        batches
            .clone()
            .shuffle(7, run)
            .augment(2.0, 10.0, 7, run)
            .map(|(images, labels)| {
                black_box(images);
                labels.len()
            })
            .sum()
    });
    report("batches of 64, shuffled and augmented", epoch);
    Ok(())
}
