//! The project file `segmenta.toml`: its typed model, parsing with positions, and the checks
//! that need no data (unknown keys, references between sections, type names, file extensions).
//!
//! Every key is documented in `docs/project-file.md`; keep the two in step.

use std::ops::Range;

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use crate::ValueType;

/// A problem in the project file, with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// What is wrong, lowercase, naming the offending value.
    pub message: String,
    /// 1-based line of the offending text, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the offending text, when known.
    pub column: Option<usize>,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "{line}:{column}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// The supported data file formats, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// `.csv`: comma-separated with a header row.
    Csv,
    /// `.parquet`.
    Parquet,
    /// `.jsonl` / `.ndjson`: one JSON object per line.
    JsonLines,
}

impl SourceFormat {
    /// The format for a path, from its extension (case-insensitive).
    pub fn from_path(path: &str) -> Option<SourceFormat> {
        let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(SourceFormat::Csv),
            "parquet" | "pq" => Some(SourceFormat::Parquet),
            "jsonl" | "ndjson" => Some(SourceFormat::JsonLines),
            _ => None,
        }
    }
}

/// The whole project file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// `[project]`.
    pub project: ProjectSection,
    /// `[entities.NAME]`, in file order.
    #[serde(default)]
    pub entities: IndexMap<String, EntityConfig>,
    /// `[events]`, optional: a project without events has no traits.
    pub events: Option<EventsConfig>,
    /// `[traits]`: name to trait expression, in file order.
    #[serde(default)]
    pub traits: IndexMap<String, TraitConfig>,
    /// `[segments.NAME]`, in file order.
    #[serde(default)]
    pub segments: IndexMap<String, SegmentConfig>,
}

/// `[project]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectSection {
    /// A display name.
    pub name: String,
    /// The entity that segments hold (a key of `[entities]`).
    pub entity: Spanned<String>,
    /// Where runs are stored, relative to the project folder (default `.segmenta`).
    #[serde(default)]
    pub store: Option<String>,
}

/// `[entities.NAME]`: a table of customers (accounts, contacts, ...).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityConfig {
    /// Data file, relative to the project folder.
    pub source: Spanned<String>,
    /// Column holding the unique entity id.
    pub key: String,
    /// Type overrides; other columns are inferred.
    #[serde(default)]
    pub columns: IndexMap<String, Spanned<String>>,
    /// Parent entity: this entity's rows carry the parent's key column.
    #[serde(default)]
    pub parent: Option<Spanned<String>>,
}

/// `[events]`: the event stream traits are computed from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// Data file, relative to the project folder.
    pub source: Spanned<String>,
    /// Column carrying the owning entity's key.
    pub entity_key: String,
    /// Which entity the events belong to; default: the entity whose `key` equals `entity_key`,
    /// else the project's entity.
    #[serde(default)]
    pub entity: Option<Spanned<String>>,
    /// Event time column (timestamp; dates mean midnight UTC).
    pub time: String,
    /// Event type column (informational; usable in conditions like any column).
    #[serde(default, rename = "type")]
    pub event_type: Option<String>,
    /// Type overrides; other columns are inferred.
    #[serde(default)]
    pub columns: IndexMap<String, Spanned<String>>,
}

/// A trait: either `name = "expression"` or `name = { expr = "...", description = "..." }`.
#[derive(Debug, Clone)]
pub struct TraitConfig {
    /// The trait expression with its span in the project file (for the long form, the span of
    /// the whole table).
    pub expr: Spanned<String>,
    /// What it means.
    pub description: Option<String>,
}

impl<'de> Deserialize<'de> for TraitConfig {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        // An untagged enum would lose the spans, so the value is read once with its span.
        let value = Spanned::<toml::Value>::deserialize(deserializer)?;
        let span = value.span();
        match value.into_inner() {
            toml::Value::String(expr) => {
                Ok(TraitConfig { expr: Spanned::new(span, expr), description: None })
            }
            toml::Value::Table(mut table) => {
                let expr = match table.remove("expr") {
                    Some(toml::Value::String(expr)) => expr,
                    _ => return Err(D::Error::custom("a trait table needs `expr = \"...\"`")),
                };
                let description = match table.remove("description") {
                    None => None,
                    Some(toml::Value::String(d)) => Some(d),
                    Some(_) => return Err(D::Error::custom("`description` must be a string")),
                };
                if let Some(key) = table.keys().next() {
                    return Err(D::Error::custom(format!(
                        "unknown field `{key}`, expected one of `expr`, `description`"
                    )));
                }
                Ok(TraitConfig { expr: Spanned::new(span, expr), description })
            }
            _ => Err(D::Error::custom(
                "a trait is a string such as \"count() within 30d\" or a table { expr = \"...\" }",
            )),
        }
    }
}

