//! Cluster rules: a shallow decision tree fitted to "in the cluster or not", turned into a rule
//! in segmenta's rule language, and the rule's fidelity under SQL three-valued logic.
//!
//! **One tree per cluster (one-vs-rest), not one multiclass tree.** Each rule becomes a
//! segment of its own and its fidelity is measured for its cluster alone, so each tree
//! optimises exactly that; a multiclass tree of depth 3 has at most 8 leaves to share among up
//! to 10 clusters, leaving some without a rule. One-vs-rest also makes categorical splits
//! exact: for a binary target, sorting the categories by their positive rate and splitting that
//! order is optimal for Gini impurity (Breiman et al.). Rules of different clusters may
//! overlap.
//!
//! **Tree.** CART with Gini impurity on the **original** values (thresholds in original units,
//! missing values left missing), grown level by level to `max_depth`; every leaf keeps at least
//! `min_leaf` entities; a node splits only if the split lowers the impurity. Numeric splits are
//! `x <= t` between two neighbouring values `low < high` of the node, with `t` the number of
//! shortest text in `[low, high)` (nearest the midpoint among those; see [`split_threshold`]),
//! so the rule splits the data exactly as the tree did; the entities missing `x` go to
//! whichever side is better (or are split off alone: `x is null`).
//! Categorical splits send a set of categories (the missing category included) to each side.
//! Sibling leaves with the same prediction are merged.
//!
//! **Rule.** The paths to the leaves where the cluster is the majority, OR-ed; within a path,
//! the conditions on one feature are merged (`x > 3 and x <= 10`). A side that takes the
//! missing values says so (`(x is null or x <= 3)`), because a comparison with NULL is unknown
//! and an unknown row is not a member: the rule is then TRUE exactly for the entities in the
//! selected leaves. When no leaf has a majority (a small cluster), the leaf with the highest
//! share of the cluster is used.
//!
//! linfa-trees is not used: it has no categorical splits and no missing values, and its
//! thresholds are not in the original units of untransformed data.

use std::fmt::Write as _;

use rayon::prelude::*;
use segmenta_rules::eval::{and, or};

use super::FeatureColumn;

/// Settings of the rule trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeOptions {
    /// Maximum depth (number of conditions on a path before merging).
    pub max_depth: usize,
    /// Minimum entities per leaf.
    pub min_leaf: usize,
}

impl TreeOptions {
    /// Depth `max_depth` and leaves of at least 1% of the `n` entities (at least one).
    pub fn for_entities(n: usize, max_depth: usize) -> Self {
        TreeOptions { max_depth, min_leaf: (n / 100).max(1) }
    }
}

/// A rule: an OR of paths, each an AND of conditions. No paths is FALSE; an empty path is TRUE.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The paths.
    pub paths: Vec<Vec<Condition>>,
}

/// A condition on one feature.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// Non-missing values in `(above, at_most]` when `values`, and missing values when `null`.
    Numeric {
        /// Position of the feature in the columns.
        column: usize,
        /// Feature name.
        name: String,
        /// Exclusive lower bound.
        above: Option<f64>,
        /// Inclusive upper bound.
        at_most: Option<f64>,
        /// Whether non-missing values (within the bounds) are accepted.
        values: bool,
        /// Whether missing values are accepted.
        null: bool,
    },
    /// Values in `allowed`, and missing values when `null`. `others` lists the other non-missing
    /// values seen in the data, so the rule can use the shorter of `in (...)` and `not in (...)`.
    Categorical {
        /// Position of the feature in the columns.
        column: usize,
        /// Feature name.
        name: String,
        /// Accepted values, sorted.
        allowed: Vec<String>,
        /// The other non-missing values of the data, sorted.
        others: Vec<String>,
        /// Whether missing values are accepted.
        null: bool,
    },
}

/// How well a rule matches a set of entities.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RuleQuality {
    /// Share of all entities on which "the rule is TRUE" and "in the set" agree.
    pub fidelity: f64,
    /// Share of the entities matching the rule that are in the set (1 if none match).
    pub precision: f64,
    /// Share of the set that matches the rule (1 if the set is empty).
    pub recall: f64,
    /// Entities matching the rule.
    pub matched: usize,
}

/// True when `name` must be backquoted in a rule (the rule language's own test).
pub use segmenta_rules::needs_backquotes;

/// A feature name as a rule references it: plain, backquoted (a backquote inside doubled), or
/// `parent.name` for a name of that form (a parent attribute).
pub fn quote_identifier(name: &str) -> String {
    let quote = |text: &str| {
        if needs_backquotes(text) { format!("`{}`", text.replace('`', "``")) } else { text.to_string() }
    };
    if let Some((qualifier, rest)) = name.split_once('.')
        && qualifier.eq_ignore_ascii_case("parent")
        && !rest.is_empty()
    {
        return format!("{qualifier}.{}", quote(rest));
    }
    quote(name)
}

