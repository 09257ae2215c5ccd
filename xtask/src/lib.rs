//! segmenta's repository hygiene, checked by a program instead of remembered: `cargo xtask tidy`
//! runs every check and prints each violation as `path:line: message` with a hint; the
//! integration test `xtask/tests/tidy.rs` runs the same checks, so `cargo test --workspace`
//! enforces them too.
//!
//! The checks (one module each):
//! - [`module_docs`]: every Rust file opens with a `//!` comment;
//! - [`crate_edges`]: the workspace crates depend on each other exactly along the edges listed
//!   in `ARCHITECTURE.md` ("Allowed crate edges");
//! - [`module_cycles`]: the top-level modules of a crate do not import each other in a circle;
//! - [`hidden_names`]: hidden column names (string literals starting with `__segmenta`) are
//!   spelled only in `crates/core/src/hidden.rs`;
//! - [`unused_deps`]: every dependency a manifest declares is used (what `cargo machete` does,
//!   without an install step);
//! - [`banned_macros`]: no `todo!`, `dbg!` or `unimplemented!` outside tests.
//!
//! Rust files are read by line scanning ([`source`]), not parsed: see that module for why and
//! for its limits.

pub mod banned_macros;
pub mod crate_edges;
pub mod hidden_names;
pub mod module_cycles;
pub mod module_docs;
pub mod source;
pub mod unused_deps;
pub mod workspace;

use std::fmt;
use std::path::{Path, PathBuf};

pub use workspace::Workspace;

/// One problem found by a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The file, relative to the workspace root.
    pub path: PathBuf,
    /// The 1-based line (0 when the problem is about the whole file).
    pub line: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl Violation {
    /// A violation at `path:line`.
    pub fn new(
        path: impl Into<PathBuf>,
        line: usize,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Violation { path: path.into(), line, message: message.into(), hint: hint.into() }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        if self.line == 0 {
            write!(f, "{path}: {}", self.message)?;
        } else {
            write!(f, "{path}:{}: {}", self.line, self.message)?;
        }
        write!(f, "\n    hint: {}", self.hint)
    }
}

/// A named check of the workspace.
#[derive(Clone, Copy)]
pub struct Check {
    /// A short name (`module-docs`), used by `cargo xtask tidy <name>` and in the output.
    pub name: &'static str,
    /// What it requires, in one line.
    pub summary: &'static str,
    /// Runs it.
    pub run: fn(&Workspace) -> Result<Vec<Violation>, String>,
}

/// Every check, in the order `cargo xtask tidy` runs them.
pub const CHECKS: [Check; 6] = [
    Check {
        name: "module-docs",
        summary: "every Rust file opens with a `//!` comment",
        run: module_docs::check,
    },
    Check {
        name: "crate-edges",
        summary: "crate dependencies are exactly ARCHITECTURE.md's allowed edges",
        run: crate_edges::check,
    },
    Check {
        name: "module-cycles",
        summary: "no import cycle between the top-level modules of a crate",
        run: module_cycles::check,
    },
    Check {
        name: "hidden-names",
        summary: "`__segmenta` column names are spelled only in crates/core/src/hidden.rs",
        run: hidden_names::check,
    },
    Check { name: "unused-deps", summary: "every declared dependency is used", run: unused_deps::check },
    Check {
        name: "banned-macros",
        summary: "no todo!, dbg! or unimplemented! outside tests",
        run: banned_macros::check,
    },
];

/// The check named `name`.
pub fn check_named(name: &str) -> Option<Check> {
    CHECKS.iter().copied().find(|c| c.name == name)
}

/// The workspace root of this repository (the parent of the `xtask` folder).
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Runs `check` on the workspace at `root` and renders the result: `Ok` with nothing to say, or
/// `Err` with every violation (or the reason the check could not run).
pub fn run_check(root: &Path, check: Check) -> Result<(), String> {
    let workspace = Workspace::load(root)?;
    let violations = (check.run)(&workspace)?;
    if violations.is_empty() {
        return Ok(());
    }
    let mut text = format!("{} ({}): {} problem(s)\n", check.name, check.summary, violations.len());
    for violation in &violations {
        text.push_str(&format!("{violation}\n"));
    }
    Err(text)
}
