//! The `kiln` command: the main job (no arguments), `kiln info` and `kiln bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kiln::bench::{self, BenchOptions};
use kiln::{Context, ContextOptions, Tensor};

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

#[derive(Subcommand)]
enum Command {
    /// Print every adapter with its backend, device type, limits and features.
    Info,
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
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => main_job(),
        Some(Command::Info) => info(),
        Some(Command::Conformance { dir, filter }) => conformance(&dir, filter.as_deref()),
        Some(Command::Bench {
            json,
            filter,
            quick,
            lines,
        }) => run_bench(json, filter, quick, lines),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kiln: {e}");
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

/// The main job: open the adapter, check a matmul against the CPU reference, and print the
/// benchmark summary.
fn main_job() -> Result<(), Box<dyn std::error::Error>> {
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
        return Err("matmul does not match the CPU reference".into());
    }
    println!("benchmark summary (quick; `kiln bench` for the full run):");
    let results = bench::run(
        &ctx,
        &BenchOptions {
            filter: None,
            quick: true,
        },
        |_, _, _| {},
    )?;
    print!("{}", bench::table(&results));
    let s = ctx.memory_stats();
    println!(
        "memory: peak {} MiB on the device, {} buffers, {} pipelines, {} dispatches in {} submissions",
        s.peak_bytes >> 20,
        s.buffers_created,
        s.pipelines_created,
        s.dispatches,
        s.submissions
    );
    Ok(())
}

fn conformance(
    dir: &std::path::Path,
    filter: Option<&str>,
) -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new()?;
    let suite = kiln::conformance::Suite::load(dir)?;
    eprintln!(
        "conformance: {} cases from {} on {}",
        suite.cases.len(),
        dir.display(),
        adapter_line(&ctx)
    );
    let verdicts = kiln::conformance::run_suite(&ctx, &suite, filter, |done, total, v| {
        for f in &v.failures {
            println!("FAIL {f}");
        }
        if done % 25 == 0 || done == total {
            eprintln!("[{done}/{total}]");
        }
    });
    let passed = verdicts.iter().filter(|v| v.passed()).count();
    let failed = verdicts.len() - passed;
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        return Err(format!("{failed} conformance cases failed").into());
    }
    Ok(())
}

fn info() -> Result<(), Box<dyn std::error::Error>> {
    let options = ContextOptions::from_env();
    let adapters = Context::list_adapters(&options)?;
    if adapters.is_empty() {
        return Err(Box::new(kiln::Error::NoAdapter {
            tried: format!("backend {:?}", options.backend.as_deref().unwrap_or("all")),
            hint: "on Linux without a GPU: apt-get install mesa-vulkan-drivers".into(),
        }));
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

fn run_bench(
    json: Option<PathBuf>,
    filter: Option<String>,
    quick: bool,
    lines: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let ctx = Context::new()?;
    let date = kiln::bench::utc_date();
    println!("# kiln bench {date} on {}", adapter_line(&ctx));
    let started = std::time::Instant::now();
    let results = bench::run(
        &ctx,
        &BenchOptions { filter, quick },
        |done, total, name| {
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
        },
    )?;
    if lines {
        for r in &results {
            println!("{}", r.line());
        }
    } else {
        print!("{}", bench::table(&results));
    }
    if let Some(path) = json {
        kiln::fsio::write_atomically(&path, bench::to_json(&results).as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
