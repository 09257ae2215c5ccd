//! The engine's error type, with stable codes and the user / environment / internal split.

use std::path::PathBuf;

use segmenta_core::config::ConfigError;

/// Who has to act on an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad configuration, rules or data: the user fixes the input.
    User,
    /// The machine: files that cannot be read or written, disks, permissions.
    Environment,
    /// A bug in segmenta.
    Internal,
}

/// A stable, snake_case code per error, for the CLI's exit codes and the server's statuses.
pub trait ErrorCode {
    /// The code, e.g. `unknown_attribute`.
    fn code(&self) -> &'static str;
    /// Who has to act.
    fn kind(&self) -> ErrorKind;
}

/// A problem in a rule or trait, located in the project file.
#[derive(Debug, Clone)]
pub struct RuleProblem {
    /// "segment `x`" or "trait `y`".
    pub source: String,
    /// The rule or trait text.
    pub text: String,
    /// The diagnostic, spans relative to `text`.
    pub diagnostic: segmenta_rules::Diagnostic,
    /// Line and column in the project file, when the text maps onto it one to one.
    pub file_position: Option<(usize, usize)>,
}

/// Everything a use case can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No `segmenta.toml` where the user pointed.
    #[error(
        "no project file at {}\n  hint: run the command in a project folder or pass --project DIR; start a project from your data files with `segmenta init --from DATA_DIR`, or try `segmenta demo DIR`",
        path.display()
    )]
    ProjectNotFound {
        /// The path looked for.
        path: PathBuf,
    },
    /// The project file is invalid.
    #[error("{}", render_config(path, errors))]
    Config {
        /// The project file.
        path: PathBuf,
        /// Every problem found.
        errors: Vec<ConfigError>,
    },
    /// Rules or traits do not parse or do not type-check.
    #[error("{}", render_rules(path, problems))]
    Rules {
        /// The project file.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<RuleProblem>,
    },
    /// The data files do not match the project (missing key column, ...).
    #[error("{message}{}", hint.as_ref().map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
    Schema {
        /// What, naming the file and column.
        message: String,
        /// How to fix it.
        hint: Option<String>,
    },
    /// Reading or evaluating data failed.
    #[error("{}", render_query(.0))]
    Query(#[from] segmenta_query::Error),
    /// A bad row of a data file, with where the project file declares the file and column.
    #[error("{}\n  note: {note}", render_query(error))]
    Data {
        /// The bad row.
        error: Box<segmenta_query::Error>,
        /// Which lines of the project file declare the file and the column.
        note: String,
    },
    /// A value a rule, trait or score computes is out of range, at the text that computes it.
    #[error(
        "{}{message}\n  hint: {hint}",
        match position { Some((line, column)) => format!("{}:{line}:{column}: ", path.display()), None => format!("{}: ", path.display()) }
    )]
    OutOfRange {
        /// The project file.
        path: std::path::PathBuf,
        /// The line and column of the rule, trait or score.
        position: Option<(usize, usize)>,
        /// What, naming the owner and the expression.
        message: String,
        /// How to avoid it.
        hint: String,
    },
    /// The run store failed.
    #[error(transparent)]
    Store(#[from] segmenta_store::Error),
    /// `--as-of` could not be read.
    #[error(
        "invalid --as-of `{value}`\n  hint: use a date such as 2024-06-30 or an RFC 3339 instant such as 2024-06-30T12:00:00Z"
    )]
    AsOf {
        /// What the user gave.
        value: String,
    },
    /// A scheme name that the project does not declare (nor `rfm` with `[rfm]`).
    #[error("unknown scheme `{name}`\n  hint: {hint}")]
    UnknownScheme {
        /// The name given.
        name: String,
        /// The schemes there are.
        hint: String,
    },
    /// A scheme that a snapshot's run did not compute (it was added later).
    #[error("the run in {} has no scheme `{name}`\n  hint: the scheme was added after that run; choose a later snapshot or run again", run.display())]
    SchemeNotInRun {
        /// The scheme.
        name: String,
        /// The run folder.
        run: PathBuf,
    },
    /// A snapshot that the catalog does not hold.
    #[error("no snapshot `{given}`\n  hint: {hint}")]
    UnknownSnapshot {
        /// What the user gave.
        given: String,
        /// The snapshots there are.
        hint: String,
    },
    /// A segment name that the project does not declare.
    #[error("unknown segment `{name}`{}", hint.as_ref().map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
    UnknownSegment {
        /// The name given.
        name: String,
        /// Did you mean.
        hint: Option<String>,
    },
    /// A segment the project declares but the run read (the latest, or a snapshot) did not
    /// compute.
    #[error(
        "segment `{name}` is not in the run as of {as_of} ({}): it was added to the project after that run\n  hint: run `segmenta run` to compute its members; a past snapshot keeps the segments it computed",
        run.display()
    )]
    SegmentNotInRun {
        /// The segment.
        name: String,
        /// The latest run's folder.
        run: PathBuf,
        /// The run's as-of instant.
        as_of: String,
    },
    /// A token name that the project does not have (live).
    #[error("no live token named `{name}`\n  hint: {hint}")]
    UnknownToken {
        /// The name given.
        name: String,
        /// Did you mean, or the live tokens.
        hint: String,
    },
    /// An entity id that the snapshot read does not hold.
    #[error("no entity `{id}` in the run as of {as_of}\n  hint: {hint}")]
    UnknownEntity {
        /// The id given.
        id: String,
        /// The run's as-of instant.
        as_of: String,
        /// What to check.
        hint: String,
    },
    /// A background run was asked for while another one runs.
    #[error("run {id} is running\n  hint: wait until GET /v1/runs/{id} says it finished, then start another")]
    RunInProgress {
        /// The running one.
        id: u64,
    },
    /// Events were posted to a project without `[events]`.
    #[error(
        "this project has no [events]: posted events would have nowhere to go\n  hint: add an [events] section naming the events file (its columns are what a posted event may hold)"
    )]
    NoEvents,
    /// A background run id this process did not start.
    #[error("no run {id}\n  hint: {hint}")]
    UnknownRun {
        /// The id given.
        id: u64,
        /// The ids there are.
        hint: String,
    },
    /// A segment that `PUT`/`DELETE` of rule segments may not edit.
    #[error("segment `{name}` {why}: only rule segments of [segments] are edited this way\n  hint: {hint}")]
    NotEditable {
        /// The segment.
        name: String,
        /// What it is.
        why: String,
        /// Where it is edited.
        hint: String,
    },
    /// A column asked for by name that the data does not have.
    #[error("{message}{}", hint.as_ref().map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
    UnknownColumn {
        /// What, naming the column.
        message: String,
        /// Did you mean, or what there is.
        hint: Option<String>,
    },
    /// A command was used wrongly (a name that exists, a missing option).
    #[error("{message}{}", hint.as_ref().map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
    Usage {
        /// What, naming the value.
        message: String,
        /// How to fix it.
        hint: Option<String>,
    },
    /// Imported ids that are not entities.
    #[error(
        "{}: {count} id(s) are not entities: {}{}\n  hint: fix the file, or pass --unknown drop (leave them out) or --unknown keep (keep them; runs report them)",
        file.display(),
        sample.join(", "),
        if *count > sample.len() as u64 { ", ..." } else { "" }
    )]
    UnknownIds {
        /// The imported file.
        file: PathBuf,
        /// How many.
        count: u64,
        /// The first few, sorted.
        sample: Vec<String>,
    },
    /// A data file the project names is not there.
    #[error("no file {path} (named at {declared})\n  hint: {hint}")]
    MissingFile {
        /// The path, from where the user stands.
        path: String,
        /// `segmenta.toml:LINE:COLUMN` of the name.
        declared: String,
        /// Did you mean, or how paths are read.
        hint: String,
    },
    /// A file of the project could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing the demo project failed.
    #[error(transparent)]
    Demo(#[from] segmenta_demo::Error),
    /// A `--features` name that is not a column rules can read.
    #[error("unknown feature `{name}`{}", hint.as_ref().map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
    UnknownFeature {
        /// The name given.
        name: String,
        /// Did you mean, or what there is.
        hint: Option<String>,
    },
    /// A feature of a type segment discovery cannot cluster on or write rules for.
    #[error(
        "feature `{name}` is {ty}: discovery clusters numbers (int, float) and categories (string)\n  hint: {hint}"
    )]
    UnsupportedFeature {
        /// The feature.
        name: String,
        /// Its type.
        ty: segmenta_core::ValueType,
        /// What to do instead.
        hint: String,
    },
    /// Segment discovery refused its input or options.
    #[error("{source}{}", hint.as_ref().map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
    Discovery {
        /// The cause, with its own stable code.
        #[source]
        source: segmenta_ml::cluster::Error,
        /// How to fix it.
        hint: Option<String>,
    },
    /// The CLV models refused the data or options (their messages say how to fix it).
    #[error("[clv]: {0}")]
    Clv(#[source] segmenta_ml::clv::Error),
    /// The churn model refused the data or options.
    #[error("[churn]: {source}{}", hint.as_ref().map(|h| format!("\n  hint: {h}")).unwrap_or_default())]
    Churn {
        /// The cause, with its own stable code.
        #[source]
        source: segmenta_ml::churn::Error,
        /// How to fix it.
        hint: Option<String>,
    },
    /// Keys that match no entity, above `[project] max_unknown_share`, with `--strict` or
    /// `[project] strict`.
    #[error(
        "{}\n  (an error because of --strict or [project] strict; without it these are warnings)",
        render_warnings(warnings)
    )]
    UnknownKeys {
        /// What was found, as the warnings would have said it.
        warnings: Vec<segmenta_store::formats::Warning>,
    },
    /// The caller cancelled the work; nothing was written.
    #[error("cancelled")]
    Cancelled,
    /// Validation found several problems (each is one of the other variants).
    #[error("{}", render_many(.0))]
    Invalid(Vec<Error>),
    /// A broken invariant.
    #[error("internal error: {0}")]
    Internal(String),
}

