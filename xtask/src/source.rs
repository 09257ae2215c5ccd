//! A line-scanning reader of Rust source, enough for the tidy checks and no more.
//!
//! Why not `syn`: the checks need three facts about a file (which text is code, which text is a
//! string literal, which lines are test-only), and a full parser would be the largest dependency
//! of the workspace's smallest tool. [`Source::new`] walks the text once, character by character,
//! tracking five states (code, line comment, nested block comment, string with escapes, raw string
//! with its `#` count) plus character literals (`'{'`, `'\''`), told apart from lifetimes by the
//! quote two characters on. Its limits, accepted: macros are read as code like any other tokens,
//! and test-only code is recognised only by a literal `#[cfg(test)]` attribute (not
//! `#[cfg(all(test, ...))]`).

use std::ops::Range;

/// A string literal of the file: its first line (1-based) and its contents, escapes unexpanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringLiteral {
    /// The line of the opening quote.
    pub line: usize,
    /// The text between the quotes.
    pub text: String,
}

/// One Rust file, read once: the code with comments and string contents blanked, its string
/// literals, and its `#[cfg(test)]` items.
#[derive(Debug)]
pub struct Source {
    /// The file with every comment character and every character inside a string or character
    /// literal replaced by a space (quotes and newlines kept), so byte offsets and lines match the
    /// original and a search for `crate::` or `todo!(` finds only code.
    pub code: String,
    /// The string literals, in order.
    pub strings: Vec<StringLiteral>,
    /// Byte ranges of `code` covered by an item marked `#[cfg(test)]`, attribute included.
    pub test_ranges: Vec<Range<usize>>,
    line_starts: Vec<usize>,
}

impl Source {
    /// Reads `text`.
    pub fn new(text: &str) -> Source {
        let (code, strings) = mask(text);
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let test_ranges = test_ranges(&code);
        Source { code, strings, test_ranges, line_starts }
    }

    /// The 1-based line of byte offset `offset`.
    pub fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    /// Whether byte offset `offset` lies inside a `#[cfg(test)]` item.
    pub fn is_test(&self, offset: usize) -> bool {
        self.test_ranges.iter().any(|range| range.contains(&offset))
    }

    /// Whether line `line` (1-based) lies inside a `#[cfg(test)]` item.
    pub fn is_test_line(&self, line: usize) -> bool {
        let start = self.line_starts.get(line.saturating_sub(1)).copied().unwrap_or(usize::MAX);
        self.is_test(start)
    }

    /// Byte offsets in `code` where `needle` starts and is not preceded by an identifier character
    /// (so `todo!(` does not match `my_todo!(`, and `crate::` does not match `$crate::`).
    pub fn find_word(&self, needle: &str) -> Vec<usize> {
        find_word(&self.code, needle)
    }
}

/// Offsets of `needle` in `code` not preceded by an identifier character or `$`.
pub fn find_word(code: &str, needle: &str) -> Vec<usize> {
    code.match_indices(needle)
        .map(|(i, _)| i)
        .filter(|&i| !code[..i].chars().next_back().is_some_and(|c| is_ident(c) || c == '$'))
        .collect()
}

