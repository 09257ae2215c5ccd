//! Errors of ingest and evaluation.

use datafusion::error::DataFusionError;

/// Where in an input file a problem is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// The file, as the user named it (relative to the project folder).
    pub file: String,
    /// 1-based line (CSV, JSON Lines) or row number (Parquet), when known.
    pub line: Option<u64>,
    /// The column's name, when known.
    pub column: Option<String>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(column) = &self.column {
            write!(f, ": column `{column}`")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong reading data and evaluating traits and segments.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input data: the user must fix the file (or use `--on-bad-rows reject`).
    #[error("{}{message}", if location.file.is_empty() { String::new() } else { format!("{location}: ") })]
    BadInput {
        /// Where.
        location: Location,
        /// What, lowercase, naming the offending value.
        message: String,
        /// How to fix it.
        hint: Option<String>,
    },
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// DataFusion failed while executing a plan.
    #[error("query engine error: {0}")]
    DataFusion(#[from] DataFusionError),
    /// Arrow failed while building or converting data.
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A model column extension failed (its error says why).
    #[error("{0}")]
    Extension(ExtensionError),
    /// The caller cancelled the evaluation; nothing was written.
    #[error("cancelled")]
    Cancelled,
    /// A broken invariant: a bug in segmenta.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A bad-input error.
    pub fn bad_input(location: Location, message: impl Into<String>, hint: Option<String>) -> Error {
        Error::BadInput { location, message: message.into(), hint }
    }

    /// The hint, if any.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::BadInput { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }
}

/// The error of a table extension (a model's columns), passed through to the caller.
pub type ExtensionError = Box<dyn std::error::Error + Send + Sync>;

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
