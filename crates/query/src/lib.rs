//! segmenta on Apache DataFusion: reading entity and event files, computing every trait in one
//! grouped aggregation, and evaluating segment rules as Arrow boolean columns.
#![warn(missing_docs)]

mod accumulator;
mod arith;
mod error;
pub mod ingest;

pub use error::{Error, ExtensionError, Location, Owner, Result};
pub mod evaluate;
mod hierarchy;
mod live;
pub mod lower;
mod percentile;
mod preview;
pub mod request;
mod scan;
mod vector;

pub use evaluate::{evaluate, scan_events};
pub use live::{LiveScan, RowIndex, RowsEvaluated, Touched, evaluate_rows, scan_live};
pub use preview::{PreviewCount, preview_file};
pub use request::ScannedEvents;
pub use request::{
    Aggregate, DayPart, DaysSpec, Derived, ENTITY_ID, EntityData, EvalOutput, EvalRequest, EventCounts,
    EventKeys, EventsInput, EventsRequest, ParentLink, PointsSpec, PreviousMembers, RfmColumns,
    StaticListReport, Table, TableExtension, TraitSource, TraitSpec,
};
pub use segmenta_core::hidden::segment_flag;
