//! `cargo bench`: the same cases as `kiln bench`, printed as a table.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = kiln::Context::new()?;
    let quick = std::env::args().any(|a| a == "--quick");
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let results = kiln::bench::run(
        &ctx,
        &kiln::bench::BenchOptions {
            filter,
            quick,
            ..Default::default()
        },
        |done, total, name| {
            if done < total {
                eprintln!("[{}/{total}] {name}", done + 1);
            }
        },
    )?;
    print!("{}", kiln::bench::table(&results));
    Ok(())
}