impl TraitConfig {
    /// The trait expression with its span in the project file.
    pub fn expr(&self) -> &Spanned<String> {
        &self.expr
    }
}

/// `[segments.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentConfig {
    /// The rule; an entity is a member iff it evaluates to TRUE.
    pub rule: Spanned<String>,
    /// What the segment is for.
    #[serde(default)]
    pub description: Option<String>,
}

/// The project file's text, for turning byte offsets into line and column.
#[derive(Debug, Clone)]
pub struct ConfigText<'a>(pub &'a str);

impl ConfigText<'_> {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.0.len());
        let before = &self.0[..self.0.floor_char_boundary(offset)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// Offset in the file of byte `offset_in_value` of a string value whose TOML literal spans
    /// `span`, when that literal is a one-line string without escapes (so that positions inside
    /// the value map one to one onto the file). Otherwise the literal's own start.
    pub fn value_offset(&self, span: &Range<usize>, offset_in_value: usize) -> usize {
        let literal = self.0.get(span.clone()).unwrap_or("");
        let simple = (literal.starts_with('"') && !literal.contains('\\') || literal.starts_with('\''))
            && !literal.starts_with("\"\"\"")
            && !literal.starts_with("'''");
        if simple { span.start + 1 + offset_in_value } else { span.start }
    }

    fn error_at(&self, span: Option<Range<usize>>, message: String, hint: Option<String>) -> ConfigError {
        let (line, column) = match span {
            Some(span) => {
                let (l, c) = self.line_col(span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        ConfigError { message, line, column, hint }
    }
}

/// The closest candidate to `name` by edit distance, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Turns the toml crate's message into ours, adding a "did you mean" for unknown keys.
fn from_toml_error(text: &ConfigText<'_>, err: &toml::de::Error) -> ConfigError {
    let message = err.message().trim().to_string();
    let mut hint = None;
    // The message for deny_unknown_fields reads:
    // "unknown field `entiy`, expected one of `name`, `entity`, `store`".
    if let Some((field, expected)) =
        message.strip_prefix("unknown field `").and_then(|rest| rest.split_once('`'))
    {
        let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        hint = Some(match did_you_mean(field, candidates.iter().copied()) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("the keys allowed here are: {}", candidates.join(", ")),
        });
    }
    let message = message
        .split_once(", expected")
        .filter(|_| hint.is_some())
        .map_or(message.clone(), |(head, _)| head.to_string());
    text.error_at(err.span(), message, hint)
}

/// Parses `segmenta.toml` text and checks what can be checked without data.
///
/// Returns every problem found, not only the first.
pub fn parse_project(text: &str) -> Result<ProjectConfig, Vec<ConfigError>> {
    let ct = ConfigText(text);
    let config: ProjectConfig = toml::from_str(text).map_err(|e| vec![from_toml_error(&ct, &e)])?;
    let mut errors = Vec::new();
    let entity_names: Vec<&str> = config.entities.keys().map(String::as_str).collect();
    let unknown_entity = |name: &Spanned<String>, what: &str| {
        let hint = match did_you_mean(name.get_ref(), entity_names.iter().copied()) {
            Some(best) => format!("did you mean `{best}`?"),
            None if entity_names.is_empty() => "declare it as [entities.NAME] with source and key".into(),
            None => format!("declared entities: {}", entity_names.join(", ")),
        };
        ct.error_at(
            Some(name.span()),
            format!("{what} `{}` is not a declared entity", name.get_ref()),
            Some(hint),
        )
    };
    if !config.entities.contains_key(config.project.entity.get_ref()) {
        errors.push(unknown_entity(&config.project.entity, "project entity"));
    }
    let check_columns = |columns: &IndexMap<String, Spanned<String>>, errors: &mut Vec<ConfigError>| {
        for (column, ty) in columns {
            if let Err(message) = ty.get_ref().parse::<ValueType>() {
                errors.push(ct.error_at(Some(ty.span()), format!("column `{column}`: {message}"), None));
            }
        }
    };
    let check_source = |source: &Spanned<String>, errors: &mut Vec<ConfigError>| {
        if SourceFormat::from_path(source.get_ref()).is_none() {
            errors.push(ct.error_at(
                Some(source.span()),
                format!("unsupported file type `{}`", source.get_ref()),
                Some("use a .csv, .parquet, .jsonl or .ndjson file".into()),
            ));
        }
    };
    for (name, entity) in &config.entities {
        check_source(&entity.source, &mut errors);
        check_columns(&entity.columns, &mut errors);
        if let Some(parent) = &entity.parent {
            if !config.entities.contains_key(parent.get_ref()) {
                errors.push(unknown_entity(parent, &format!("parent of `{name}`")));
            } else if parent.get_ref() == name {
                errors.push(ct.error_at(
                    Some(parent.span()),
                    format!("entity `{name}` cannot be its own parent"),
                    None,
                ));
            }
        }
    }
    if let Some(events) = &config.events {
        check_source(&events.source, &mut errors);
        check_columns(&events.columns, &mut errors);
        if let Some(entity) = events.entity.as_ref().filter(|e| !config.entities.contains_key(e.get_ref())) {
            errors.push(unknown_entity(entity, "events entity"));
        }
    } else if !config.traits.is_empty() {
        errors.push(ConfigError {
            message: "traits are declared but there is no [events] section".into(),
            line: None,
            column: None,
            hint: Some("add [events] with source, entity_key and time".into()),
        });
    }
    for name in config.traits.keys() {
        if config.segments.contains_key(name) {
            errors.push(ConfigError {
                message: format!("`{name}` is both a trait and a segment"),
                line: None,
                column: None,
                hint: Some("give one of them another name".into()),
            });
        }
    }
    if errors.is_empty() { Ok(config) } else { Err(errors) }
}

impl ProjectConfig {
    /// The name of the entity the events belong to.
    pub fn events_entity(&self) -> Option<&str> {
        let events = self.events.as_ref()?;
        if let Some(entity) = &events.entity {
            return Some(entity.get_ref());
        }
        let by_key = self.entities.iter().find(|(_, e)| e.key == events.entity_key);
        Some(by_key.map_or(self.project.entity.get_ref().as_str(), |(name, _)| name.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[project]
name = "acme"
entity = "account"

[entities.account]
source = "data/accounts.csv"
key = "account_id"
columns = { employees = "int" }

[events]
source = "data/events.parquet"
entity_key = "account_id"
time = "ts"
type = "event_type"

[traits]
purchases_90d = "count() where event_type = 'purchase' within 90d"
revenue = { expr = "sum(amount)", description = "all revenue" }

[segments.big]
rule = "employees >= 1000"
"#;

    fn check_error(text: &str, expected_message: &str, expected_hint: Option<&str>, line: usize) {
        let errors = parse_project(text).expect_err("config must be rejected");
        let first = &errors[0];
        assert!(
            first.message.contains(expected_message),
            "message {:?} lacks {expected_message:?}",
            first.message
        );
        assert_eq!(
            first.hint.as_deref().map(|h| h.contains(expected_hint.unwrap_or(""))),
            expected_hint.map(|_| true)
        );
        assert_eq!(first.line, Some(line), "{first}");
    }

    #[test]
    fn minimal_project_parses_in_order() {
        let config = parse_project(MINIMAL).expect("valid");
        assert_eq!(config.project.entity.get_ref(), "account");
        let traits: Vec<&str> = config.traits.keys().map(String::as_str).collect();
        assert_eq!(traits, ["purchases_90d", "revenue"]);
        assert_eq!(config.traits["revenue"].expr().get_ref(), "sum(amount)");
        assert_eq!(config.events_entity(), Some("account"));
    }

    #[test]
    fn unknown_key_has_a_did_you_mean() {
        let text = MINIMAL.replace("entity = \"account\"", "entiy = \"account\"");
        check_error(&text, "unknown field `entiy`", Some("did you mean `entity`?"), 4);
    }

    #[test]
    fn unknown_entity_reference() {
        let text = MINIMAL.replace("entity = \"account\"", "entity = \"acount\"");
        check_error(&text, "project entity `acount` is not a declared entity", Some("`account`"), 4);
    }

    #[test]
    fn bad_column_type_and_extension() {
        let text = MINIMAL.replace("\"int\"", "\"integr\"");
        check_error(&text, "column `employees`: unknown type `integr`", None, 9);
        let text = MINIMAL.replace("accounts.csv", "accounts.xlsx");
        check_error(&text, "unsupported file type", Some(".parquet"), 7);
    }

    #[test]
    fn rule_offsets_map_to_file_positions() {
        let config = parse_project(MINIMAL).expect("valid");
        let rule = &config.segments["big"].rule;
        let ct = ConfigText(MINIMAL);
        // `>=` is at byte 10 of the rule.
        let (line, column) = ct.line_col(ct.value_offset(&rule.span(), 10));
        assert_eq!((line, column), (22, 19));
    }
}
