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
    /// A value a rule, trait or score computes is out of range (an int past 64 bits, a float
    /// past the largest): the user's expression or data to change.
    #[error("{} `{}`: {message}", owner.kind, owner.name)]
    OutOfRange {
        /// What computes it.
        owner: Owner,
        /// What, naming the expression: "`a * b` is too large for a 64-bit integer".
        message: String,
        /// How to avoid it.
        hint: String,
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
    DataFusion(DataFusionError),
    /// Arrow failed while building or converting data.
    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A model column extension failed (its error says why).
    #[error("{0}")]
    Extension(ExtensionError),
    /// The caller cancelled the evaluation; nothing was written.
    #[error("cancelled")]
    Cancelled,
    /// An evaluation of some rows only (`crate::evaluate_rows`) met a value that depends on
    /// rows it does not hold (a fit or quintiles whose inputs changed): every row must be
    /// evaluated. `evaluate_rows` answers it as `None`; no other function returns it.
    #[error("every row must be evaluated: {0}")]
    EveryRow(String),
    /// A broken invariant: a bug in segmenta.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A bad-input error.
    pub fn bad_input(location: Location, message: impl Into<String>, hint: Option<String>) -> Error {
        Error::BadInput { location, message: message.into(), hint }
    }

    /// A value out of range raised without its owner (a bad-input error of no file), now
    /// named after `owner`; other errors as they are.
    pub(crate) fn owned(self, owner: &Owner) -> Error {
        match self {
            Error::BadInput { location, message, hint }
                if location.file.is_empty() && !owner.kind.is_empty() =>
            {
                Error::OutOfRange { owner: owner.clone(), message, hint: hint.unwrap_or_default() }
            }
            other => other,
        }
    }

    /// The hint, if any.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::BadInput { hint, .. } => hint.as_deref(),
            Error::OutOfRange { hint, .. } => Some(hint),
            _ => None,
        }
    }
}

/// What computes a value: a `segment`, `trait`, `score` or `scheme` and its name, for errors.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Owner {
    /// `segment`, `trait`, `score` or `scheme`; empty when unknown.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
}

impl Owner {
    /// The owner `kind` `name`.
    pub fn new(kind: &'static str, name: &str) -> Owner {
        Owner { kind, name: name.to_string() }
    }

    /// The trait `name`, or no one for a hidden aggregate (an RFM value, a score's points).
    pub(crate) fn of_trait(name: &str) -> Owner {
        if name.is_empty() || segmenta_core::hidden::is_reserved(name) {
            Owner::default()
        } else {
            Owner::new("trait", name)
        }
    }
}

impl From<DataFusionError> for Error {
    /// A DataFusion error, or the error a segmenta function raised inside the plan (a value
    /// out of range), found among its sources.
    fn from(error: DataFusionError) -> Error {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
        while let Some(current) = source {
            match current.downcast_ref::<Error>() {
                Some(Error::BadInput { location, message, hint }) => {
                    return Error::BadInput {
                        location: location.clone(),
                        message: message.clone(),
                        hint: hint.clone(),
                    };
                }
                Some(Error::OutOfRange { owner, message, hint }) => {
                    return Error::OutOfRange {
                        owner: owner.clone(),
                        message: message.clone(),
                        hint: hint.clone(),
                    };
                }
                _ => {}
            }
            source = current.source();
        }
        Error::DataFusion(error)
    }
}

/// The error of a table extension (a model's columns), passed through to the caller.
pub type ExtensionError = Box<dyn std::error::Error + Send + Sync>;

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
