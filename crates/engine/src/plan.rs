//! The evaluation plan ([`Plan`]): what validation produces and every evaluation executes,
//! and how a model command or a cutoff evaluation narrows it to the aggregates it needs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use segmenta_core::ValueType;
use segmenta_core::config::RFM_TRAITS;
use segmenta_core::hidden;
use segmenta_query::ingest::SourceSpec;
use segmenta_query::{Derived, RfmColumns, TraitSource, TraitSpec};

use crate::as_of::AsOf;
use crate::catalog::Catalog;
use crate::model::PlannedModel;
use crate::project::Project;
use crate::sources::{PlannedEntity, PlannedEvents, SegmentInfo};

/// The evaluation plan of a project: its traits, scores, schemes and rules resolved against the
/// data files' schemas, the entities and events to read, the aggregates to compute and the
/// derived columns in dependency order. [`crate::validate`] makes it; a run executes it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The project.
    pub project: Project,
    /// The entity that segments hold.
    pub entity: String,
    /// The entities the run reads, the project's entity first.
    pub entities: Vec<PlannedEntity>,
    /// The events, if any.
    pub events: Option<PlannedEvents>,
    /// Per-entity aggregates (traits, rollups, RFM values, score points).
    pub traits: Vec<TraitSpec>,
    /// Parent columns rules read: (column of the parent's table, evaluation column).
    pub parent_columns: Vec<(String, String)>,
    /// The RFM value columns, when `[rfm]` is declared.
    pub rfm: Option<RfmColumns>,
    /// Derived columns in dependency order; static lists carry no ids yet (the run reads them).
    pub derived: Vec<Derived>,
    /// The predictive models declared (`[clv]`, `[churn]`), in planning order.
    pub(crate) models: Vec<Arc<dyn PlannedModel>>,
    /// Static list files by segment.
    pub static_lists: Vec<(String, SourceSpec)>,
    /// The columns of `traits.parquet` after `entity_id`: the entity's traits, RFM values and
    /// scores, scores and schemes.
    pub outputs: Vec<(String, ValueType)>,
    /// Every segment in output order: rule and static segments, scheme tiers, RFM segments.
    pub segments: Vec<String>,
    /// What kind each segment is, its macro segment and description (for summaries).
    pub(crate) segment_infos: HashMap<String, SegmentInfo>,
    /// `[project] as_of`, if given.
    pub as_of: Option<AsOf>,
    /// What rules of the project's entity may read (for previews of ad-hoc rules).
    pub(crate) rules_catalog: Catalog,
}

/// What [`Plan::narrowed_traits`] keeps.
pub(crate) struct Narrowed {
    /// The aggregates.
    pub traits: Vec<TraitSpec>,
    /// RFM, when one of its values is kept.
    pub rfm: Option<RfmColumns>,
    /// The parent's columns that are still computed.
    pub parent_columns: Vec<(String, String)>,
}

impl Plan {
    /// The entity the run's segments hold.
    pub fn entity(&self) -> &PlannedEntity {
        &self.entities[0]
    }

    /// The aggregates an evaluation needs to compute the project entity's columns named in
    /// `keep` (trait names, or evaluation-table columns of the parent's traits), with what they
    /// read: every aggregate of a child entity a kept rollup reads, of an entity a kept
    /// hierarchy rollup reads, and of the parent when one of its columns is kept; RFM only when
    /// one of its values is kept. Model commands and churn's cutoff evaluations compute no more.
    pub(crate) fn narrowed_traits(&self, keep: &HashSet<String>) -> Narrowed {
        let rfm = self.rfm.clone().filter(|_| RFM_TRAITS.iter().any(|t| keep.contains(*t)));
        let raw_rfm: &[&str] = if rfm.is_some() { &RFM_TRAITS[..3] } else { &[] };
        let own = |s: &TraitSpec| {
            s.entity == self.entity && (keep.contains(&s.name) || raw_rfm.contains(&s.name.as_str()))
        };
        let mut entities: HashSet<String> = HashSet::new();
        if keep.iter().any(|k| hidden::is_parent_column(k))
            && let Some(link) = &self.entity().parent
        {
            entities.insert(link.entity.clone());
        }
        // Entities whose every aggregate is kept, to a fixed point.
        loop {
            let read: Vec<String> = self
                .traits
                .iter()
                .filter(|s| own(s) || entities.contains(&s.entity))
                .filter_map(|spec| match &spec.source {
                    TraitSource::Rollup { child } => Some(child.clone()),
                    // A derived trait reads other traits of its entity: all of them are kept.
                    TraitSource::Hierarchy { .. } | TraitSource::Derived => Some(spec.entity.clone()),
                    TraitSource::Events => None,
                })
                .filter(|e| !entities.contains(e))
                .collect();
            if read.is_empty() {
                break;
            }
            entities.extend(read);
        }
        let traits = self.traits.iter().filter(|s| own(s) || entities.contains(&s.entity)).cloned().collect();
        // The parent's attributes always join; its traits only when they are computed.
        let parent = self.entity().parent.as_ref().map(|link| link.entity.as_str());
        let parent_traits: HashSet<&str> = self
            .traits
            .iter()
            .filter(|s| Some(s.entity.as_str()) == parent)
            .map(|s| s.name.as_str())
            .collect();
        let parent_kept = parent.is_some_and(|p| entities.contains(p));
        let parent_columns = self
            .parent_columns
            .iter()
            .filter(|(name, _)| parent_kept || !parent_traits.contains(name.as_str()))
            .cloned()
            .collect();
        Narrowed { traits, rfm, parent_columns }
    }

    /// The planned model of `section`, if declared.
    pub(crate) fn model(&self, section: &str) -> Option<&Arc<dyn PlannedModel>> {
        self.models.iter().find(|m| m.section() == section)
    }

    /// This plan narrowed for a model command or a cutoff evaluation: only the aggregates of
    /// `keep` (see [`Plan::narrowed_traits`]), no derived columns, segments or static lists,
    /// outputs filtered by `output`.
    pub(crate) fn narrowed(&self, keep: &HashSet<String>, output: impl Fn(&str) -> bool) -> Plan {
        let narrowed = self.narrowed_traits(keep);
        Plan {
            traits: narrowed.traits,
            rfm: narrowed.rfm,
            parent_columns: narrowed.parent_columns,
            derived: Vec::new(),
            segments: Vec::new(),
            static_lists: Vec::new(),
            outputs: self.outputs.iter().filter(|(name, _)| output(name)).cloned().collect(),
            ..self.clone()
        }
    }
}
