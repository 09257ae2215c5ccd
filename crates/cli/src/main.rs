//! The `segmenta` command: argument parsing, terminal output, progress, and exit codes.
//!
//! Exit codes: 0 success; 2 a problem in the user's input (configuration, rules, data,
//! arguments); 1 the environment (files that cannot be read or written); 3 a bug.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use segmenta_engine::{
    AsOf, BadRows, Engine, EngineOptions, Error, ErrorCode, ErrorKind, MembersFormat, MembersQuery, Progress,
    Project, RunOptions, formats,
};
use serde_json::json;

/// `println!` that ends the process quietly when standard output is closed (`segmenta members x
/// | head`) instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($arg)*) {
            stdout_failed(e)
        }
    }};
}

fn stdout_failed(error: std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: cannot write to standard output: {error}");
    std::process::exit(1)
}

/// segmenta: customer segmentation as code.
#[derive(Debug, Parser)]
#[command(name = "segmenta", version, about, long_about = None)]
struct Cli {
    /// Print machine-readable JSON on standard output instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Log the stages of the work with their timings on standard error (-v: info, -vv: debug);
    /// RUST_LOG (e.g. `RUST_LOG=segmenta_query=debug`) takes precedence.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// How `run` and `backfill` evaluate: bad rows, threads, strictness.
#[derive(clap::Args, Debug)]
struct EvaluationArgs {
    /// What to do with rows that do not fit the schema.
    #[arg(long, value_enum, default_value = "strict")]
    on_bad_rows: OnBadRows,
    /// Worker threads. Default: all cores.
    #[arg(long)]
    threads: Option<usize>,
    /// Fail (exit 2) when more than `[project] max_unknown_share` (default 1%) of the events
    /// or of a child entity's rows have a key that matches no entity, instead of warning.
    #[arg(long)]
    strict: bool,
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Create a token and print it once (only its SHA-256 is stored).
    Create {
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// What the token may do: viewer (reads), editor (also changes), admin (everything).
        #[arg(long)]
        role: String,
        /// A name to know it by (letters, digits, `-`, `_`, `.`), e.g. crm-sync.
        #[arg(long)]
        name: String,
    },
    /// List the tokens (names, roles, prefixes; never the tokens).
    List {
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
    },
    /// Revoke a token by name: a running server refuses it within a second.
    Revoke {
        /// The token's name.
        name: String,
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OnBadRows {
    /// Stop at the first bad row with its file, line and column.
    Strict,
    /// Write bad rows to rejects.csv in the output folder and go on.
    Reject,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compute traits and segment memberships and write them to a run folder.
    Run {
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// Evaluate as of this date (the whole day counts) or RFC 3339 instant. Default: the
        /// project's `[project] as_of`, else now.
        #[arg(long)]
        as_of: Option<String>,
        /// Output folder. Default: a new run folder in the project's store.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        evaluation: EvaluationArgs,
    },
    /// Write the demo company (a realistic B2B SaaS customer base) as a project in DIR, and run
    /// it.
    Demo {
        /// The folder to write the project into (created if needed).
        dir: PathBuf,
        /// Number of accounts (about 100 events each; 1000000 makes a benchmark-scale project).
        #[arg(long, default_value_t = segmenta_engine::DEMO_DEFAULT_ACCOUNTS)]
        accounts: u64,
        /// The seed: the same seed and size give the same data.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Worker threads. Default: all cores.
        #[arg(long)]
        threads: Option<usize>,
        /// Only write the project; do not run it.
        #[arg(long)]
        no_run: bool,
        /// Write into a folder that holds other files (the demo's files are replaced).
        #[arg(long)]
        force: bool,
    },
    /// Write a starter segmenta.toml for the data files of a folder (entities and keys, the
    /// events' time and type, starter traits, RFM, two segments), then validate it.
    Init {
        /// The project folder to write segmenta.toml into.
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// The folder holding the data files. Default: the project folder.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Replace an existing segmenta.toml.
        #[arg(long)]
        force: bool,
    },
    /// Check the project file, the data files' columns, every trait and every rule, and read
    /// the first 10,000 events as a run would (values that will not parse, unknown keys).
    Validate {
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// Fail (exit 2) when more than `[project] max_unknown_share` of the sampled events have
        /// a key that matches no entity, instead of warning.
        #[arg(long)]
        strict: bool,
    },
    /// Static lists: import ids as a segment, or freeze a segment's current members.
    List {
        #[command(subcommand)]
        command: ListCommand,
    },
    /// Discover segments: cluster the entities on features, describe every cluster (a persona)
    /// and turn it into a rule. Writes clusters.parquet and discovery.json to a discovery folder.
    #[command(long_about = "Discover segments: cluster the entities on features, describe every cluster \
(a persona) and turn it into a rule.

The project is evaluated as of --as-of (as `run` would, without writing a run) and the features \
are read from its attributes, traits, scores, schemes and parent.* columns. Writes \
OUT/clusters.parquet (entity_id, cluster) and OUT/discovery.json (k and how it was chosen, \
preprocessing, stability, and per cluster its size, persona, rule and the rule's fidelity), and \
prints the personas. Cluster ids stay stable between discoveries on the same features: the \
centroids are kept in the project's store and matched on the next discovery. See docs/discovery.md.")]
    Discover {
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// Features to cluster on, comma-separated: numeric (int, float) or categorical (string)
        /// attributes, traits, scores, schemes, or parent.NAME columns.
        #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
        features: Vec<String>,
        /// Number of clusters: `auto` (tries 2 to 10 and explains the choice), a number, or a range
        /// MIN..MAX to choose from.
        #[arg(long, default_value = "auto")]
        k: String,
        /// Clustering algorithm. `auto`: k-prototypes when a feature is categorical, else k-means.
        #[arg(long, value_enum, default_value = "auto")]
        algorithm: AlgorithmArg,
        /// Scaling of numeric features (with `standard` and `robust`, heavy-tailed non-negative
        /// features are log1p-transformed first; `none` clusters the raw numbers).
        #[arg(long, value_enum, default_value = "standard")]
        scaling: ScalingArg,
        /// Seed of every random choice: the same seed and data give the same output.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Evaluate as of this date (the whole day counts) or RFC 3339 instant. Default: the
        /// project's as_of, else now.
        #[arg(long)]
        as_of: Option<String>,
        /// Output folder. Default: a new folder in the project store's discoveries/.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Add every cluster to segmenta.toml as a rule segment named PREFIX_ID_PERSONA.
        #[arg(long)]
        save: bool,
        /// Prefix of the segment names --save writes.
        #[arg(long, default_value = segmenta_engine::DEFAULT_SEGMENT_PREFIX)]
        prefix: String,
        /// With --save, also save the rules the discovery warns about (a rule that matches every
        /// entity or none, or whose fidelity is below 70%); without it such a save is refused.
        #[arg(long, requires = "save")]
        force: bool,
        /// Ignore the centroids kept by the last discovery on these features: ids follow cluster
        /// size, largest first (the new centroids are kept for next time).
        #[arg(long)]
        reset_ids: bool,
        /// What to do with rows that do not fit the schema.
        #[arg(long, value_enum, default_value = "strict")]
        on_bad_rows: OnBadRows,
        /// Worker threads (evaluation and clustering). Default: all cores.
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Customer lifetime value: fit BG/NBD and Gamma-Gamma on purchase events and predict P(alive),
    /// expected purchases, expected spend and discounted CLV per entity.
    #[command(long_about = "Customer lifetime value: fit BG/NBD and Gamma-Gamma (Fader, Hardie & Lee \
2005) on purchase events as of --as-of, and predict per entity P(alive), expected purchases in the \
horizon, expected spend per purchase and discounted CLV.

Options override the project's [clv] section (--purchase and --amount are required when it has \
none). Writes OUT/clv_params.json (the fitted parameters, log-likelihoods, convergence) and \
OUT/clv.parquet (entity_id and the [clv] traits). The same values are traits of every run of a \
project with [clv].

With --holdout H, the models are also fitted on the purchases before as-of minus H and their \
predicted repeat purchases in H compared with the purchase days that followed, per customer \
(OUT/holdout.parquet: entity_id, frequency_cal, recency_cal, T_cal, predicted, actual) and in \
total and by calibration repeat purchases (OUT/holdout.json), as lifetimes' \
calibration_and_holdout_data does. See docs/predictive.md.")]
    Clv {
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// Summaries use purchases up to and including this date (or before this RFC 3339
        /// instant). Default: the project's as_of, else now.
        #[arg(long)]
        as_of: Option<String>,
        /// The condition over event columns that makes an event a purchase.
        #[arg(long)]
        purchase: Option<String>,
        /// The numeric event column holding the purchase amount.
        #[arg(long)]
        amount: Option<String>,
        /// The unit the models are fitted in. Default: week.
        #[arg(long, value_enum)]
        time_unit: Option<TimeUnitArg>,
        /// Horizon of the expected purchases: N time units, or a window such as 90d. Default: 90d.
        #[arg(long)]
        horizon: Option<String>,
        /// Months of discounted CLV. Default: 12.
        #[arg(long)]
        months: Option<u32>,
        /// Monthly discount rate of CLV. Default: 0.01.
        #[arg(long)]
        discount_rate: Option<f64>,
        /// Holdout check: also fit on the purchases before as-of minus this (N time units, or a
        /// window of days or weeks such as 39w) and compare the predicted repeat purchases in it
        /// with the actual ones (OUT/holdout.json, OUT/holdout.parquet).
        #[arg(long)]
        holdout: Option<String>,
        /// Output folder. Default: a new folder in the project store's clv/.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// What to do with rows that do not fit the schema.
        #[arg(long, value_enum, default_value = "strict")]
        on_bad_rows: OnBadRows,
        /// Worker threads. Default: all cores.
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Predictive models: `predict churn`.
    Predict {
        #[command(subcommand)]
        command: PredictCommand,
    },
    /// The size of an ad-hoc rule on the latest run (no events are read).
    Preview {
        /// The rule, in the rule language.
        rule: String,
        /// How many member ids to show.
        #[arg(long, default_value_t = 10)]
        sample: usize,
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
    },
    /// Serve the project over HTTP (docs/server.md): segments, members, entities, explanations
    /// and previews of the latest run, and for editors segment edits and runs. Every endpoint
    /// but /health and /openapi.json needs a token (`segmenta token create`). Stops on Ctrl-C
    /// or SIGTERM.
    Serve {
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// The address to listen on (a loopback address by default; port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Worker threads of the engine. Default: all cores.
        #[arg(long)]
        threads: Option<usize>,
        /// Run the project by itself when events were posted and at least this long passed
        /// since its last run (`30s`, `5m`), writing a snapshot. Default: never (posted events
        /// move memberships without a run anyway; see --no-live).
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        refresh: Option<std::time::Duration>,
        /// Run the project by itself every DURATION, events or not (`1h`, `1d`), so windowed
        /// traits close as time passes (a project without a fixed `as_of` moves to now).
        /// Default: never.
        #[arg(long, value_name = "DURATION", value_parser = duration)]
        sweep: Option<std::time::Duration>,
        /// Do not keep the served run's evaluation live: posted events then count from the
        /// next run only. By default, each posted batch moves traits and memberships within
        /// moments (docs/server.md, "Memberships that follow events"), at the cost of one
        /// evaluation when the server starts and the memory to keep it.
        #[arg(long)]
        no_live: bool,
    },
    /// Why an entity is (or is not) in a segment: the rule as a tree with each condition's truth
    /// (true, false, or unknown because a value is missing) and the entity's values, the scheme
    /// tiers tried, in_segment references and macro segments explained. Without SEGMENT, every
    /// segment of the latest run.
    Explain {
        /// The entity's id (its key).
        entity: String,
        /// The segment; default: every segment.
        segment: Option<String>,
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
    },
    /// Create, list and revoke the API tokens of `segmenta serve`.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// List the project's snapshots: every run, by its as-of instant (a later run as of the same
    /// instant replaces the earlier one).
    Snapshots {
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
    },
    /// Delete every snapshot but the N newest (by as-of) and the latest run: their catalog
    /// entries, and their run folders in the store. For a server that runs by itself
    /// (`serve --sweep`), run it from cron.
    Prune {
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// How many of the newest snapshots to keep (at least 1).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        keep: u64,
        /// Say what would be deleted, and delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write a snapshot at every date from --from to --to, each the run `run --as-of DATE`
    /// writes, reading the project's files once (and the events once per group of dates).
    Backfill {
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// The first date (each date means its whole day, as in `run --as-of`).
        #[arg(long)]
        from: String,
        /// The last date (included when the steps land on it).
        #[arg(long)]
        to: String,
        /// How far apart: 1d, 7d, 1w, 1mo, 3mo (months keep the day of the month, clamped to the
        /// month's end; a start on a month's last day stays on month ends).
        #[arg(long)]
        every: String,
        #[command(flatten)]
        evaluation: EvaluationArgs,
    },
    /// A segment over the snapshots, in as-of order: size, share, and how many entered and
    /// exited since the snapshot before.
    History {
        /// The segment's name.
        segment: String,
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
    },
    /// The changes of membership a server's live view recorded as posted events moved
    /// entities in and out (docs/server.md): sequence number, when, segment, entity, entered
    /// or exited, oldest first.
    Changes {
        /// One segment; default: every segment.
        segment: Option<String>,
        /// Changes after this sequence number (0: from the first).
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many (1 to 10,000).
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
    },
    /// The ids that entered and exited a segment (or every segment) between two snapshots.
    Diff {
        /// One segment; default: every segment the project declares that both snapshots computed.
        segment: Option<String>,
        #[command(flatten)]
        between: Between,
    },
    /// The transition matrix of a scheme's tiers (or the RFM segments: `rfm`) between two
    /// snapshots, with `(new)` and `(gone)` for entities that appear or leave.
    Transitions {
        /// The scheme, or `rfm`.
        scheme: String,
        #[command(flatten)]
        between: Between,
    },
    /// The KPIs of every segment and of the whole population at a snapshot: size, share,
    /// revenue, ARPA, CLV mean, goal conversion; with --compare, logo retention and churn, gross
    /// and net dollar retention and acquisition between the two snapshots.
    Kpis {
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// The snapshot reported: its id or as-of date; default: the latest run.
        #[arg(long)]
        at: Option<String>,
        /// A second snapshot: retention and acquisition run from the earlier of the two to the
        /// later.
        #[arg(long)]
        compare: Option<String>,
        /// One row per segment (default), or per owner or channel (their segments' members
        /// together).
        #[arg(long, value_enum, default_value = "segment")]
        by: KpiByArg,
        /// Worker threads of the goal's evaluation (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Judge every segment of a snapshot: measurable (missing values), accessible (reachable
    /// contacts), substantial (size, revenue share), differentiated (overlap), actionable (KPI
    /// lift) and stable (turnover), each a pass or a flag with the reason (`[quality]`).
    Quality {
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// The snapshot judged: its id or as-of date; default: the latest run.
        #[arg(long)]
        at: Option<String>,
        /// Worker threads of the evaluations it needs (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Assign every account of a CS engagement model to a CSM of that model (`[coverage]` and its
    /// roster), balancing revenue and account count and keeping earlier assignments; report CSMs
    /// needed, available and short per model. Writes coverage.parquet into the snapshot.
    Coverage {
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// The snapshot covered: its id or as-of date; default: the latest run.
        #[arg(long)]
        at: Option<String>,
    },
    /// List the members of a segment in the latest run (or in a past snapshot, with --at).
    Members {
        /// The segment's name.
        segment: String,
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// Read this snapshot instead of the latest run: its id, or the as-of it was run with
        /// (a date, as `run --as-of` reads it, or an RFC 3339 instant).
        #[arg(long)]
        at: Option<String>,
        /// Columns of the run to add after `entity_id` (attributes, traits, scores, schemes,
        /// RFM values), comma-separated: `--with plan,orders`.
        #[arg(long, value_delimiter = ',')]
        with: Vec<String>,
        /// Output format. Default: one id per line, or `csv` with `--with`.
        #[arg(long, value_enum)]
        format: Option<MembersFormatArg>,
        /// Write to this file (replaced whole once complete) instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// Two snapshots of a project, for `diff` and `transitions`.
#[derive(Debug, clap::Args)]
struct Between {
    /// The earlier snapshot: its id or as-of date.
    #[arg(long)]
    from: String,
    /// The later snapshot: its id or as-of date.
    #[arg(long)]
    to: String,
    /// The project folder (holding segmenta.toml).
    #[arg(long, short, default_value = ".")]
    project: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MembersFormatArg {
    /// One id per line (no `--with`).
    Lines,
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// A Parquet file (needs `--output`).
    Parquet,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TimeUnitArg {
    /// Days.
    Day,
    /// Weeks of 7 days.
    Week,
}

#[derive(Debug, Subcommand)]
enum PredictCommand {
    /// Churn propensity: train on the traits as of a past cutoff, check on a later holdout, score
    /// every active entity as of now.
    #[command(long_about = "Churn propensity. With window W and as-of T: a logistic regression is \
trained on the features as of T-2W of the entities active then (an event before, no churn event \
before), labelled by whether they churned within W after; it is evaluated (AUC, calibration) on \
the entities active at T-W against what happened by T; and it scores every entity active at T \
with its top drivers. With --inactive N (or [churn] inactive), churned means no activity event \
for N (which is also W): active means an activity event within N before, and churned within W \
after means none in it. A holdout with fewer than 30 churned or 30 retained entities gets a \
warning: its AUC is too uncertain to read.

Options override the project's [churn] section (--churned or --inactive, and --features, are \
required when it has none). Writes OUT/churn_model.json (coefficients, cutoffs, AUC, calibration table) and \
OUT/churn.parquet (entity_id, churn_risk, churn_drivers). Runs of a project with [churn] compute \
the same churn_risk and churn_drivers traits. See docs/predictive.md.")]
    Churn {
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
        /// Score as of this date (the whole day counts) or RFC 3339 instant. Default: the
        /// project's as_of, else now.
        #[arg(long)]
        as_of: Option<String>,
        /// The condition over event columns of the event that marks a churn.
        #[arg(long)]
        churned: Option<String>,
        /// Churn by inactivity instead: churned means no activity for this long (e.g. 90d), which
        /// is also the window.
        #[arg(long)]
        inactive: Option<String>,
        /// With --inactive: the condition over event columns of an activity event. Default:
        /// every event.
        #[arg(long)]
        activity: Option<String>,
        /// Features, comma-separated: attributes and traits (numbers, booleans, or strings, which
        /// are one-hot encoded).
        #[arg(long, value_delimiter = ',', num_args = 1..)]
        features: Option<Vec<String>>,
        /// "Churned within the next window", and the spacing of the cutoffs. Default: 90d.
        #[arg(long)]
        window: Option<String>,
        /// Output folder. Default: a new folder in the project store's predictions/.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// What to do with rows that do not fit the schema.
        #[arg(long, value_enum, default_value = "strict")]
        on_bad_rows: OnBadRows,
        /// Worker threads. Default: all cores.
        #[arg(long)]
        threads: Option<usize>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AlgorithmArg {
    /// k-prototypes when a feature is categorical, else k-means.
    Auto,
    /// k-means with k-means++ seeding (categorical features one-hot encoded).
    Kmeans,
    /// Huang's k-prototypes (numeric and categorical features).
    Kprototypes,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ScalingArg {
    /// Subtract the mean, divide by the standard deviation.
    Standard,
    /// Subtract the median, divide by the interquartile range.
    Robust,
    /// The raw numbers (no log1p either).
    None,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Unknown {
    /// Stop and list them.
    Error,
    /// Leave them out of the list.
    Drop,
    /// Keep them in the list (every run reports them).
    Keep,
}

#[derive(Debug, Subcommand)]
enum ListCommand {
    /// Import a CSV of ids as the static segment NAME (written to lists/NAME.csv and added to
    /// segmenta.toml).
    Import {
        /// The static segment's name.
        name: String,
        /// The CSV file of ids.
        #[arg(long, short)]
        file: PathBuf,
        /// The column holding the ids. Default: `entity_id`, else the entity's key column, else
        /// the only column.
        #[arg(long)]
        column: Option<String>,
        /// What to do with ids that are not entities.
        #[arg(long, value_enum, default_value = "error")]
        unknown: Unknown,
        /// Overwrite the ids of an existing static list of that name.
        #[arg(long)]
        replace: bool,
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
    },
    /// Freeze the members of SEGMENT in the latest run into the static segment NAME.
    Freeze {
        /// The segment whose members to freeze.
        segment: String,
        /// The static segment's name.
        #[arg(long = "as")]
        name: String,
        /// Overwrite the ids of an existing static list of that name.
        #[arg(long)]
        replace: bool,
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
    },
}

fn print_list(report: &segmenta_engine::ListReport, json: bool) {
    if json {
        out!(
            "{}",
            json!({
                "name": report.name,
                "file": report.file,
                "read": report.read,
                "duplicates": report.duplicates,
                "unknown_ids": report.unknown,
                "unknown_sample": report.unknown_sample,
                "written": report.written,
            })
        );
        return;
    }
    out!("static segment `{}`: {} ids written to {}", report.name, report.written, report.file);
    out!("  read {} ids, {} repeated", report.read, report.duplicates);
    if report.unknown > 0 {
        out!(
            "  {} ids are not entities ({}){}",
            report.unknown,
            report.unknown_sample.join(", "),
            if report.written < report.read - report.duplicates { ", left out" } else { ", kept" }
        );
    }
}

struct Spinner {
    bar: Option<ProgressBar>,
}

impl Spinner {
    fn new(enabled: bool) -> Spinner {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("the template is valid"),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        Spinner { bar }
    }
}

impl Progress for Spinner {
    fn step(&self, message: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.to_string());
        }
    }

    fn position(&self, step: &str, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            let percent = (done * 100).checked_div(total).unwrap_or(100);
            bar.set_message(format!("{step}: {percent}%"));
        }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.println(format!("  done: {}", bar.message()));
        }
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Warnings on standard error, each with its hint.
fn print_warnings(warnings: &[segmenta_engine::formats::Warning]) {
    for warning in warnings {
        eprintln!("warning: {}\n  hint: {}", warning.message, warning.hint);
    }
}

fn print_segments(report: &segmenta_engine::RunReport) {
    let width = report.segments.iter().map(|s| s.name.len()).max().unwrap_or(7).max(7);
    out!("{:<width$}  {:>10}  {:>7}", "segment", "size", "share");
    for s in &report.segments {
        out!("{:<width$}  {:>10}  {:>6.1}%", s.name, s.size, s.share * 100.0);
    }
    let summary = &report.summary;
    out!();
    print_warnings(&summary.warnings);
    for list in report.static_lists.iter().filter(|l| l.unknown > 0) {
        eprintln!(
            "warning: static list `{}`: {} of its {} ids are not entities (e.g. {})",
            list.name,
            list.unknown,
            list.ids,
            list.unknown_sample.join(", ")
        );
    }
    out!("entities: {}", summary.entities);
    if let Some(events) = &summary.events {
        out!(
            "events: {} read, {} used, {} ignored ({} unknown entity, {} after as-of, {} without time), {} rejected",
            events.read,
            events.used,
            events.ignored,
            events.ignored_unknown_entity,
            events.ignored_after_as_of,
            events.ignored_no_time,
            events.rejected
        );
        if events.posted > 0 {
            out!("  of which {} posted to a server ({})", events.posted, segmenta_engine::EVENT_LOG);
        }
    }
    if summary.rejected_rows > 0 {
        out!(
            "rejected rows: {} (see {})",
            summary.rejected_rows,
            report.output.join("rejects.csv").display()
        );
    }
    out!("output: {}", report.output.display());
}

/// Wraps `text` at `width` columns, the first line indented by `indent`, the others by
/// `continued`.
fn wrap(text: &str, indent: &str, continued: &str, width: usize) -> String {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let prefix = if lines.is_empty() { indent } else { continued };
        if !line.is_empty() && prefix.len() + line.len() + 1 + word.len() > width {
            lines.push(format!("{prefix}{line}"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let prefix = if lines.is_empty() { indent } else { continued };
        lines.push(format!("{prefix}{line}"));
    }
    lines.join("\n")
}

fn print_discovery(report: &segmenta_engine::DiscoverReport, entity: &str) {
    let d = &report.discovery;
    let method = match d.method {
        segmenta_engine::Method::KMeans => "k-means",
        segmenta_engine::Method::KPrototypes => "k-prototypes",
    };
    out!(
        "{} clusters of {} {entity} entities as of {} ({method}, seed {})",
        d.k,
        report.entities,
        report.as_of.to_rfc3339(),
        report.document.seed
    );
    out!("{}", wrap(&d.selection.explanation, "  ", "  ", 100));
    // The discovery's warnings about the k choice (`None`) or a cluster, each with its hint.
    let warnings = |cluster: Option<u32>, indent: &str| {
        for w in report.document.warnings.iter().filter(|w| w.cluster == cluster) {
            let continued = format!("{indent}  ");
            out!("{}", wrap(&format!("warning: {}", w.message), indent, &continued, 100));
            out!("{}", wrap(&format!("hint: {}", w.hint), &continued, &format!("{continued}  "), 100));
        }
    };
    if d.selection.table.len() > 1 {
        out!(
            "  {:>3}  {:>10}  {:>17}  {:>14}  {:>14}",
            "k",
            "silhouette",
            "calinski-harabasz",
            "davies-bouldin",
            "inertia"
        );
        let cell =
            |v: Option<f64>, digits: usize| v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"));
        for row in &d.selection.table {
            let mark = if row.k == d.selection.chosen { "*" } else { " " };
            out!(
                "{mark} {:>3}  {:>10}  {:>17}  {:>14}  {:>14.4}",
                row.k,
                cell(row.silhouette, 4),
                cell(row.calinski_harabasz, 1),
                cell(row.davies_bouldin, 4),
                row.inertia
            );
        }
    }
    warnings(None, "");
    out!("preprocessing:");
    for feature in &d.preprocessing {
        out!("{}", wrap(&format!("{}: {}", feature.name, feature.summary), "  ", "    ", 100));
    }
    match &d.stability {
        Some(s) => out!(
            "stability: bootstrap adjusted Rand index {:.3} on average, {:.3} at worst ({} rounds)",
            s.mean,
            s.min,
            s.rounds.len()
        ),
        None => out!("stability: not measured"),
    }
    out!("ids: {}", d.id_assignment);
    for c in &d.clusters {
        out!();
        out!("cluster {}: {} ({} entities, {:.1}%)", c.id, c.persona.name, c.size, c.share * 100.0);
        out!("{}", wrap(&c.persona.description, "  ", "  ", 100));
        out!("  rule: {}", c.rule);
        out!(
            "  fidelity {:.1}% (precision {:.1}%, recall {:.1}%)",
            c.fidelity * 100.0,
            c.precision * 100.0,
            c.recall * 100.0
        );
        warnings(Some(c.id), "  ");
        if let Some(saved) = report.saved.iter().find(|s| s.cluster == c.id) {
            out!("  saved as segment `{}`", saved.name);
        }
    }
    out!();
    out!("output: {}", report.output.display());
    if !report.saved.is_empty() {
        out!("saved {} segments to segmenta.toml; `segmenta run` computes their members", report.saved.len());
    }
}

/// Runs a long use case behind a spinner on standard error (none with `--json`).
fn with_spinner<T>(cli: &Cli, work: impl FnOnce(&Spinner) -> Result<T, Error>) -> Result<T, Error> {
    let spinner = Spinner::new(!cli.json);
    let result = work(&spinner);
    drop(spinner);
    result
}

/// The run options every evaluating command shares.
fn run_options(
    as_of: &Option<String>,
    output: &Option<PathBuf>,
    on_bad_rows: OnBadRows,
    threads: Option<usize>,
) -> Result<RunOptions, Error> {
    Ok(RunOptions {
        as_of: as_of.as_deref().map(AsOf::parse).transpose()?,
        output: output.clone(),
        bad_rows: bad_rows(on_bad_rows),
        threads,
        cancel: segmenta_engine::Cancel::new(),
        strict: false,
    })
}

/// The engine of this process (one per command: its threads come from the command's options).
fn engine(threads: Option<usize>) -> Result<Engine, Error> {
    Engine::new(&EngineOptions { threads })
}

/// Logs spans of the work (stages with their timings) on standard error when asked by `-v` or
/// `RUST_LOG`; otherwise installs nothing, so a plain run pays nothing for tracing.
fn init_tracing(verbose: u8, serving: bool) {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::fmt::format::FmtSpan;
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ if verbose > 0 => {
            let level = if verbose > 1 { "debug" } else { "info" };
            EnvFilter::new(format!(
                "segmenta::http=info,segmenta_server={level},segmenta_engine={level},segmenta_query={level},segmenta_store={level}"
            ))
        }
        // A server logs its requests (method, route, status, latency) by default.
        _ if serving => EnvFilter::new("segmenta::http=info,segmenta_server=info"),
        _ => return,
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::CLOSE)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// A duration option (`30s`, `5m`, `1h`, `1d`), at least one second.
fn duration(text: &str) -> Result<std::time::Duration, String> {
    let parsed = humantime::parse_duration(text)
        .map_err(|e| format!("{e}; write a number and a unit, such as 30s, 5m, 1h or 1d"))?;
    if parsed < std::time::Duration::from_secs(1) {
        return Err("at least one second (1s)".into());
    }
    Ok(parsed)
}

fn bad_rows(arg: OnBadRows) -> BadRows {
    match arg {
        OnBadRows::Strict => BadRows::Strict,
        OnBadRows::Reject => BadRows::Reject,
    }
}

fn print_clv(report: &segmenta_engine::ClvCommandReport) {
    let p = &report.params;
    let (bg, gg) = (&p.bg_nbd, &p.gamma_gamma);
    let time_unit = match p.time_unit {
        formats::TimeUnit::Day => "day",
        formats::TimeUnit::Week => "week",
    };
    out!(
        "CLV as of {} ({} entities with purchases, {} without; time unit {time_unit})",
        p.as_of,
        p.entities.with_purchases,
        p.entities.without_purchases
    );
    let converged = |c: bool| if c { "" } else { "  (not converged)" };
    out!(
        "  BG/NBD       r = {:.6}  alpha = {:.6}  a = {:.6}  b = {:.6}  log-likelihood {:.4}{}",
        bg.r,
        bg.alpha,
        bg.a,
        bg.b,
        bg.log_likelihood,
        converged(bg.converged)
    );
    out!(
        "  Gamma-Gamma  p = {:.6}  q = {:.6}  gamma = {:.6}  on {} repeat customers{}",
        gg.p,
        gg.q,
        gg.gamma,
        gg.customers,
        converged(gg.converged)
    );
    out!(
        "  diamonds in the rough: {} ({})",
        p.diamonds_in_the_rough.members,
        p.diamonds_in_the_rough.segment
    );
    if let Some(h) = &report.holdout {
        print_clv_holdout(h);
    }
    out!("wrote {} ({} entities)", report.output.display(), report.entities);
}

/// The holdout check: the calibration fit, the totals and lifetimes' calibration / holdout
/// table (its first 7 groups, as lifetimes plots them).
fn print_clv_holdout(h: &formats::ClvHoldout) {
    let bg = &h.calibration.bg_nbd;
    out!(
        "holdout check: fitted on the purchases before {}, predicting the {} after ({} customers)",
        h.calibration_end,
        h.holdout,
        h.customers
    );
    out!("  BG/NBD       r = {:.6}  alpha = {:.6}  a = {:.6}  b = {:.6}", bg.r, bg.alpha, bg.a, bg.b);
    out!(
        "  repeat purchases in the holdout: predicted {:.1}, actual {}; mean absolute error {:.4} per customer",
        h.total_predicted,
        h.total_actual,
        h.mean_absolute_error
    );
    out!("  {:>14}  {:>9}  {:>9}  {:>9}", "calibration", "customers", "actual", "predicted");
    for g in h.by_frequency.iter().take(7) {
        out!(
            "  {:>14}  {:>9}  {:>9.3}  {:>9.3}",
            g.frequency_cal,
            g.customers,
            g.mean_actual,
            g.mean_predicted
        );
    }
    if h.by_frequency.len() > 7 {
        out!("  ({} more groups in holdout.json)", h.by_frequency.len() - 7);
    }
}

fn print_churn(report: &segmenta_engine::ChurnCommandReport) {
    let m = &report.model;
    out!("churn within {} as of {} (churned: {})", m.window, m.as_of, m.churned);
    out!("  trained on {} entities active at {} ({} churned)", m.train.rows, m.train.cutoff, m.train.churned);
    out!(
        "  holdout: {} entities active at {} ({} churned): AUC {:.3}, Brier {:.4}, calibration error {:.4}",
        m.holdout.rows,
        m.holdout.cutoff,
        m.holdout.churned,
        m.holdout.auc,
        m.holdout.brier,
        m.holdout.expected_calibration_error
    );
    out!("  {:>10}  {:>10}  {:>8}", "predicted", "observed", "entities");
    for bin in &m.holdout.calibration {
        // The count is not padded: the output was pinned before the report was typed (a JSON
        // number ignored the width), and tools may parse it.
        out!("  {:>10.3}  {:>10.3}  {}", bin.mean_predicted, bin.observed_rate, bin.count);
    }
    out!("  coefficients (per standard deviation, on the log-odds of churn):");
    for f in &m.features {
        match f.status {
            formats::FeatureStatus::Used => out!("    {:<28} {:+.3}", f.name, f.coefficient),
            formats::FeatureStatus::Constant => out!("    {:<28} left out (constant)", f.name),
            formats::FeatureStatus::AllMissing => out!("    {:<28} left out (all_missing)", f.name),
        }
    }
    out!(
        "  scored {} active entities ({} not scored: churned or without events); highest risk:",
        m.scored,
        m.not_scored
    );
    for (id, risk, drivers) in &report.top {
        out!("    {id:<16} {risk:.3}  {drivers}");
    }
    print_warnings(&m.warnings);
    out!("wrote {}", report.output.display());
}

/// `kpis --by`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum KpiByArg {
    Segment,
    Owner,
    Channel,
}

fn kpi_json(row: &segmenta_engine::KpiRow) -> serde_json::Value {
    json!({
        "name": row.name, "owner": row.owner, "channel": row.channel, "size": row.size, "share": row.share,
        "revenue": row.revenue, "arpa": row.arpa, "start_members": row.start_members, "retained": row.retained,
        "logo_retention": row.logo_retention, "logo_churn": row.logo_churn, "grr": row.grr, "nrr": row.nrr,
        "acquired": row.acquired, "clv_mean": row.clv_mean, "converted": row.converted,
        "conversion": row.conversion,
    })
}

fn print_kpis(report: &segmenta_engine::KpiReport) {
    let snapshot = |s: &segmenta_engine::KpiSnapshot| format!("snapshot {} (as of {})", s.id, s.as_of);
    out!("KPIs at {}", snapshot(&report.at));
    if let Some((start, end)) = &report.compare {
        out!("retention from {} to {}", snapshot(start), snapshot(end));
    }
    if let Some((goal, window, end)) = &report.goal {
        out!("goal: {goal} within {window} after the snapshot (until {end})");
    }
    let number = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    let percent = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}%", v * 100.0));
    let all = std::iter::once(&report.population).chain(&report.rows);
    let width = all.clone().map(|r| r.name.len()).max().unwrap_or(0).max(7);
    out!(
        "{:<width$}  {:>8}  {:>6}  {:>12}  {:>9}  {:>7}  {:>7}  {:>7}  {:>7}  {:>8}  {:>9}  {:>8}",
        "segment",
        "size",
        "share",
        "revenue",
        "ARPA",
        "logo",
        "churn",
        "GRR",
        "NRR",
        "acquired",
        "CLV mean",
        "goal"
    );
    for r in all {
        out!(
            "{:<width$}  {:>8}  {:>6}  {:>12}  {:>9}  {:>7}  {:>7}  {:>7}  {:>7}  {:>8}  {:>9}  {:>8}",
            r.name,
            r.size,
            percent(Some(r.share)),
            number(r.revenue),
            number(r.arpa),
            percent(r.logo_retention),
            percent(r.logo_churn),
            percent(r.grr),
            percent(r.nrr),
            r.acquired.map_or("-".to_string(), |a| a.to_string()),
            number(r.clv_mean),
            percent(r.conversion),
        );
    }
}

fn execute(cli: &Cli) -> Result<(), Error> {
    match &cli.command {
        Command::Run { project, as_of, output, evaluation } => {
            let mut options = run_options(as_of, output, evaluation.on_bad_rows, evaluation.threads)?;
            options.strict = evaluation.strict;
            let project = Project::load(project)?;
            let engine = engine(options.threads)?;
            let report = with_spinner(cli, |spinner| engine.run(&project, &options, spinner))?;
            if cli.json {
                out!("{}", json!({ "output": report.output, "summary": report.summary }));
            } else {
                print_segments(&report);
            }
        }
        Command::Backfill { project, from, to, every, evaluation } => {
            let mut run = run_options(&None, &None, evaluation.on_bad_rows, evaluation.threads)?;
            run.strict = evaluation.strict;
            let options = segmenta_engine::BackfillOptions {
                from: segmenta_engine::parse_date("--from", from)?,
                to: segmenta_engine::parse_date("--to", to)?,
                every: segmenta_engine::Every::parse(every)?,
                run,
            };
            let project = Project::load(project)?;
            let engine = engine(options.run.threads)?;
            let report = with_spinner(cli, |spinner| engine.backfill(&project, &options, spinner))?;
            if cli.json {
                let snapshots: Vec<_> = report
                    .snapshots
                    .iter()
                    .map(|s| {
                        json!({
                            "id": s.id,
                            "date": s.date.to_string(),
                            "as_of": s.as_of,
                            "output": s.output,
                            "entities": s.entities,
                            "segments": s.segments,
                        })
                    })
                    .collect();
                out!(
                    "{}",
                    json!({ "snapshots": snapshots, "event_scans": report.event_scans, "elapsed_ms": report.elapsed_ms })
                );
            } else {
                for s in &report.snapshots {
                    out!(
                        "snapshot {:>4}  {}  {} entities  {} segments",
                        s.id,
                        s.date,
                        s.entities,
                        s.segments
                    );
                }
                out!(
                    "wrote {} snapshot(s) in {:.1} s, reading the events {} time(s)",
                    report.snapshots.len(),
                    report.elapsed_ms as f64 / 1000.0,
                    report.event_scans
                );
            }
        }
        Command::Demo { dir, accounts, seed, threads, no_run, force } => {
            let threads =
                threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let options = segmenta_engine::DemoOptions { accounts: *accounts, seed: *seed, threads };
            let spinner = Spinner::new(!cli.json);
            let demo = segmenta_engine::demo(dir, &options, *force, &spinner)?;
            drop(spinner);
            let run = if *no_run {
                None
            } else {
                let project = Project::load(dir)?;
                let options = RunOptions { threads: Some(threads), ..RunOptions::default() };
                let spinner = Spinner::new(!cli.json);
                let report = engine(Some(threads))?.run(&project, &options, &spinner)?;
                drop(spinner);
                Some(report)
            };
            if cli.json {
                out!(
                    "{}",
                    json!({
                        "dir": dir,
                        "accounts": demo.accounts,
                        "contacts": demo.contacts,
                        "events": demo.events,
                        "files": demo.files,
                        "run": run.as_ref().map(|r| json!({ "output": r.output, "summary": r.summary })),
                    })
                );
            } else {
                out!(
                    "wrote the demo project to {}: {} accounts, {} contacts, {} events (seed {seed})",
                    dir.display(),
                    demo.accounts,
                    demo.contacts,
                    demo.events
                );
                match &run {
                    Some(report) => {
                        out!("ran it as of {}:\n", segmenta_engine::DEMO_AS_OF);
                        print_segments(report);
                    }
                    None => out!("run it with: segmenta run --project {}", dir.display()),
                }
            }
        }
        Command::Init { project, from, force } => {
            let options =
                segmenta_engine::InitOptions { project: project.clone(), from: from.clone(), force: *force };
            let report = segmenta_engine::init(&options)?;
            if cli.json {
                let entities: Vec<_> = report
                    .entities
                    .iter()
                    .map(|(name, file, key)| json!({ "name": name, "source": file, "key": key }))
                    .collect();
                out!(
                    "{}",
                    json!({ "file": report.file, "entities": entities, "events": report.events, "traits": report.plan.outputs.len(), "segments": report.plan.segments })
                );
            } else {
                out!("wrote {}", report.file.display());
                for (name, file, key) in &report.entities {
                    out!("  entity {name}: {file}, key {key}");
                }
                match &report.events {
                    Some(events) => out!("  events: {events}"),
                    None => out!("  no events file (a file with a time column and an entity's key)"),
                }
                out!(
                    "valid ({} traits, {} segments); edit it, then run: segmenta run --project {}",
                    report.plan.outputs.len(),
                    report.plan.segments.len(),
                    project.display()
                );
            }
        }
        Command::Validate { project, strict } => {
            let project = Project::load(project)?;
            let validated = segmenta_engine::validate(&project)?;
            let sample = segmenta_engine::check_sample(&validated, *strict)?;
            print_warnings(&sample.warnings);
            if cli.json {
                let traits: Vec<_> =
                    validated.outputs.iter().map(|(n, ty)| json!({"name": n, "type": ty.name()})).collect();
                let segments = &validated.segments;
                out!("{}", json!({ "valid": true, "traits": traits, "segments": segments }));
            } else {
                out!(
                    "{}: valid ({} traits, {} segments)",
                    project.file.display(),
                    validated.outputs.len(),
                    validated.segments.len()
                );
            }
        }
        Command::List { command: ListCommand::Import { name, file, column, unknown, replace, project } } => {
            let project = Project::load(project)?;
            let unknown = match unknown {
                Unknown::Error => segmenta_engine::UnknownIds::Error,
                Unknown::Drop => segmenta_engine::UnknownIds::Drop,
                Unknown::Keep => segmenta_engine::UnknownIds::Keep,
            };
            let report =
                segmenta_engine::import_list(&project, name, file, column.as_deref(), unknown, *replace)?;
            print_list(&report, cli.json);
        }
        Command::List { command: ListCommand::Freeze { segment, name, replace, project } } => {
            let project = Project::load(project)?;
            let report = segmenta_engine::freeze_segment(&project, segment, name, *replace)?;
            print_list(&report, cli.json);
        }
        Command::Discover {
            project,
            features,
            k,
            algorithm,
            scaling,
            seed,
            as_of,
            output,
            save,
            prefix,
            force,
            reset_ids,
            on_bad_rows,
            threads,
        } => {
            let mut options = segmenta_engine::DiscoverOptions::new(features.clone());
            options.k = segmenta_engine::parse_k(k)?;
            options.algorithm = match algorithm {
                AlgorithmArg::Auto => segmenta_engine::Algorithm::Auto,
                AlgorithmArg::Kmeans => segmenta_engine::Algorithm::KMeans,
                AlgorithmArg::Kprototypes => segmenta_engine::Algorithm::KPrototypes,
            };
            options.scaling = match scaling {
                ScalingArg::Standard => segmenta_engine::Scaling::Standard,
                ScalingArg::Robust => segmenta_engine::Scaling::Robust,
                ScalingArg::None => segmenta_engine::Scaling::None,
            };
            options.seed = *seed;
            options.as_of = as_of.as_deref().map(AsOf::parse).transpose()?;
            options.output = output.clone();
            options.save =
                save.then(|| segmenta_engine::SaveSegments { prefix: prefix.clone(), force: *force });
            if *reset_ids {
                options.ids = segmenta_engine::ClusterIds::BySize;
            }
            options.bad_rows = bad_rows(*on_bad_rows);
            options.threads = *threads;
            let project = Project::load(project)?;
            let engine = engine(options.threads)?;
            let report = with_spinner(cli, |spinner| engine.discover(&project, &options, spinner))?;
            if cli.json {
                let saved: Vec<_> = report
                    .saved
                    .iter()
                    .map(|s| json!({ "name": s.name, "cluster": s.cluster, "rule": s.rule }))
                    .collect();
                out!(
                    "{}",
                    json!({
                        "output": report.output,
                        "discovery": report.document,
                        "saved_segments": saved,
                        "centroids_file": report.centroids_file,
                        "previous_discovery": report.previous,
                    })
                );
            } else {
                print_discovery(&report, project.config.project.entity.get_ref());
            }
        }
        Command::Clv {
            project,
            as_of,
            purchase,
            amount,
            time_unit,
            horizon,
            months,
            discount_rate,
            holdout,
            output,
            on_bad_rows,
            threads,
        } => {
            let options = segmenta_engine::ClvCommand {
                purchase: purchase.clone(),
                amount: amount.clone(),
                time_unit: time_unit.map(|u| match u {
                    TimeUnitArg::Day => "day".to_string(),
                    TimeUnitArg::Week => "week".to_string(),
                }),
                horizon: horizon.clone(),
                months: *months,
                discount_rate: *discount_rate,
                holdout: holdout.clone(),
                run: run_options(as_of, output, *on_bad_rows, *threads)?,
            };
            let project = Project::load(project)?;
            let engine = engine(options.run.threads)?;
            let report = with_spinner(cli, |spinner| engine.clv(&project, &options, spinner))?;
            if cli.json {
                let mut value = json!({ "output": report.output, "params": report.params });
                if let Some(holdout) = &report.holdout {
                    value["holdout"] = json!(holdout);
                }
                out!("{value}");
            } else {
                print_clv(&report);
            }
        }
        Command::Predict {
            command:
                PredictCommand::Churn {
                    project,
                    as_of,
                    churned,
                    inactive,
                    activity,
                    features,
                    window,
                    output,
                    on_bad_rows,
                    threads,
                },
        } => {
            let options = segmenta_engine::ChurnCommand {
                churned: churned.clone(),
                inactive: inactive.clone(),
                activity: activity.clone(),
                features: features.clone(),
                window: window.clone(),
                run: run_options(as_of, output, *on_bad_rows, *threads)?,
            };
            let project = Project::load(project)?;
            let engine = engine(options.run.threads)?;
            let report = with_spinner(cli, |spinner| engine.predict_churn(&project, &options, spinner))?;
            if cli.json {
                out!("{}", json!({ "output": report.output, "model": report.model }));
            } else {
                print_churn(&report);
            }
        }
        Command::Preview { rule, sample, project } => {
            let project = Project::load(project)?;
            let preview = segmenta_engine::preview(&project, rule, *sample)?;
            if cli.json {
                out!(
                    "{}",
                    json!({
                        "rule": rule,
                        "size": preview.size,
                        "entities": preview.entities,
                        "share": preview.share,
                        "sample": preview.sample,
                        "as_of": preview.as_of,
                    })
                );
            } else {
                out!(
                    "{} of {} entities ({:.1}%) as of {}",
                    preview.size,
                    preview.entities,
                    preview.share * 100.0,
                    preview.as_of
                );
                if !preview.sample.is_empty() {
                    out!("e.g. {}", preview.sample.join(", "));
                }
            }
        }
        Command::Serve { project, listen, threads, refresh, sweep, no_live } => {
            let project = Project::load(project)?;
            let listen: std::net::SocketAddr = listen.parse().map_err(|_| Error::Usage {
                message: format!("invalid --listen `{listen}`"),
                hint: Some("give an address and port, e.g. 127.0.0.1:8080 (port 0 picks a free one)".into()),
            })?;
            let engine = std::sync::Arc::new(Engine::new(&EngineOptions { threads: *threads })?);
            let state = segmenta_server::AppState::new(engine, project)?;
            let refresh = segmenta_engine::Refresh { after_events: *refresh, sweep: *sweep };
            let options = segmenta_server::ServeOptions { listen, refresh, live: !*no_live };
            let json = cli.json;
            segmenta_server::serve_until_signal(state, &options, |address| {
                if json {
                    out!("{}", json!({ "listening": address.to_string() }));
                } else {
                    out!("serving on http://{address} (Ctrl-C stops)");
                }
            })
            .map_err(|source| Error::Io { path: PathBuf::from(listen.to_string()), source })?;
        }
        Command::Token { action } => token_command(cli, action)?,
        Command::Explain { entity, segment, project } => {
            let project = Project::load(project)?;
            let explained = segmenta_engine::explain(&project, entity, segment.as_deref())?;
            if cli.json {
                let items: Vec<segmenta_server::api::Explanation> =
                    explained.into_iter().map(segmenta_server::api::Explanation::from).collect();
                let value = if segment.is_some() {
                    serde_json::to_value(&items[0])
                } else {
                    serde_json::to_value(json!({ "entity": entity, "explanations": items }))
                };
                out!("{}", value.map_err(|e| Error::Internal(format!("rendering JSON: {e}")))?);
            } else {
                for (i, explanation) in explained.iter().enumerate() {
                    if i > 0 {
                        out!("");
                    }
                    print_explanation(explanation, 0);
                }
            }
        }
        Command::Prune { project, keep, dry_run } => {
            let project = Project::load(project)?;
            let report = segmenta_engine::prune(&project, *keep as usize, *dry_run)?;
            if cli.json {
                out!(
                    "{}",
                    json!({
                        "dry_run": dry_run,
                        "removed": report.removed,
                        "kept": report.kept,
                        "left_on_disk": report.left_on_disk,
                    })
                );
            } else {
                let verb = if *dry_run { "would delete" } else { "deleted" };
                out!("{verb} {} snapshot(s), kept {}", report.removed.len(), report.kept);
                for s in &report.removed {
                    out!("  {}  as of {}", s.id, s.as_of);
                }
                for dir in &report.left_on_disk {
                    out!("  left on disk (outside the store): {}", dir.display());
                }
            }
        }
        Command::Snapshots { project } => {
            let project = Project::load(project)?;
            let snapshots = segmenta_engine::snapshots(&project)?;
            if cli.json {
                out!("{}", json!({ "snapshots": snapshots }));
            } else if snapshots.is_empty() {
                out!("no snapshot yet: `segmenta run` makes one");
            } else {
                out!(
                    "{:>4}  {:<27}  {:<24}  {:>10}  {:>8}",
                    "id",
                    "as_of",
                    "written_at",
                    "entities",
                    "segments"
                );
                for s in &snapshots {
                    out!(
                        "{:>4}  {:<27}  {:<24}  {:>10}  {:>8}",
                        s.id,
                        s.as_of,
                        s.written_at,
                        s.entities,
                        s.segments
                    );
                }
            }
        }
        Command::Changes { segment, after, limit, project } => {
            let project = Project::load(project)?;
            let changes = segmenta_engine::changes(&project, *after, *limit, segment.as_deref())?;
            if cli.json {
                let items: Vec<serde_json::Value> = changes
                    .iter()
                    .map(|c| {
                        json!({ "seq": c.seq, "at": c.at, "as_of": c.as_of, "segment": c.segment,
                                "entity_id": c.entity_id, "change": if c.entered { "entered" } else { "exited" } })
                    })
                    .collect();
                out!(
                    "{}",
                    json!({ "changes": items, "next_after": changes.last().map_or(*after, |c| c.seq) })
                );
            } else if changes.is_empty() {
                out!(
                    "no changes recorded after {after}: a server records them as posted events move members"
                );
            } else {
                out!("{:>8}  {:<24}  {:<7}  {:<24}  entity_id", "seq", "at", "change", "segment");
                for c in &changes {
                    let change = if c.entered { "entered" } else { "exited" };
                    out!("{:>8}  {:<24}  {:<7}  {:<24}  {}", c.seq, c.at, change, c.segment, c.entity_id);
                }
            }
        }
        Command::History { segment, project } => {
            let project = Project::load(project)?;
            let history = segmenta_engine::history(&project, segment)?;
            let points = &history.points;
            if cli.json {
                let items: Vec<serde_json::Value> = points
                    .iter()
                    .map(|p| {
                        json!({ "snapshot": p.snapshot, "as_of": p.as_of, "size": p.size, "share": p.share,
                                "entered": p.entered, "exited": p.exited, "compared_with": p.compared_with })
                    })
                    .collect();
                let left_out: Vec<serde_json::Value> = history
                    .left_out
                    .iter()
                    .map(|l| json!({ "snapshot": l.snapshot, "as_of": l.as_of, "reason": l.reason }))
                    .collect();
                out!("{}", json!({ "segment": segment, "history": items, "left_out": left_out }));
            } else {
                if points.is_empty() {
                    out!("no snapshot computed `{segment}` yet: `segmenta run` makes one");
                } else {
                    out!(
                        "{:<27}  {:>10}  {:>7}  {:>9}  {:>9}",
                        "as_of",
                        "size",
                        "share",
                        "entered",
                        "exited"
                    );
                    for p in points {
                        let share = format!("{:.1}%", p.share * 100.0);
                        out!(
                            "{:<27}  {:>10}  {:>7}  {:>9}  {:>9}",
                            p.as_of,
                            p.size,
                            share,
                            p.entered,
                            p.exited
                        );
                    }
                }
                // Entered and exited after a gap count from the snapshot before it: say so.
                for l in &history.left_out {
                    eprintln!(
                        "note: snapshot {} as of {} is left out ({}); the next one is compared with the one before it",
                        l.snapshot,
                        l.as_of,
                        l.why()
                    );
                }
            }
        }
        Command::Diff { segment, between: Between { from, to, project } } => {
            let project = Project::load(project)?;
            let diffs = segmenta_engine::diff(&project, from, to, segment.as_deref())?;
            if cli.json {
                let items: Vec<serde_json::Value> = diffs
                    .iter()
                    .map(|d| json!({ "segment": d.segment, "entered": d.entered, "exited": d.exited }))
                    .collect();
                out!("{}", json!({ "from": from, "to": to, "segments": items }));
            } else if segment.is_some() {
                for d in &diffs {
                    out!("{}: {} entered, {} exited", d.segment, d.entered.len(), d.exited.len());
                    for id in &d.entered {
                        out!("+ {id}");
                    }
                    for id in &d.exited {
                        out!("- {id}");
                    }
                }
            } else {
                let width = diffs.iter().map(|d| d.segment.len()).max().unwrap_or(7).max(7);
                out!("{:<width$}  {:>9}  {:>9}", "segment", "entered", "exited");
                for d in &diffs {
                    out!("{:<width$}  {:>9}  {:>9}", d.segment, d.entered.len(), d.exited.len());
                }
            }
        }
        Command::Kpis { project, at, compare, by, threads } => {
            let project = Project::load(project)?;
            let run = run_options(&None, &None, OnBadRows::Strict, *threads)?;
            let by = match by {
                KpiByArg::Segment => segmenta_engine::KpiGrouping::Segment,
                KpiByArg::Owner => segmenta_engine::KpiGrouping::Owner,
                KpiByArg::Channel => segmenta_engine::KpiGrouping::Channel,
            };
            let options = segmenta_engine::KpiOptions { at: at.clone(), compare: compare.clone(), by, run };
            let engine = engine(options.run.threads)?;
            let report = with_spinner(cli, |spinner| engine.kpis(&project, &options, spinner))?;
            if cli.json {
                let snapshot = |s: &segmenta_engine::KpiSnapshot| json!({ "id": s.id, "as_of": s.as_of });
                out!(
                    "{}",
                    json!({
                        "at": snapshot(&report.at),
                        "compare": report.compare.as_ref().map(|(s, e)| json!({ "start": snapshot(s), "end": snapshot(e) })),
                        "revenue": report.revenue,
                        "goal": report.goal.as_ref().map(|(g, w, end)| json!({ "condition": g, "window": w, "until": end })),
                        "clv": report.clv,
                        "by": format!("{by:?}").to_lowercase(),
                        "population": kpi_json(&report.population),
                        "rows": report.rows.iter().map(kpi_json).collect::<Vec<_>>(),
                    })
                );
            } else {
                print_kpis(&report);
            }
        }
        Command::Quality { project, at, threads } => {
            let project = Project::load(project)?;
            let run = run_options(&None, &None, OnBadRows::Strict, *threads)?;
            let options = segmenta_engine::QualityOptions { at: at.clone(), run };
            let engine = engine(options.run.threads)?;
            let report = with_spinner(cli, |spinner| engine.quality(&project, &options, spinner))?;
            let snapshot = |s: &segmenta_engine::KpiSnapshot| json!({ "id": s.id, "as_of": s.as_of });
            if cli.json {
                let segments: Vec<_> = report
                    .segments
                    .iter()
                    .map(|s| {
                        let checks: Vec<_> = s
                            .checks
                            .iter()
                            .map(|c| {
                                json!({ "check": c.check, "value": c.value, "threshold": c.threshold,
                                             "pass": c.pass, "reason": c.reason })
                            })
                            .collect();
                        json!({ "segment": s.segment, "size": s.size, "pass": s.pass, "checks": checks })
                    })
                    .collect();
                out!(
                    "{}",
                    json!({ "at": snapshot(&report.at), "previous": report.previous.as_ref().map(snapshot),
                            "segments": segments })
                );
            } else {
                out!("quality of snapshot {} (as of {})", report.at.id, report.at.as_of);
                let width = report.segments.iter().map(|s| s.segment.len()).max().unwrap_or(0).max(7);
                for s in &report.segments {
                    let flags: Vec<&segmenta_engine::QualityCheck> =
                        s.checks.iter().filter(|c| !c.pass).collect();
                    if flags.is_empty() {
                        out!("{:<width$}  pass", s.segment);
                    }
                    for (k, c) in flags.iter().enumerate() {
                        let name = if k == 0 { s.segment.as_str() } else { "" };
                        out!("{name:<width$}  flag  {:<19} {}", c.check, c.reason);
                    }
                }
                let flagged = report.segments.iter().filter(|s| !s.pass).count();
                out!("{} segment(s), {} flagged", report.segments.len(), flagged);
            }
        }
        Command::Coverage { project, at } => {
            let project = Project::load(project)?;
            let report = segmenta_engine::coverage(&project, at.as_deref())?;
            let snapshot = |s: &segmenta_engine::KpiSnapshot| json!({ "id": s.id, "as_of": s.as_of });
            if cli.json {
                let models: Vec<_> = report
                    .models
                    .iter()
                    .map(|m| {
                        json!({ "model": m.model, "accounts_per_csm": m.accounts_per_csm, "accounts": m.accounts,
                                "csms_needed": m.csms_needed, "csms_available": m.csms_available,
                                "shortfall": m.shortfall, "unassigned": m.unassigned, "revenue": m.revenue })
                    })
                    .collect();
                let csms: Vec<_> = report
                    .csms
                    .iter()
                    .map(|c| {
                        json!({ "id": c.id, "name": c.name, "model": c.model, "capacity": c.capacity,
                                "accounts": c.accounts, "revenue": c.revenue, "kept": c.kept })
                    })
                    .collect();
                out!(
                    "{}",
                    json!({ "at": snapshot(&report.at), "previous": report.previous.as_ref().map(snapshot),
                            "models": models, "csms": csms, "output": report.output })
                );
            } else {
                out!("coverage of snapshot {} (as of {})", report.at.id, report.at.as_of);
                if let Some(p) = &report.previous {
                    out!("keeping the assignments of snapshot {} (as of {})", p.id, p.as_of);
                }
                out!(
                    "{:<14} {:>9} {:>9} {:>8} {:>9} {:>9} {:>10}",
                    "model",
                    "accounts",
                    "per CSM",
                    "needed",
                    "available",
                    "shortfall",
                    "unassigned"
                );
                for m in &report.models {
                    out!(
                        "{:<14} {:>9} {:>9} {:>8} {:>9} {:>9} {:>10}",
                        m.model,
                        m.accounts,
                        m.accounts_per_csm,
                        m.csms_needed,
                        m.csms_available,
                        m.shortfall,
                        m.unassigned
                    );
                }
                out!("");
                out!(
                    "{:<10} {:<20} {:<14} {:>8} {:>9} {:>12} {:>6}",
                    "csm",
                    "name",
                    "model",
                    "capacity",
                    "accounts",
                    "revenue",
                    "kept"
                );
                for c in &report.csms {
                    out!(
                        "{:<10} {:<20} {:<14} {:>8} {:>9} {:>12.0} {:>6}",
                        c.id,
                        c.name,
                        c.model,
                        c.capacity,
                        c.accounts,
                        c.revenue,
                        c.kept
                    );
                }
                out!("wrote {}", report.output.display());
            }
        }
        Command::Transitions { scheme, between: Between { from, to, project } } => {
            let project = Project::load(project)?;
            let matrix = segmenta_engine::transitions(&project, scheme, from, to)?;
            if cli.json {
                let cells: Vec<serde_json::Value> = matrix
                    .cells
                    .iter()
                    .map(|c| json!({ "from": c.from, "to": c.to, "count": c.count, "share": c.share }))
                    .collect();
                out!(
                    "{}",
                    json!({ "scheme": matrix.scheme, "from": from, "to": to, "from_tiers": matrix.from_tiers,
                            "to_tiers": matrix.to_tiers, "cells": cells })
                );
            } else {
                let count = |f: &str, t: &str| {
                    matrix.cells.iter().find(|c| c.from == f && c.to == t).map_or(0, |c| c.count)
                };
                let corner = format!("{from} \\ {to}");
                let first = matrix.from_tiers.iter().map(String::len).max().unwrap_or(0).max(corner.len());
                let widths: Vec<usize> = matrix.to_tiers.iter().map(|t| t.len().max(6)).collect();
                let mut header = format!("{corner:<first$}");
                for (tier, width) in matrix.to_tiers.iter().zip(&widths) {
                    header.push_str(&format!("  {tier:>width$}"));
                }
                out!("{}", header.trim_end());
                for row in &matrix.from_tiers {
                    let mut line = format!("{row:<first$}");
                    for (tier, width) in matrix.to_tiers.iter().zip(&widths) {
                        line.push_str(&format!("  {:>width$}", count(row, tier)));
                    }
                    out!("{line}");
                }
            }
        }
        Command::Members { segment, project, with, format, output, at }
            if format.is_some() || output.is_some() || !with.is_empty() =>
        {
            let project = Project::load(project)?;
            let format = match format.unwrap_or(if with.is_empty() {
                MembersFormatArg::Lines
            } else {
                MembersFormatArg::Csv
            }) {
                MembersFormatArg::Lines => MembersFormat::Lines,
                MembersFormatArg::Csv => MembersFormat::Csv,
                MembersFormatArg::Jsonl => MembersFormat::JsonLines,
                MembersFormatArg::Parquet if output.is_none() => {
                    return Err(Error::Usage {
                        message: "--format parquet writes a binary file".into(),
                        hint: Some("give it a file with --output members.parquet".into()),
                    });
                }
                MembersFormatArg::Parquet => MembersFormat::Parquet,
            };
            let query = MembersQuery { segment: segment.clone(), with: with.clone(), at: at.clone() };
            let bytes = segmenta_engine::members_export(&project, &query, format)?;
            match output {
                Some(path) => write_whole(path, &bytes)?,
                None => {
                    use std::io::Write as _;
                    let mut stdout = std::io::stdout().lock();
                    stdout
                        .write_all(&bytes)
                        .and_then(|()| stdout.flush())
                        .unwrap_or_else(|e| stdout_failed(e));
                }
            }
        }
        Command::Members { segment, project, at, .. } => {
            let project = Project::load(project)?;
            let members = segmenta_engine::members_at(&project, segment, at.as_deref())?;
            if cli.json {
                out!("{}", json!({ "segment": segment, "size": members.len(), "members": members }));
            } else {
                use std::io::Write as _;
                let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
                for id in members {
                    writeln!(stdout, "{id}").unwrap_or_else(|e| stdout_failed(e));
                }
                stdout.flush().unwrap_or_else(|e| stdout_failed(e));
            }
        }
    }
    Ok(())
}

fn print_explanation(e: &segmenta_engine::Explanation, depth: usize) {
    let pad = "  ".repeat(depth);
    let verdict = if e.member { "is in" } else { "is not in" };
    out!("{pad}{} {verdict} `{}` (as of {})", e.entity, e.segment, e.as_of);
    if let Some(rule) = &e.rule {
        out!("{pad}  rule: {rule}");
    }
    if let Some(tree) = &e.tree {
        print_node(tree, depth + 1);
    }
    if let Some(scheme) = &e.scheme {
        out!("{pad}  scheme `{}`: tier `{}`", scheme.scheme, scheme.matched);
        for tier in &scheme.tried {
            out!("{pad}  tier `{}`:", tier.tier);
            print_node(&tier.tree, depth + 2);
        }
    }
    if !e.values.is_empty() {
        let values: Vec<String> =
            e.values.iter().map(|o| format!("{} = {}", o.text, shown_cell(&o.value))).collect();
        out!("{pad}  {}", values.join(", "));
    }
    if let Some(note) = &e.note {
        out!("{pad}  {note}");
    }
    if let Some(parent) = &e.parent {
        print_explanation(parent, depth + 1);
    }
}

fn print_node(node: &segmenta_engine::ExplainNode, depth: usize) {
    let pad = "  ".repeat(depth);
    let operands: Vec<String> =
        node.operands.iter().map(|o| format!("{} = {}", o.text, shown_cell(&o.value))).collect();
    let operands = if operands.is_empty() { String::new() } else { format!("    ({})", operands.join(", ")) };
    out!("{pad}{:<7} {}{operands}", node.truth.name(), node.text);
    for operand in node.operands.iter().filter(|o| !o.drivers.is_empty()) {
        out!("{pad}        {} is driven by: {}", operand.text, operand.drivers.join("; "));
    }
    for child in &node.children {
        print_node(child, depth + 1);
    }
    if let Some(segment) = &node.segment {
        print_explanation(segment, depth + 1);
    }
}

fn shown_cell(cell: &segmenta_engine::Cell) -> String {
    use segmenta_engine::Cell;
    match cell {
        Cell::Null => "NULL".into(),
        Cell::Bool(b) => b.to_string(),
        Cell::Int(i) => i.to_string(),
        Cell::Float(f) => format!("{f:?}"),
        Cell::Text(t) => format!("'{t}'"),
    }
}

fn token_command(cli: &Cli, action: &TokenAction) -> Result<(), Error> {
    let shown = |t: &segmenta_engine::ApiToken| {
        json!({ "name": t.name, "role": t.role.name(), "prefix": t.prefix, "created_at": t.created_at,
                "revoked_at": t.revoked_at })
    };
    match action {
        TokenAction::Create { project, role, name } => {
            let project = Project::load(project)?;
            let created = segmenta_engine::create_token(&project, segmenta_engine::Role::parse(role)?, name)?;
            if cli.json {
                let mut value = shown(&created.token);
                value["token"] = json!(created.secret);
                out!("{value}");
            } else {
                out!("{}", created.secret);
                eprintln!(
                    "created token `{}` ({}): it is shown this once; send it as `Authorization: Bearer TOKEN`",
                    created.token.name,
                    created.token.role.name()
                );
            }
        }
        TokenAction::List { project } => {
            let project = Project::load(project)?;
            let tokens = segmenta_engine::list_tokens(&project)?;
            if cli.json {
                out!("{}", json!({ "tokens": tokens.iter().map(shown).collect::<Vec<_>>() }));
            } else if tokens.is_empty() {
                out!("no token yet: `segmenta token create --role viewer --name NAME` makes one");
            } else {
                out!("{:<24}  {:<7}  {:<9}  {:<24}  revoked_at", "name", "role", "prefix", "created_at");
                for t in &tokens {
                    out!(
                        "{:<24}  {:<7}  {:<9}  {:<24}  {}",
                        t.name,
                        t.role.name(),
                        t.prefix,
                        t.created_at,
                        t.revoked_at.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        TokenAction::Revoke { name, project } => {
            let project = Project::load(project)?;
            let revoked = segmenta_engine::revoke_token(&project, name)?;
            if cli.json {
                out!("{}", shown(&revoked));
            } else {
                out!("revoked token `{}` ({})", revoked.name, revoked.role.name());
            }
        }
    }
    Ok(())
}

/// Writes a file whole: into a temporary file beside it, then renamed over it.
fn write_whole(path: &std::path::Path, bytes: &[u8]) -> Result<(), Error> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, path));
    written.map_err(|source| {
        let _ = std::fs::remove_file(&temp);
        Error::Io { path: path.to_path_buf(), source }
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose, matches!(cli.command, Command::Serve { .. }));
    match execute(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if cli.json {
                out!("{}", json!({ "error": { "code": error.code(), "message": error.to_string() } }));
            }
            eprintln!("error: {error}");
            ExitCode::from(match error.kind() {
                ErrorKind::User => 2,
                ErrorKind::Environment => 1,
                ErrorKind::Internal => 3,
            })
        }
    }
}
