//! The tidy checks as tests, so that `cargo test --workspace` enforces them (the same checks as
//! `cargo xtask tidy`, one test each so a failure names its check).

use xtask::{check_named, repository_root, run_check};

/// Runs the check named `name` on this repository and fails with its report.
fn tidy(name: &str) {
    let check = check_named(name).unwrap_or_else(|| panic!("no check named {name}"));
    if let Err(report) = run_check(&repository_root(), check) {
        panic!("{report}\n(run `cargo xtask tidy {name}` to see this again)");
    }
}

#[test]
fn module_docs() {
    tidy("module-docs");
}

#[test]
fn crate_edges() {
    tidy("crate-edges");
}

#[test]
fn module_cycles() {
    tidy("module-cycles");
}

#[test]
fn hidden_names() {
    tidy("hidden-names");
}

#[test]
fn unused_deps() {
    tidy("unused-deps");
}

#[test]
fn banned_macros() {
    tidy("banned-macros");
}

#[test]
fn every_check_has_a_test() {
    let tested =
        ["module-docs", "crate-edges", "module-cycles", "hidden-names", "unused-deps", "banned-macros"];
    let names: Vec<&str> = xtask::CHECKS.iter().map(|c| c.name).collect();
    assert_eq!(names, tested);
}
