//! The segmenta data model shared by every other crate: value types of attributes and traits,
//! time windows, and the project configuration read from `segmenta.toml`.
//!
//! This crate does no I/O: configuration is parsed from a string the caller has read.
#![warn(missing_docs)]

mod cancel;
pub mod config;
pub mod hidden;
pub mod rfm;
pub mod suggest;
mod types;
mod within;

pub use cancel::Cancel;
pub use types::{MICROS_PER_DAY, MICROS_PER_HOUR, TimeUnit, ValueType, WINDOW_HINT, Window, WindowUnit};
pub use within::{Bounds, MAX_CALENDAR_YEARS, WITHIN_HINT, Within};
