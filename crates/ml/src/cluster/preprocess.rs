//! Preprocessing: checks the feature table, transforms and scales numeric features, imputes
//! missing numbers, codes categories, and reports what it did per feature.
//!
//! Numeric feature, in this order: `ln(1 + x)` when [`LogTransform::Auto`] finds it heavy
//! tailed (every value `>= 0` and skewness `>` [`LOG1P_SKEWNESS`]; never with
//! [`Scaling::None`]); missing values replaced by the median of the (transformed) values;
//! scaling (standard: mean and population standard deviation; robust: median and
//! interquartile range with NumPy's linear interpolation, the standard deviation when the
//! range is 0; a scale of 0 becomes 1). Categorical feature: values coded in sorted order with
//! missing values as their own category (code 0 when present), so that "missing" can form or
//! split a cluster and rules can say `is null`.

use super::persona::number;
use super::{
    Error, FeatureColumn, FeatureReport, LOG1P_SKEWNESS, LogTransform, MAX_CATEGORIES, Preparation, Scaling,
};

/// `scaled = (t - center) / scale`, `t = ln(1 + x)` or `x`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NumericTransform {
    pub(crate) log1p: bool,
    pub(crate) center: f64,
    pub(crate) scale: f64,
}

impl NumericTransform {
    pub(crate) fn forward(&self, x: f64) -> f64 {
        let t = if self.log1p { x.ln_1p() } else { x };
        (t - self.center) / self.scale
    }

    pub(crate) fn inverse(&self, scaled: f64) -> f64 {
        let t = scaled * self.scale + self.center;
        if self.log1p { t.exp_m1() } else { t }
    }
}

/// The clustering input derived from the feature table.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    pub(crate) n: usize,
    /// Positions (in the input) of the numeric features, in input order.
    pub(crate) numeric_index: Vec<usize>,
    /// `n x p` scaled numeric values, row-major.
    pub(crate) numeric: Vec<f64>,
    pub(crate) transforms: Vec<NumericTransform>,
    /// Positions of the categorical features, in input order.
    pub(crate) categorical_index: Vec<usize>,
    /// `n x q` category codes, row-major.
    pub(crate) codes: Vec<u32>,
    /// Per categorical feature: the values by code (sorted, missing first).
    pub(crate) categories: Vec<Vec<Option<String>>>,
    /// Per feature, in input order (categorical one-hot weights are filled in later).
    pub(crate) reports: Vec<FeatureReport>,
}

impl Prepared {
    pub(crate) fn p(&self) -> usize {
        self.numeric_index.len()
    }

    pub(crate) fn q(&self) -> usize {
        self.categorical_index.len()
    }

    /// Numeric values then one-hot categories weighted `sqrt(gamma / 2)`, so that the squared
    /// distance of two rows is their squared numeric distance plus `gamma` per differing
    /// category: k-means clusters this, and the k-selection measures are computed on it.
    pub(crate) fn embedding(&self, gamma: f64) -> (Vec<f64>, usize) {
        let (p, q) = (self.p(), self.q());
        let width = p + self.categories.iter().map(Vec::len).sum::<usize>();
        let weight = (gamma / 2.0).sqrt();
        let offsets: Vec<usize> = self
            .categories
            .iter()
            .scan(p, |offset, values| {
                let start = *offset;
                *offset += values.len();
                Some(start)
            })
            .collect();
        let mut out = vec![0.0; self.n * width];
        for (i, row) in out.chunks_exact_mut(width).enumerate() {
            row[..p].copy_from_slice(&self.numeric[i * p..(i + 1) * p]);
            for a in 0..q {
                row[offsets[a] + self.codes[i * q + a] as usize] = weight;
            }
        }
        (out, width)
    }
}

/// Checks the table and prepares it (see the module documentation).
pub(crate) fn prepare(
    columns: &[FeatureColumn],
    scaling: Scaling,
    log_transform: LogTransform,
) -> Result<Prepared, Error> {
    let first = columns.first().ok_or(Error::NoFeatures)?;
    let n = first.len();
    let mut names = std::collections::HashSet::new();
    for column in columns {
        if column.len() != n {
            return Err(Error::LengthMismatch {
                name: column.name().into(),
                found: column.len(),
                expected: n,
            });
        }
        if !names.insert(column.name()) {
            return Err(Error::DuplicateFeature(column.name().into()));
        }
    }
    if n == 0 {
        return Err(Error::TooFewEntities { k: 1, n: 0 });
    }

    let mut prepared = Prepared {
        n,
        numeric_index: Vec::new(),
        numeric: Vec::new(),
        transforms: Vec::new(),
        categorical_index: Vec::new(),
        codes: Vec::new(),
        categories: Vec::new(),
        reports: Vec::new(),
    };
    let mut numeric_columns = Vec::new();
    let mut code_columns = Vec::new();
    for (index, column) in columns.iter().enumerate() {
        match column {
            FeatureColumn::Numeric { name, values } => {
                let (scaled, transform, report) = numeric(name, values, scaling, log_transform)?;
                prepared.numeric_index.push(index);
                prepared.transforms.push(transform);
                prepared.reports.push(report);
                numeric_columns.push(scaled);
            }
            FeatureColumn::Categorical { name, values } => {
                let (codes, categories, report) = categorical(name, values)?;
                prepared.categorical_index.push(index);
                prepared.categories.push(categories);
                prepared.reports.push(report);
                code_columns.push(codes);
            }
        }
    }
    let (p, q) = (numeric_columns.len(), code_columns.len());
    prepared.numeric = vec![0.0; n * p];
    for (a, column) in numeric_columns.iter().enumerate() {
        for (i, v) in column.iter().enumerate() {
            prepared.numeric[i * p + a] = *v;
        }
    }
    prepared.codes = vec![0; n * q];
    for (a, column) in code_columns.iter().enumerate() {
        for (i, c) in column.iter().enumerate() {
            prepared.codes[i * q + a] = *c;
        }
    }
    Ok(prepared)
}

