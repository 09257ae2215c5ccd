//! Turns rule and trait text into tokens with byte spans.
//!
//! The lexer never fails: it reports problems as diagnostics and recovers, so that the parser
//! can go on and find more. Common mistakes borrowed from other languages (`==`, `&&`, `||`,
//! `!`) are reported with a hint and read as what they were meant to be.

use crate::ast::{ArithOp, CmpOp, Span};
use crate::diagnostic::Diagnostic;

/// The most diagnostics the lexer reports; garbage input would otherwise produce thousands.
const MAX_LEXER_DIAGNOSTICS: usize = 10;

/// What a token is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A plain word: an identifier or a keyword (`[A-Za-z_][A-Za-z0-9_]*`).
    Word(String),
    /// A backquoted name, backquotes removed.
    Quoted(String),
    /// A number as written (`5`, `2.5`, `1e3`); a minus before it is its own token.
    Number(String),
    /// A number immediately followed by letters (`90d`): a window, or a mistake.
    NumWord(String),
    /// A bare date `YYYY-MM-DD` (a bound of a trait's `between` range), as written.
    BareDate(String),
    /// A quoted string, quotes removed.
    Str(String),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `.`
    Dot,
    /// A comparison operator.
    Cmp(CmpOp),
    /// An arithmetic operator (`-` also negates).
    Arith(ArithOp),
    /// The end of the text.
    Eof,
}

/// A token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    /// What it is.
    pub tok: Tok,
    /// Where it is.
    pub span: Span,
}

impl Token {
    /// The token as a user would recognise it in a message, shortened when long.
    pub fn describe(&self) -> String {
        let text = match &self.tok {
            Tok::Word(w) => w.clone(),
            Tok::Quoted(q) => format!("`{q}`"),
            Tok::Number(n) | Tok::NumWord(n) | Tok::BareDate(n) => n.clone(),
            Tok::Str(s) => format!("'{s}'"),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Comma => ",".into(),
            Tok::Dot => ".".into(),
            Tok::Cmp(op) => op.symbol().into(),
            Tok::Arith(op) => op.symbol().into(),
            Tok::Eof => return "the end of the text".into(),
        };
        let short: String = text.chars().take(40).collect();
        let short = if short.len() < text.len() { format!("{short}…") } else { short };
        let short = short.replace('`', "'");
        format!("`{short}`")
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    tokens: Vec<Token>,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl Lexer<'_> {
    fn peek_at(&self, offset: usize) -> Option<char> {
        self.text.get(self.pos + offset..)?.chars().next()
    }

    fn push(&mut self, tok: Tok, start: usize) {
        self.tokens.push(Token { tok, span: Span::new(start, self.pos) });
    }

    fn report(&mut self, diagnostic: Diagnostic) {
        if self.diagnostics.len() < MAX_LEXER_DIAGNOSTICS {
            self.diagnostics.push(diagnostic);
        }
    }

    /// Reads a quoted run starting at the opening `quote`; a doubled quote stands for itself.
    /// Returns the content and whether the closing quote was found.
    fn quoted(&mut self, quote: char) -> (String, bool) {
        self.pos += quote.len_utf8();
        let mut content = String::new();
        while let Some(c) = self.peek_at(0) {
            self.pos += c.len_utf8();
            if c == quote {
                if self.peek_at(0) == Some(quote) {
                    self.pos += quote.len_utf8();
                    content.push(quote);
                } else {
                    return (content, true);
                }
            } else {
                content.push(c);
            }
        }
        (content, false)
    }

    fn number(&mut self, start: usize) {
        if let Some(date) = bare_date(&self.text[start..]) {
            self.pos += date.len();
            self.push(Tok::BareDate(date.to_string()), start);
            return;
        }
        let digits = |lexer: &mut Self| {
            while lexer.peek_at(0).is_some_and(|c| c.is_ascii_digit()) {
                lexer.pos += 1;
            }
        };
        digits(self);
        if self.peek_at(0) == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
            digits(self);
        }
        if matches!(self.peek_at(0), Some('e' | 'E')) {
            let sign = usize::from(matches!(self.peek_at(1), Some('+' | '-')));
            if self.peek_at(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1 + sign;
                digits(self);
            }
        }
        if self.peek_at(0).is_some_and(is_ident_char) {
            while self.peek_at(0).is_some_and(is_ident_char) {
                self.pos += 1;
            }
            let word = self.text[start..self.pos].to_string();
            self.push(Tok::NumWord(word), start);
        } else {
            let number = self.text[start..self.pos].to_string();
            self.push(Tok::Number(number), start);
        }
    }

