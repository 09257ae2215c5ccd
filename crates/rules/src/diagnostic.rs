//! Problems found in rule and trait text: a stable code, a message, a span and a hint, and
//! their rendering with the offending text underlined.

use std::fmt;

use crate::ast::Span;

/// One problem in a rule or trait, found while lexing, parsing, resolving or ordering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// A stable snake_case code, such as `unknown_attribute` or `type_mismatch`.
    pub code: &'static str,
    /// What is wrong: lowercase, no trailing period, naming the offending value.
    pub message: String,
    /// Where it is, in bytes of the rule or trait text.
    pub span: Span,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic without a hint.
    pub fn new(code: &'static str, message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic { code, message: message.into(), span, hint: None }
    }

    /// The same diagnostic with a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// The 1-based line and column (in characters) of the span's start in `text`.
    pub fn line_column(&self, text: &str) -> (usize, usize) {
        let start = text.floor_char_boundary(self.span.start.min(text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        (text[..start].matches('\n').count() + 1, text[line_start..start].chars().count() + 1)
    }

    /// The span in characters of `text` (start inclusive, end exclusive), for callers that
    /// index text by character (a browser's editor).
    pub fn char_span(&self, text: &str) -> (usize, usize) {
        let start = text.floor_char_boundary(self.span.start.min(text.len()));
        let end = text.floor_char_boundary(self.span.end.clamp(start, text.len()));
        let before = text[..start].chars().count();
        (before, before + text[start..end].chars().count())
    }

    /// Renders the diagnostic for a person: a header naming the source and position, the line
    /// of `text` holding the span, a caret line under the span, and the hint.
    ///
    /// `source_name` says where the text comes from, e.g. ``segment `vip` ``; it may be empty.
    /// Positions are 1-based and count characters, not bytes.
    pub fn render(&self, source_name: &str, text: &str) -> String {
        let start = text.floor_char_boundary(self.span.start.min(text.len()));
        let end = text.floor_char_boundary(self.span.end.clamp(start, text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let (line_number, column) = self.line_column(text);
        let position = if text.contains('\n') {
            format!("line {line_number}, column {column}")
        } else {
            format!("position {column}")
        };
        let mut out = format!("error[{}]: {}", self.code, self.message);
        if !source_name.is_empty() {
            out.push_str(" in ");
            out.push_str(source_name);
        }
        out.push_str(" at ");
        out.push_str(&position);
        // Tabs and carriage returns would break the alignment of the caret line.
        let line: String = text[line_start..line_end]
            .chars()
            .map(|c| if c == '\t' || c == '\r' { ' ' } else { c })
            .collect();
        let underlined = text[start..end.min(line_end).max(start)].chars().count().max(1);
        // A long line is shown as a window around the problem, so the message stays short.
        const CONTEXT: usize = 60;
        let skip = (column - 1).saturating_sub(CONTEXT);
        let shown_underline = underlined.min(2 * CONTEXT);
        let mut window: String = line.chars().skip(skip).take(CONTEXT + shown_underline + CONTEXT).collect();
        let mut caret_at = column - 1 - skip;
        if skip > 0 {
            window.insert(0, '…');
            caret_at += 1;
        }
        if line.chars().count() > skip + CONTEXT + shown_underline + CONTEXT {
            window.push('…');
        }
        out.push_str("\n  ");
        out.push_str(&window);
        out.push_str("\n  ");
        out.push_str(&" ".repeat(caret_at));
        out.push_str(&"^".repeat(shown_underline));
        if let Some(hint) = &self.hint {
            out.push_str("\n  hint: ");
            out.push_str(hint);
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// A hint naming the closest candidate (by [`segmenta_core::suggest::closest`], the rule every
/// "did you mean" of segmenta follows), or listing a few when none is close; `None` when there
/// are no candidates.
pub(crate) fn suggestion(name: &str, candidates: &[String], what: &str) -> Option<String> {
    if let Some(best) = segmenta_core::suggest::closest(name, candidates.iter().map(String::as_str)) {
        return Some(format!("did you mean `{}`?", segmenta_core::suggest::shown(best)));
    }
    if candidates.is_empty() {
        return None;
    }
    let mut sorted: Vec<&str> = candidates.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    const SHOWN: usize = 8;
    let listed: Vec<String> =
        sorted.iter().take(SHOWN).map(|c| format!("`{}`", segmenta_core::suggest::shown(c))).collect();
    let more =
        if sorted.len() > SHOWN { format!(" and {} more", sorted.len() - SHOWN) } else { String::new() };
    Some(format!("available {what}: {}{more}", listed.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, span: Span, expected: &str) {
        let diagnostic = Diagnostic::new("unknown_attribute", "unknown attribute `x`", span)
            .with_hint("did you mean `y`?");
        assert_eq!(diagnostic.render("segment `s`", text), expected);
    }

    #[test]
    fn caret_sits_under_the_span() {
        check(
            "industy = 'healthcare'",
            Span::new(0, 7),
            "error[unknown_attribute]: unknown attribute `x` in segment `s` at position 1\n  industy = 'healthcare'\n  ^^^^^^^\n  hint: did you mean `y`?",
        );
        check(
            "é = x",
            Span::new(5, 6),
            "error[unknown_attribute]: unknown attribute `x` in segment `s` at position 5\n  é = x\n      ^\n  hint: did you mean `y`?",
        );
    }

    #[test]
    fn multi_line_and_out_of_range_spans() {
        check(
            "a = 1\nand\tb",
            Span::new(10, 11),
            "error[unknown_attribute]: unknown attribute `x` in segment `s` at line 2, column 5\n  and b\n      ^\n  hint: did you mean `y`?",
        );
        check(
            "a",
            Span::new(7, 9),
            "error[unknown_attribute]: unknown attribute `x` in segment `s` at position 2\n  a\n   ^\n  hint: did you mean `y`?",
        );
        // A span inside a multi-byte character is moved to the character's start.
        check(
            "é",
            Span::new(1, 2),
            "error[unknown_attribute]: unknown attribute `x` in segment `s` at position 1\n  é\n  ^\n  hint: did you mean `y`?",
        );
    }

    #[test]
    fn suggestions() {
        let names = vec!["industry".to_string(), "employees".to_string()];
        assert_eq!(suggestion("industy", &names, "attributes").as_deref(), Some("did you mean `industry`?"));
        assert_eq!(
            suggestion("zzz", &names, "attributes").as_deref(),
            Some("available attributes: `employees`, `industry`")
        );
        assert_eq!(suggestion("zzz", &[], "attributes"), None);
    }
}