/// A string literal: single quotes, a quote inside doubled.
pub fn quote_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A number literal that reads back as the same `f64`: an integer when the value is whole and
/// below 1e16 in magnitude (every such `f64` is an `i64` exactly), else Rust's shortest
/// round-trip form (`12.5`, `1e-7`, `1e16`).
pub fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e16 {
        format!("{}", value as i64)
    } else {
        format!("{value:?}")
    }
}

/// The threshold written for a split between neighbouring values `low < high` of a node.
///
/// The split is `x <= t`, so every `t` with `low <= t < high` sends the same entities each way
/// (`x <= low` left, `x >= high` right). Of those numbers this is the one whose text
/// ([`format_number`]) is shortest; among equally short ones, the one with the fewest
/// significant digits ([`significant_digits`]: `0` before `9`, `50000` before `50928`), then
/// the one nearest the midpoint (the larger on a tie): `3 | 4` gives `3`, `3 | 10` gives `7`, `45.97 | 45.99` gives `45.98`,
/// `61.800000000000004 | 61.870000000000005` (sums of prices) gives `61.84`. Two neighbouring
/// `f64`s leave no choice: the threshold is `low` itself.
///
/// Why a search and not a formula: the shortest text is not always the number with the fewest
/// significant digits (`99` is shorter than `100`), and a multiple of `0.1` computed in binary
/// (`0.1 * 3`) is not the number its short text reads as. Every candidate here is the `f64` a
/// decimal text reads as, so what is compared is what the rule will say.
pub fn split_threshold(low: f64, high: f64) -> f64 {
    if !(low < high && low.is_finite() && high.is_finite()) {
        return low;
    }
    let mut best = Shortest::new(low, high);
    best.offer(low);
    for digit in 0..=9 {
        best.offer(f64::from(digit));
    }
    if best.length == 1 {
        return best.value;
    }
    // No digit lies in [low, high), so no zero: the interval lies on one side of it. The
    // magnitudes of its numbers lie between `small` (0 when high = 0) and `large`.
    let negative = high <= 0.0;
    let (small, large) = if negative { (-high, -low) } else { (low, high) };
    let top = (large.log10().floor() as i32 + 1).min(309);
    // 17 digits below the smallest magnitude is every f64's shortest form; an interval that
    // reaches 0 holds -10^j for every j up to its end, so 20 decades below `large` suffice.
    let bottom = ((small.max(large * 1e-20).log10().floor() as i32).saturating_sub(17)).max(-345);
    // With every magnitude >= 1e-4 the texts are decimals: `I.F` with as many F digits as the
    // exponent says; below 1e-4 Rust writes exponents (`1e-5`, at least 4 characters).
    let decimal_only = small >= 1e-4;
    let sign = usize::from(negative);
    for exponent in (bottom..=top).rev() {
        if exponent < 0 {
            let fraction = (2 - exponent) as usize;
            let shortest_here = if decimal_only { fraction } else { fraction.min(4) } + sign;
            if best.length < shortest_here {
                break;
            }
        }
        let (Some(first), Some(after)) = (first_at_least(low, exponent), first_at_least(high, exponent))
        else {
            continue;
        };
        // The mantissas m with low <= m x 10^exponent < high, on the interval's side of zero.
        let (from, to) = if negative {
            (first.max(-MAX_MANTISSA), (after - 1).min(-1))
        } else {
            (first.max(1), (after - 1).min(MAX_MANTISSA))
        };
        if from > to {
            continue;
        }
        // Mantissas of one digit count have texts of one length: per count, the one nearest
        // the midpoint.
        let (least, most) =
            (from.unsigned_abs().min(to.unsigned_abs()), from.unsigned_abs().max(to.unsigned_abs()));
        let target = best.middle / 10f64.powi(exponent);
        for digits in digit_count(least)..=digit_count(most) {
            let (lowest, highest) = (10i64.pow(digits - 1), 10i64.pow(digits) - 1);
            let (class_from, class_to) = if negative {
                (from.max(-highest), to.min(-lowest))
            } else {
                (from.max(lowest), to.min(highest))
            };
            if class_from > class_to {
                continue;
            }
            let near = if target.is_finite() { target.floor().clamp(-2e17, 2e17) as i64 } else { class_from };
            for m in [near - 1, near, near + 1, near + 2, class_from, class_to] {
                best.offer(decimal(m.clamp(class_from, class_to), exponent));
            }
        }
    }
    best.value
}

/// The largest mantissa [`split_threshold`] considers: 17 digits write every `f64`.
const MAX_MANTISSA: i64 = 99_999_999_999_999_999;

/// `m x 10^exponent` as the `f64` its text reads as.
fn decimal(m: i64, exponent: i32) -> f64 {
    format!("{m}e{exponent}").parse().unwrap_or(f64::NAN)
}

/// The number of decimal digits of `n` (1 for 0).
fn digit_count(n: u64) -> u32 {
    n.checked_ilog10().map_or(1, |log| log + 1)
}

