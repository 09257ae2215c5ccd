//! Hidden column names are defined in one module: a string literal starting with `__segmenta`
//! (the prefix of the columns segmenta adds to its own tables and hides from users) may appear
//! only in `crates/core/src/hidden.rs`, so every such name is declared once, next to the others,
//! and a collision or a rename is visible there. Tests (files under `tests/` and `#[cfg(test)]`
//! items) may spell the names they check.

use std::path::Path;

use crate::source::Source;
use crate::workspace::Role;
use crate::{Violation, Workspace};

/// The one file allowed to spell hidden names.
pub const HOME: &str = "crates/core/src/hidden.rs";

/// The prefix, built so that this file does not spell it as a literal itself.
pub const PREFIX: &str = concat!("__", "segmenta");

/// Runs the check.
pub fn check(workspace: &Workspace) -> Result<Vec<Violation>, String> {
    let mut violations = Vec::new();
    for member in &workspace.members {
        for file in workspace.rust_files(member) {
            if file.role == Role::Tests || file.path == Path::new(HOME) {
                continue;
            }
            let source = Source::new(&workspace.read(&file.path)?);
            for (line, name) in hidden_literals(&source) {
                violations.push(Violation::new(
                    &file.path,
                    line,
                    format!("the hidden column name \"{name}\" is spelled outside {HOME}"),
                    format!(
                        "declare the name (or a function building it) in {HOME} and use it from \
                         segmenta_core::hidden"
                    ),
                ));
            }
        }
    }
    Ok(violations)
}

/// The string literals starting with the prefix, outside `#[cfg(test)]` items: (line, text).
pub fn hidden_literals(source: &Source) -> Vec<(usize, &str)> {
    source
        .strings
        .iter()
        .filter(|s| s.text.starts_with(PREFIX) && !source.is_test_line(s.line))
        .map(|s| (s.line, s.text.as_str()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_literals_but_not_comments_or_tests() {
        let text = format!(
            "//! Doc naming `{PREFIX}_key`.\nconst K: &str = \"{PREFIX}_key\";\nlet x = format!(\"{PREFIX}_{{i}}\");\n\
             let y = \"not {PREFIX}\";\n#[cfg(test)]\nmod tests {{\n    const T: &str = \"{PREFIX}_t\";\n}}\n"
        );
        let source = Source::new(&text);
        let lines: Vec<usize> = hidden_literals(&source).iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [2, 3]);
    }
}
