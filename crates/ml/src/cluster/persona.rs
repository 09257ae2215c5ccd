//! Personas: the facts that set a cluster apart from the population (numeric means against the
//! population, lift, over-represented categories), and a name and a paragraph made only from
//! those facts.
//!
//! A fact's strength is its standardized difference: for a numeric feature
//! `(cluster mean - population mean) / population sd`; for a category the same for its
//! indicator, `(cluster share - population share) / sqrt(share (1 - share))`. The name joins
//! the (at most three) strongest facts that pass the thresholds ([`PERSONA_DISTINCT_SD`] for
//! numbers; [`PERSONA_MIN_SHARE`] and [`PERSONA_MIN_LIFT`] for categories).
//!
//! Names are distinct within a discovery ([`distinct_names`]): clusters that would share a
//! name first take their next strongest facts (up to [`MAX_NAME_FACTS`]), then the mean of the
//! numeric feature whose means differ most among them ("arr averaging 310"), and only as a last
//! resort their id ("(cluster 3)").

use super::{
    CategoryContrast, ClusterReport, FeatureColumn, NumericContrast, PERSONA_DISTINCT_SD, PERSONA_MIN_LIFT,
    PERSONA_MIN_SHARE, Persona,
};

/// Facts in a name, at first ...
const NAME_FACTS: usize = 3;

/// ... and at most, when more are needed to tell clusters apart.
const MAX_NAME_FACTS: usize = 5;

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

    let facts = ranked_facts(&numeric, &categories);
    let texts: Vec<String> = facts.iter().take(NAME_FACTS).map(|(_, fact)| fact_text(fact)).collect();
    let name = name_of(&texts);
    let description = describe(id, size, population.n, &facts);
    Persona { name, description, numeric, categories }
}

/// The facts of a persona, strongest first: the distinguishing numeric features and the
/// over-represented categories (stable, so ties keep that order).
fn ranked_facts<'a>(
    numeric: &'a [NumericContrast],
    categories: &'a [CategoryContrast],
) -> Vec<(f64, Fact<'a>)> {
    let mut facts: Vec<(f64, Fact<'_>)> = numeric
        .iter()
        .filter(|c| c.distinguishing)
        .map(|c| (c.standardized_difference.abs(), Fact::Numeric(c)))
        .chain(categories.iter().map(|c| (category_strength(c), Fact::Category(c))))
        .collect();
    facts.sort_by(|a, b| b.0.total_cmp(&a.0));
    facts
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

/// A fact as a name says it: "very high arr", "plan enterprise", "industry missing".
fn fact_text(fact: &Fact<'_>) -> String {
    match fact {
        Fact::Numeric(c) => format!("{} {}", level(c.standardized_difference), c.feature),
        Fact::Category(c) => match &c.value {
            Some(v) => format!("{} {v}", c.feature),
            None => format!("{} missing", c.feature),
        },
    }
}

/// The feature a fact is about.
fn fact_feature<'a>(fact: &Fact<'a>) -> &'a str {
    match fact {
        Fact::Numeric(c) => &c.feature,
        Fact::Category(c) => &c.feature,
    }
}