/// The smallest `m` with `decimal(m, exponent) >= target` (reading decimals is monotone in `m`),
/// or a stand-in beyond +-[`MAX_MANTISSA`] when it lies beyond; `None` when it cannot be found.
fn first_at_least(target: f64, exponent: i32) -> Option<i64> {
    let guess = target / 10f64.powi(exponent);
    if guess.is_nan() {
        return None;
    }
    if guess > 2e17 {
        return Some(MAX_MANTISSA + 2);
    }
    if guess < -2e17 {
        return Some(-MAX_MANTISSA - 2);
    }
    let guess = guess.round() as i64;
    let at_least = |m: i64| decimal(m, exponent) >= target;
    // The guess is off by the rounding of one division and of 10^exponent: a few units in the
    // last place of a 17-digit mantissa at most.
    let mut slack = (guess.unsigned_abs() / 10_000_000_000_000) as i64 + 2;
    for _ in 0..8 {
        let (below, above) = (guess - slack, guess + slack);
        if !at_least(below) && at_least(above) {
            let (mut below, mut above) = (below, above);
            while above - below > 1 {
                let middle = below + (above - below) / 2;
                if at_least(middle) {
                    above = middle;
                } else {
                    below = middle;
                }
            }
            return Some(above);
        }
        slack *= 4;
    }
    None
}

/// The significant digits of a number's text: `2820` has 3, `0.0055` 2, `1.5e-7` 2, and `0`
/// none (the roundest number of all: `arr <= 0` rather than `arr <= 9`).
pub fn significant_digits(text: &str) -> usize {
    let mantissa = text.split(['e', 'E']).next().unwrap_or(text);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    digits.trim_start_matches('0').trim_end_matches('0').len()
}

/// The best threshold offered so far (see [`split_threshold`]).
struct Shortest {
    low: f64,
    high: f64,
    middle: f64,
    value: f64,
    length: usize,
    digits: usize,
    distance: f64,
}

impl Shortest {
    fn new(low: f64, high: f64) -> Self {
        let middle = low / 2.0 + high / 2.0;
        let (length, digits, distance) = (usize::MAX, usize::MAX, f64::INFINITY);
        Shortest { low, high, middle, value: low, length, digits, distance }
    }

    /// Keeps `t` if it splits the same way and is better: shorter, or as short with fewer
    /// significant digits, or as those and nearer the midpoint (or as near and larger).
    fn offer(&mut self, t: f64) {
        if !(self.low..self.high).contains(&t) {
            return;
        }
        let t = if t == 0.0 { 0.0 } else { t };
        let text = format_number(t);
        let (length, digits) = (text.len(), significant_digits(&text));
        let distance = (t - self.middle).abs();
        let better = (length, digits) < (self.length, self.digits)
            || ((length, digits) == (self.length, self.digits)
                && (distance < self.distance || (distance == self.distance && t > self.value)));
        if better {
            *self = Shortest { value: t, length, digits, distance, ..*self };
        }
    }
}

impl Rule {
    /// The rule in segmenta's rule language: `(a and b) or (c)`, conditions as `x <= 12.5`,
    /// `x > 3`, `x = 'a'`, `x in ('a', 'b')`, `x not in (...)`, `x is null`, `x is not null`;
    /// `true` / `false` for the trivial rules.
    pub fn to_text(&self) -> String {
        if self.paths.is_empty() {
            return "false".into();
        }
        let paths: Vec<String> = self
            .paths
            .iter()
            .map(|path| {
                let conditions: Vec<String> = path.iter().filter_map(condition_text).collect();
                if conditions.is_empty() { "true".to_string() } else { conditions.join(" and ") }
            })
            .collect();
        if paths.iter().any(|p| p == "true") {
            return "true".into();
        }
        if paths.len() == 1 {
            return paths.into_iter().next().expect("one path");
        }
        paths.iter().map(|p| format!("({p})")).collect::<Vec<_>>().join(" or ")
    }

    /// The rule's value for entity `row` under SQL three-valued logic (`None`: unknown), as the
    /// engine evaluates [`Rule::to_text`]; membership is `Some(true)`.
    pub fn evaluate(&self, columns: &[FeatureColumn], row: usize) -> Option<bool> {
        let mut result = Some(false);
        for path in &self.paths {
            let mut all = Some(true);
            for condition in path {
                all = and(all, condition_value(condition, columns, row));
            }
            result = or(result, all);
        }
        result
    }

    /// Fidelity, precision and recall of the rule against `members` (one flag per entity).
    pub fn quality(&self, columns: &[FeatureColumn], members: &[bool]) -> RuleQuality {
        let (mut agree, mut matched, mut both, mut positives) = (0usize, 0usize, 0usize, 0usize);
        for (row, &member) in members.iter().enumerate() {
            let matches = self.evaluate(columns, row) == Some(true);
            agree += usize::from(matches == member);
            matched += usize::from(matches);
            both += usize::from(matches && member);
            positives += usize::from(member);
        }
        let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
        RuleQuality {
            fidelity: ratio(agree, members.len()),
            precision: ratio(both, matched),
            recall: ratio(both, positives),
            matched,
        }
    }
}

