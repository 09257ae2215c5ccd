//! The catalogs names resolve against: the event columns (for traits and conditions), a child
//! entity's columns (for rollups) and the project entity's attributes, traits, parent
//! columns, RFM values, model traits, scores and schemes (for rules).

use std::collections::HashMap;

use segmenta_core::ValueType;
use segmenta_query::ingest::TableSchema;
use segmenta_rules::AttributeCatalog;
use segmenta_rules::ast::{ColumnInfo, ColumnSource, Ident};

/// A catalog over a fixed set of columns (and, for rules, segments).
#[derive(Debug, Default, Clone)]
pub(crate) struct Catalog {
    columns: HashMap<String, ColumnInfo>,
    order: Vec<String>,
    /// The segments rules may reference with `in_segment`.
    pub(crate) segments: Vec<String>,
    /// Whether `in_segment` is allowed (rules) or not (trait and event conditions).
    pub(crate) allows_segments: bool,
}

impl Catalog {
    /// The catalog of rules: empty, and `in_segment` allowed.
    pub(crate) fn for_rules() -> Catalog {
        Catalog { allows_segments: true, ..Catalog::default() }
    }

    /// Adds a name resolving to `column`.
    pub(crate) fn add(&mut self, name: String, column: String, ty: ValueType, source: ColumnSource) {
        if !self.columns.contains_key(&name) {
            self.order.push(name.clone());
        }
        self.columns.insert(name, ColumnInfo { column, ty, source });
    }

    /// Adds every column of a schema under its own name.
    pub(crate) fn add_schema(&mut self, schema: &TableSchema, source: ColumnSource) {
        for (name, ty) in &schema.columns {
            self.add(name.clone(), name.clone(), *ty, source);
        }
    }
}

impl AttributeCatalog for Catalog {
    fn lookup(&self, ident: &Ident) -> Option<ColumnInfo> {
        let key = match &ident.qualifier {
            Some(q) => format!("{}.{}", q.to_lowercase(), ident.name),
            None => ident.name.clone(),
        };
        self.columns.get(&key).cloned()
    }

    fn names(&self) -> Vec<String> {
        self.order.clone()
    }

    fn has_segment(&self, name: &str) -> bool {
        self.segments.iter().any(|s| s == name)
    }

    fn segment_names(&self) -> Vec<String> {
        self.segments.clone()
    }

    fn allows_segments(&self) -> bool {
        self.allows_segments
    }
}
