//! Personas: the facts that set a cluster apart from the population (numeric means against the
//! population, lift, over-represented categories), and a name and a paragraph made only from
//! those facts.
//!
//! A fact's strength is its standardized difference: for a numeric feature
//! `(cluster mean - population mean) / population sd`; for a category the same for its
//! indicator, `(cluster share - population share) / sqrt(share (1 - share))`. The name joins
//! the (at most three) strongest facts that pass the thresholds ([`PERSONA_DISTINCT_SD`] for
//! numbers; [`PERSONA_MIN_SHARE`] and [`PERSONA_MIN_LIFT`] for categories).

use super::{
    CategoryContrast, FeatureColumn, NumericContrast, PERSONA_DISTINCT_SD, PERSONA_MIN_LIFT,
    PERSONA_MIN_SHARE, Persona,
};

/// A number for people: integers above 1,000 without decimals, else four significant digits;
/// exponent notation beyond 1e9 or below 1e-3.
pub(crate) fn number(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let magnitude = x.abs();
    if !(1e-3..1e9).contains(&magnitude) {
        return format!("{x:.3e}");
    }
    if magnitude >= 1000.0 {
        return format!("{}", x.round() as i64);
    }
    let decimals = (3 - magnitude.log10().floor() as i32).max(0) as usize;
    let text = format!("{x:.decimals$}");
    let text =
        if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text };
    if text == "-0" { "0".into() } else { text }
}

/// A share as a percentage with at most one decimal (`64.3%`, `5%`).
fn percent(share: f64) -> String {
    let text = format!("{:.1}", share * 100.0);
    format!("{}%", text.strip_suffix(".0").unwrap_or(&text))
}

fn category_text(value: &Option<String>) -> String {
    match value {
        Some(v) => format!("'{v}'"),
        None => "(missing)".into(),
    }
}

/// `(value, count)` pairs sorted by value.
type Counts = Vec<(Option<String>, usize)>;

/// Per-feature population statistics, computed once for all clusters.
pub(crate) struct Population {
    /// Per column: (mean, sd) of the non-missing values (numeric only).
    numeric: Vec<Option<(f64, f64)>>,
    /// Per column: (value, count) sorted by value (categorical only).
    categories: Vec<Option<Counts>>,
    n: usize,
}

impl Population {
    pub(crate) fn new(columns: &[FeatureColumn]) -> Self {
        let mut numeric = Vec::new();
        let mut categories = Vec::new();
        for column in columns {
            match column {
                FeatureColumn::Numeric { values, .. } => {
                    let (mean, sd) = mean_sd(values.iter().flatten().copied());
                    numeric.push(Some((mean, sd)));
                    categories.push(None);
                }
                FeatureColumn::Categorical { values, .. } => {
                    numeric.push(None);
                    categories.push(Some(counts(values.iter())));
                }
            }
        }
        Population { numeric, categories, n: columns.first().map_or(0, FeatureColumn::len) }
    }
}

fn mean_sd(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let (count, sum) = values.clone().fold((0usize, 0.0), |(c, s), v| (c + 1, s + v));
    if count == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = sum / count as f64;
    let variance = values.map(|v| (v - mean) * (v - mean)).sum::<f64>() / count as f64;
    (mean, variance.sqrt())
}

fn counts<'a>(values: impl Iterator<Item = &'a Option<String>>) -> Vec<(Option<String>, usize)> {
    let mut map = std::collections::BTreeMap::<&Option<String>, usize>::new();
    for v in values {
        *map.entry(v).or_default() += 1;
    }
    map.into_iter().map(|(v, c)| (v.clone(), c)).collect()
}

