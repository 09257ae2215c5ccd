//! The crate graph is a decision written down: the normal `[dependencies]` of the workspace crates
//! on each other must be exactly the edges listed in `ARCHITECTURE.md`, in the fenced block under
//! the heading "Allowed crate edges" (one `segmenta-engine -> segmenta-query` per line). Both
//! ways: an edge in a `Cargo.toml` that is not listed fails (decide it, then list it), and a
//! listed edge that no `Cargo.toml` has any more fails (so the list stays true).
//! Dev-dependencies are not edges: tests may use any crate.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::Path;

use crate::{Violation, Workspace};

/// The file holding the list.
pub const ARCHITECTURE: &str = "ARCHITECTURE.md";
/// The heading the list sits under.
pub const HEADING: &str = "Allowed crate edges";

/// Runs the check.
pub fn check(workspace: &Workspace) -> Result<Vec<Violation>, String> {
    let text = workspace.read(Path::new(ARCHITECTURE))?;
    let (listed, mut violations) = parse_list(&text);
    let names: Vec<&str> = workspace.members.iter().map(|m| m.name.as_str()).collect();
    let mut actual: BTreeMap<(String, String), (std::path::PathBuf, usize)> = BTreeMap::new();
    for member in &workspace.members {
        let Some(deps) = member.manifest.get("dependencies").and_then(|d| d.as_table()) else { continue };
        for (key, value) in deps {
            let package = value.get("package").and_then(|p| p.as_str()).unwrap_or(key);
            if names.contains(&package) {
                let line = member.dependency_line("dependencies", key);
                actual.insert((member.name.clone(), package.to_string()), (member.manifest_path(), line));
            }
        }
    }
    for ((from, to), (path, line)) in &actual {
        if !listed.contains_key(&(from.clone(), to.clone())) {
            violations.push(Violation::new(
                path,
                *line,
                format!("`{from}` depends on `{to}`, an edge {ARCHITECTURE} does not allow"),
                format!(
                    "remove the dependency, or if the new edge is intended add `{from} -> {to}` to \
                     the \"{HEADING}\" list in {ARCHITECTURE} (and say why in its code map)"
                ),
            ));
        }
    }
    for ((from, to), line) in &listed {
        let unknown: Vec<&String> = [from, to].into_iter().filter(|n| !names.contains(&n.as_str())).collect();
        let message = if !unknown.is_empty() {
            format!("the listed edge `{from} -> {to}` names a crate that is not a workspace member")
        } else if !actual.contains_key(&(from.clone(), to.clone())) {
            format!("the listed edge `{from} -> {to}` is in no Cargo.toml any more")
        } else {
            continue;
        };
        violations.push(Violation::new(
            ARCHITECTURE,
            *line,
            message,
            format!("remove the line from the \"{HEADING}\" list, so the list says what the manifests do"),
        ));
    }
    Ok(violations)
}

/// The edges listed under [`HEADING`] with their lines, and the problems of the list itself.
pub fn parse_list(text: &str) -> (BTreeMap<(String, String), usize>, Vec<Violation>) {
    let mut edges = BTreeMap::new();
    let mut violations = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let heading = lines.iter().position(|l| l.trim_start().starts_with('#') && l.contains(HEADING));
    let Some(heading) = heading else {
        violations.push(Violation::new(
            ARCHITECTURE,
            0,
            format!("no heading \"{HEADING}\""),
            format!("add a section \"## {HEADING}\" with a fenced block of `crate -> crate` lines"),
        ));
        return (edges, violations);
    };
    let Some(open) = (heading + 1..lines.len()).find(|&i| lines[i].trim_start().starts_with("```")) else {
        violations.push(Violation::new(
            ARCHITECTURE,
            heading + 1,
            format!("the \"{HEADING}\" section has no fenced block"),
            "put the edges in a ``` block, one `crate -> crate` per line",
        ));
        return (edges, violations);
    };
    for (i, line) in lines.iter().enumerate().skip(open + 1) {
        let line_no = i + 1;
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            break;
        }
        if trimmed.is_empty() {
            continue;
        }
        match trimmed.split_once("->").map(|(a, b)| (a.trim(), b.trim())) {
            Some((from, to)) if !from.is_empty() && !to.is_empty() && !to.contains(' ') => {
                if let Entry::Vacant(entry) = edges.entry((from.to_string(), to.to_string())) {
                    entry.insert(line_no);
                } else {
                    violations.push(Violation::new(
                        ARCHITECTURE,
                        line_no,
                        format!("the edge `{from} -> {to}` is listed twice"),
                        "remove the repeated line",
                    ));
                }
            }
            _ => violations.push(Violation::new(
                ARCHITECTURE,
                line_no,
                format!("cannot read `{trimmed}` as an edge"),
                "write one edge per line: `segmenta-engine -> segmenta-query`",
            )),
        }
    }
    (edges, violations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fenced_block_under_the_heading() {
        let text = "# A\n```\nx -> y\n```\n## Allowed crate edges\nText.\n```text\na -> b\n\nb->c\nnonsense\na -> b\n```\nd -> e\n";
        let (edges, problems) = parse_list(text);
        let listed: Vec<(&str, &str, usize)> =
            edges.iter().map(|((a, b), l)| (a.as_str(), b.as_str(), *l)).collect();
        assert_eq!(listed, [("a", "b", 8), ("b", "c", 10)]);
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [11, 12]);
    }

    #[test]
    fn a_missing_heading_is_reported() {
        let (edges, problems) = parse_list("# Architecture\n");
        assert!(edges.is_empty());
        assert_eq!(problems.len(), 1);
    }
}
