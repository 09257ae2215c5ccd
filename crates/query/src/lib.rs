//! segmenta on Apache DataFusion: reading entity and event files, computing every trait in one
//! grouped aggregation, and evaluating segment rules as Arrow boolean columns.
#![warn(missing_docs)]

mod error;
pub mod ingest;

pub use error::{Error, Location, Result};
pub mod evaluate;
pub mod lower;
mod preview;
mod scan;
mod vector;

pub use evaluate::{
    Aggregate, DayPart, DaysSpec, Derived, EntityData, EvalOutput, EvalRequest, EventCounts, EventsInput,
    EventsRequest, ExtensionError, ParentLink, RfmColumns, StaticListReport, Table, TableExtension,
    TraitSource, TraitSpec, evaluate, segment_flag,
};
pub use lower::PointsSpec;
pub use preview::{PreviewCount, preview_file};