/// The text of a condition; `None` when it accepts everything.
fn condition_text(condition: &Condition) -> Option<String> {
    match condition {
        Condition::Numeric { name, above, at_most, values, null, .. } => {
            let x = quote_identifier(name);
            let mut bounds = Vec::new();
            if let Some(a) = above {
                bounds.push(format!("{x} > {}", format_number(*a)));
            }
            if let Some(b) = at_most {
                bounds.push(format!("{x} <= {}", format_number(*b)));
            }
            Some(match (*values, *null, bounds.len()) {
                (true, true, 0) => return None,
                (true, false, 0) => format!("{x} is not null"),
                (false, true, _) => format!("{x} is null"),
                (false, false, _) => "false".into(),
                (true, false, _) => bounds.join(" and "),
                (true, true, 1) => format!("({x} is null or {})", bounds[0]),
                (true, true, _) => format!("({x} is null or ({}))", bounds.join(" and ")),
            })
        }
        Condition::Categorical { name, allowed, others, null, .. } => {
            let x = quote_identifier(name);
            let list =
                |values: &[String]| values.iter().map(|v| quote_string(v)).collect::<Vec<_>>().join(", ");
            let values = if others.is_empty() {
                // Every non-missing value is accepted.
                None
            } else if allowed.is_empty() {
                Some("false".to_string())
            } else if allowed.len() <= others.len() {
                Some(if allowed.len() == 1 {
                    format!("{x} = {}", quote_string(&allowed[0]))
                } else {
                    format!("{x} in ({})", list(allowed))
                })
            } else {
                Some(if others.len() == 1 {
                    format!("{x} != {}", quote_string(&others[0]))
                } else {
                    format!("{x} not in ({})", list(others))
                })
            };
            Some(match (values, *null) {
                (None, true) => return None,
                (None, false) => format!("{x} is not null"),
                (Some(v), false) => v,
                (Some(v), true) if v == "false" => format!("{x} is null"),
                (Some(v), true) => format!("({x} is null or {v})"),
            })
        }
    }
}

/// The three-valued value of a condition, mirroring [`condition_text`].
fn condition_value(condition: &Condition, columns: &[FeatureColumn], row: usize) -> Option<bool> {
    match (condition, &columns[*condition_column(condition)]) {
        (
            Condition::Numeric { above, at_most, values, null, .. },
            FeatureColumn::Numeric { values: data, .. },
        ) => {
            let everything_else = above.is_none() && at_most.is_none();
            match data[row] {
                // `x is null` / `(x is null or ...)`: TRUE; `x is not null`: FALSE; a bare
                // comparison: unknown.
                None if *null => Some(true),
                None if everything_else || !*values => Some(false),
                None => None,
                Some(_) if !*values => Some(false),
                Some(x) => Some(above.is_none_or(|a| x > a) && at_most.is_none_or(|b| x <= b)),
            }
        }
        (
            Condition::Categorical { allowed, others, null, .. },
            FeatureColumn::Categorical { values: data, .. },
        ) => {
            match &data[row] {
                None if *null => Some(true),
                None if others.is_empty() || allowed.is_empty() => Some(false),
                None => None,
                Some(v) => {
                    // `in (allowed)` or `not in (others)`, whichever the text uses.
                    if others.is_empty() {
                        Some(true)
                    } else if allowed.len() <= others.len() {
                        Some(allowed.binary_search(v).is_ok())
                    } else {
                        Some(others.binary_search(v).is_err())
                    }
                }
            }
        }
        _ => None,
    }
}

fn condition_column(condition: &Condition) -> &usize {
    match condition {
        Condition::Numeric { column, .. } | Condition::Categorical { column, .. } => column,
    }
}

/// A feature prepared for split search, shared by the trees of all clusters.
enum Feature<'a> {
    Numeric {
        values: &'a [Option<f64>],
        /// Rows with a value, sorted by value (then row).
        order: Vec<u32>,
        /// Their values, in that order (read sequentially by the split search).
        sorted: Vec<f64>,
        /// Rows without a value.
        nulls: Vec<u32>,
    },
    Categorical {
        /// Code per row, indexing `levels`.
        codes: Vec<u32>,
        /// Values by code, sorted, missing first.
        levels: Vec<Option<String>>,
    },
}

/// Fits rule trees on a feature table; build it once and call [`RuleLearner::fit`] per cluster.
pub struct RuleLearner<'a> {
    columns: &'a [FeatureColumn],
    features: Vec<Feature<'a>>,
    n: usize,
}

#[derive(Debug, Clone)]
enum Split {
    /// Left: `x <= low`, right: `x >= high`, for neighbouring values `low < high` of the node
    /// (the rule says `x <= t` with `t` from [`split_threshold`]). `nulls_left`: the side of the
    /// missing values, `None` when the node has none (then neither side's condition accepts them).
    Threshold { feature: usize, low: f64, high: f64, nulls_left: Option<bool> },
    /// Left: the missing values.
    Null { feature: usize },
    /// Left: the categories whose flag is set.
    Categories { feature: usize, left: Vec<bool> },
}

