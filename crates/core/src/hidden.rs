//! The names of the hidden columns segmenta adds to its evaluation tables: keys of joins,
//! internal aggregates (score points, purchase-day facts, churn counts), model flags, segment
//! flags and the parent's columns. They all start with [`PREFIX`], which user columns, traits
//! and scores may not use (validation reports such a name as a located error), so a hidden
//! column never collides with a column of the user's data. This module is the only place that
//! spells them: `cargo xtask tidy` checks that no other source file has a `__segmenta` literal.

/// The prefix of every hidden column.
pub const PREFIX: &str = "__segmenta";

/// True when `name` is reserved for hidden columns.
pub fn is_reserved(name: &str) -> bool {
    name.starts_with(PREFIX)
}

/// The entity id (as text) in stage-2 tables, which table extensions read.
pub const ENTITY_ID: &str = "__segmenta_entity_id";
/// The key of a per-key aggregate before it joins the entity rows.
pub const KEY: &str = "__segmenta_key";
/// An entity key cast to text, for joins of keys of different types.
pub const TEXT_KEY: &str = "__segmenta_text_key";
/// The ancestor of a (ancestor, descendant) hierarchy pair.
pub const ANCESTOR: &str = "__segmenta_ancestor";
/// The descendant of a (ancestor, descendant) hierarchy pair.
pub const DESCENDANT: &str = "__segmenta_descendant";
/// An entity's own key as text, in hierarchy joins.
pub const SELF_KEY: &str = "__segmenta_self_key";
/// The parent's key as text, in the parent join.
pub const PARENT_KEY: &str = "__segmenta_parent_key";
/// The child's link to its parent as text, in the parent join.
pub const CHILD_KEY: &str = "__segmenta_child_key";

/// The prefix under which the parent's attributes and traits appear in the evaluation table.
pub const PARENT_PREFIX: &str = "__segmenta_parent__";

/// The evaluation column of the parent's attribute or trait `name`.
pub fn parent_column(name: &str) -> String {
    format!("{PARENT_PREFIX}{name}")
}

/// True for the evaluation columns of the parent (which the preview table keeps).
pub fn is_parent_column(name: &str) -> bool {
    name.starts_with(PARENT_PREFIX)
}

/// The stage-1 column of the points of event line `line` of score number `score`.
pub fn points_column(score: usize, line: usize) -> String {
    format!("{PREFIX}_points_{score}_{line}")
}

/// The n-th intermediate aggregate of a DataFusion aggregation.
pub fn aggregate_column(n: usize) -> String {
    format!("{PREFIX}_agg_{n}")
}

/// The stage-3 column of the n-th rule segment.
pub fn segment_column(n: usize) -> String {
    format!("{PREFIX}_segment_{n}")
}

/// The stage-2 column of the n-th static list.
pub fn static_column(n: usize) -> String {
    format!("{PREFIX}_static_{n}")
}

/// The stage-2 column of the n-th movement: membership of its `from` (`end` 0) or `to`
/// (`end` 1) segment at the previous snapshot.
pub fn movement_column(n: usize, end: usize) -> String {
    format!("{PREFIX}_movement_{n}_{end}")
}

/// The column of the preview table holding a segment's memberships.
pub fn segment_flag(segment: &str) -> String {
    format!("{PREFIX}_segment__{segment}")
}

/// CLV: the number of distinct purchase days.
pub const CLV_DAYS: &str = "__segmenta_clv_days";
/// CLV: the first purchase day.
pub const CLV_FIRST_DAY: &str = "__segmenta_clv_first_day";
/// CLV: the last purchase day.
pub const CLV_LAST_DAY: &str = "__segmenta_clv_last_day";
/// CLV: the total amount purchased.
pub const CLV_TOTAL: &str = "__segmenta_clv_total";
/// CLV: the amount purchased on the first purchase day.
pub const CLV_FIRST_DAY_TOTAL: &str = "__segmenta_clv_first_day_total";
/// CLV: the flag of the diamonds in the rough.
pub const CLV_DIAMOND: &str = "__segmenta_clv_diamond";

/// Churn: churn events within the window before the evaluation instant.
pub const CHURN_LABEL: &str = "__segmenta_churn_label";
/// Churn: churn events before the evaluation instant.
pub const CHURN_BEFORE: &str = "__segmenta_churn_before";
/// Churn: events before the evaluation instant.
pub const CHURN_SEEN: &str = "__segmenta_churn_seen";
/// Churn by inactivity: activity events within the inactivity period before the evaluation
/// instant.
pub const CHURN_ACTIVE: &str = "__segmenta_churn_active";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hidden_name_is_reserved() {
        let names = [
            ENTITY_ID,
            KEY,
            TEXT_KEY,
            ANCESTOR,
            DESCENDANT,
            SELF_KEY,
            PARENT_KEY,
            CHILD_KEY,
            CLV_DAYS,
            CLV_FIRST_DAY,
            CLV_LAST_DAY,
            CLV_TOTAL,
            CLV_FIRST_DAY_TOTAL,
            CLV_DIAMOND,
            CHURN_LABEL,
            CHURN_BEFORE,
            CHURN_SEEN,
            CHURN_ACTIVE,
        ];
        for name in names {
            assert!(is_reserved(name), "{name}");
        }
        for made in [parent_column("x"), points_column(1, 2), segment_flag("a.b"), aggregate_column(3)] {
            assert!(is_reserved(&made), "{made}");
        }
        assert!(is_parent_column(&parent_column("arr")));
        assert!(!is_reserved("arr") && !is_reserved("_segmenta"));
    }
}
