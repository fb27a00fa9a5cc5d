//! `cargo bench`: the same cases as `kiln bench`, printed as a table (it runs the binary).
//! `cargo bench -- --quick` repeats less; `cargo bench -- NAME` runs the cases whose name
//! contains NAME.

fn main() -> std::process::ExitCode {
    let quick = std::env::args().any(|a| a == "--quick");
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.arg("bench");
    if quick {
        cmd.arg("--quick");
    }
    if let Some(f) = filter {
        cmd.args(["--filter", &f]);
    }
    match cmd.status() {
        Ok(s) if s.success() => std::process::ExitCode::SUCCESS,
        Ok(s) => {
            eprintln!("kiln bench: {s}");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("cannot run kiln bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
