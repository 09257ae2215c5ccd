//! No import cycle between the top-level modules of a crate. Modules that import each other in
//! a circle cannot be understood, tested or moved one at a time; shared types belong in a module
//! below both users.
//!
//! The graph, per member crate: a node per top-level module of `src/` (the file `src/foo.rs` and
//! everything under `src/foo/` are module `foo`; `lib.rs`, `main.rs` and `src/bin/` are the roots,
//! which declare everything and are not nodes). An edge `foo -> bar` when code of `foo` (not a
//! comment, string or `#[cfg(test)]` item) names a path that starts at the crate root and goes into
//! `bar`:
//! - `crate::bar::X`, `use crate::bar`, and every branch of a group `use crate::{bar, baz::Y}`
//!   (groups may span lines and nest);
//! - `super::bar` where the `super`s climb to the root (`super::` in `src/foo.rs`,
//!   `super::super::` in `src/foo/x.rs`; inline modules other than tests are not tracked);
//! - `crate::Name` where the root file re-exports `Name` from `bar` (`pub use bar::Name;`, groups
//!   and `as` included; glob re-exports are not followed).
//!
//! Each elementary cycle is reported as `crate: a -> b -> a` with the file and line of one use per
//! edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use crate::source::{Source, is_ident};
use crate::workspace::Role;
use crate::{Violation, Workspace};

/// At most this many cycles are reported per crate (the rest are counted).
const MAX_CYCLES: usize = 50;

/// Where an edge comes from: the first use found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The file, relative to the workspace root.
    pub path: PathBuf,
    /// Its 1-based line.
    pub line: usize,
}

/// A module graph: `from -> to -> evidence`.
pub type Graph = BTreeMap<String, BTreeMap<String, Evidence>>;

/// Runs the check.
pub fn check(workspace: &Workspace) -> Result<Vec<Violation>, String> {
    let mut violations = Vec::new();
    for member in &workspace.members {
        let mut files = Vec::new();
        for file in workspace.rust_files(member).into_iter().filter(|f| f.role == Role::Src) {
            let text = workspace.read(&file.path)?;
            files.push((file.path, file.inner, Source::new(&text)));
        }
        let graph = module_graph(&files);
        let cycles = find_cycles(&graph);
        for cycle in cycles.iter().take(MAX_CYCLES) {
            violations.push(cycle_violation(&member.name, &graph, cycle));
        }
        if cycles.len() > MAX_CYCLES {
            violations.push(Violation::new(
                member.manifest_path(),
                0,
                format!("{}: {} more module cycles", member.name, cycles.len() - MAX_CYCLES),
                "break the cycles above first",
            ));
        }
    }
    Ok(violations)
}

/// The violation for one cycle (`cycle` lists each module once, the first again at the end).
fn cycle_violation(krate: &str, graph: &Graph, cycle: &[String]) -> Violation {
    let edges: Vec<(&String, &String, &Evidence)> =
        cycle.windows(2).map(|w| (&w[0], &w[1], &graph[&w[0]][&w[1]])).collect();
    let first = edges[0].2;
    let mut message = format!("{krate}: {}", cycle.join(" -> "));
    for (from, to, evidence) in &edges {
        message.push_str(&format!("\n      {from} -> {to}: {}:{}", evidence.path.display(), evidence.line));
    }
    Violation::new(
        first.path.clone(),
        first.line,
        message,
        "move what both sides need into a module below them (or into the module that uses it), \
         so that the imports go one way",
    )
}

/// The module of a file of `src/` given its path inside `src/`: `None` for the crate roots.
pub fn module_of(inner: &Path) -> Option<String> {
    let mut components = inner.components().filter_map(|c| match c {
        Component::Normal(s) => s.to_str(),
        _ => None,
    });
    let first = components.next()?;
    let is_file = components.next().is_none();
    if is_file && (first == "lib.rs" || first == "main.rs") || first == "bin" {
        return None;
    }
    Some(first.strip_suffix(".rs").unwrap_or(first).to_string())
}

