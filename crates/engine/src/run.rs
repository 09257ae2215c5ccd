//! `run`: validate, evaluate (`crate::evaluation`, which `discover` and the model commands
//! share), then write the run folder atomically and make it the latest run.

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
    write_run_folder(plan, options, evaluated, progress)
}

/// Writes an evaluation as a run folder (atomically) and makes it the latest run.
fn write_run_folder(
    plan: &Plan,
    options: &RunOptions,
    evaluated: Evaluated,
    progress: &dyn Progress,
) -> Result<RunReport> {
    let Evaluated { output, summary, segments, rejects, outcomes, .. } = evaluated;
    progress.step("writing output");
    let _span = tracing::info_span!("write").entered();
    let store = Store::new(plan.project.store_dir());
    let dest = options.output.clone().unwrap_or_else(|| store.new_run_dir());
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
    // An explicit --output also becomes the latest run, so `members` reads what was just made.
    store.set_latest(&dest)?;
    progress.done();
    Ok(RunReport { output: dest, summary, segments, static_lists: output.static_lists })
}