#[derive(Debug, Clone)]
struct Node {
    count: usize,
    positives: usize,
    split: Option<(Split, usize, usize)>,
}

impl Node {
    fn positive(&self) -> bool {
        2 * self.positives > self.count
    }
}

/// The best threshold split of a node so far: gain, the neighbouring values around the
/// threshold, and the side of the missing values.
type Bounds = (f64, f64, f64, Option<bool>);

#[derive(Debug, Clone)]
struct Candidate {
    gain: f64,
    split: Split,
}

/// Weighted Gini impurity of a node: `count * gini`.
fn impurity(count: usize, positives: usize) -> f64 {
    if count == 0 {
        return 0.0;
    }
    2.0 * positives as f64 * (count - positives) as f64 / count as f64
}

impl<'a> RuleLearner<'a> {
    /// Prepares the columns (sorts every numeric feature once).
    pub fn new(columns: &'a [FeatureColumn]) -> Self {
        let n = columns.first().map_or(0, FeatureColumn::len);
        let features = columns
            .par_iter()
            .map(|column| match column {
                FeatureColumn::Numeric { values, .. } => {
                    let mut order: Vec<u32> =
                        (0..n as u32).filter(|&i| values[i as usize].is_some()).collect();
                    let value = |i: u32| values[i as usize].expect("rows in order have values");
                    order.sort_by(|&a, &b| value(a).total_cmp(&value(b)).then(a.cmp(&b)));
                    let nulls = (0..n as u32).filter(|&i| values[i as usize].is_none()).collect();
                    let sorted = order.iter().map(|&i| value(i)).collect();
                    Feature::Numeric { values, order, sorted, nulls }
                }
                FeatureColumn::Categorical { values, .. } => {
                    let levels: Vec<Option<String>> = values
                        .iter()
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .cloned()
                        .collect();
                    let index: std::collections::HashMap<&Option<String>, u32> =
                        levels.iter().enumerate().map(|(c, v)| (v, c as u32)).collect();
                    Feature::Categorical { codes: values.iter().map(|v| index[v]).collect(), levels }
                }
            })
            .collect();
        RuleLearner { columns, features, n }
    }

    /// The rule for the entities flagged in `members` (see the module documentation).
    pub fn fit(&self, members: &[bool], options: &TreeOptions) -> Rule {
        assert_eq!(members.len(), self.n, "one flag per entity");
        let min_leaf = options.min_leaf.max(1);
        let positives = members.iter().filter(|&&m| m).count();
        let mut nodes = vec![Node { count: self.n, positives, split: None }];
        // Per row: its node times 2, plus 1 for a member (one random access in the scans).
        let mut state: Vec<u32> = members.iter().map(|&m| u32::from(m)).collect();
        let mut frontier = vec![0usize];
        for _ in 0..options.max_depth {
            let open: Vec<usize> = frontier
                .iter()
                .copied()
                .filter(|&id| {
                    let node = &nodes[id];
                    node.count >= 2 * min_leaf && node.positives > 0 && node.positives < node.count
                })
                .collect();
            if open.is_empty() {
                break;
            }
            let mut slot = vec![usize::MAX; nodes.len()];
            for (s, &id) in open.iter().enumerate() {
                slot[id] = s;
            }
            let per_feature: Vec<Vec<Option<Candidate>>> = (0..self.features.len())
                .into_par_iter()
                .map(|f| self.best_splits(f, &nodes, &open, &slot, &state, min_leaf))
                .collect();
            let mut next = Vec::new();
            for (s, &id) in open.iter().enumerate() {
                let mut best: Option<&Candidate> = None;
                for candidates in &per_feature {
                    if let Some(c) = &candidates[s]
                        && best.is_none_or(|b| c.gain > b.gain)
                    {
                        best = Some(c);
                    }
                }
                let Some(best) = best else { continue };
                if best.gain <= 1e-12 * nodes[id].count as f64 {
                    continue;
                }
                let (left, right) = (nodes.len(), nodes.len() + 1);
                nodes.push(Node { count: 0, positives: 0, split: None });
                nodes.push(Node { count: 0, positives: 0, split: None });
                nodes[id].split = Some((best.split.clone(), left, right));
                next.push(left);
                next.push(right);
            }
            if next.is_empty() {
                break;
            }
            // Route the rows of the nodes just split.
            for (row, cell) in state.iter_mut().enumerate() {
                if let Some((split, left, right)) = &nodes[(*cell >> 1) as usize].split {
                    let child = if self.goes_left(split, row) { *left } else { *right };
                    let member = *cell & 1;
                    *cell = (child as u32) << 1 | member;
                    nodes[child].count += 1;
                    nodes[child].positives += member as usize;
                }
            }
            frontier = next;
        }
        prune(&mut nodes, 0);
        self.rule_from(&nodes)
    }

