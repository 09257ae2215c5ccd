//! Every dependency a manifest declares is used, the job `cargo machete` does (done here so CI
//! needs no install step):
//! - each `[dependencies]` entry of a member appears in its `src/`;
//! - each `[dev-dependencies]` entry appears in its `tests/`, `benches/`, `examples/` or `src/`
//!   (unit tests live in `src/`);
//! - each `[workspace.dependencies]` entry of the root manifest is declared by some member.
//!
//! "Appears" means the crate name (the key with `-` turned into `_`) is used in code, not in a
//! comment or a string: `name::`, `use name` or `extern crate name`. A dependency needed without
//! being named (only for a cargo feature, say) goes in [`IGNORED`], with the reason.

use std::path::Path;

use crate::source::Source;
use crate::workspace::{Member, Role};
use crate::{Violation, Workspace};

/// Dependencies used without being named in code: (package, dependency, why).
pub const IGNORED: &[(&str, &str, &str)] = &[(
    "segmenta-ml",
    "argmin-math",
    "declared only to choose its `ndarray_v0_16-nolinalg` feature, which gives argmin's solvers \
     their ndarray implementations; the code names `argmin::` only",
)];

/// Runs the check.
pub fn check(workspace: &Workspace) -> Result<Vec<Violation>, String> {
    let mut violations = Vec::new();
    for member in &workspace.members {
        let mut src = Vec::new();
        let mut others = Vec::new();
        for file in workspace.rust_files(member) {
            let source = Source::new(&workspace.read(&file.path)?);
            if file.role == Role::Src { src.push(source) } else { others.push(source) }
        }
        let used_in = |sources: &[&Source], name: &str| sources.iter().any(|s| uses_crate(s, name));
        let src_only: Vec<&Source> = src.iter().collect();
        let everywhere: Vec<&Source> = src.iter().chain(&others).collect();
        for (table, sources, folders) in [
            ("dependencies", &src_only, "src/"),
            ("dev-dependencies", &everywhere, "tests/, benches/, examples/ or src/"),
        ] {
            for (name, line) in member.dependencies(table) {
                if ignored(member, &name) || used_in(sources, &name.replace('-', "_")) {
                    continue;
                }
                violations.push(unused(member, table, &name, line, folders));
            }
        }
    }
    violations.extend(unused_workspace_dependencies(workspace)?);
    Ok(violations)
}

/// Whether `member`'s dependency `name` is in [`IGNORED`].
fn ignored(member: &Member, name: &str) -> bool {
    IGNORED.iter().any(|(package, dependency, _)| *package == member.name && *dependency == name)
}

/// The violation for an unused entry.
fn unused(member: &Member, table: &str, name: &str, line: usize, folders: &str) -> Violation {
    let code_name = name.replace('-', "_");
    Violation::new(
        member.manifest_path(),
        line,
        format!("`{name}` in [{table}] of {} is not used in {folders}", member.name),
        format!(
            "remove the line (or, if it is needed without `{code_name}::` appearing in code, add it \
             to IGNORED in xtask/src/unused_deps.rs with the reason)"
        ),
    )
}

/// The `[workspace.dependencies]` entries no member declares.
fn unused_workspace_dependencies(workspace: &Workspace) -> Result<Vec<Violation>, String> {
    let root = workspace.root_manifest()?;
    let text = workspace.read(Path::new("Cargo.toml"))?;
    let Some(declared) = root.get("workspace").and_then(|w| w.get("dependencies")).and_then(|d| d.as_table())
    else {
        return Ok(Vec::new());
    };
    let mut violations = Vec::new();
    for name in declared.keys() {
        let used = workspace.members.iter().any(|m| {
            ["dependencies", "dev-dependencies", "build-dependencies"]
                .iter()
                .any(|t| m.manifest.get(*t).and_then(|d| d.get(name)).is_some())
        });
        if !used {
            let line = line_in_table(&text, "[workspace.dependencies]", name);
            violations.push(Violation::new(
                "Cargo.toml",
                line,
                format!("`{name}` in [workspace.dependencies] is used by no member"),
                "remove the line (and any comment about it)",
            ));
        }
    }
    Ok(violations)
}

/// The 1-based line of key `name` in table `header` of a manifest (0 if not found).
fn line_in_table(text: &str, header: &str, name: &str) -> usize {
    let mut in_table = false;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_table = trimmed == header;
        } else if in_table && trimmed.split(['=', '.', ' ']).next() == Some(name) {
            return i + 1;
        }
    }
    0
}

/// Whether code in `source` names crate `name` (`name::`, `use name`, `extern crate name`).
pub fn uses_crate(source: &Source, name: &str) -> bool {
    let code = &source.code;
    source.find_word(name).into_iter().any(|offset| {
        let after = &code[offset + name.len()..];
        if after.starts_with(|c: char| crate::source::is_ident(c)) {
            return false;
        }
        let before = code[..offset].trim_end();
        after.trim_start().starts_with("::")
            || before.ends_with("use") && !before[..before.len() - 3].ends_with(crate::source::is_ident)
            || before.ends_with("extern crate")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(code: &str, name: &str) -> bool {
        uses_crate(&Source::new(code), name)
    }

    #[test]
    fn recognises_uses() {
        assert!(uses("use serde::Serialize;", "serde"));
        assert!(uses("#[tokio::main]\nasync fn main() {}", "tokio"));
        assert!(uses("fn f() -> serde_json::Value { }", "serde_json"));
        assert!(uses("use rayon;", "rayon"));
        assert!(uses("extern crate csv;", "csv"));
        assert!(uses("pub use  arrow as a;", "arrow"));
    }

    #[test]
    fn ignores_lookalikes() {
        assert!(!uses("// serde::Serialize\nlet s = \"rayon::x\";", "serde"));
        assert!(!uses("let s = \"rayon::x\";", "rayon"));
        assert!(!uses("use serde_json::Value;", "serde"));
        assert!(!uses("my_csv::read();", "csv"));
        assert!(!uses("let reuse csv = 1;", "csv"));
        assert!(!uses("let chrono = 1;", "chrono"));
    }

    #[test]
    fn finds_keys_in_their_table() {
        let text = "[a]\nx = 1\n[workspace.dependencies]\ny = 1\nx.workspace = true\n";
        assert_eq!(line_in_table(text, "[workspace.dependencies]", "x"), 5);
        assert_eq!(line_in_table(text, "[workspace.dependencies]", "z"), 0);
    }
}
