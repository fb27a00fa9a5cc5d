//! The `kiln` command: the main job (no arguments), `kiln info` and `kiln bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};
use kiln::{Context, ContextOptions, Tensor};

mod cli;

use cli::bench::{self, BenchOptions};

#[derive(Parser)]
#[command(
    name = "kiln",
    version,
    about = "A GPU compute engine for neural networks"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Args, Clone, Debug)]
struct TrainArgs {
    /// IDX folder (MNIST layout: train-/t10k- images and labels, raw or .gz); kiln's
    /// procedural digits when absent.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Epochs.
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Seed of initialization and shuffling.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where the checkpoint and plots go.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Random shift of training images, in pixels (0 turns augmentation off).
    #[arg(long, default_value_t = 2.0)]
    augment_shift: f32,
    /// Random rotation of training images, in degrees.
    #[arg(long, default_value_t = 10.0)]
    augment_degrees: f32,
    /// Training images to generate when no --data is given.
    #[arg(long, default_value_t = 6000)]
    procedural_count: usize,
}

#[derive(Subcommand)]
enum Command {
    /// Print every adapter with its backend, device type, limits and features.
    Info,
    /// Train the seed CNN on IDX digits from --data (or kiln's procedural digits), evaluate on
    /// the test split after each epoch, and write the checkpoint, a training-curve PNG and the
    /// confusion matrix into --out.
    Train(TrainArgs),
    /// Evaluate a checkpoint of the seed CNN on the test split.
    Evaluate {
        /// Checkpoint written by `kiln train`.
        #[arg(long, default_value = "out/checkpoint.safetensors")]
        checkpoint: PathBuf,
        /// IDX folder (MNIST layout); the procedural digits when absent.
        #[arg(long)]
        data: Option<PathBuf>,
    },
    /// Print the seed CNN's predictions for the first test images.
    Predict {
        /// Checkpoint written by `kiln train`.
        #[arg(long, default_value = "out/checkpoint.safetensors")]
        checkpoint: PathBuf,
        /// IDX folder (MNIST layout); the procedural digits when absent.
        #[arg(long)]
        data: Option<PathBuf>,
        /// How many test images.
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// Also write those images as a PNG grid to this file, in the order printed.
        #[arg(long)]
        grid: Option<PathBuf>,
    },
    /// Run an operator conformance set (DIR/cases.json + DIR/cases.safetensors) and print
    /// every failure, ending with `N passed, M failed`.
    Conformance {
        /// The folder holding the set.
        dir: PathBuf,
        /// Only run cases whose name contains this.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Run the benchmark cases and print a table of medians with GFLOP/s and GB/s.
    Bench {
        /// Also write the results as JSON (one object per case) to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Only run cases whose name contains this.
        #[arg(long)]
        filter: Option<String>,
        /// Fewer repetitions.
        #[arg(long)]
        quick: bool,
        /// Print `case=<name> median_ms=<x> gflops=<y> ...` lines (the peer benchmark's format)
        /// instead of a table.
        #[arg(long)]
        lines: bool,
        /// How each run is timed: `gpu` = GPU timestamps around the work where the adapter has
        /// them (recording not timed); `wall` = wall clock from before recording the ops to
        /// after the GPU finished, as the peer benchmark times (scripts/compare-burn.sh).
        #[arg(long, default_value = "gpu")]
        timing: bench::Timing,
        /// Skip measuring the FMA and copy ceilings (and the fractions of them).
        #[arg(long)]
        no_ceilings: bool,
        /// Instead of the cases: time process start to the first finished training step of the
        /// seed CNN (batch 64) in fresh processes, without and with a warm pipeline cache.
        #[arg(long)]
        cold_start: bool,
        /// Cold starts of each kind (medians are reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Instead of timing: one run of each selected case with GPU timestamps around every
        /// dispatch, printed as a per-kernel breakdown.
        #[arg(long)]
        profile: bool,
    },
    /// Internal: one cold start for `kiln bench --cold-start`.
    #[command(hide = true)]
    ColdStartChild,
}

fn main() -> ExitCode {
    let started = std::time::Instant::now();
    let cli = Cli::parse();
    let result = match cli.command {
        None => main_job(),
        Some(Command::Info) => info(),
        Some(Command::Train(args)) => train(&args).map(|_| ()),
        Some(Command::Evaluate { checkpoint, data }) => evaluate(&checkpoint, data.as_deref()),
        Some(Command::Predict {
            checkpoint,
            data,
            count,
            grid,
        }) => predict(&checkpoint, data.as_deref(), count, grid.as_deref()),
        Some(Command::Conformance { dir, filter }) => conformance(&dir, filter.as_deref()),
        Some(Command::Bench {
            json,
            filter,
            quick,
            lines,
            timing,
            no_ceilings,
            cold_start,
            runs,
            profile,
        }) => {
            let opts = BenchOptions {
                filter,
                quick,
                timing,
                ceilings: !no_ceilings,
                ..Default::default()
            };
            if cold_start {
                run_cold_start(json, runs)
            } else if profile {
                run_profile(&opts)
            } else {
                run_bench(json, opts, lines)
            }
        }
        Some(Command::ColdStartChild) => bench::cold_start_child(started),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The whole chain: what failed, and why (a path, then the I/O or format error).
            eprintln!("kiln: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn adapter_line(ctx: &Context) -> String {
    let i = ctx.adapter_info();
    format!(
        "{} ({:?}, {:?}, driver {} {})",
        i.name, i.backend, i.device_type, i.driver, i.driver_info
    )
}

/// The main job: open the adapter, check a matmul against the CPU reference, and train the
/// seed CNN briefly on kiln's procedural digits.
fn main_job() -> Result<()> {
    let ctx = Context::new()?;
    println!("adapter: {}", adapter_line(&ctx));
    let (m, k, n) = (129, 257, 65);
    let a_data = Tensor::rand_uniform(&ctx, &[m, k], -1.0, 1.0, 1)?.to_vec::<f32>()?;
    let b_data = Tensor::rand_uniform(&ctx, &[k, n], -1.0, 1.0, 2)?.to_vec::<f32>()?;
    let a = Tensor::from_slice(&ctx, &a_data, &[m, k])?;
    let b = Tensor::from_slice(&ctx, &b_data, &[k, n])?;
    let got = a.matmul(&b)?.to_vec::<f32>()?;
    let (want, _) =
        kiln::reference::matmul::matmul(&a_data, &[m, k], &b_data, &[k, n], false, false);
    let max_err = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (f64::from(*g) - w).abs())
        .fold(0.0, f64::max);
    let ok = max_err <= 1e-3;
    println!(
        "matmul [{m}x{k}] x [{k}x{n}] vs f64 CPU reference: max |error| = {max_err:.3e} ({})",
        if ok { "ok" } else { "MISMATCH" }
    );
    if !ok {
        bail!("matmul does not match the CPU reference");
    }
    println!(
        "training the seed CNN on 3,000 procedural digits for 2 epochs (`kiln train` for more)"
    );
    let args = TrainArgs {
        data: None,
        epochs: 2,
        batch_size: 64,
        lr: 1e-3,
        seed: 1,
        out: PathBuf::from("out"),
        procedural_count: 3000,
        augment_shift: 0.0,
        augment_degrees: 0.0,
    };
    let acc = train(&args)?;
    println!("the seed CNN reached {:.2}% test accuracy", acc * 100.0);
    Ok(())
}

fn load_data(
    data: Option<&std::path::Path>,
    procedural: usize,
    seed: u64,
) -> Result<(kiln::data::Dataset, kiln::data::Dataset), anyhow::Error> {
    Ok(match data {
        Some(dir) => kiln::data::Dataset::load_idx_dir(dir)
            .with_context(|| format!("reading the IDX data in {}", dir.display()))?,
        None => (
            kiln::data::procedural_digits(procedural, seed),
            kiln::data::procedural_digits((procedural / 4).max(100), seed ^ 0xD161_7500),
        ),
    })
}

/// Trains the seed CNN; returns the final test accuracy.
fn train(args: &TrainArgs) -> Result<f64> {
    use kiln::nn::checkpoint::{save, CheckpointMeta};
    use kiln::nn::model::{FitOptions, Samples};
    let ctx = Context::new()?;
    let (train, test) = load_data(args.data.as_deref(), args.procedural_count, args.seed)?;
    eprintln!(
        "data: {} training and {} test images of {}x{} ({})",
        train.n,
        test.n,
        train.rows,
        train.cols,
        args.data
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "kiln's procedural digits".into())
    );
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut model = kiln::nn::zoo::seed_cnn(&ctx, args.lr, args.seed)?;
    // Cosine decay to 1% of the rate over the run, and light augmentation: 8,000 MNIST digits
    // overfit after three epochs otherwise.
    let total_steps = (args.epochs * train.n.div_ceil(args.batch_size.max(1))) as u64;
    model.compile(
        kiln::optim::Optimizer::adam(args.lr).with_schedule(kiln::optim::Schedule::Cosine {
            total: total_steps,
            min_lr: args.lr * 0.01,
        }),
        kiln::nn::Loss::CategoricalCrossEntropy { from_logits: false },
        &[
            kiln::nn::Metric::Accuracy,
            kiln::nn::Metric::Precision,
            kiln::nn::Metric::Recall,
            kiln::nn::Metric::F1,
        ],
    );
    let (x, y) = (Samples::images(&train), Samples::labels(&train));
    let (tx, ty) = (Samples::images(&test), Samples::labels(&test));
    let mut history = Vec::new();
    let checkpoint = args.out.join("checkpoint.safetensors");
    for epoch in 0..args.epochs {
        let opts = FitOptions {
            epochs: 1,
            batch_size: args.batch_size,
            seed: args.seed,
            initial_epoch: epoch,
            total_epochs: args.epochs,
            log_every: 10,
            augment: (args.augment_shift > 0.0 || args.augment_degrees > 0.0)
                .then_some((args.augment_shift, args.augment_degrees)),
            ..Default::default()
        };
        let mut h = model.fit(&x, &y, Some((&tx, &ty)), &opts)?;
        history.append(&mut h.epochs);
        let meta = CheckpointMeta {
            epoch: epoch + 1,
            step: model.optimizer().map_or(0, |o| o.steps()),
            notes: [("model".to_string(), "seed_cnn".to_string())].into(),
        };
        save(&model, &checkpoint, &meta)
            .with_context(|| format!("cannot save {}", checkpoint.display()))?;
    }
    let last = history.last().context("no epochs were run")?;
    let val = last.val.clone().context("no test evaluation")?;
    // Training curves and the confusion matrix, as PNG.
    let loss: Vec<f64> = history.iter().map(|e| e.loss).collect();
    let val_loss: Vec<f64> = history
        .iter()
        .filter_map(|e| e.val.as_ref().map(|v| v.loss))
        .collect();
    let acc: Vec<f64> = history.iter().filter_map(|e| e.accuracy).collect();
    let val_acc: Vec<f64> = history
        .iter()
        .filter_map(|e| e.val.as_ref().and_then(|v| v.accuracy))
        .collect();
    let p = cli::plot::PALETTE;
    cli::plot::line_chart(
        &[("train loss", &loss, p[0]), ("test loss", &val_loss, p[1])],
        "seed CNN: loss per epoch",
        "epoch",
        "loss",
        640,
        400,
    )?
    .save_png(args.out.join("loss.png"))?;
    cli::plot::line_chart(
        &[
            ("train accuracy", &acc, p[0]),
            ("test accuracy", &val_acc, p[1]),
        ],
        "seed CNN: accuracy per epoch",
        "epoch",
        "accuracy",
        640,
        400,
    )?
    .save_png(args.out.join("accuracy.png"))?;
    if let Some(conf) = &val.confusion {
        let labels: Vec<String> = (0..conf.counts.len()).map(|i| i.to_string()).collect();
        cli::plot::confusion_matrix_image(
            &conf.counts,
            &labels,
            "seed CNN: test confusion matrix",
        )?
        .save_png(args.out.join("confusion.png"))?;
        let (pr, rc, f1) = conf.macro_scores();
        eprintln!("test precision {pr:.4} recall {rc:.4} F1 {f1:.4} (macro)");
    }
    let rate = history.iter().map(|e| e.samples_per_s).sum::<f64>() / history.len() as f64;
    eprintln!(
        "wrote {}, loss.png, accuracy.png and confusion.png in {}",
        checkpoint.display(),
        args.out.display()
    );
    ctx.save_pipeline_cache()?;
    let accuracy = val.accuracy.unwrap_or(0.0);
    println!(
        "test_accuracy={accuracy:.4} test_loss={:.4} epochs={} train_images_per_s={rate:.1}",
        val.loss,
        history.len()
    );
    Ok(accuracy)
}

fn load_checkpoint(
    ctx: &Context,
    checkpoint: &std::path::Path,
) -> Result<kiln::nn::Sequential, anyhow::Error> {
    let mut model = kiln::nn::zoo::seed_cnn(ctx, 1e-3, 0)?;
    let meta = kiln::nn::checkpoint::load(&mut model, checkpoint)
        .with_context(|| format!("cannot load {}", checkpoint.display()))?;
    eprintln!(
        "loaded {} (epoch {}, step {})",
        checkpoint.display(),
        meta.epoch,
        meta.step
    );
    Ok(model)
}

fn evaluate(checkpoint: &std::path::Path, data: Option<&std::path::Path>) -> Result<()> {
    use kiln::nn::model::Samples;
    let ctx = Context::new()?;
    let model = load_checkpoint(&ctx, checkpoint)?;
    let (_, test) = load_data(data, 6000, 1)?;
    let r = model.evaluate(&Samples::images(&test), &Samples::labels(&test), 128)?;
    println!(
        "test_loss={:.4} test_accuracy={:.4}",
        r.loss,
        r.accuracy.unwrap_or(0.0)
    );
    if let Some(c) = &r.confusion {
        let (p, rc, f1) = c.macro_scores();
        println!("precision={p:.4} recall={rc:.4} f1={f1:.4} (macro)");
        println!("confusion matrix (rows: true class, columns: predicted):");
        for (i, row) in c.counts.iter().enumerate() {
            let cells: Vec<String> = row.iter().map(|v| format!("{v:>5}")).collect();
            println!("{i}: {}", cells.join(""));
        }
    }
    Ok(())
}

fn predict(
    checkpoint: &std::path::Path,
    data: Option<&std::path::Path>,
    count: usize,
    grid: Option<&std::path::Path>,
) -> Result<()> {
    use kiln::nn::model::Samples;
    let ctx = Context::new()?;
    let model = load_checkpoint(&ctx, checkpoint)?;
    let (_, test) = load_data(data, 6000, 1)?;
    let idx: Vec<usize> = (0..count.min(test.n)).collect();
    let subset = test.subset(&idx)?;
    let probs = model.predict(&Samples::images(&subset), 64)?;
    for (i, row) in probs.chunks(10).enumerate() {
        let best = kiln::nn::metrics::argmax_rows(row, 10)[0];
        println!(
            "image {i}: predicted {best} (p={:.3}), label {}",
            row[best as usize], subset.labels[i]
        );
    }
    if let Some(path) = grid {
        cli::plot::grayscale_grid(&subset.images, subset.rows, subset.cols, 10, 3)?
            .save_png(path)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn conformance(dir: &std::path::Path, filter: Option<&str>) -> Result<()> {
    // The set first: a missing or malformed set fails before a device is opened.
    let suite = cli::conformance::Suite::load(dir)?;
    let ctx = Context::new()?;
    eprintln!(
        "conformance: {} cases from {} on {}",
        suite.cases.len(),
        dir.display(),
        adapter_line(&ctx)
    );
    let verdicts = cli::conformance::run_suite(&ctx, &suite, filter, |done, total, v| {
        for f in &v.failures {
            println!("FAIL {f}");
        }
        if done % 25 == 0 || done == total {
            eprintln!("[{done}/{total}] {}", v.case);
        }
    });
    let passed = verdicts.iter().filter(|v| v.passed()).count();
    let failed = verdicts.len() - passed;
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        bail!("{failed} conformance cases failed");
    }
    Ok(())
}

fn info() -> Result<()> {
    let options = ContextOptions::from_env();
    let adapters = Context::list_adapters(&options)?;
    if adapters.is_empty() {
        return Err(kiln::Error::NoAdapter {
            tried: format!("backend {:?}", options.backend.as_deref().unwrap_or("all")),
            hint: "on Linux without a GPU: apt-get install mesa-vulkan-drivers".into(),
        }
        .into());
    }
    for (i, a) in adapters.iter().enumerate() {
        let inf = &a.info;
        println!("adapter {i}: {}", inf.name);
        println!("  backend: {:?}", inf.backend);
        println!("  device type: {:?}", inf.device_type);
        println!("  driver: {} {}", inf.driver, inf.driver_info);
        println!("  vendor: {:#06x} device: {:#06x}", inf.vendor, inf.device);
        println!("  features: {:?}", a.features);
        println!("  limits: {:#?}", a.limits);
    }
    match Context::with_options(options) {
        Ok(ctx) => println!("kiln would use: {}", adapter_line(&ctx)),
        Err(e) => println!("kiln could not open any: {e}"),
    }
    Ok(())
}

fn run_profile(opts: &BenchOptions) -> Result<()> {
    let ctx = Context::new()?;
    println!(
        "# kiln bench --profile {} on {}",
        bench::utc_date(),
        adapter_line(&ctx)
    );
    for p in bench::profile(&ctx, opts)? {
        println!("{}", p.table());
    }
    Ok(())
}

fn run_cold_start(json: Option<PathBuf>, runs: usize) -> Result<()> {
    let ctx = Context::new()?;
    let supported = ctx.features().contains(wgpu::Features::PIPELINE_CACHE);
    println!(
        "# kiln bench --cold-start {} on {}: process start to the first finished training step of the seed CNN (batch 64), {runs} runs each, without and with a warm pipeline cache (alternating); Mesa's own shader cache disabled in every run (MESA_SHADER_CACHE_DISABLE=true)",
        bench::utc_date(),
        adapter_line(&ctx)
    );
    if !supported {
        println!("# this adapter has no PIPELINE_CACHE feature: both kinds compile everything");
    }
    drop(ctx);
    let exe = std::env::current_exe()?;
    let results = bench::cold_start(&exe, runs, supported)?;
    for r in &results {
        println!("{}", r.line());
    }
    if let Some(path) = json {
        let items: Vec<String> = results.iter().map(|r| format!("  {}", r.json())).collect();
        let text = format!("[\n{}\n]\n", items.join(",\n"));
        cli::fsio::write_atomically(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn run_bench(json: Option<PathBuf>, opts: BenchOptions, lines: bool) -> Result<()> {
    let ctx = Context::new()?;
    let date = bench::utc_date();
    println!("# kiln bench {date} on {}", adapter_line(&ctx));
    let started = std::time::Instant::now();
    let results = bench::run(&ctx, &opts, |done, total, name| {
        if done < total {
            let elapsed = started.elapsed().as_secs_f64();
            let eta = if done > 0 {
                format!("{:.0}s", elapsed / done as f64 * (total - done) as f64)
            } else {
                "?".into()
            };
            eprintln!(
                "[{}/{total}] {name} (elapsed {elapsed:.0}s, eta {eta})",
                done + 1
            );
        }
    })?;
    if let (Some(f), Some(c)) = (
        results.iter().find(|r| r.name == "ceiling_fma_f32"),
        results.iter().find(|r| r.name == "ceiling_copy_f32"),
    ) {
        println!(
            "# ceilings: {:.3} GFLOP/s (FMA), {:.3} GB/s (copy); frac_of_ceiling = max(flops / peak, bytes / bandwidth) / time",
            f.gflops(),
            c.gbps()
        );
    }
    if lines {
        for r in &results {
            println!("{}", r.line());
        }
    } else {
        print!("{}", bench::table(&results));
    }
    if let Some(path) = json {
        cli::fsio::write_atomically(&path, bench::to_json(&results).as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    ctx.save_pipeline_cache()?;
    Ok(())
}
