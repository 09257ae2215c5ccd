//! A project folder: its `segmenta.toml` read and parsed (positions kept for messages), edits of
//! it in memory (a command's options merged over a section), where its store is, and how its
//! data files and rule problems are located.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use segmenta_core::ValueType;
use segmenta_core::config::{self, ConfigText, ProjectConfig, SourceFormat};
use segmenta_query::ingest::{self, SourceSpec};
use segmenta_rules::Diagnostic;
use toml::Spanned;

use crate::error::{Error, Result, RuleProblem};

/// The project file's name inside a project folder.
pub const PROJECT_FILE: &str = "segmenta.toml";

/// The column header of a static list file.
pub const STATIC_LIST_COLUMN: &str = "entity_id";

/// A project folder and its parsed project file.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project folder.
    pub dir: PathBuf,
    /// `DIR/segmenta.toml`.
    pub file: PathBuf,
    /// The file's text (positions in errors refer to it).
    pub text: String,
    /// The parsed configuration.
    pub config: ProjectConfig,
}

/// The sections computed on top of the traits (segments and what builds on them): a command
/// that evaluates only part of a project ([`Project::with_section`]) drops them, with whatever
/// else it does not compute.
pub(crate) const SEGMENT_SECTIONS: &[&str] = &["segments", "schemes", "scores", "movements", "coverage"];

