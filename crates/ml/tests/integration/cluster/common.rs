//! Test data and the Python runner shared by the clustering tests.

use std::path::Path;
use std::process::Command;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use segmenta_ml::cluster::FeatureColumn;

/// The workspace root (the Python scripts live under `tests/differential`).
pub const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// One standard normal draw (Box-Muller).
pub fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = 1.0 - rng.random::<f64>();
    let v: f64 = rng.random::<f64>();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// `per_center` points around each centre with standard deviation `std`, shuffled: row-major
/// values and the true centre of each row.
pub fn blobs(centers: &[Vec<f64>], per_center: usize, std: f64, seed: u64) -> (Vec<f64>, Vec<u32>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rows: Vec<(Vec<f64>, u32)> = Vec::new();
    for (c, center) in centers.iter().enumerate() {
        for _ in 0..per_center {
            rows.push((center.iter().map(|m| m + std * normal(&mut rng)).collect(), c as u32));
        }
    }
    for i in (1..rows.len()).rev() {
        let j = rng.random_range(0..=i);
        rows.swap(i, j);
    }
    let truth = rows.iter().map(|(_, c)| *c).collect();
    (rows.into_iter().flat_map(|(r, _)| r).collect(), truth)
}

/// Numeric feature columns `x0, x1, ...` from row-major values.
pub fn numeric_columns(values: &[f64], d: usize) -> Vec<FeatureColumn> {
    (0..d)
        .map(|j| FeatureColumn::Numeric {
            name: format!("x{j}"),
            values: values.chunks_exact(d).map(|row| Some(row[j])).collect(),
        })
        .collect()
}

/// The fixed dataset `test-data/cluster/customers.csv` (empty fields are missing; a column is
/// numeric when every present value parses as a number).
pub fn customers() -> Vec<FeatureColumn> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-data/cluster/customers.csv");
    let text = std::fs::read_to_string(&path).expect("the customers fixture is readable");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header line").split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    header
        .iter()
        .enumerate()
        .map(|(j, name)| {
            let cells: Vec<&str> = rows.iter().map(|r| r[j]).collect();
            if cells.iter().all(|c| c.is_empty() || c.parse::<f64>().is_ok()) {
                FeatureColumn::Numeric {
                    name: name.to_string(),
                    values: cells.iter().map(|c| c.parse().ok()).collect(),
                }
            } else {
                FeatureColumn::Categorical {
                    name: name.to_string(),
                    values: cells.iter().map(|c| (!c.is_empty()).then(|| c.to_string())).collect(),
                }
            }
        })
        .collect()
}

/// Runs `python3 tests/differential/SCRIPT ARGS... INPUT` with `cases` written to a temporary
/// JSON file and returns the JSON list it prints, one answer per case. Fails (never skips) with
/// instructions when Python or the package `module` is missing.
pub fn python(
    script: &str,
    args: &[&str],
    module: &str,
    cases: &[serde_json::Value],
) -> Vec<serde_json::Value> {
    let root = Path::new(WORKSPACE);
    let script = root.join("tests/differential").join(script);
    assert!(script.is_file(), "missing {}", script.display());
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("input.json");
    std::fs::write(&path, serde_json::to_string(cases).expect("JSON input")).expect("the input is written");
    let out = match Command::new("python3").arg(&script).args(args).arg(&path).current_dir(root).output() {
        Ok(out) => out,
        Err(error) => panic!(
            "the clustering differential tests need python3 ({error}); install Python 3 and then \
             `pip install -r tests/differential/requirements.txt` from the workspace root"
        ),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("ModuleNotFoundError") || stderr.contains("No module named") {
        panic!(
            "the clustering differential tests need the Python package `{module}` (and NumPy): run \
             `pip install -r tests/differential/requirements.txt` from the workspace root\n{stderr}"
        );
    }
    assert!(
        out.status.success(),
        "{} failed (exit {:?})\n--- stderr ---\n{stderr}",
        script.display(),
        out.status.code()
    );
    let answers: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("the script prints a JSON list");
    assert_eq!(answers.len(), cases.len(), "one answer per case");
    answers
}

/// Row-major values as a JSON array of rows.
pub fn json_rows(values: &[f64], d: usize) -> serde_json::Value {
    values.chunks_exact(d).map(|r| r.to_vec()).collect::<Vec<_>>().into()
}

/// Relative difference.
pub fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
}
