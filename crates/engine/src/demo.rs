//! `demo`: writes the demo company's project (data and `segmenta.toml`) into a folder.

use std::path::Path;

pub use segmenta_demo::{AS_OF, DEFAULT_ACCOUNTS, DemoOptions, DemoReport};

use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::project::PROJECT_FILE;

/// The first line of the demo's project file, which marks a folder as a demo project that may
/// be written over.
fn is_demo_project(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join(PROJECT_FILE))
        .is_ok_and(|text| text.lines().next() == Some(segmenta_demo::project_first_line()))
}

/// Writes the demo project into `dir`: an empty or missing folder, or an earlier demo project;
/// `force` writes into any folder (replacing the demo's files there).
pub fn demo(dir: &Path, options: &DemoOptions, force: bool, progress: &dyn Progress) -> Result<DemoReport> {
    let occupied = std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
    if occupied && !force && !is_demo_project(dir) {
        return Err(Error::Usage {
            message: format!("{} is not empty and holds no demo project", dir.display()),
            hint: Some("choose a new folder, or pass --force to write the demo's files into it".into()),
        });
    }
    let report = segmenta_demo::generate(dir, options, &|step: &str, done: u64, total: u64| {
        progress.position(step, done, total)
    })?;
    progress.done();
    Ok(report)
}