    /// Reads a mistaken operator as the keyword it stands for, with a hint.
    fn mistaken(&mut self, len: usize, meant: &str, start: usize) {
        self.pos += len;
        let written = &self.text[start..self.pos];
        let span = Span::new(start, self.pos);
        self.report(
            Diagnostic::new("unexpected_token", format!("unexpected `{written}`"), span)
                .with_hint(format!("use `{meant}`")),
        );
    }

    fn run(&mut self) {
        while let Some(c) = self.peek_at(0) {
            let start = self.pos;
            match c {
                c if c.is_whitespace() => self.pos += c.len_utf8(),
                '(' | ')' | ',' | '.' => {
                    self.pos += 1;
                    let tok = match c {
                        '(' => Tok::LParen,
                        ')' => Tok::RParen,
                        ',' => Tok::Comma,
                        _ => Tok::Dot,
                    };
                    self.push(tok, start);
                }
                '=' => {
                    if self.peek_at(1) == Some('=') {
                        self.mistaken(2, "=", start);
                    } else {
                        self.pos += 1;
                    }
                    self.push(Tok::Cmp(CmpOp::Eq), start);
                }
                '!' => {
                    if self.peek_at(1) == Some('=') {
                        self.pos += 2;
                        self.push(Tok::Cmp(CmpOp::NotEq), start);
                    } else {
                        self.mistaken(1, "not", start);
                        self.push(Tok::Word("not".into()), start);
                    }
                }
                '<' => {
                    let (len, op) = match self.peek_at(1) {
                        Some('=') => (2, CmpOp::LtEq),
                        Some('>') => (2, CmpOp::NotEq),
                        _ => (1, CmpOp::Lt),
                    };
                    self.pos += len;
                    self.push(Tok::Cmp(op), start);
                }
                '>' => {
                    let (len, op) =
                        if self.peek_at(1) == Some('=') { (2, CmpOp::GtEq) } else { (1, CmpOp::Gt) };
                    self.pos += len;
                    self.push(Tok::Cmp(op), start);
                }
                '&' | '|' => {
                    let len = if self.peek_at(1) == Some(c) { 2 } else { 1 };
                    let meant = if c == '&' { "and" } else { "or" };
                    self.mistaken(len, meant, start);
                    self.push(Tok::Word(meant.into()), start);
                }
                '\'' | '"' => {
                    let (content, closed) = self.quoted(c);
                    if !closed {
                        self.report(
                            Diagnostic::new(
                                "unterminated_string",
                                "unterminated string starting here",
                                Span::new(start, start + 1),
                            )
                            .with_hint(format!("close the string with {c}")),
                        );
                    }
                    self.push(Tok::Str(content), start);
                }
                '`' => {
                    let (content, closed) = self.quoted('`');
                    if !closed {
                        self.report(
                            Diagnostic::new(
                                "unterminated_identifier",
                                "unterminated name starting here",
                                Span::new(start, start + 1),
                            )
                            .with_hint("close the name with `"),
                        );
                    }
                    self.push(Tok::Quoted(content), start);
                }
                c if c.is_ascii_digit() => self.number(start),
                '+' | '-' | '*' | '/' => {
                    self.pos += 1;
                    let op = match c {
                        '+' => ArithOp::Add,
                        '-' => ArithOp::Sub,
                        '*' => ArithOp::Mul,
                        _ => ArithOp::Div,
                    };
                    self.push(Tok::Arith(op), start);
                }
                c if is_ident_start(c) => {
                    while self.peek_at(0).is_some_and(is_ident_char) {
                        self.pos += 1;
                    }
                    let word = self.text[start..self.pos].to_string();
                    self.push(Tok::Word(word), start);
                }
                c => {
                    self.pos += c.len_utf8();
                    let span = Span::new(start, self.pos);
                    let shown = c.escape_debug();
                    let diagnostic =
                        Diagnostic::new("invalid_character", format!("unexpected character `{shown}`"), span);
                    let diagnostic = match c {
                        ';' => diagnostic.with_hint("a rule is a single condition; remove the `;`"),
                        '%' => {
                            diagnostic.with_hint("there is no remainder operator; use + - * / and round()")
                        }
                        '[' | ']' | '{' | '}' => diagnostic.with_hint("group conditions with ( and )"),
                        _ => diagnostic,
                    };
                    self.report(diagnostic);
                }
            }
        }
        self.push(Tok::Eof, self.pos);
    }
}