/// How many `super::` lead from a file (by its path inside `src/`) to the crate root: 1 for
/// `foo.rs` and `foo/mod.rs`, 2 for `foo/x.rs`.
fn depth_of(inner: &Path) -> usize {
    let parts = inner.components().count();
    let is_mod = inner.file_name().is_some_and(|n| n == "mod.rs");
    if is_mod { parts - 1 } else { parts }
}

/// The module graph of one crate's `src/` files, given as (path from the root, path inside
/// `src/`, source).
pub fn module_graph(files: &[(PathBuf, PathBuf, Source)]) -> Graph {
    let modules: BTreeSet<String> = files.iter().filter_map(|(_, inner, _)| module_of(inner)).collect();
    // Names the roots bring into scope from a module: `pub use bar::Name;` -> Name: bar.
    let mut reexports: BTreeMap<String, String> = BTreeMap::new();
    for (_, inner, source) in files.iter().filter(|(_, inner, _)| module_of(inner).is_none()) {
        if inner.components().count() != 1 {
            continue;
        }
        for offset in source.find_word("use") {
            if source.is_test(offset) || !source.code[offset + 3..].starts_with(char::is_whitespace) {
                continue;
            }
            for (path, binding, _) in use_paths(&source.code, offset + 3) {
                let path: Vec<&str> =
                    path.iter().map(String::as_str).skip_while(|s| *s == "crate" || *s == "self").collect();
                if let (Some(first), Some(binding)) = (path.first(), binding)
                    && modules.contains(*first)
                    && path.len() > 1
                {
                    reexports.insert(binding, (*first).to_string());
                }
            }
        }
    }
    let mut graph: Graph = modules.iter().map(|m| (m.clone(), BTreeMap::new())).collect();
    for (path, inner, source) in files {
        let Some(from) = module_of(inner) else { continue };
        let mut starts: Vec<usize> =
            source.find_word("crate::").into_iter().map(|o| o + "crate::".len()).collect();
        let supers = "super::".repeat(depth_of(inner));
        for offset in source.find_word(&supers) {
            // Exactly `depth` supers: not the tail of a longer run.
            if !source.code[..offset].ends_with("::") {
                starts.push(offset + supers.len());
            }
        }
        for start in starts {
            if source.is_test(start) {
                continue;
            }
            for (segments, _, at) in use_paths(&source.code, start) {
                let Some(first) = segments.first() else { continue };
                let to = if modules.contains(first) {
                    first.clone()
                } else if let Some(module) = reexports.get(first) {
                    module.clone()
                } else {
                    continue;
                };
                if to != from {
                    let evidence = Evidence { path: path.clone(), line: source.line_of(at) };
                    graph.entry(from.clone()).or_default().entry(to).or_insert(evidence);
                }
            }
        }
    }
    graph
}

/// A token of a use tree.
#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    Ident(&'a str),
    Colons,
    Open,
    Close,
    Comma,
    Glob,
}

/// The next token of a use tree at `*at` in masked `code` (skipping whitespace), or `None` at
/// anything else (`(`, `;`, `<`, the end).
fn next_token<'a>(code: &'a str, at: &mut usize) -> Option<(Token<'a>, usize)> {
    let rest = &code[*at..];
    let trimmed = rest.trim_start();
    let start = *at + (rest.len() - trimmed.len());
    let (token, len) = if trimmed.starts_with("::") {
        (Token::Colons, 2)
    } else if trimmed.starts_with('{') {
        (Token::Open, 1)
    } else if trimmed.starts_with('}') {
        (Token::Close, 1)
    } else if trimmed.starts_with(',') {
        (Token::Comma, 1)
    } else if trimmed.starts_with('*') {
        (Token::Glob, 1)
    } else {
        let len = trimmed.find(|c: char| !is_ident(c)).unwrap_or(trimmed.len());
        if len == 0 {
            return None;
        }
        (Token::Ident(&trimmed[..len]), len)
    };
    *at = start + len;
    Some((token, start))
}

/// The paths of the use tree (or plain path) starting at byte `start` of masked `code`: each as
/// its segments, the name it binds (the last segment or its `as` alias; `None` for a glob or
/// `self`), and the offset of its first segment. `a::{b, c::{d as e}}` gives `a::b` (b),
/// `a::c::d` (e).
pub fn use_paths(code: &str, start: usize) -> Vec<(Vec<String>, Option<String>, usize)> {
    let mut out = Vec::new();
    let mut at = start;
    tree(code, &mut at, &mut Vec::new(), None, &mut out);
    out
}