/// Whether `c` can be part of a Rust identifier.
pub fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The masked code and the string literals of `text` (see [`Source::code`]).
fn mask(text: &str) -> (String, Vec<StringLiteral>) {
    let chars: Vec<char> = text.chars().collect();
    let mut code = String::with_capacity(text.len());
    let mut strings = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Pushes `c` as code, or as a blank when `blank` (keeping newlines and byte lengths).
    let push = |code: &mut String, c: char, blank: bool| {
        if !blank || c == '\n' {
            code.push(c);
        } else {
            code.extend(std::iter::repeat_n(' ', c.len_utf8()));
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                push(&mut code, chars[i], true);
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    push(&mut code, '/', true);
                    push(&mut code, '*', true);
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    push(&mut code, '*', true);
                    push(&mut code, '/', true);
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(chars[i] == '\n');
                    push(&mut code, chars[i], true);
                    i += 1;
                }
            }
            continue;
        }
        let prev_ident = i > 0 && is_ident(chars[i - 1]);
        // Raw strings: r"..", r#".."#, br"..", cr"..".
        let raw_start =
            if !prev_ident && matches!(c, 'b' | 'c') && next == Some('r') { i + 2 } else { i + 1 };
        if !prev_ident && (c == 'r' || raw_start == i + 2) {
            let mut j = raw_start;
            while chars.get(j) == Some(&'#') {
                j += 1;
            }
            if chars.get(j) == Some(&'"') {
                let hashes = j - raw_start;
                for &k in &chars[i..=j] {
                    push(&mut code, k, false);
                }
                i = j + 1;
                let (start_line, mut literal) = (line, String::new());
                while i < chars.len() {
                    if chars[i] == '"' && (1..=hashes).all(|h| chars.get(i + h) == Some(&'#')) {
                        break;
                    }
                    line += usize::from(chars[i] == '\n');
                    literal.push(chars[i]);
                    push(&mut code, chars[i], true);
                    i += 1;
                }
                for &k in &chars[i..(i + 1 + hashes).min(chars.len())] {
                    push(&mut code, k, false);
                }
                i += 1 + hashes;
                strings.push(StringLiteral { line: start_line, text: literal });
                continue;
            }
        }
        if c == '"' {
            push(&mut code, c, false);
            i += 1;
            let (start_line, mut literal) = (line, String::new());
            while i < chars.len() && chars[i] != '"' {
                let step = if chars[i] == '\\' { 2 } else { 1 };
                for &k in &chars[i..(i + step).min(chars.len())] {
                    line += usize::from(k == '\n');
                    literal.push(k);
                    push(&mut code, k, true);
                }
                i += step;
            }
            if i < chars.len() {
                push(&mut code, '"', false);
                i += 1;
            }
            strings.push(StringLiteral { line: start_line, text: literal });
            continue;
        }
        if c == '\'' {
            // A character literal ('x', '\n', '\u{1F600}') rather than a lifetime or label ('a).
            let end = if next == Some('\\') {
                (i + 2..chars.len().min(i + 12)).find(|&k| chars[k] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            if let Some(end) = end {
                push(&mut code, '\'', false);
                for &k in &chars[i + 1..end] {
                    push(&mut code, k, true);
                }
                push(&mut code, '\'', false);
                i = end + 1;
                continue;
            }
        }
        line += usize::from(c == '\n');
        push(&mut code, c, false);
        i += 1;
    }
    (code, strings)
}

/// The byte ranges of the items marked `#[cfg(test)]` in masked `code`: from the attribute to the
/// brace closing the item's body, or to the `;` ending a bodiless item (`mod tests;`, `use ..;`).
fn test_ranges(code: &str) -> Vec<Range<usize>> {
    let bytes = code.as_bytes();
    let mut ranges: Vec<Range<usize>> = Vec::new();
    for (start, _) in code.match_indices("#[cfg(test)]") {
        if ranges.last().is_some_and(|last| last.contains(&start)) {
            continue;
        }
        let mut depth = 0usize;
        let mut end = code.len();
        let mut k = start + "#[cfg(test)]".len();
        while k < bytes.len() {
            match bytes[k] {
                b'{' => depth += 1,
                b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        end = k + 1;
                        break;
                    }
                }
                b';' if depth == 0 => {
                    end = k + 1;
                    break;
                }
                _ => {}
            }
            k += 1;
        }
        ranges.push(start..end);
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_comments_strings_and_chars() {
        let text = "let a = \"crate::x // no\"; // crate::y\nlet b = '{'; /* crate::z /* nested */ */ crate::w\nlet c = r#\"todo!(\"#; fn f<'a>(x: &'a str) {}";
        let source = Source::new(text);
        assert_eq!(source.code.len(), text.len());
        assert_eq!(source.find_word("crate::").len(), 1);
        assert_eq!(source.line_of(source.find_word("crate::")[0]), 2);
        assert!(source.find_word("todo!(").is_empty());
        assert!(source.code.contains("fn f<'a>(x: &'a str) {}"));
        let texts: Vec<&str> = source.strings.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["crate::x // no", "todo!("]);
        assert_eq!(source.strings[1].line, 3);
    }

    #[test]
    fn escaped_quotes_stay_inside_the_string() {
        let source = Source::new("let a = \"say \\\"hi\\\" crate::x\"; crate::y");
        assert_eq!(source.find_word("crate::").len(), 1);
        assert_eq!(source.strings[0].text, "say \\\"hi\\\" crate::x");
    }

    #[test]
    fn finds_test_items() {
        let text = "fn a() {}\n#[cfg(test)]\nmod tests {\n    fn b() { let s = \"}\"; }\n}\nfn c() {}\n#[cfg(test)]\nmod more;\n";
        let source = Source::new(text);
        assert!(!source.is_test_line(1));
        assert!(source.is_test_line(2) && source.is_test_line(4) && source.is_test_line(5));
        assert!(!source.is_test_line(6));
        assert!(source.is_test_line(8));
    }

    #[test]
    fn words_need_a_boundary() {
        assert_eq!(find_word("my_todo!( todo!(", "todo!("), [10]);
        assert!(find_word("$crate::x", "crate::").is_empty());
    }
}
