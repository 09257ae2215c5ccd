//! Saving and deleting rule segments in `segmenta.toml` (the server's `PUT` and `DELETE
//! /v1/segments/{name}`): the rule is checked on its own first (so its problems are located in
//! the rule text), then the whole edited project is validated (references, cycles), and only
//! then is the file replaced, atomically, with its comments and layout kept.

use crate::error::{Error, Result};
use crate::project::Project;

/// What a save did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// A new `[segments.NAME]`.
    Created,
    /// An existing rule segment's rule (and description) replaced.
    Replaced,
}

fn document(project: &Project) -> Result<toml_edit::DocumentMut> {
    project.text.parse().map_err(|e: toml_edit::TomlError| {
        Error::Internal(format!("{} parsed before but not now: {e}", project.file.display()))
    })
}

/// Refuses names that are not rule segments of the file (scheme tiers, RFM, movements, static
/// lists): they are edited elsewhere.
fn check_editable(project: &Project, name: &str) -> Result<bool> {
    if let Some(segment) = project.config.segments.get(name) {
        if segment.static_list.is_some() {
            return Err(Error::NotEditable {
                name: name.to_string(),
                why: "is a static list".into(),
                hint: "re-import it with `segmenta list import`".into(),
            });
        }
        return Ok(true);
    }
    if project.config.segment_names().iter().any(|n| n == name) {
        return Err(Error::NotEditable {
            name: name.to_string(),
            why: "is a scheme tier, an RFM or CLV segment, or a movement".into(),
            hint: "edit its section of segmenta.toml".into(),
        });
    }
    Ok(false)
}

/// Saves the rule segment `name` with `rule` (and `description`, when given): a new segment, or
/// the replacement of an existing rule segment's rule, keeping its other keys. Returns the
/// edited project, already written.
pub fn save_segment(
    project: &Project,
    name: &str,
    rule: &str,
    description: Option<&str>,
) -> Result<(Project, Saved)> {
    let exists = check_editable(project, name)?;
    // The rule alone first: its problems with positions in the rule, as `preview` gives them.
    let plan = crate::validate::validate(project)?;
    crate::preview::resolve_ad_hoc(&plan, rule, "<rule>")?;
    let mut document = document(project)?;
    let segments = crate::lists::segments_table(&mut document, project)?;
    if exists {
        let table = segments
            .get_mut(name)
            .and_then(|item| item.as_table_like_mut())
            .ok_or_else(|| Error::Internal(format!("segment `{name}` is not a table in the file")))?;
        table.insert("rule", toml_edit::value(rule));
        if let Some(description) = description {
            table.insert("description", toml_edit::value(description));
        }
    } else {
        let mut table = toml_edit::Table::new();
        table.insert("rule", toml_edit::value(rule));
        if let Some(description) = description {
            table.insert("description", toml_edit::value(description));
        }
        segments.insert(name, toml_edit::Item::Table(table));
    }
    let edited = project.with_text(document.to_string())?;
    crate::validate::validate(&edited)?;
    crate::lists::write_project_file(&edited)?;
    Ok((edited, if exists { Saved::Replaced } else { Saved::Created }))
}

/// Deletes the rule segment `name` from the file; refused (by validation) while another
/// segment, scheme, score, movement or coverage model still reads it. Returns the edited
/// project, already written.
pub fn delete_segment(project: &Project, name: &str) -> Result<Project> {
    if !check_editable(project, name)? {
        crate::latest::check_declared(project, name)?;
        return Err(Error::Internal(format!("segment `{name}` is declared but not in [segments]")));
    }
    let mut document = document(project)?;
    let removed = document
        .get_mut("segments")
        .and_then(|item| item.as_table_like_mut())
        .and_then(|segments| segments.remove(name));
    if removed.is_none() {
        return Err(Error::Internal(format!("segment `{name}` is not a table in the file")));
    }
    let edited = project.with_text(document.to_string())?;
    crate::validate::validate(&edited)?;
    crate::lists::write_project_file(&edited)?;
    Ok(edited)
}