    fn goes_left(&self, split: &Split, row: usize) -> bool {
        match split {
            // Rows of the node have no value between `low` and `high`: `v <= low` is `v <= t`.
            Split::Threshold { feature, low, nulls_left, .. } => match &self.features[*feature] {
                Feature::Numeric { values, .. } => {
                    values[row].map_or(*nulls_left == Some(true), |v| v <= *low)
                }
                Feature::Categorical { .. } => unreachable!("threshold splits are on numeric features"),
            },
            Split::Null { feature } => match &self.features[*feature] {
                Feature::Numeric { values, .. } => values[row].is_none(),
                Feature::Categorical { .. } => unreachable!("null splits are on numeric features"),
            },
            Split::Categories { feature, left } => match &self.features[*feature] {
                Feature::Categorical { codes, .. } => left[codes[row] as usize],
                Feature::Numeric { .. } => unreachable!("category splits are on categorical features"),
            },
        }
    }

    /// The best split of feature `f` for every open node (indexed by slot).
    fn best_splits(
        &self,
        f: usize,
        nodes: &[Node],
        open: &[usize],
        slot: &[usize],
        state: &[u32],
        min_leaf: usize,
    ) -> Vec<Option<Candidate>> {
        let mut best: Vec<Option<Candidate>> = vec![None; open.len()];
        let consider = |best: &mut Option<Candidate>, parent: &Node, left: (usize, usize), split: Split| {
            let right = (parent.count - left.0, parent.positives - left.1);
            if left.0 < min_leaf || right.0 < min_leaf {
                return;
            }
            let gain = impurity(parent.count, parent.positives)
                - impurity(left.0, left.1)
                - impurity(right.0, right.1);
            if best.as_ref().is_none_or(|b| gain > b.gain) {
                *best = Some(Candidate { gain, split });
            }
        };
        // The open node's slot and the member flag of a row.
        let look = |row: usize| {
            let cell = state[row];
            (slot.get((cell >> 1) as usize).copied().unwrap_or(usize::MAX), (cell & 1) as usize)
        };
        match &self.features[f] {
            Feature::Numeric { order, sorted, nulls, .. } => {
                let mut null_stats = vec![(0usize, 0usize); open.len()];
                for &row in nulls {
                    let (s, member) = look(row as usize);
                    if s != usize::MAX {
                        null_stats[s].0 += 1;
                        null_stats[s].1 += member;
                    }
                }
                // Best threshold per slot as (lo, hi, nulls_left) with its gain; the threshold
                // itself is only written when a path becomes a rule.
                let mut left = vec![(0usize, 0usize); open.len()];
                let mut last = vec![f64::NAN; open.len()];
                let mut best_bounds: Vec<Option<Bounds>> = vec![None; open.len()];
                for (&row, &value) in order.iter().zip(sorted) {
                    let (s, member) = look(row as usize);
                    if s == usize::MAX {
                        continue;
                    }
                    if left[s].0 > 0 && value > last[s] {
                        let parent = &nodes[open[s]];
                        let (nulls, null_positives) = null_stats[s];
                        let options =
                            [(left[s], false), ((left[s].0 + nulls, left[s].1 + null_positives), true)];
                        for (l, nulls_left) in options.iter().take(if nulls > 0 { 2 } else { 1 }) {
                            let r = (parent.count - l.0, parent.positives - l.1);
                            if l.0 < min_leaf || r.0 < min_leaf {
                                continue;
                            }
                            let gain = impurity(parent.count, parent.positives)
                                - impurity(l.0, l.1)
                                - impurity(r.0, r.1);
                            if best_bounds[s].is_none_or(|b| gain > b.0) {
                                let side = (nulls > 0).then_some(*nulls_left);
                                best_bounds[s] = Some((gain, last[s], value, side));
                            }
                        }
                    }
                    left[s].0 += 1;
                    left[s].1 += member;
                    last[s] = value;
                }
                for s in 0..open.len() {
                    if let Some((gain, low, high, nulls_left)) = best_bounds[s] {
                        best[s] = Some(Candidate {
                            gain,
                            split: Split::Threshold { feature: f, low, high, nulls_left },
                        });
                    }
                    let (nulls, null_positives) = null_stats[s];
                    if nulls > 0 {
                        consider(
                            &mut best[s],
                            &nodes[open[s]],
                            (nulls, null_positives),
                            Split::Null { feature: f },
                        );
                    }
                }
            }
            Feature::Categorical { codes, levels } => {
                let m = levels.len();
                let mut stats = vec![(0usize, 0usize); open.len() * m];
                for (row, &code) in codes.iter().enumerate() {
                    let (s, member) = look(row);
                    if s != usize::MAX {
                        let cell = &mut stats[s * m + code as usize];
                        cell.0 += 1;
                        cell.1 += member;
                    }
                }
                for s in 0..open.len() {
                    let cells = &stats[s * m..(s + 1) * m];
                    let mut present: Vec<usize> = (0..m).filter(|&c| cells[c].0 > 0).collect();
                    // By positive rate (exactly, by cross-multiplication), then by code.
                    present.sort_by(|&a, &b| {
                        (cells[a].1 * cells[b].0).cmp(&(cells[b].1 * cells[a].0)).then(a.cmp(&b))
                    });
                    let mut left_flags = vec![false; m];
                    let mut left = (0usize, 0usize);
                    for &code in present.iter().take(present.len().saturating_sub(1)) {
                        left_flags[code] = true;
                        left.0 += cells[code].0;
                        left.1 += cells[code].1;
                        consider(
                            &mut best[s],
                            &nodes[open[s]],
                            left,
                            Split::Categories { feature: f, left: left_flags.clone() },
                        );
                    }
                }
            }
        }
        best
    }