/// One problem of an error, as fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProblemDetail {
    /// The stable code (a rule diagnostic's own, such as `unknown_attribute`).
    pub code: &'static str,
    /// What is wrong, without position or hint.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// Where the problem is: `segment `x``, `the rule`, or the project file.
    pub source: String,
    /// 1-based line (of the project file, or of the rule text when it is not from the file).
    pub line: Option<usize>,
    /// 1-based column, in characters.
    pub column: Option<usize>,
    /// The problem's span in characters of the rule text (start, end), for rule problems.
    pub span: Option<(usize, usize)>,
}

/// An error as fields, for callers that show them apart (the server's JSON bodies): code,
/// message, hint, position, and every problem when there are several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorDetail {
    /// The stable code.
    pub code: &'static str,
    /// Who has to act.
    pub kind: ErrorKind,
    /// What is wrong (the first problem's message when there are several).
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// 1-based line of the (first) problem, when it has a position.
    pub line: Option<usize>,
    /// 1-based column, in characters.
    pub column: Option<usize>,
    /// Every problem, for errors made of several (rules, configuration, validation).
    pub problems: Vec<ProblemDetail>,
}

impl Error {
    /// The error as fields.
    pub fn detail(&self) -> ErrorDetail {
        let problems = self.problems();
        let (message, hint, line, column) = match problems.first() {
            Some(first) => {
                let message = if first.source.is_empty() || problems.len() > 1 {
                    first.message.clone()
                } else {
                    format!("{} in {}", first.message, first.source)
                };
                (message, first.hint.clone(), first.line, first.column)
            }
            None => {
                let (line, column) = match self {
                    Error::OutOfRange { position: Some((line, column)), .. } => (Some(*line), Some(*column)),
                    _ => (None, None),
                };
                let text = self.to_string();
                let (message, hint) = match text.split_once("\n  hint: ") {
                    Some((message, hint)) => (message.to_string(), Some(hint.to_string())),
                    None => (text, None),
                };
                (message, hint, line, column)
            }
        };
        ErrorDetail { code: self.code(), kind: self.kind(), message, hint, line, column, problems }
    }