/// Sample skewness (the biased Fisher-Pearson coefficient, SciPy's default); 0 when constant.
pub(crate) fn skewness(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let m2 = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let m3 = values.iter().map(|v| (v - mean).powi(3)).sum::<f64>() / n;
    if negligible(m2.sqrt(), mean) { 0.0 } else { m3 / m2.powf(1.5) }
}

/// Whether a spread is zero up to rounding, relative to the level of the values (a constant
/// column's computed standard deviation can be a few ulps instead of 0).
fn negligible(spread: f64, level: f64) -> bool {
    spread <= 1e-12 * level.abs()
}

/// The `q`-quantile of sorted values with linear interpolation (NumPy's default).
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    let position = q * (sorted.len() - 1) as f64;
    let low = position.floor() as usize;
    let high = position.ceil() as usize;
    sorted[low] + (sorted[high] - sorted[low]) * (position - low as f64)
}

fn mean_and_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (mean, (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt())
}

fn numeric(
    name: &str,
    values: &[Option<f64>],
    scaling: Scaling,
    log_transform: LogTransform,
) -> Result<(Vec<f64>, NumericTransform, FeatureReport), Error> {
    let mut present = Vec::with_capacity(values.len());
    for (row, value) in values.iter().enumerate() {
        if let Some(v) = value {
            if !v.is_finite() {
                return Err(Error::NonFiniteValue { name: name.into(), row, value: *v });
            }
            present.push(*v);
        }
    }
    if present.is_empty() {
        return Err(Error::AllMissing(name.into()));
    }
    let missing = values.len() - present.len();
    let skew = skewness(&present);
    let min = present.iter().copied().fold(f64::INFINITY, f64::min);
    let (log1p, log1p_reason) = match (log_transform, scaling) {
        (LogTransform::Never, _) => (false, "log transform disabled".to_string()),
        (_, Scaling::None) => (false, "scaling none clusters the raw numbers".to_string()),
        _ if min < 0.0 => (false, format!("has negative values (min {})", number(min))),
        _ if skew > LOG1P_SKEWNESS => {
            (true, format!("skewness {} > {LOG1P_SKEWNESS} and all values >= 0", number(skew)))
        }
        _ => (false, format!("skewness {} <= {LOG1P_SKEWNESS}", number(skew))),
    };
    let transformed: Vec<f64> = present.iter().map(|&v| if log1p { v.ln_1p() } else { v }).collect();
    let mut sorted = transformed.clone();
    sorted.sort_by(f64::total_cmp);
    let median = quantile(&sorted, 0.5);
    let full: Vec<f64> =
        values.iter().map(|v| v.map_or(median, |v| if log1p { v.ln_1p() } else { v })).collect();
    let (center, scale) = match scaling {
        Scaling::Standard => mean_and_std(&full),
        Scaling::Robust => {
            let mut sorted_full = full.clone();
            sorted_full.sort_by(f64::total_cmp);
            let iqr = quantile(&sorted_full, 0.75) - quantile(&sorted_full, 0.25);
            let scale = if iqr > 0.0 { iqr } else { mean_and_std(&full).1 };
            (quantile(&sorted_full, 0.5), scale)
        }
        Scaling::None => (0.0, 1.0),
    };
    let constant = negligible(scale, center);
    let transform = NumericTransform { log1p, center, scale: if constant { 1.0 } else { scale } };
    let scaled = full.iter().map(|t| (t - transform.center) / transform.scale).collect();
    let imputed = (missing > 0).then(|| if log1p { median.exp_m1() } else { median });

    let mut summary = Vec::new();
    summary.push(if log1p {
        format!("log1p applied ({log1p_reason})")
    } else {
        format!("no log1p ({log1p_reason})")
    });
    summary.push(match scaling {
        Scaling::Standard => {
            format!("standardised (mean {}, sd {})", number(center), number(transform.scale))
        }
        Scaling::Robust => {
            format!("robust-scaled (median {}, scale {})", number(center), number(transform.scale))
        }
        Scaling::None => "not scaled".to_string(),
    });
    if constant && scaling != Scaling::None {
        summary.push("constant: it cannot separate clusters".to_string());
    }
    if let Some(value) = imputed {
        summary.push(format!("{missing} missing values imputed with the median {}", number(value)));
    }
    let report = FeatureReport {
        name: name.into(),
        missing,
        preparation: Preparation::Numeric {
            log1p,
            log1p_reason,
            skewness: skew,
            scaling,
            center: transform.center,
            scale: transform.scale,
            imputed,
        },
        summary: summary.join("; "),
    };
    Ok((scaled, transform, report))
}