/// The name made of fact texts: joined, first letter upper-case; "Typical profile" for none.
fn name_of(parts: &[String]) -> String {
    if parts.is_empty() {
        return "Typical profile".into();
    }
    let name = parts.join(", ");
    let mut chars = name.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The positions of the clusters whose name another cluster has too, grouped by name (in order
/// of first appearance).
fn shared_names(clusters: &[ClusterReport]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, cluster) in clusters.iter().enumerate() {
        match groups.iter_mut().find(|g| clusters[g[0]].persona.name == cluster.persona.name) {
            Some(group) => group.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups.retain(|g| g.len() > 1);
    groups
}

/// Makes the persona names of a discovery distinct (see the module documentation): the same
/// clusters always get the same names.
pub(crate) fn distinct_names(clusters: &mut [ClusterReport]) {
    // Per cluster: its facts (feature, text), strongest first, and how many its name holds.
    let facts: Vec<Vec<(String, String)>> = clusters
        .iter()
        .map(|c| {
            ranked_facts(&c.persona.numeric, &c.persona.categories)
                .iter()
                .map(|(_, fact)| (fact_feature(fact).to_string(), fact_text(fact)))
                .collect()
        })
        .collect();
    let mut used: Vec<usize> = facts.iter().map(|f| f.len().min(NAME_FACTS)).collect();
    let name_with = |i: usize, used: usize| {
        let texts: Vec<String> = facts[i][..used].iter().map(|(_, text)| text.clone()).collect();
        name_of(&texts)
    };

    // 1. The next strongest facts, one at a time, while that tells clusters apart.
    loop {
        let mut grew = false;
        for i in shared_names(clusters).into_iter().flatten() {
            if used[i] < facts[i].len().min(MAX_NAME_FACTS) {
                used[i] += 1;
                clusters[i].persona.name = name_with(i, used[i]);
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }

    // 2. The numeric feature whose cluster means differ most (in population standard
    // deviations) among the clusters of one name, one not in the name if there is one.
    for group in shared_names(clusters) {
        let in_name =
            |feature: &str| group.iter().any(|&i| facts[i][..used[i]].iter().any(|(f, _)| f == feature));
        let mean = |i: usize, feature: &str| {
            clusters[i]
                .persona
                .numeric
                .iter()
                .find(|n| n.feature == feature)
                .and_then(|n| n.cluster_mean.map(|mean| (mean, n.standardized_difference)))
        };
        let mut best: Option<(bool, f64, &str)> = None;
        for contrast in &clusters[group[0]].persona.numeric {
            let feature = contrast.feature.as_str();
            let Some(means) = group.iter().map(|&i| mean(i, feature)).collect::<Option<Vec<_>>>() else {
                continue;
            };
            let texts: Vec<String> = means.iter().map(|(m, _)| number(*m)).collect();
            if texts.iter().all(|t| *t == texts[0]) {
                continue;
            }
            let (lowest, highest) = means
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, z)| (lo.min(*z), hi.max(*z)));
            let candidate = (!in_name(feature), highest - lowest, feature);
            if best.is_none_or(|b| (candidate.0, candidate.1) > (b.0, b.1)) {
                best = Some(candidate);
            }
        }
        let Some((_, _, feature)) = best else { continue };
        let names: Vec<String> = group
            .iter()
            .map(|&i| {
                let (m, _) = mean(i, feature).expect("every cluster of the group has a mean");
                format!("{}, {feature} averaging {}", clusters[i].persona.name, number(m))
            })
            .collect();
        for (&i, name) in group.iter().zip(names) {
            clusters[i].persona.name = name;
        }
    }

    // 3. The cluster id.
    for i in shared_names(clusters).into_iter().flatten() {
        let name = format!("{} (cluster {})", clusters[i].persona.name, clusters[i].id);
        clusters[i].persona.name = name;
    }
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

    /// The clusters of `members` (row lists) on `columns`, named as a discovery names them.
    fn named(columns: &[FeatureColumn], members: &[Vec<usize>]) -> Vec<String> {
        let population = Population::new(columns);
        let mut clusters: Vec<ClusterReport> = members
            .iter()
            .enumerate()
            .map(|(id, rows)| ClusterReport {
                id: id as u32,
                size: rows.len(),
                share: rows.len() as f64 / population.n as f64,
                centroid: Vec::new(),
                persona: persona(id as u32, columns, &population, rows),
                rule: "true".into(),
                fidelity: 1.0,
                precision: 1.0,
                recall: 1.0,
                rule_size: rows.len(),
            })
            .collect();
        distinct_names(&mut clusters);
        clusters.into_iter().map(|c| c.persona.name).collect()
    }

    fn categories(name: &str, values: &[&str]) -> FeatureColumn {
        FeatureColumn::Categorical {
            name: name.into(),
            values: values.iter().map(|v| Some(v.to_string())).collect(),
        }
    }

    #[test]
    fn personas_have_distinct_names() {
        // Rows 0-3 and 4-7 share plan 'free' and differ by less than 0.5 sd on x: the mean of x
        // tells them apart.
        let plan: Vec<&str> = (0..16).map(|i| if i < 8 { "free" } else { "paid" }).collect();
        let x: Vec<Option<f64>> = (0..16)
            .map(|i| {
                Some(match i {
                    0..4 => 4.0,
                    4..8 => 6.0,
                    _ if i % 2 == 0 => 0.0,
                    _ => 10.0,
                })
            })
            .collect();
        let columns = vec![categories("plan", &plan), FeatureColumn::Numeric { name: "x".into(), values: x }];
        let bands = vec![(0..4).collect(), (4..8).collect(), (8..16).collect()];
        assert_eq!(
            named(&columns, &bands),
            ["Plan free, x averaging 4", "Plan free, x averaging 6", "Plan paid"]
        );

        // The same rows twice: only the id tells them apart.
        let twice = vec![(0..4).collect(), (0..4).collect(), (8..16).collect()];
        assert_eq!(named(&columns, &twice), ["Plan free (cluster 0)", "Plan free (cluster 1)", "Plan paid"]);

        // Three facts in common, the fourth differs: the name takes it.
        let column = |name: &str, of: fn(usize) -> &'static str| {
            categories(name, &(0..16).map(of).collect::<Vec<_>>())
        };
        let same = |i: usize| if i < 8 { "x" } else { "y" };
        let columns = vec![
            column("a", same),
            column("b", same),
            column("c", same),
            column("e", |i| if i < 4 || (8..12).contains(&i) { "p" } else { "q" }),
        ];
        let groups = vec![(0..4).collect(), (4..8).collect(), (8..16).collect()];
        assert_eq!(named(&columns, &groups), ["A x, b x, c x, e p", "A x, b x, c x, e q", "A y, b y, c y"]);
    }
}