/// Parses one use tree at `*at` under `prefix` (whose first segment is at `first`).
fn tree(
    code: &str,
    at: &mut usize,
    prefix: &mut Vec<String>,
    first: Option<usize>,
    out: &mut Vec<(Vec<String>, Option<String>, usize)>,
) {
    let depth = prefix.len();
    let mut first = first;
    loop {
        let save = *at;
        match next_token(code, at) {
            Some((Token::Ident(name), offset)) if name != "as" => {
                first.get_or_insert(offset);
                prefix.push(name.to_string());
                let after = *at;
                match next_token(code, at) {
                    Some((Token::Colons, _)) => continue,
                    Some((Token::Ident("as"), _)) => {
                        let alias = match next_token(code, at) {
                            Some((Token::Ident(alias), _)) => Some(alias.to_string()),
                            _ => None,
                        };
                        out.push((prefix.clone(), alias.filter(|a| a != "_"), first.unwrap_or(offset)));
                    }
                    _ => {
                        *at = after;
                        let binding = (name != "self").then(|| name.to_string());
                        let mut segments = prefix.clone();
                        if name == "self" {
                            segments.pop();
                        }
                        out.push((segments, binding, first.unwrap_or(offset)));
                    }
                }
                break;
            }
            Some((Token::Glob, offset)) => {
                out.push((prefix.clone(), None, first.unwrap_or(offset)));
                break;
            }
            Some((Token::Open, _)) => {
                loop {
                    let before = *at;
                    match next_token(code, at) {
                        Some((Token::Close, _)) | None => break,
                        Some((Token::Comma, _)) => continue,
                        _ => {
                            *at = before;
                            let mut branch = prefix.clone();
                            tree(code, at, &mut branch, first, out);
                            if *at == before {
                                break;
                            }
                        }
                    }
                }
                break;
            }
            _ => {
                *at = save;
                break;
            }
        }
    }
    prefix.truncate(depth);
}

/// The elementary cycles of `graph`, each as its modules from the smallest (by name) round to it
/// again, sorted. Exponential in the worst case, which a crate's dozen modules never reach.
pub fn find_cycles(graph: &Graph) -> Vec<Vec<String>> {
    let mut cycles = Vec::new();
    for start in graph.keys() {
        let mut path = vec![start.clone()];
        walk(graph, start, start, &mut path, &mut cycles);
    }
    cycles.sort();
    cycles
}