type Categories = Vec<Option<String>>;

fn categorical(
    name: &str,
    values: &[Option<String>],
) -> Result<(Vec<u32>, Categories, FeatureReport), Error> {
    let distinct: std::collections::BTreeSet<&Option<String>> = values.iter().collect();
    if distinct.len() > MAX_CATEGORIES {
        return Err(Error::TooManyCategories { name: name.into(), count: distinct.len() });
    }
    let missing = values.iter().filter(|v| v.is_none()).count();
    if missing == values.len() {
        return Err(Error::AllMissing(name.into()));
    }
    let categories: Categories = distinct.into_iter().cloned().collect();
    let index: std::collections::HashMap<&Option<String>, u32> =
        categories.iter().enumerate().map(|(code, value)| (value, code as u32)).collect();
    let codes = values.iter().map(|v| index[v]).collect();
    let mut summary = format!("{} categories", categories.len() - usize::from(missing > 0));
    if missing > 0 {
        summary.push_str(&format!("; {missing} missing values form the category \"(missing)\""));
    }
    let report = FeatureReport {
        name: name.into(),
        missing,
        preparation: Preparation::Categorical { categories: categories.len(), one_hot_weight: None },
        summary,
    };
    Ok((codes, categories, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_column(values: &[Option<f64>]) -> FeatureColumn {
        FeatureColumn::Numeric { name: "x".into(), values: values.to_vec() }
    }

    #[test]
    fn heavy_tailed_money_is_logged_and_missing_imputed() {
        let mut values: Vec<Option<f64>> = (0..50).map(|i| Some(f64::from(i % 5))).collect();
        values.push(Some(10_000.0));
        values.push(None);
        let prepared =
            prepare(&[numeric_column(&values)], Scaling::Standard, LogTransform::Auto).expect("valid input");
        let Preparation::Numeric { log1p, imputed, skewness, .. } = &prepared.reports[0].preparation else {
            panic!("a numeric report")
        };
        assert!(*log1p && *skewness > LOG1P_SKEWNESS);
        let imputed = imputed.expect("one value is missing");
        assert!((imputed - 2.0).abs() < 1e-12, "median of the logged values, mapped back: {imputed}");
        let mean: f64 = prepared.numeric.iter().sum::<f64>() / prepared.n as f64;
        assert!(mean.abs() < 1e-12);
        assert!(prepared.reports[0].summary.contains("1 missing values imputed with the median 2"));
    }

    #[test]
    fn negative_values_are_never_logged() {
        let values: Vec<Option<f64>> =
            (0..50).map(|i| Some(if i == 0 { -1.0 } else { f64::from(i).powi(4) })).collect();
        let prepared =
            prepare(&[numeric_column(&values)], Scaling::Robust, LogTransform::Auto).expect("valid input");
        let Preparation::Numeric { log1p, log1p_reason, .. } = &prepared.reports[0].preparation else {
            panic!("a numeric report")
        };
        assert!(!log1p);
        assert_eq!(log1p_reason, "has negative values (min -1)");
    }

    #[test]
    fn missing_categories_get_code_zero() {
        let column = FeatureColumn::Categorical {
            name: "plan".into(),
            values: vec![Some("pro".into()), None, Some("basic".into()), Some("pro".into())],
        };
        let prepared = prepare(&[column], Scaling::Standard, LogTransform::Auto).expect("valid input");
        assert_eq!(prepared.codes, vec![2, 0, 1, 2]);
        let (embedding, width) = prepared.embedding(2.0);
        assert_eq!(width, 3);
        assert_eq!(&embedding[..3], &[0.0, 0.0, 1.0]);
    }

    #[test]
    fn bad_tables_are_rejected() {
        let a = numeric_column(&[Some(1.0), Some(2.0)]);
        let b = FeatureColumn::Numeric { name: "y".into(), values: vec![Some(1.0)] };
        assert!(matches!(
            prepare(&[a.clone(), b], Scaling::Standard, LogTransform::Auto),
            Err(Error::LengthMismatch { .. })
        ));
        assert!(matches!(
            prepare(&[a.clone(), a], Scaling::Standard, LogTransform::Auto),
            Err(Error::DuplicateFeature(_))
        ));
        let nan = numeric_column(&[Some(f64::NAN)]);
        assert!(matches!(
            prepare(&[nan], Scaling::Standard, LogTransform::Auto),
            Err(Error::NonFiniteValue { row: 0, .. })
        ));
        let none = numeric_column(&[None, None]);
        assert!(matches!(prepare(&[none], Scaling::Standard, LogTransform::Auto), Err(Error::AllMissing(_))));
        assert!(matches!(prepare(&[], Scaling::Standard, LogTransform::Auto), Err(Error::NoFeatures)));
    }
}
