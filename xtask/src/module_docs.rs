//! Every Rust file opens with a `//!` comment saying what it is for: files under a member's
//! `src/`, `tests/`, `benches/` and `examples/`, and every file of `xtask/`. Only blank lines may
//! come before it (not an attribute, not a plain `//` comment).

use std::path::Path;

use crate::{Violation, Workspace};

/// Runs the check.
pub fn check(workspace: &Workspace) -> Result<Vec<Violation>, String> {
    let mut violations = Vec::new();
    let mut paths = Vec::new();
    for member in &workspace.members {
        paths.extend(workspace.rust_files(member).into_iter().map(|f| f.path));
    }
    paths.extend(workspace.rust_files_under(Path::new("xtask")));
    paths.sort();
    paths.dedup();
    for path in paths {
        let text = workspace.read(&path)?;
        if let Some(line) = missing_doc(&text) {
            violations.push(Violation::new(
                path,
                line,
                "the file does not open with a `//!` comment",
                "start the file with `//! <what this module is for>` (only blank lines may come \
                 before it)",
            ));
        }
    }
    Ok(violations)
}

/// The line of the first non-blank line when it is not a `//!` comment; `None` when the file is
/// fine. An empty file has line 1.
pub fn missing_doc(text: &str) -> Option<usize> {
    match text.lines().enumerate().find(|(_, line)| !line.trim().is_empty()) {
        Some((_, line)) if line.trim_start().starts_with("//!") => None,
        Some((i, _)) => Some(i + 1),
        None => Some(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_blank_lines_may_come_first() {
        assert_eq!(missing_doc("//! Docs.\nfn a() {}"), None);
        assert_eq!(missing_doc("\n\n  //! Docs."), None);
        assert_eq!(missing_doc("// A comment.\n//! Docs."), Some(1));
        assert_eq!(missing_doc("\n#![allow(dead_code)]\n//! Docs."), Some(2));
        assert_eq!(missing_doc("/// Item docs.\nfn a() {}"), Some(1));
        assert_eq!(missing_doc(""), Some(1));
    }
}