    fn problems(&self) -> Vec<ProblemDetail> {
        match self {
            Error::Rules { problems, .. } => problems
                .iter()
                .map(|p| {
                    let (line, column) = p.file_position.unwrap_or_else(|| p.diagnostic.line_column(&p.text));
                    ProblemDetail {
                        code: p.diagnostic.code,
                        message: p.diagnostic.message.clone(),
                        hint: p.diagnostic.hint.clone(),
                        source: p.source.clone(),
                        line: Some(line),
                        column: Some(column),
                        span: Some(p.diagnostic.char_span(&p.text)),
                    }
                })
                .collect(),
            Error::Config { errors, path } => errors
                .iter()
                .map(|e| ProblemDetail {
                    code: "invalid_config",
                    message: e.message.clone(),
                    hint: e.hint.clone(),
                    source: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                    line: e.line,
                    column: e.column,
                    span: None,
                })
                .collect(),
            Error::Invalid(errors) => errors
                .iter()
                .flat_map(|e| {
                    let nested = e.problems();
                    if !nested.is_empty() {
                        return nested;
                    }
                    let detail = e.detail();
                    vec![ProblemDetail {
                        code: detail.code,
                        message: detail.message,
                        hint: detail.hint,
                        source: String::new(),
                        line: detail.line,
                        column: detail.column,
                        span: None,
                    }]
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// One error for a list of problems: the problem itself when there is one.
    pub(crate) fn from_problems(mut problems: Vec<Error>) -> Option<Error> {
        match problems.len() {
            0 => None,
            1 => problems.pop(),
            _ => Some(Error::Invalid(problems)),
        }
    }
}

/// Warnings as lines of text with their hints (an error's text, the CLI's warning lines).
pub fn render_warnings(warnings: &[segmenta_store::formats::Warning]) -> String {
    let lines: Vec<String> = warnings.iter().map(|w| format!("{}\n  hint: {}", w.message, w.hint)).collect();
    lines.join("\n")
}

fn render_many(problems: &[Error]) -> String {
    let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
    format!("{} problems:\n{}", problems.len(), rendered.join("\n"))
}

fn render_query(error: &segmenta_query::Error) -> String {
    match error.hint() {
        Some(hint) => format!("{error}\n  hint: {hint}"),
        None => error.to_string(),
    }
}

fn render_config(path: &std::path::Path, errors: &[ConfigError]) -> String {
    let lines: Vec<String> = errors
        .iter()
        .map(|e| match (e.line, e.column) {
            (Some(l), Some(c)) => format!("{}:{l}:{c}: {}", path.display(), strip_position(e)),
            _ => format!("{}: {e}", path.display()),
        })
        .collect();
    lines.join("\n")
}

fn strip_position(e: &ConfigError) -> String {
    let mut text = e.message.clone();
    if let Some(hint) = &e.hint {
        text.push_str(&format!("\n  hint: {hint}"));
    }
    text
}

fn render_rules(path: &std::path::Path, problems: &[RuleProblem]) -> String {
    let parts: Vec<String> = problems
        .iter()
        .map(|p| {
            let position = match p.file_position {
                Some((line, column)) => format!("{}:{line}:{column}: ", path.display()),
                None => format!("{}: ", path.display()),
            };
            format!("{position}{}", p.diagnostic.render(&p.source, &p.text))
        })
        .collect();
    parts.join("\n")
}

impl ErrorCode for Error {
    fn code(&self) -> &'static str {
        match self {
            Error::ProjectNotFound { .. } => "project_not_found",
            Error::Config { .. } => "invalid_config",
            Error::Rules { problems, .. } => problems.first().map_or("invalid_rule", |p| p.diagnostic.code),
            Error::Schema { .. } => "schema_mismatch",
            Error::Query(segmenta_query::Error::BadInput { .. }) => "bad_input",
            Error::Query(segmenta_query::Error::Io { .. }) => "io",
            Error::Query(segmenta_query::Error::Cancelled) | Error::Cancelled => "cancelled",
            Error::Query(segmenta_query::Error::OutOfRange { .. }) => "value_out_of_range",
            Error::Query(_) => "internal",
            Error::Data { .. } => "bad_input",
            Error::OutOfRange { .. } => "value_out_of_range",
            Error::Store(segmenta_store::Error::NoRun(_)) => "no_run",
            Error::Store(_) => "store",
            Error::AsOf { .. } => "invalid_as_of",
            Error::UnknownSegment { .. } => "unknown_segment",
            Error::UnknownSnapshot { .. } => "unknown_snapshot",
            Error::UnknownScheme { .. } => "unknown_scheme",
            Error::SchemeNotInRun { .. } => "scheme_not_in_run",
            Error::SegmentNotInRun { .. } => "segment_not_in_run",
            Error::UnknownColumn { .. } => "unknown_column",
            Error::UnknownToken { .. } => "unknown_token",
            Error::NotEditable { .. } => "not_editable",
            Error::RunInProgress { .. } => "run_in_progress",
            Error::NoEvents => "no_events",
            Error::UnknownRun { .. } => "unknown_run",
            Error::UnknownEntity { .. } => "unknown_entity",
            Error::Usage { .. } => "usage",
            Error::UnknownIds { .. } => "unknown_ids",
            Error::Io { .. } => "io",
            Error::MissingFile { .. } => "file_not_found",
            Error::Demo(segmenta_demo::Error::Options(_)) => "usage",
            Error::Demo(_) => "io",
            Error::UnknownFeature { .. } => "unknown_feature",
            Error::UnsupportedFeature { .. } => "unsupported_feature",
            Error::Discovery { source, .. } => source.code(),
            Error::Clv(source) => source.code(),
            Error::Churn { source, .. } => source.code(),
            Error::Invalid(problems) => problems.first().map_or("invalid_project", |p| p.code()),
            Error::UnknownKeys { warnings } => match warnings.first().map(|w| w.code.as_str()) {
                Some("unknown_parent_keys") => "unknown_parent_keys",
                Some("unknown_hierarchy_parents") => "unknown_hierarchy_parents",
                _ => "unknown_event_keys",
            },
            Error::Internal(_) => "internal",
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Error::ProjectNotFound { .. }
            | Error::Config { .. }
            | Error::Rules { .. }
            | Error::Schema { .. }
            | Error::AsOf { .. }
            | Error::UnknownSegment { .. }
            | Error::UnknownSnapshot { .. }
            | Error::UnknownScheme { .. }
            | Error::SchemeNotInRun { .. }
            | Error::SegmentNotInRun { .. }
            | Error::UnknownColumn { .. }
            | Error::UnknownToken { .. }
            | Error::UnknownEntity { .. }
            | Error::NotEditable { .. }
            | Error::RunInProgress { .. }
            | Error::NoEvents
            | Error::UnknownRun { .. }
            | Error::Usage { .. }
            | Error::UnknownIds { .. }
            | Error::UnknownKeys { .. }
            | Error::MissingFile { .. }
            | Error::UnknownFeature { .. }
            | Error::UnsupportedFeature { .. }
            // Every discovery error is about the features or options the user chose.
            | Error::Discovery { .. }
            // The models' errors are about the data and options the user chose (including
            // non-convergence, which a penalty or other features fix).
            | Error::Clv(_)
            | Error::Churn { .. }
            | Error::Demo(segmenta_demo::Error::Options(_))
            | Error::Query(segmenta_query::Error::BadInput { .. })
            | Error::Query(segmenta_query::Error::OutOfRange { .. })
            | Error::OutOfRange { .. }
            | Error::Data { .. }
            | Error::Store(segmenta_store::Error::NoRun(_))
            // Whoever cancelled asked for it.
            | Error::Cancelled
            | Error::Query(segmenta_query::Error::Cancelled) => ErrorKind::User,
            Error::Invalid(problems) => problems.first().map_or(ErrorKind::User, ErrorCode::kind),
            // A data file that is missing is the user's to fix, like a bad row.
            Error::Query(segmenta_query::Error::Io { source, .. }) | Error::Io { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                ErrorKind::User
            }
            Error::Query(segmenta_query::Error::Io { .. })
            | Error::Io { .. }
            | Error::Store(_)
            | Error::Demo(segmenta_demo::Error::Io { .. } | segmenta_demo::Error::Parquet { .. }) => {
                ErrorKind::Environment
            }
            Error::Query(_) | Error::Internal(_) | Error::Demo(_) => ErrorKind::Internal,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
