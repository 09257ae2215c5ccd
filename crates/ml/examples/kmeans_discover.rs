//! Times the whole segment discovery ([`discover`] with default options) on the first ROWS rows
//! of a matrix written by `bench/kmeans/bench.py` (raw little-endian f64, row-major).
//!
//! `kmeans_discover DATA COLS ROWS THREADS [K_MAX]` prints the wall time, the chosen k, the
//! explanation, the stability and the first cluster's rule. Build it with
//! `cargo build --profile bench -p segmenta-ml --example kmeans_discover`.

use std::time::Instant;

use segmenta_ml::cluster::{DiscoveryOptions, FeatureColumn, KChoice, discover};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: kmeans_discover DATA COLS ROWS THREADS [K_MAX]");
        std::process::exit(2);
    }
    let number = |i: usize| -> usize { args[i].parse().expect("a whole number argument") };
    let (cols, rows, threads) = (number(2), number(3), number(4));
    let k_max = if args.len() > 5 { number(5) } else { 10 };
    let bytes = std::fs::read(&args[1]).expect("the data file is readable");
    let values: Vec<f64> = bytes
        .chunks_exact(8)
        .take(rows * cols)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    assert_eq!(values.len(), rows * cols, "the file holds at least ROWS rows");
    let columns: Vec<FeatureColumn> = (0..cols)
        .map(|j| FeatureColumn::Numeric {
            name: format!("x{j}"),
            values: values.chunks_exact(cols).map(|r| Some(r[j])).collect(),
        })
        .collect();
    let options = DiscoveryOptions { k: KChoice::Auto { min: 2, max: k_max }, ..Default::default() };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool");
    pool.install(|| {
        let start = Instant::now();
        let found = discover(&columns, &options).expect("valid input");
        let seconds = start.elapsed().as_secs_f64();
        println!("discover on {rows} x {cols}, {threads} threads: {seconds:.2} s");
        println!("k = {}: {}", found.k, found.selection.explanation);
        if let Some(stability) = &found.stability {
            println!("stability: mean ARI {:.4}, min {:.4}", stability.mean, stability.min);
        }
        let first = &found.clusters[0];
        println!(
            "cluster {} ({}): {} [fidelity {:.4}]",
            first.id, first.persona.name, first.rule, first.fidelity
        );
    });
}
