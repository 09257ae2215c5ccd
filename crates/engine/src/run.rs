//! `run`: validate, evaluate (`crate::evaluation`, which `discover` and the model commands
//! share), then write the run folder atomically, make it the latest run and record it in the
//! catalog of snapshots under its as-of instant.

use segmenta_store::{Document, OutputFile, Store, files};

use crate::error::Result;
use crate::evaluation::{self, Evaluated, RunOptions, RunReport};
use crate::exec::Exec;
use crate::plan::Plan;
use crate::progress::Progress;
use crate::project::Project;
use crate::validate::validate;

/// Runs a project: validate, load, evaluate, write.
pub(crate) fn run(
    exec: &Exec,
    project: &Project,
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<RunReport> {
    progress.step("validating project");
    let plan = {
        let _span = tracing::info_span!("validate").entered();
        validate(project)?
    };
    progress.done();
    run_plan(exec, &plan, options, progress)
}

/// Runs an already validated project.
pub(crate) fn run_plan(
    exec: &Exec,
    plan: &Plan,
    options: &RunOptions,
    progress: &dyn Progress,
) -> Result<RunReport> {
    let evaluated = evaluation::evaluate(exec, plan, options, progress)?;
    progress.step("writing output");
    let report = write_run_folder(plan, options.output.clone(), evaluated, true)?;
    progress.done();
    Ok(report)
}

/// Writes an evaluation as a new run folder of the store and records it in the catalog, not
/// making it the latest run (`backfill`).
pub(crate) fn write_snapshot(plan: &Plan, evaluated: Evaluated) -> Result<RunReport> {
    write_run_folder(plan, None, evaluated, false)
}

/// Writes an evaluation as a run folder (atomically, to `output` or a new folder of the
/// store), records it in the catalog and, with `latest`, makes it the latest run.
fn write_run_folder(
    plan: &Plan,
    folder: Option<std::path::PathBuf>,
    evaluated: Evaluated,
    latest: bool,
) -> Result<RunReport> {
    let Evaluated { output, summary, segments, rejects, outcomes, as_of } = evaluated;
    let _span = tracing::info_span!("write").entered();
    let store = Store::new(plan.project.store_dir());
    let dest = folder.unwrap_or_else(|| store.new_run_dir());
    let mut outputs = vec![
        (files::TRAITS, OutputFile::Parquet(output.traits)),
        (files::MEMBERSHIPS, OutputFile::Parquet(output.memberships)),
        summary.output()?,
    ];
    if !rejects.is_empty() {
        outputs.push((files::REJECTS, OutputFile::Bytes(rejects.to_csv()?)));
    }
    outputs.push((files::TABLE, OutputFile::Parquet(output.table)));
    for outcome in &outcomes {
        outputs.extend(outcome.files()?);
    }
    segmenta_store::write_run(&dest, &outputs)?;
    // The snapshot as of its instant (replacing an earlier run as of the same instant), then the
    // latest run: a run that could not be recorded does not become the latest either.
    let run_dir =
        dest.canonicalize().map_err(|source| crate::error::Error::Io { path: dest.clone(), source })?;
    segmenta_store::catalog::Catalog::open(store.root())?.record(&segmenta_store::catalog::NewSnapshot {
        as_of: &as_of.to_rfc3339(),
        as_of_micros: as_of.instant,
        run_dir: &run_dir,
        entities: summary.entities,
        segments: segments.len() as u64,
    })?;
    // An explicit --output also becomes the latest run, so `members` reads what was just made.
    if latest {
        store.set_latest(&dest)?;
    }
    Ok(RunReport { output: dest, summary, segments, static_lists: output.static_lists })
}