    /// The rule from a grown and pruned tree.
    fn rule_from(&self, nodes: &[Node]) -> Rule {
        let mut leaves = Vec::new();
        collect_leaves(nodes, 0, &mut Vec::new(), &mut leaves);
        let mut chosen: Vec<&(usize, Vec<(Split, bool)>)> =
            leaves.iter().filter(|(id, _)| nodes[*id].positive()).collect();
        if chosen.is_empty() {
            // No majority leaf: the leaf with the highest share of the cluster (then the most
            // members, then the first).
            let best = leaves.iter().max_by(|(a, _), (b, _)| {
                let (a, b) = (&nodes[*a], &nodes[*b]);
                (a.positives * b.count)
                    .cmp(&(b.positives * a.count))
                    .then(a.positives.cmp(&b.positives))
                    .then(std::cmp::Ordering::Greater)
            });
            chosen.extend(best);
        }
        Rule { paths: chosen.into_iter().map(|(_, path)| self.conditions(path)).collect() }
    }

    /// Merges the splits of a path into one condition per feature, in order of first use.
    fn conditions(&self, path: &[(Split, bool)]) -> Vec<Condition> {
        let mut conditions: Vec<Condition> = Vec::new();
        for (split, left) in path {
            let condition = self.condition(split, *left);
            match conditions.iter_mut().find(|c| condition_column(c) == condition_column(&condition)) {
                Some(existing) => merge(existing, condition),
                None => conditions.push(condition),
            }
        }
        conditions
    }

    fn condition(&self, split: &Split, left: bool) -> Condition {
        let name = |f: usize| self.columns[f].name().to_string();
        match split {
            Split::Threshold { feature, low, high, nulls_left } => {
                let threshold = split_threshold(*low, *high);
                Condition::Numeric {
                    column: *feature,
                    name: name(*feature),
                    above: (!left).then_some(threshold),
                    at_most: left.then_some(threshold),
                    values: true,
                    null: *nulls_left == Some(left),
                }
            }
            Split::Null { feature } => Condition::Numeric {
                column: *feature,
                name: name(*feature),
                above: None,
                at_most: None,
                values: !left,
                null: left,
            },
            Split::Categories { feature, left: flags } => {
                let Feature::Categorical { levels, .. } = &self.features[*feature] else {
                    unreachable!("category splits are on categorical features")
                };
                let mut allowed = Vec::new();
                let mut others = Vec::new();
                let mut null = false;
                for (code, level) in levels.iter().enumerate() {
                    let accepted = flags[code] == left;
                    match level {
                        None => null = accepted,
                        Some(v) if accepted => allowed.push(v.clone()),
                        Some(v) => others.push(v.clone()),
                    }
                }
                Condition::Categorical { column: *feature, name: name(*feature), allowed, others, null }
            }
        }
    }
}

/// `existing and new` on the same feature.
fn merge(existing: &mut Condition, new: Condition) {
    match (existing, new) {
        (
            Condition::Numeric { above, at_most, values, null, .. },
            Condition::Numeric { above: a2, at_most: b2, values: v2, null: n2, .. },
        ) => {
            *above = match (*above, a2) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            *at_most = match (*at_most, b2) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            *values &= v2;
            *null &= n2;
        }
        (
            Condition::Categorical { allowed, others, null, .. },
            Condition::Categorical { allowed: a2, null: n2, .. },
        ) => {
            let (kept, dropped): (Vec<String>, Vec<String>) =
                allowed.drain(..).partition(|v| a2.binary_search(v).is_ok());
            *allowed = kept;
            others.extend(dropped);
            others.sort();
            *null &= n2;
        }
        _ => unreachable!("conditions on one column have one kind"),
    }
}

/// Merges sibling leaves with the same prediction, bottom-up.
fn prune(nodes: &mut [Node], id: usize) {
    let Some((_, left, right)) = nodes[id].split.clone() else { return };
    prune(nodes, left);
    prune(nodes, right);
    let (l, r) = (&nodes[left], &nodes[right]);
    if l.split.is_none() && r.split.is_none() && l.positive() == r.positive() {
        nodes[id].split = None;
    }
}

fn collect_leaves(
    nodes: &[Node],
    id: usize,
    path: &mut Vec<(Split, bool)>,
    out: &mut Vec<(usize, Vec<(Split, bool)>)>,
) {
    match &nodes[id].split {
        None => out.push((id, path.clone())),
        Some((split, left, right)) => {
            path.push((split.clone(), true));
            collect_leaves(nodes, *left, path, out);
            path.pop();
            path.push((split.clone(), false));
            collect_leaves(nodes, *right, path, out);
            path.pop();
        }
    }
}

