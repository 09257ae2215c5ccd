//! `cargo xtask`: the repository's own tasks. `cargo xtask tidy [check...]` runs the hygiene
//! checks of the `xtask` library (all of them, or the ones named) and exits with 1 when any fails.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("tidy") => tidy(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask tidy [check...]\n\nchecks:");
            for check in xtask::CHECKS {
                eprintln!("  {:<14} {}", check.name, check.summary);
            }
            ExitCode::from(2)
        }
    }
}

/// Runs the named checks (all when none is named) and prints what they find.
fn tidy(names: &[String]) -> ExitCode {
    let mut checks = Vec::new();
    for name in names {
        match xtask::check_named(name) {
            Some(check) => checks.push(check),
            None => {
                eprintln!("unknown check `{name}`; run `cargo xtask` for the list");
                return ExitCode::from(2);
            }
        }
    }
    if checks.is_empty() {
        checks = xtask::CHECKS.to_vec();
    }
    let root = xtask::repository_root();
    let mut failed = 0;
    for check in &checks {
        match xtask::run_check(&root, *check) {
            Ok(()) => println!("ok   {}", check.name),
            Err(report) => {
                failed += 1;
                println!("FAIL {report}");
            }
        }
    }
    if failed == 0 {
        println!("tidy: {} checks passed", checks.len());
        ExitCode::SUCCESS
    } else {
        println!("tidy: {failed} of {} checks failed", checks.len());
        ExitCode::FAILURE
    }
}