impl Project {
    /// Reads and parses `DIR/segmenta.toml`.
    pub fn load(dir: &Path) -> Result<Project> {
        let file = if dir.is_file() { dir.to_path_buf() } else { dir.join(PROJECT_FILE) };
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::ProjectNotFound { path: file });
            }
            Err(source) => return Err(Error::Io { path: file, source }),
        };
        let config =
            config::parse_project(&text).map_err(|errors| Error::Config { path: file.clone(), errors })?;
        Ok(Project { dir, file, text, config })
    }

    /// This project with another project file text (edited in memory: options of a command
    /// merged over the file), parsed and checked as the file would be.
    pub(crate) fn with_text(&self, text: String) -> Result<Project> {
        let config = config::parse_project(&text)
            .map_err(|errors| Error::Config { path: self.file.clone(), errors })?;
        Ok(Project { dir: self.dir.clone(), file: self.file.clone(), text, config })
    }

    /// This project with `[section]` edited in memory by `edit` (created if absent) and the
    /// sections named in `drop` removed: a model command's options merged over the file.
    pub(crate) fn with_section(
        &self,
        section: &str,
        drop: &[&str],
        edit: impl FnOnce(&mut dyn toml_edit::TableLike) -> Result<()>,
    ) -> Result<Project> {
        let mut document: toml_edit::DocumentMut = self
            .text
            .parse()
            .map_err(|e| Error::Internal(format!("the project file no longer parses: {e}")))?;
        for name in drop {
            document.remove(name);
        }
        let item = document.entry(section).or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
        let table = item.as_table_like_mut().ok_or_else(|| Error::Usage {
            message: format!("`{section}` in {} is not a table", self.file.display()),
            hint: Some(format!("write it as a [{section}] section")),
        })?;
        edit(table)?;
        // Positions in messages are in the edited text, which holds the command's options.
        let merged = Project { file: merged_path(&self.file), ..self.clone() };
        merged.with_text(document.to_string())
    }

    /// The store folder (default `DIR/.segmenta`).
    pub fn store_dir(&self) -> PathBuf {
        self.dir.join(self.config.project.store.as_deref().unwrap_or(".segmenta"))
    }

    /// The source spec of a data file named in the project.
    pub(crate) fn source_spec(
        &self,
        source: &Spanned<String>,
        columns: &IndexMap<String, Spanned<ValueType>>,
        extra: &[(String, ValueType)],
    ) -> SourceSpec {
        let display = source.get_ref().clone();
        let mut overrides: Vec<(String, ValueType)> =
            columns.iter().map(|(name, ty)| (name.clone(), *ty.get_ref())).collect();
        for (name, ty) in extra {
            if !overrides.iter().any(|(n, _)| n == name) {
                overrides.push((name.clone(), *ty));
            }
        }
        SourceSpec {
            path: self.dir.join(&display),
            display: display.clone(),
            format: SourceFormat::from_path(&display).unwrap_or(SourceFormat::Csv),
            overrides,
            infer_rows: ingest::DEFAULT_INFER_ROWS,
            time_formats: Vec::new(),
        }
    }

    /// The schema of a data file the project names at `declared`; a missing file is an error
    /// that shows the path from where the user stands, the line of the project file that names
    /// it, and the closest file name in its folder.
    pub(crate) fn read_schema(
        &self,
        spec: &SourceSpec,
        declared: &Spanned<String>,
    ) -> Result<ingest::TableSchema> {
        match ingest::read_schema(spec) {
            Err(segmenta_query::Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                let (line, column) = ConfigText(&self.text).line_col(declared.span().start);
                let shown = spec.path.strip_prefix(".").unwrap_or(&spec.path).display().to_string();
                let folder =
                    spec.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
                let names: Vec<String> = std::fs::read_dir(folder)
                    .map(|entries| {
                        entries
                            .filter_map(|e| e.ok())
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                let wanted =
                    spec.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let hint = match config::did_you_mean(&wanted, names.iter().map(String::as_str)) {
                    Some(best) => {
                        format!("did you mean `{}`?", Path::new(&spec.display).with_file_name(best).display())
                    }
                    None => format!("paths in {} are relative to the project folder", self.file.display()),
                };
                Err(Error::MissingFile {
                    path: shown,
                    declared: format!("{}:{line}:{column}", self.file.display()),
                    hint,
                })
            }
            other => Ok(other?),
        }
    }

    /// A bad-row error from a data file, with a note naming the lines of the project file that
    /// declare the file and the column (so the user sees which declaration the data broke).
    pub(crate) fn locate(&self, error: Error) -> Error {
        if let Error::Query(segmenta_query::Error::OutOfRange { owner, message, hint }) = &error {
            return Error::OutOfRange {
                path: self.file.clone(),
                position: self.owner_position(owner),
                message: format!("{} `{}`: {message}", owner.kind, owner.name),
                hint: hint.clone(),
            };
        }
        let Error::Query(segmenta_query::Error::BadInput { location, .. }) = &error else { return error };
        let config = &self.config;
        let text = ConfigText(&self.text);
        let at = |span: std::ops::Range<usize>| {
            let (line, column) = text.line_col(span.start);
            format!("{}:{line}:{column}", self.file.display())
        };
        let sections = config
            .entities
            .iter()
            .filter(|(_, e)| !e.from_events)
            .map(|(name, e)| (format!("[entities.{name}]"), &e.source, &e.columns))
            .chain(config.events.iter().map(|e| ("[events]".to_string(), &e.source, &e.columns)));
        for (section, source, columns) in sections {
            if *source.get_ref() != location.file {
                continue;
            }
            let mut note = format!("{} is the source of {section} at {}", location.file, at(source.span()));
            if let Some(column) = &location.column
                && let Some(ty) = columns.get(column)
            {
                note.push_str(&format!("; `{column}` is declared {} at {}", ty.get_ref(), at(ty.span())));
            }
            let Error::Query(inner) = error else { return error };
            return Error::Data { error: Box::new(inner), note };
        }
        error
    }

    /// The line and column of the text that computes `owner` (a segment's rule, a trait, a
    /// score's first line, a scheme's first tier) in the project file.
    fn owner_position(&self, owner: &segmenta_query::Owner) -> Option<(usize, usize)> {
        let config = &self.config;
        let span = match owner.kind {
            "segment" => config.segments.get(&owner.name)?.rule.as_ref()?.span(),
            "trait" => config.traits.get(&owner.name)?.expr.span(),
            "score" => {
                let score = config.scores.get(&owner.name)?;
                match (score.rules.first(), score.events.first()) {
                    (Some(rule), _) => rule.rule.span(),
                    (None, Some(line)) => line.condition.span(),
                    (None, None) => return None,
                }
            }
            "scheme" => config.schemes.get(&owner.name)?.tiers.first()?.rule.span(),
            _ => return None,
        };
        // Inside the quotes: the text's first character.
        Some(ConfigText(&self.text).line_col(span.start + 1))
    }

    /// A rule problem located in the project file.
    pub(crate) fn problem(
        &self,
        source: String,
        text: &Spanned<String>,
        diagnostic: Diagnostic,
    ) -> RuleProblem {
        let ct = ConfigText(&self.text);
        let offset = ct.value_offset(&text.span(), diagnostic.span.start);
        RuleProblem {
            source,
            text: text.get_ref().to_string(),
            diagnostic,
            file_position: Some(ct.line_col(offset)),
        }
    }
}

/// How messages name a project file with a command's options merged in.
fn merged_path(path: &Path) -> PathBuf {
    PathBuf::from(format!("{} (with the command's options merged in)", path.display()))
}
