//! The workspace as the checks see it: its members (from the root `Cargo.toml`), each member's
//! manifest, and its Rust files by role (library or binary code, tests, benches, examples).

use std::fs;
use std::path::{Path, PathBuf};

/// The workspace under one root folder.
#[derive(Debug)]
pub struct Workspace {
    /// The folder holding the root `Cargo.toml`.
    pub root: PathBuf,
    /// The members, in the order the root manifest lists them.
    pub members: Vec<Member>,
}

/// One member crate.
#[derive(Debug)]
pub struct Member {
    /// The package name (`segmenta-core`).
    pub name: String,
    /// The folder, relative to the workspace root (`crates/core`).
    pub dir: PathBuf,
    /// The text of its `Cargo.toml`.
    pub manifest_text: String,
    /// Its `Cargo.toml`, parsed.
    pub manifest: toml::Table,
}

/// What a Rust file is for, from its folder inside the member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Under `src/`: the library or binaries (with unit tests in `#[cfg(test)]` items).
    Src,
    /// Under `tests/`.
    Tests,
    /// Under `benches/`.
    Benches,
    /// Under `examples/`.
    Examples,
}

/// A Rust file of a member.
#[derive(Debug, Clone)]
pub struct RustFile {
    /// The path relative to the workspace root.
    pub path: PathBuf,
    /// The path relative to the member's folder's role folder (`cluster/kmeans.rs` for
    /// `crates/ml/src/cluster/kmeans.rs`).
    pub inner: PathBuf,
    /// The folder it is in.
    pub role: Role,
}

impl Workspace {
    /// Reads the workspace at `root`: the members named in `[workspace] members` (plain paths,
    /// no globs) and their manifests.
    pub fn load(root: &Path) -> Result<Workspace, String> {
        let root_manifest = read_manifest(&root.join("Cargo.toml"))?;
        let members = root_manifest
            .get("workspace")
            .and_then(|w| w.get("members"))
            .and_then(|m| m.as_array())
            .ok_or("the root Cargo.toml has no [workspace] members list")?;
        let mut loaded = Vec::new();
        for member in members {
            let dir = PathBuf::from(member.as_str().ok_or("a workspace member is not a string")?);
            let path = root.join(&dir).join("Cargo.toml");
            let manifest_text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let manifest: toml::Table =
                manifest_text.parse().map_err(|e| format!("{}: {e}", path.display()))?;
            let name = manifest
                .get("package")
                .and_then(|p| p.get("name"))
                .and_then(|n| n.as_str())
                .ok_or_else(|| format!("{}: no package name", path.display()))?
                .to_string();
            loaded.push(Member { name, dir, manifest_text, manifest });
        }
        Ok(Workspace { root: root.to_path_buf(), members: loaded })
    }

    /// The root `Cargo.toml`, parsed.
    pub fn root_manifest(&self) -> Result<toml::Table, String> {
        read_manifest(&self.root.join("Cargo.toml"))
    }

    /// Reads a file relative to the root.
    pub fn read(&self, path: &Path) -> Result<String, String> {
        fs::read_to_string(self.root.join(path)).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The Rust files of `member`, sorted by path.
    pub fn rust_files(&self, member: &Member) -> Vec<RustFile> {
        let mut files = Vec::new();
        for (folder, role) in [
            ("src", Role::Src),
            ("tests", Role::Tests),
            ("benches", Role::Benches),
            ("examples", Role::Examples),
        ] {
            let base = member.dir.join(folder);
            for path in walk(&self.root, &base) {
                let inner = path.strip_prefix(&base).unwrap_or(&path).to_path_buf();
                files.push(RustFile { path, inner, role });
            }
        }
        files
    }

    /// Every `.rs` file under `folder` (relative to the root), sorted, skipping `target` folders.
    pub fn rust_files_under(&self, folder: &Path) -> Vec<PathBuf> {
        walk(&self.root, folder)
    }
}

impl Member {
    /// The names of a dependency table (`dependencies`, `dev-dependencies`), with the line of each
    /// entry in the manifest (0 when it cannot be found by scanning).
    pub fn dependencies(&self, table: &str) -> Vec<(String, usize)> {
        let Some(entries) = self.manifest.get(table).and_then(|t| t.as_table()) else {
            return Vec::new();
        };
        entries.keys().map(|name| (name.clone(), self.dependency_line(table, name))).collect()
    }

    /// The 1-based line of dependency `name` in table `table` of the manifest (0 if not found).
    pub fn dependency_line(&self, table: &str, name: &str) -> usize {
        let header = format!("[{table}]");
        let mut in_table = false;
        for (i, line) in self.manifest_text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.starts_with('[') {
                in_table = trimmed == header;
                continue;
            }
            let key = trimmed.split(['=', '.', ' ']).next().unwrap_or("").trim_matches('"');
            if in_table && key == name {
                return i + 1;
            }
            // The dotted form: [dependencies.name]
            if trimmed == format!("[{table}.{name}]") {
                return i + 1;
            }
        }
        0
    }

    /// The manifest's path relative to the root.
    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join("Cargo.toml")
    }
}

/// Reads and parses a manifest.
fn read_manifest(path: &Path) -> Result<toml::Table, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.parse().map_err(|e| format!("{}: {e}", path.display()))
}

/// The `.rs` files under `root/folder`, as paths relative to `root`, sorted.
fn walk(root: &Path, folder: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(root.join(&dir)) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || name == "target" {
                continue;
            }
            let path = dir.join(&*name);
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(path),
                Ok(t) if t.is_file() && name.ends_with(".rs") => found.push(path),
                _ => {}
            }
        }
    }
    found.sort();
    found
}