/// A text rendering of a tree's rule and quality, for debugging and reports.
pub fn describe(rule: &Rule, quality: &RuleQuality) -> String {
    let mut text = rule.to_text();
    let _ = write!(
        text,
        "  [fidelity {:.4}, precision {:.4}, recall {:.4}]",
        quality.fidelity, quality.precision, quality.recall
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals() {
        let cases = [
            ("arr", "arr"),
            ("Order", "Order"),
            ("order count", "`order count`"),
            ("in", "`in`"),
            ("Date", "`Date`"),
            ("a`b", "`a``b`"),
            ("2x", "`2x`"),
            ("parent.industry", "parent.industry"),
            ("parent.not", "parent.`not`"),
            ("", "``"),
        ];
        for (name, expected) in cases {
            assert_eq!(quote_identifier(name), expected);
        }
        assert_eq!(quote_string("it's"), "'it''s'");
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(-0.5), "-0.5");
        assert_eq!(format_number(1e-7), "1e-7");
        assert_eq!(format_number(1e300), "1e300");
        assert_eq!(format_number(9_007_199_254_740_994.0), "9007199254740994");
        assert_eq!(format_number(1e16), "1e16");
    }

    #[test]
    fn thresholds_are_short_and_between_the_values() {
        let cases = [
            (3.0, 4.0, "3"),
            (0.25, 0.75, "0.5"),
            (3.0, 10.0, "7"),
            (0.1, 0.2, "0.1"),
            (-2.5, -1.0, "-2"),
            (-3.0, 0.0, "-1"),
            (-0.5, 7.0, "0"),
            (0.0, 1200.0, "0"),
            (3.0, 1200.0, "9"),
            (45.97, 45.99, "45.98"),
            // Sums of prices: the multiple of 0.1 computed in binary is 61.800000000000004.
            (12.99 + 48.81, 61.87 + 1e-14, "61.84"),
            (106.80000000000001, 106.85000000000001, "106.83"),
            // Shorter text beats fewer significant digits.
            (99.0, 100.5, "99"),
            (999.5, 1000.5, "1000"),
            (0.0051, 0.0059, "0.0055"),
            (1.5e-7, 2.5e-7, "2e-7"),
            (2.5e20, 3.5e20, "3e20"),
            (24_100.0, 24_900.0, "24500"),
            // As short, fewer significant digits.
            (49_856.0, 52_000.0, "50000"),
            (19.5, 21.5, "20"),
        ];
        for (text, digits) in [("2820", 3), ("0.0055", 2), ("1.5e-7", 2), ("0", 0), ("-45.98", 4)] {
            assert_eq!(significant_digits(text), digits, "{text}");
        }
        for (low, high, expected) in cases {
            let t = split_threshold(low, high);
            assert_eq!(format_number(t), expected, "{low:?}..{high:?}");
            assert!((low..high).contains(&t), "{low:?}..{high:?}: {t:?}");
        }
        // Neighbouring floats leave only the lower one.
        let (low, high) = (0.1 + 0.2, (0.1f64 + 0.2).next_up());
        assert_eq!(split_threshold(low, high), low);
    }

    fn table() -> Vec<FeatureColumn> {
        // Cluster: x > 5, or x missing with plan 'b'.
        let x: Vec<Option<f64>> =
            (0..40).map(|i| if i % 10 == 9 { None } else { Some(f64::from(i % 10)) }).collect();
        let plan: Vec<Option<String>> =
            (0..40).map(|i| Some(if i < 20 { "a" } else { "b" }.to_string())).collect();
        vec![
            FeatureColumn::Numeric { name: "x".into(), values: x },
            FeatureColumn::Categorical { name: "plan".into(), values: plan },
        ]
    }

    #[test]
    fn rules_reproduce_the_tree_under_three_valued_logic() {
        let columns = table();
        let members: Vec<bool> =
            (0..40).map(|i| (i % 10 > 5 && i % 10 != 9) || (i % 10 == 9 && i >= 20)).collect();
        let learner = RuleLearner::new(&columns);
        let rule = learner.fit(&members, &TreeOptions { max_depth: 3, min_leaf: 1 });
        let quality = rule.quality(&columns, &members);
        assert_eq!(quality.fidelity, 1.0, "{}", describe(&rule, &quality));
        assert_eq!(rule.to_text(), "(x is null and plan = 'b') or (x > 5)");
    }

    #[test]
    fn a_rule_never_matches_on_unknown() {
        let columns = table();
        let rule = Rule {
            paths: vec![vec![Condition::Numeric {
                column: 0,
                name: "x".into(),
                above: Some(5.0),
                at_most: None,
                values: true,
                null: false,
            }]],
        };
        assert_eq!(rule.evaluate(&columns, 9), None);
        assert_eq!(rule.evaluate(&columns, 8), Some(true));
        assert_eq!(Rule { paths: vec![] }.to_text(), "false");
        assert_eq!(Rule { paths: vec![vec![]] }.to_text(), "true");
    }
}
