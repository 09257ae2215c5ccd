//! No `todo!`, `dbg!` or `unimplemented!` outside tests: unfinished code and debugging output do
//! not ship. Checked in `src/` (outside `#[cfg(test)]` items), `benches/` and `examples/` of every
//! member; comments and strings do not count. (Clippy's `todo` and `dbg_macro` lints catch the
//! first two in built code too; this check also covers `unimplemented!` and code behind features.)

use crate::source::Source;
use crate::workspace::Role;
use crate::{Violation, Workspace};

/// The macros, without the `!`.
pub const BANNED: [&str; 3] = ["todo", "dbg", "unimplemented"];

/// Runs the check.
pub fn check(workspace: &Workspace) -> Result<Vec<Violation>, String> {
    let mut violations = Vec::new();
    for member in &workspace.members {
        for file in workspace.rust_files(member) {
            if file.role == Role::Tests {
                continue;
            }
            let source = Source::new(&workspace.read(&file.path)?);
            for (line, name) in banned_calls(&source) {
                let hint = if name == "dbg" {
                    "remove the debugging output (or log it with a message that says what it is)"
                } else {
                    "finish the code, or return an error that says what is not supported"
                };
                violations.push(Violation::new(
                    &file.path,
                    line,
                    format!("`{name}!` in non-test code"),
                    hint,
                ));
            }
        }
    }
    Ok(violations)
}

/// The calls of banned macros outside `#[cfg(test)]` items: (line, macro).
pub fn banned_calls(source: &Source) -> Vec<(usize, &'static str)> {
    let mut found = Vec::new();
    for name in BANNED {
        for offset in source.find_word(name) {
            let rest = source.code[offset + name.len()..].trim_start();
            let called = rest.strip_prefix('!').is_some_and(|r| r.trim_start().starts_with(['(', '[', '{']));
            if called && !source.is_test(offset) {
                found.push((source.line_of(offset), name));
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_calls_in_code_only() {
        let text = "//! `todo!()` in docs.\nfn a() { todo!() }\nfn b() { let s = \"dbg!(x)\"; my_dbg!(x); }\n\
                    fn c() { unimplemented! (\"x\") }\nfn d() { dbg![1] }\n#[cfg(test)]\nmod tests { fn e() { todo!() } }\n";
        assert_eq!(banned_calls(&Source::new(text)), [(2, "todo"), (4, "unimplemented"), (5, "dbg")]);
    }
}