/// The bare date `DDDD-DD-DD` at the start of `text`, if it is one and no letter, digit,
/// `_` or `.` follows it (so `2025-01-01x` stays a mistake of numbers).
fn bare_date(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let shape = bytes.len() >= 10
        && bytes[..10]
            .iter()
            .enumerate()
            .all(|(i, b)| if i == 4 || i == 7 { *b == b'-' } else { b.is_ascii_digit() });
    let ends = bytes.get(10).is_none_or(|b| !(b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.'));
    (shape && ends).then(|| &text[..10])
}

/// Splits `text` into tokens ending with [`Tok::Eof`], adding problems to `diagnostics`.
pub(crate) fn lex(text: &str, diagnostics: &mut Vec<Diagnostic>) -> Vec<Token> {
    let mut lexer = Lexer { text, pos: 0, tokens: Vec::new(), diagnostics };
    lexer.run();
    lexer.tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        let mut diagnostics = Vec::new();
        let tokens = lex(input, &mut diagnostics);
        let mut actual: Vec<String> =
            tokens.iter().map(|t| format!("{:?}@{}..{}", t.tok, t.span.start, t.span.end)).collect();
        actual.extend(diagnostics.iter().map(|d| format!("!{}@{}", d.code, d.span.start)));
        assert_eq!(actual.join(" "), expected, "input: {input:?}");
    }

    #[test]
    fn bare_dates_are_one_token() {
        check(
            "between 2025-01-01 and 2025-03-31",
            r#"Word("between")@0..7 BareDate("2025-01-01")@8..18 Word("and")@19..22 BareDate("2025-03-31")@23..33 Eof@33..33"#,
        );
        check(
            "2025-1-01",
            r#"Number("2025")@0..4 Arith(Sub)@4..5 Number("1")@5..6 Arith(Sub)@6..7 Number("01")@7..9 Eof@9..9"#,
        );
        check(
            "2025-01-01d",
            r#"Number("2025")@0..4 Arith(Sub)@4..5 Number("01")@5..7 Arith(Sub)@7..8 NumWord("01d")@8..11 Eof@11..11"#,
        );
    }

    #[test]
    fn tokens() {
        check("a>=-5", r#"Word("a")@0..1 Cmp(GtEq)@1..3 Arith(Sub)@3..4 Number("5")@4..5 Eof@5..5"#);
        check(
            "a*b/2+-c",
            r#"Word("a")@0..1 Arith(Mul)@1..2 Word("b")@2..3 Arith(Div)@3..4 Number("2")@4..5 Arith(Add)@5..6 Arith(Sub)@6..7 Word("c")@7..8 Eof@8..8"#,
        );
        check(
            "x <> 'it''s' 1e3 90d",
            r#"Word("x")@0..1 Cmp(NotEq)@2..4 Str("it's")@5..12 Number("1e3")@13..16 NumWord("90d")@17..20 Eof@20..20"#,
        );
        check("`a``b`.c", r#"Quoted("a`b")@0..6 Dot@6..7 Word("c")@7..8 Eof@8..8"#);
        check("2.5e-3", r#"Number("2.5e-3")@0..6 Eof@6..6"#);
    }

    #[test]
    fn recovery() {
        check(
            "a == 1 && !b",
            r#"Word("a")@0..1 Cmp(Eq)@2..4 Number("1")@5..6 Word("and")@7..9 Word("not")@10..11 Word("b")@11..12 Eof@12..12 !unexpected_token@2 !unexpected_token@7 !unexpected_token@10"#,
        );
        check("'abc", r#"Str("abc")@0..4 Eof@4..4 !unterminated_string@0"#);
        check("é", r#"Eof@2..2 !invalid_character@0"#);
    }
}