/// A fact for the name and the description.
enum Fact<'a> {
    Numeric(&'a NumericContrast),
    Category(&'a CategoryContrast),
}

/// The persona of the cluster made of `members` (row indices).
pub(crate) fn persona(
    id: u32,
    columns: &[FeatureColumn],
    population: &Population,
    members: &[usize],
) -> Persona {
    let size = members.len();
    let mut numeric = Vec::new();
    let mut categories = Vec::new();
    for (index, column) in columns.iter().enumerate() {
        match column {
            FeatureColumn::Numeric { name, values } => {
                let (population_mean, population_sd) = population.numeric[index].expect("a numeric column");
                let (mean, _) = mean_sd(members.iter().filter_map(|&i| values[i]));
                let cluster_mean = mean.is_finite().then_some(mean);
                let standardized_difference = match cluster_mean {
                    Some(mean) if population_sd > 0.0 => (mean - population_mean) / population_sd,
                    _ => 0.0,
                };
                numeric.push(NumericContrast {
                    feature: name.clone(),
                    cluster_mean,
                    population_mean,
                    standardized_difference,
                    lift: cluster_mean.filter(|_| population_mean > 0.0).map(|m| m / population_mean),
                    distinguishing: standardized_difference.abs() >= PERSONA_DISTINCT_SD,
                });
            }
            FeatureColumn::Categorical { name, values } => {
                let all = population.categories[index].as_ref().expect("a categorical column");
                let here = counts(members.iter().map(|&i| &values[i]));
                for (value, count) in here {
                    let population_count =
                        all.iter().find(|(v, _)| *v == value).map_or(0, |(_, c)| *c).max(1);
                    let cluster_share = count as f64 / size as f64;
                    let population_share = population_count as f64 / population.n as f64;
                    let lift = cluster_share / population_share;
                    if cluster_share >= PERSONA_MIN_SHARE && lift >= PERSONA_MIN_LIFT {
                        categories.push(CategoryContrast {
                            feature: name.clone(),
                            value,
                            cluster_share,
                            population_share,
                            lift,
                        });
                    }
                }
            }
        }
    }
    // Most distinctive first; the sort is stable, so ties keep the input order.
    numeric.sort_by(|a, b| b.standardized_difference.abs().total_cmp(&a.standardized_difference.abs()));
    categories.sort_by(|a, b| category_strength(b).total_cmp(&category_strength(a)));

    let mut facts: Vec<(f64, Fact<'_>)> = numeric
        .iter()
        .filter(|c| c.distinguishing)
        .map(|c| (c.standardized_difference.abs(), Fact::Numeric(c)))
        .chain(categories.iter().map(|c| (category_strength(c), Fact::Category(c))))
        .collect();
    facts.sort_by(|a, b| b.0.total_cmp(&a.0));
    let name = name_from(&facts);
    let description = describe(id, size, population.n, &facts);
    Persona { name, description, numeric, categories }
}

fn category_strength(c: &CategoryContrast) -> f64 {
    let p = c.population_share;
    let sd = (p * (1.0 - p)).sqrt();
    if sd > 0.0 { (c.cluster_share - p) / sd } else { 0.0 }
}

fn level(z: f64) -> &'static str {
    match z {
        z if z >= 1.5 => "very high",
        z if z > 0.0 => "high",
        z if z <= -1.5 => "very low",
        _ => "low",
    }
}

fn name_from(facts: &[(f64, Fact<'_>)]) -> String {
    let parts: Vec<String> = facts
        .iter()
        .take(3)
        .map(|(_, fact)| match fact {
            Fact::Numeric(c) => format!("{} {}", level(c.standardized_difference), c.feature),
            Fact::Category(c) => match &c.value {
                Some(v) => format!("{} {v}", c.feature),
                None => format!("{} missing", c.feature),
            },
        })
        .collect();
    if parts.is_empty() {
        return "Typical profile".into();
    }
    let name = parts.join(", ");
    let mut chars = name.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn describe(id: u32, size: usize, n: usize, facts: &[(f64, Fact<'_>)]) -> String {
    let mut text =
        format!("Cluster {id} holds {size} of {n} entities ({}).", percent(size as f64 / n.max(1) as f64));
    if facts.is_empty() {
        text.push_str(&format!(
            " No numeric feature is {PERSONA_DISTINCT_SD} standard deviations or more from the \
             population mean and no category is over-represented."
        ));
        return text;
    }
    let mut sentences = Vec::new();
    for (_, fact) in facts.iter().take(5) {
        sentences.push(match fact {
            Fact::Numeric(c) => {
                let mean = c.cluster_mean.expect("distinguishing facts have a cluster mean");
                let lift = c.lift.map(|l| format!(", {}x", number(l))).unwrap_or_default();
                format!(
                    "{} averages {} against {} overall ({:+.1} sd{lift})",
                    c.feature,
                    number(mean),
                    number(c.population_mean),
                    c.standardized_difference
                )
            }
            Fact::Category(c) => format!(
                "{} have {} {} against {} overall ({}x)",
                percent(c.cluster_share),
                c.feature,
                category_text(&c.value),
                percent(c.population_share),
                number(c.lift)
            ),
        });
    }
    text.push_str(" Compared with the population: ");
    text.push_str(&sentences.join("; "));
    text.push('.');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_for_people() {
        let cases = [
            (0.0, "0"),
            (12345.6, "12346"),
            (2.5, "2.5"),
            (0.123456, "0.1235"),
            (-3.0, "-3"),
            (1e12, "1.000e12"),
            (99.99, "99.99"),
        ];
        for (x, expected) in cases {
            assert_eq!(number(x), expected, "{x}");
        }
    }

    #[test]
    fn persona_names_the_strongest_facts() {
        let columns = vec![
            FeatureColumn::Numeric {
                name: "arr".into(),
                values: (0..10).map(|i| Some(if i < 3 { 100.0 } else { 10.0 })).collect(),
            },
            FeatureColumn::Categorical {
                name: "industry".into(),
                values: (0..10).map(|i| Some(if i < 4 { "health" } else { "retail" }.to_string())).collect(),
            },
        ];
        let population = Population::new(&columns);
        let persona = persona(1, &columns, &population, &[0, 1, 2]);
        assert_eq!(persona.name, "Very high arr, industry health");
        assert!(
            persona.description.starts_with("Cluster 1 holds 3 of 10 entities (30%)."),
            "{}",
            persona.description
        );
        assert!(persona.description.contains("100% have industry 'health' against 40% overall (2.5x)"));
    }
}
