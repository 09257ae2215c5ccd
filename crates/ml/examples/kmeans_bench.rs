//! Times segmenta's k-means on a matrix written by `bench/kmeans/bench.py`: raw little-endian
//! f64 values, row-major, `rows x cols`.
//!
//! `kmeans_bench DATA ROWS COLS K SEED THREADS [MAX_ITER]` runs one k-means++ seeding and the
//! Lloyd iterations on a rayon pool of THREADS threads and prints one JSON line with the wall
//! time of the seeding and of the whole fit (the file read is not timed), the inertia and the
//! iteration count. Build it with `cargo build --profile bench -p segmenta-ml --example
//! kmeans_bench`.

use std::time::Instant;

use ndarray::Array2;
use segmenta_ml::cluster::kmeans::{KMeansConfig, kmeans, kmeans_plusplus};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 7 {
        eprintln!("usage: kmeans_bench DATA ROWS COLS K SEED THREADS [MAX_ITER]");
        std::process::exit(2);
    }
    let number = |i: usize| -> usize { args[i].parse().expect("a whole number argument") };
    let (rows, cols, k, seed, threads) = (number(2), number(3), number(4), number(5), number(6));
    let max_iter = if args.len() > 7 { number(7) } else { 300 };
    let bytes = std::fs::read(&args[1]).expect("the data file is readable");
    assert_eq!(bytes.len(), rows * cols * 8, "the data file holds rows x cols f64 values");
    let values: Vec<f64> =
        bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))).collect();
    let data = Array2::from_shape_vec((rows, cols), values).expect("rows x cols");
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool");
    let config = KMeansConfig { k, n_init: 1, max_iter, tol: 1e-4, seed: seed as u64 };

    pool.install(|| {
        // The whole fit first, then the seeding alone (for the breakdown).
        let start = Instant::now();
        let fit = kmeans(data.view(), &config).expect("valid input");
        let seconds = start.elapsed().as_secs_f64();
        let start = Instant::now();
        let init = kmeans_plusplus(data.view(), k, seed as u64).expect("valid input");
        let init_seconds = start.elapsed().as_secs_f64();
        std::hint::black_box(init);
        println!(
            "{{\"impl\": \"segmenta\", \"seconds\": {seconds}, \"init_seconds\": {init_seconds}, \
             \"inertia\": {:?}, \"n_iter\": {}}}",
            fit.inertia, fit.n_iter
        );
    });
}
