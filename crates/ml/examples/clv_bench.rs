//! Benchmark of the CLV fit (and optionally the predictions) on a summaries CSV written by
//! `bench/clv/generate.py` (`frequency,recency,T,monetary`). Prints one JSON line: the fitted
//! parameters and the in-process time of each repetition (reading the CSV excluded), as
//! `bench/clv/lifetimes_fit.py` does for lifetimes.
//!
//! ```text
//! cargo run --profile bench -p segmenta-ml --example clv_bench -- /tmp/clv_100k.csv --repeat 5
//! cargo run --profile bench -p segmenta-ml --example clv_bench -- /tmp/clv_1m.csv --predict
//! ```
//!
//! `--predict` also times `predict_all` (90-unit horizon, 12-month CLV at 1% a month, day
//! units). Threads: rayon's default (all cores) unless `RAYON_NUM_THREADS` is set.

use std::time::Instant;

use segmenta_ml::clv::{self, ClvOptions, CustomerSummary, FitOptions, PredictOptions, TimeUnit};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: clv_bench SUMMARIES.csv [--repeat N] [--predict]");
        std::process::exit(2);
    };
    let repeat: usize = args
        .iter()
        .position(|a| a == "--repeat")
        .and_then(|i| args.get(i + 1))
        .map_or(1, |n| n.parse().expect("--repeat takes a number"));
    let predict = args.iter().any(|a| a == "--predict");

    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let summaries: Vec<CustomerSummary> = text
        .lines()
        .skip(1)
        .filter(|line| !line.is_empty())
        .map(|line| {
            let v: Vec<f64> = line.split(',').map(|f| f.parse().expect("numeric CSV field")).collect();
            CustomerSummary::new(v[0], v[1], v[2], v[3]).expect("valid summary")
        })
        .collect();

    let mut seconds = Vec::with_capacity(repeat);
    let mut bg_seconds = Vec::with_capacity(repeat);
    let mut fit = None;
    let options = FitOptions::default();
    for _ in 0..repeat {
        let start = Instant::now();
        let result = clv::fit(&summaries, TimeUnit::Day, &options).expect("fits");
        seconds.push(start.elapsed().as_secs_f64());
        fit = Some(result);
        // The BG/NBD part alone, for the split between the two models.
        let start = Instant::now();
        clv::BgNbd::fit(&summaries, &options).expect("fits");
        bg_seconds.push(start.elapsed().as_secs_f64());
    }
    let fit = fit.expect("at least one repetition");
    let (bg, gg) = (fit.bg_nbd.model, fit.gamma_gamma.model);
    let mut predict_seconds = Vec::new();
    if predict {
        let batch: Vec<Option<CustomerSummary>> = summaries.iter().copied().map(Some).collect();
        let options = PredictOptions::new(90.0, ClvOptions::default()).expect("valid options");
        for _ in 0..repeat {
            let start = Instant::now();
            let out = clv::predict_all(&fit.model(), &batch, &options);
            predict_seconds.push(start.elapsed().as_secs_f64());
            assert_eq!(out.len(), batch.len());
        }
    }
    println!(
        "{{\"tool\": \"segmenta\", \"customers\": {}, \"threads\": {}, \"seconds\": {:?}, \
         \"bg_nbd_seconds\": {:?}, \"predict_seconds\": {:?}, \"bg_nbd\": {{\"r\": {}, \"alpha\": {}, \"a\": {}, \"b\": {}, \
         \"log_likelihood\": {}, \"iterations\": {}, \"patterns\": {}}}, \"gamma_gamma\": {{\"p\": {}, \
         \"q\": {}, \"gamma\": {}, \"iterations\": {}}}}}",
        summaries.len(),
        rayon::current_num_threads(),
        seconds,
        bg_seconds,
        predict_seconds,
        bg.r(),
        bg.alpha(),
        bg.a(),
        bg.b(),
        fit.bg_nbd.log_likelihood,
        fit.bg_nbd.iterations,
        fit.bg_nbd.patterns,
        gg.p(),
        gg.q(),
        gg.gamma(),
        fit.gamma_gamma.iterations,
    );
}