/// Extends `path` (from `start`, through nodes greater than `start` only, so each cycle is found
/// once, from its smallest node) and records the paths that close on `start`.
fn walk(graph: &Graph, start: &str, node: &str, path: &mut Vec<String>, cycles: &mut Vec<Vec<String>>) {
    let Some(edges) = graph.get(node) else { return };
    for next in edges.keys() {
        if next == start {
            let mut cycle = path.clone();
            cycle.push(start.to_string());
            cycles.push(cycle);
        } else if next.as_str() > start && !path.contains(next) {
            path.push(next.clone());
            walk(graph, start, next, path, cycles);
            path.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str)]) -> Graph {
        let mut graph = Graph::new();
        for (from, to) in edges {
            let evidence = Evidence { path: PathBuf::from(format!("{from}.rs")), line: 1 };
            graph.entry(from.to_string()).or_default().insert(to.to_string(), evidence);
            graph.entry(to.to_string()).or_default();
        }
        graph
    }

    fn cycles(edges: &[(&str, &str)]) -> Vec<String> {
        find_cycles(&graph(edges)).iter().map(|c| c.join(" -> ")).collect()
    }

    #[test]
    fn a_dag_has_no_cycle() {
        assert!(cycles(&[("a", "b"), ("b", "c"), ("a", "c"), ("d", "a")]).is_empty());
    }

    #[test]
    fn finds_two_and_three_cycles_once_each() {
        assert_eq!(cycles(&[("b", "a"), ("a", "b")]), ["a -> b -> a"]);
        assert_eq!(
            cycles(&[("run", "project"), ("project", "clv"), ("clv", "run")]),
            ["clv -> run -> project -> clv"]
        );
    }

    #[test]
    fn finds_every_elementary_cycle() {
        // The shape of the engine today: project, run, clv and churn in several circles.
        let found = cycles(&[
            ("project", "run"),
            ("run", "project"),
            ("run", "clv"),
            ("clv", "run"),
            ("churn", "run"),
            ("run", "churn"),
            ("clv", "project"),
            ("x", "project"),
        ]);
        assert_eq!(
            found,
            [
                "churn -> run -> churn",
                "clv -> project -> run -> clv",
                "clv -> run -> clv",
                "project -> run -> project",
            ]
        );
    }

    fn paths(code: &str) -> Vec<(String, Option<String>)> {
        let source = Source::new(code);
        use_paths(&source.code, 0).into_iter().map(|(p, b, _)| (p.join("::"), b)).collect()
    }

    #[test]
    fn reads_use_trees() {
        let got = paths("a::{b, c::{d as e, self}, f::*,\n   g};");
        let want = [
            ("a::b", Some("b")),
            ("a::c::d", Some("e")),
            ("a::c", None),
            ("a::f", None),
            ("a::g", Some("g")),
        ];
        let want: Vec<(String, Option<String>)> =
            want.iter().map(|(p, b)| (p.to_string(), b.map(str::to_string))).collect();
        assert_eq!(got, want);
        assert_eq!(paths("scan::Scan::new(x)"), [("scan::Scan::new".to_string(), Some("new".to_string()))]);
    }

    fn files(list: &[(&str, &str)]) -> Vec<(PathBuf, PathBuf, Source)> {
        list.iter()
            .map(|(inner, text)| (PathBuf::from("src").join(inner), PathBuf::from(inner), Source::new(text)))
            .collect()
    }

    fn edges(graph: &Graph) -> Vec<String> {
        let mut out = Vec::new();
        for (from, tos) in graph {
            for (to, evidence) in tos {
                out.push(format!("{from} -> {to} ({}:{})", evidence.path.display(), evidence.line));
            }
        }
        out
    }

    #[test]
    fn builds_the_module_graph() {
        let files = files(&[
            (
                "lib.rs",
                "//! Root.\nmod a;\nmod b;\nmod c;\nmod d;\npub use d::Thing;\nuse crate::c::{Other as Renamed};\n",
            ),
            (
                "a.rs",
                "//! A.\nuse crate::{\n    b::X,\n    a::Y,\n};\n// crate::c::Z in a comment\nfn f() -> crate::Thing { let s = \"crate::c\"; todo() }\n",
            ),
            ("b/mod.rs", "//! B.\nmod inner;\nfn g() { super::c::h(); }\n"),
            ("b/inner.rs", "//! Inner.\nuse super::super::a;\nuse super::sibling;\n"),
            ("c.rs", "//! C.\nfn h() {}\n#[cfg(test)]\nmod tests {\n    use crate::a;\n}\n"),
            ("d.rs", "//! D.\nfn k() -> crate::Renamed { }\n"),
        ]);
        assert_eq!(
            edges(&module_graph(&files)),
            [
                "a -> b (src/a.rs:3)",
                "a -> d (src/a.rs:7)",
                "b -> a (src/b/inner.rs:2)",
                "b -> c (src/b/mod.rs:3)",
                "d -> c (src/d.rs:2)",
            ]
        );
    }

    #[test]
    fn modules_of_files() {
        assert_eq!(module_of(Path::new("lib.rs")), None);
        assert_eq!(module_of(Path::new("bin/tool.rs")), None);
        assert_eq!(module_of(Path::new("scan.rs")).as_deref(), Some("scan"));
        assert_eq!(module_of(Path::new("ingest/mod.rs")).as_deref(), Some("ingest"));
        assert_eq!(module_of(Path::new("cluster/kmeans.rs")).as_deref(), Some("cluster"));
        assert_eq!(depth_of(Path::new("ingest/mod.rs")), 1);
        assert_eq!(depth_of(Path::new("ingest/csv.rs")), 2);
    }
}
