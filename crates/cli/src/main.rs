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
use segmenta_engine::{AsOf, BadRows, Error, ErrorCode, ErrorKind, Progress, Project, RunOptions};
use serde_json::json;

/// segmenta: customer segmentation as code.
#[derive(Debug, Parser)]
#[command(name = "segmenta", version, about, long_about = None)]
struct Cli {
    /// Print machine-readable JSON on standard output instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
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
        /// Evaluate as of this date (the whole day counts) or RFC 3339 instant. Default: now.
        #[arg(long)]
        as_of: Option<String>,
        /// Output folder. Default: a new run folder in the project's store.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// What to do with rows that do not fit the schema.
        #[arg(long, value_enum, default_value = "strict")]
        on_bad_rows: OnBadRows,
        /// Worker threads. Default: all cores.
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Check the project file, the data files' columns, every trait and every rule.
    Validate {
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
    },
    /// List the members of a segment in the latest run.
    Members {
        /// The segment's name.
        segment: String,
        /// The project folder (holding segmenta.toml).
        #[arg(long, short, default_value = ".")]
        project: PathBuf,
    },
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

fn print_segments(report: &segmenta_engine::RunReport) {
    let width = report.segments.iter().map(|s| s.name.len()).max().unwrap_or(7).max(7);
    println!("{:<width$}  {:>10}  {:>7}", "segment", "size", "share");
    for s in &report.segments {
        println!("{:<width$}  {:>10}  {:>6.1}%", s.name, s.size, s.share * 100.0);
    }
    let summary = &report.summary;
    println!();
    for list in report.static_lists.iter().filter(|l| l.unknown > 0) {
        eprintln!(
            "warning: static list `{}`: {} of its {} ids are not entities (e.g. {})",
            list.name,
            list.unknown,
            list.ids,
            list.unknown_sample.join(", ")
        );
    }
    println!("entities: {}", summary["entities"]);
    if let Some(events) = summary.get("events").filter(|e| !e.is_null()) {
        println!(
            "events: {} read, {} used, {} ignored ({} unknown entity, {} after as-of, {} without time), {} rejected",
            events["read"],
            events["used"],
            events["ignored"],
            events["ignored_unknown_entity"],
            events["ignored_after_as_of"],
            events["ignored_no_time"],
            events["rejected"]
        );
    }
    if summary["rejected_rows"].as_u64().unwrap_or(0) > 0 {
        println!(
            "rejected rows: {} (see {})",
            summary["rejected_rows"],
            report.output.join("rejects.csv").display()
        );
    }
    println!("output: {}", report.output.display());
}

fn execute(cli: &Cli) -> Result<(), Error> {
    match &cli.command {
        Command::Run { project, as_of, output, on_bad_rows, threads } => {
            let as_of = as_of.as_deref().map(AsOf::parse).transpose()?;
            let project = Project::load(project)?;
            let options = RunOptions {
                as_of,
                output: output.clone(),
                bad_rows: match on_bad_rows {
                    OnBadRows::Strict => BadRows::Strict,
                    OnBadRows::Reject => BadRows::Reject,
                },
                threads: *threads,
            };
            let spinner = Spinner::new(!cli.json);
            let report = segmenta_engine::run(&project, &options, &spinner)?;
            drop(spinner);
            if cli.json {
                println!("{}", json!({ "output": report.output, "summary": report.summary }));
            } else {
                print_segments(&report);
            }
        }
        Command::Validate { project } => {
            let project = Project::load(project)?;
            let validated = segmenta_engine::validate(&project)?;
            if cli.json {
                let traits: Vec<_> =
                    validated.outputs.iter().map(|(n, ty)| json!({"name": n, "type": ty.name()})).collect();
                let segments = &validated.segments;
                println!("{}", json!({ "valid": true, "traits": traits, "segments": segments }));
            } else {
                println!(
                    "{}: valid ({} traits, {} segments)",
                    project.file.display(),
                    validated.outputs.len(),
                    validated.segments.len()
                );
            }
        }
        Command::Members { segment, project } => {
            let project = Project::load(project)?;
            let members = segmenta_engine::members(&project, segment)?;
            if cli.json {
                println!("{}", json!({ "segment": segment, "size": members.len(), "members": members }));
            } else {
                for id in members {
                    println!("{id}");
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if cli.json {
                println!("{}", json!({ "error": { "code": error.code(), "message": error.to_string() } }));
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
