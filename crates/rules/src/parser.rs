//! Recursive-descent parser of rules and traits (the grammar is in the crate documentation).
//!
//! The parser never panics: nesting is capped at [`MAX_DEPTH`] both while parsing (so the
//! stack cannot overflow) and in the tree it builds (so that every later recursive walk over
//! it, including `Drop`, is shallow). Literal problems (a bad date, a number out of range) are
//! collected and parsing goes on; the first syntax error stops it.

use segmenta_core::Within;

use crate::ast::{
    AggFunc, ArithOp, CallFunc, Expr, ExprKind, Fraction, Ident, Literal, Span, SpannedLiteral, StringOp,
    TraitExpr, Value, ValueKind,
};
use crate::diagnostic::{Diagnostic, suggestion};
use crate::lexer::{Tok, Token, lex};
use crate::literal::{parse_date, parse_timestamp};

/// The deepest nesting of parentheses, `not`s and `and`/`or` chains a rule may have.
pub const MAX_DEPTH: usize = 64;

/// Words that cannot be used as bare names; write them in backquotes instead.
pub(crate) const RESERVED: [&str; 15] = [
    "and",
    "or",
    "not",
    "in",
    "between",
    "is",
    "null",
    "true",
    "false",
    "contains",
    "starts_with",
    "ends_with",
    "in_segment",
    "where",
    "within",
];

/// True when `name` must be backquoted to be read back as the same name: it is not
/// `[A-Za-z_][A-Za-z0-9_]*`, or it is a reserved word, `date`, `timestamp` or `parent`
/// (case-insensitive). Code that writes rules (segment discovery) quotes names with it.
pub fn needs_backquotes(name: &str) -> bool {
    let mut chars = name.chars();
    let plain = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    !plain
        || RESERVED.iter().any(|k| k.eq_ignore_ascii_case(name))
        || name.eq_ignore_ascii_case("date")
        || name.eq_ignore_ascii_case("timestamp")
        || name.eq_ignore_ascii_case("parent")
}

type Parsed<T> = Result<T, Diagnostic>;

struct Parser {
    tokens: Vec<Token>,
    /// For each `(`, the index of its `)` (`usize::MAX` when unclosed).
    matching: Vec<usize>,
    pos: usize,
    /// Current recursion depth of parentheses and `not`.
    depth: usize,
    /// Problems that do not stop parsing.
    diagnostics: Vec<Diagnostic>,
    /// Parsing a trait's `where` condition: a `between` followed by a bare date ends it (the
    /// trait's range follows), rather than starting a `BETWEEN` predicate.
    in_trait_filter: bool,
}

fn too_deep(span: Span) -> Diagnostic {
    Diagnostic::new("nesting_too_deep", "the rule is nested too deeply", span)
        .with_hint(format!("a rule may nest at most {MAX_DEPTH} levels; split it into segments"))
}

impl Parser {
    fn peek(&self) -> &Token {
        // The lexer always ends with Eof and the parser never moves past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, offset: usize) -> &Token {
        &self.tokens[(self.pos + offset).min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if token.tok != Tok::Eof {
            self.pos += 1;
        }
        token
    }

    fn previous(&self) -> Option<&Token> {
        self.pos.checked_sub(1).and_then(|i| self.tokens.get(i))
    }

    fn is_kw(token: &Token, keyword: &str) -> bool {
        matches!(&token.tok, Tok::Word(w) if w.eq_ignore_ascii_case(keyword))
    }

    fn at_kw(&self, keyword: &str) -> bool {
        Self::is_kw(self.peek(), keyword)
    }

    fn eat_kw(&mut self, keyword: &str) -> bool {
        let found = self.at_kw(keyword);
        if found {
            self.bump();
        }
        found
    }

    /// "expected X after `prev`, found `tok`" at the current token.
    fn expected(&self, what: &str) -> Diagnostic {
        let token = self.peek();
        let after = match self.previous() {
            Some(previous) => format!(" after {}", previous.describe()),
            None => String::new(),
        };
        let found = match token.tok {
            Tok::Eof => String::new(),
            _ => format!(", found {}", token.describe()),
        };
        let mut diagnostic =
            Diagnostic::new("unexpected_token", format!("expected {what}{after}{found}"), token.span);
        if let Tok::Word(word) = &token.tok
            && RESERVED.iter().any(|k| k.eq_ignore_ascii_case(word))
        {
            diagnostic =
                diagnostic.with_hint(format!("to use `{word}` as a name, write it in backquotes: `{word}`"));
        }
        diagnostic
    }

    fn enter(&mut self, span: Span) -> Parsed<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH { Err(too_deep(span)) } else { Ok(()) }
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn expect_close(&mut self, open: Span) -> Parsed<Span> {
        if self.peek().tok == Tok::RParen {
            return Ok(self.bump().span);
        }
        Err(self
            .expected("`)`")
            .with_hint(format!("close the `(` opened at position {} or remove it", open.start + 1)))
    }

    fn binary(
        &mut self,
        keyword: &str,
        operand: fn(&mut Self) -> Parsed<(Expr, usize)>,
        make: fn(Box<Expr>, Box<Expr>) -> ExprKind,
    ) -> Parsed<(Expr, usize)> {
        let (mut left, mut depth) = operand(self)?;
        while self.at_kw(keyword) {
            let op = self.bump();
            if matches!(self.peek().tok, Tok::Eof | Tok::RParen) {
                return Err(self.expected("a condition"));
            }
            let (right, right_depth) = operand(self)?;
            depth = depth.max(right_depth) + 1;
            if depth > MAX_DEPTH {
                return Err(too_deep(op.span));
            }
            let span = left.span.to(right.span);
            left = Expr { kind: make(Box::new(left), Box::new(right)), span };
        }
        Ok((left, depth))
    }

    fn or_expr(&mut self) -> Parsed<(Expr, usize)> {
        self.binary("or", Self::and_expr, ExprKind::Or)
    }

    fn and_expr(&mut self) -> Parsed<(Expr, usize)> {
        self.binary("and", Self::not_expr, ExprKind::And)
    }

    fn not_expr(&mut self) -> Parsed<(Expr, usize)> {
        if !self.at_kw("not") {
            return self.predicate();
        }
        let not = self.bump();
        self.enter(not.span)?;
        let (inner, depth) = self.not_expr()?;
        self.leave();
        let span = not.span.to(inner.span);
        Ok((Expr { kind: ExprKind::Not(Box::new(inner)), span }, depth + 1))
    }

    fn predicate(&mut self) -> Parsed<(Expr, usize)> {
        let token = self.peek().clone();
        match &token.tok {
            Tok::LParen if !self.value_follows_group() => {
                self.bump();
                self.enter(token.span)?;
                let (mut inner, depth) = self.or_expr()?;
                let close = self.expect_close(token.span)?;
                self.leave();
                inner.span = token.span.to(close);
                Ok((inner, depth))
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("in_segment") => {
                self.bump();
                if self.peek().tok != Tok::LParen {
                    return Err(self.expected("`(`").with_hint("write in_segment('name')"));
                }
                let open = self.bump();
                let Tok::Str(name) = self.peek().tok.clone() else {
                    return Err(self
                        .expected("a segment name in quotes")
                        .with_hint("write in_segment('name')"));
                };
                self.bump();
                let close = self.expect_close(open.span)?;
                Ok((Expr { kind: ExprKind::InSegment { name }, span: token.span.to(close) }, 1))
            }
            Tok::Eof | Tok::RParen => Err(self.expected("a condition")),
            _ => {
                let value = self.value("a condition")?;
                self.predicate_tail(value).map(|e| (e, 1))
            }
        }
    }

    /// Whether the `(` at the current token groups a value (`(a + b) * 2 > 3`) rather than a
    /// condition: what follows its `)` continues a value or a predicate.
    fn value_follows_group(&self) -> bool {
        let close = self.matching.get(self.pos).copied().unwrap_or(usize::MAX);
        let Some(after) = close.checked_add(1).and_then(|i| self.tokens.get(i)) else { return false };
        // In a trait's `where`, `between` and a bare day start the trait's range.
        let range = self.in_trait_filter
            && Self::is_kw(after, "between")
            && matches!(self.tokens.get(close + 2).map(|t| &t.tok), Some(Tok::BareDate(_)));
        let continues = matches!(after.tok, Tok::Arith(_) | Tok::Cmp(_))
            || ["in", "between", "is", "contains", "starts_with", "ends_with", "not"]
                .iter()
                .any(|k| Self::is_kw(after, k));
        continues && !range
    }

    fn predicate_tail(&mut self, value: Value) -> Parsed<Expr> {
        let start = value.span;
        if let Tok::Cmp(op) = self.peek().tok {
            self.bump();
            let right = self.value("a value")?;
            let span = start.to(right.span);
            return Ok(Expr { kind: ExprKind::Compare { left: value, op, right }, span });
        }
        let negated = self.at_kw("not");
        if negated {
            let next = self.peek_at(1);
            let follows = ["in", "between", "contains", "starts_with", "ends_with"]
                .iter()
                .any(|k| Self::is_kw(next, k));
            self.bump();
            if !follows {
                return Err(self
                    .expected("`in`, `between`, `contains`, `starts_with` or `ends_with`")
                    .with_hint("to negate a condition, put `not` before it: not (a = 1)"));
            }
        }
        if self.eat_kw("in") {
            if self.peek().tok != Tok::LParen {
                return Err(self.expected("`(`").with_hint("write x in ('a', 'b')"));
            }
            let open = self.bump();
            let mut list = vec![self.literal("a constant in the list")?];
            while self.peek().tok == Tok::Comma {
                self.bump();
                list.push(self.literal("a constant in the list")?);
            }
            if self.peek().tok != Tok::RParen {
                return Err(self
                    .expected("`,` or `)`")
                    .with_hint(format!("close the list opened at position {} with )", open.span.start + 1)));
            }
            let close = self.bump();
            let span = start.to(close.span);
            return Ok(Expr { kind: ExprKind::InList { value, list, negated }, span });
        }
        let range_follows = matches!(self.peek_at(1).tok, Tok::BareDate(_));
        if self.in_trait_filter && !negated && self.at_kw("between") && range_follows {
            // `count() where flag between 2025-01-01 and ...`: the trait's range.
            return Ok(Expr { span: value.span, kind: ExprKind::Truthy(value) });
        }
        if self.eat_kw("between") {
            let low = self.literal("a lower bound")?;
            if !self.eat_kw("and") {
                return Err(self.expected("`and`").with_hint("write x between 1 and 10"));
            }
            let high = self.literal("an upper bound")?;
            let span = start.to(high.span);
            return Ok(Expr { kind: ExprKind::Between { value, low, high, negated }, span });
        }
        let string_op = [StringOp::Contains, StringOp::StartsWith, StringOp::EndsWith]
            .into_iter()
            .find(|op| self.at_kw(op.keyword()));
        if let Some(op) = string_op {
            self.bump();
            let Tok::Str(pattern) = self.peek().tok.clone() else {
                return Err(self
                    .expected("a quoted string")
                    .with_hint(format!("write x {} 'text'", op.keyword())));
            };
            let end = self.bump().span;
            let span = start.to(end);
            return Ok(Expr { kind: ExprKind::StringMatch { value, op, pattern, negated }, span });
        }
        if self.eat_kw("is") {
            let negated = self.eat_kw("not");
            if !self.at_kw("null") {
                let hint = if self.at_kw("true") || self.at_kw("false") {
                    "compare booleans with =, e.g. is_active = true"
                } else {
                    "write x is null or x is not null"
                };
                return Err(self.expected("`null`").with_hint(hint));
            }
            let end = self.bump().span;
            return Ok(Expr { kind: ExprKind::IsNull { value, negated }, span: start.to(end) });
        }
        Ok(Expr { span: value.span, kind: ExprKind::Truthy(value) })
    }

    /// An identifier after a word or backquoted name has been seen.
    fn ident(&mut self) -> Parsed<Option<(Ident, Span)>> {
        let token = self.peek().clone();
        match &token.tok {
            Tok::Quoted(name) => {
                self.bump();
                if self.peek().tok == Tok::Dot {
                    return Err(Diagnostic::new(
                        "unexpected_token",
                        format!("unexpected `.` after `{name}`"),
                        self.peek().span,
                    )
                    .with_hint("only `parent.` may qualify a name; backquote the whole name"));
                }
                Ok(Some((Ident { qualifier: None, name: name.clone() }, token.span)))
            }
            Tok::Word(word) if !RESERVED.iter().any(|k| k.eq_ignore_ascii_case(word)) => {
                self.bump();
                if self.peek().tok != Tok::Dot {
                    return Ok(Some((Ident { qualifier: None, name: word.clone() }, token.span)));
                }
                if !word.eq_ignore_ascii_case("parent") {
                    return Err(Diagnostic::new(
                        "unknown_qualifier",
                        format!("unknown qualifier `{word}`"),
                        token.span,
                    )
                    .with_hint("only `parent.` may qualify a name; backquote names holding a dot"));
                }
                self.bump();
                let name_token = self.peek().clone();
                let name = match &name_token.tok {
                    Tok::Quoted(name) => name.clone(),
                    Tok::Word(w) if !RESERVED.iter().any(|k| k.eq_ignore_ascii_case(w)) => w.clone(),
                    _ => return Err(self.expected("an attribute name")),
                };
                self.bump();
                let ident = Ident { qualifier: Some("parent".into()), name };
                Ok(Some((ident, token.span.to(name_token.span))))
            }
            _ => Ok(None),
        }
    }

    /// A literal, or `None` when the current token does not start one. Bad dates and numbers
    /// are reported and read as placeholders, so that parsing goes on.
    fn try_literal(&mut self) -> Option<SpannedLiteral> {
        let token = self.peek().clone();
        let literal = match &token.tok {
            Tok::Number(text) => {
                self.bump();
                self.number(text, false, token.span)
            }
            Tok::Arith(ArithOp::Sub) if matches!(self.peek_at(1).tok, Tok::Number(_)) => {
                self.bump();
                let number = self.bump();
                let Tok::Number(text) = &number.tok else { return None };
                let span = token.span.to(number.span);
                return Some(SpannedLiteral { literal: self.number(text, true, span), span });
            }
            Tok::Str(s) => {
                self.bump();
                Literal::String(s.clone())
            }
            Tok::Word(w) if w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false") => {
                self.bump();
                Literal::Bool(w.eq_ignore_ascii_case("true"))
            }
            Tok::Word(w)
                if (w.eq_ignore_ascii_case("date") || w.eq_ignore_ascii_case("timestamp"))
                    && matches!(self.peek_at(1).tok, Tok::Str(_)) =>
            {
                self.bump();
                let text_token = self.bump();
                let Tok::Str(text) = &text_token.tok else { return None };
                let span = token.span.to(text_token.span);
                let literal = if w.eq_ignore_ascii_case("date") {
                    self.date(text, span)
                } else {
                    self.timestamp(text, span)
                };
                return Some(SpannedLiteral { literal, span });
            }
            _ => return None,
        };
        Some(SpannedLiteral { literal, span: token.span })
    }

    /// The literal of a number's text, negated when a minus came before it.
    fn number(&mut self, text: &str, negative: bool, span: Span) -> Literal {
        let integer = !text.contains(['.', 'e', 'E']);
        let text = if negative { format!("-{text}") } else { text.to_string() };
        if integer && let Ok(int) = text.parse::<i64>() {
            return Literal::Number { value: int as f64, int: Some(int) };
        }
        match text.parse::<f64>() {
            // `+ 0.0` reads -0.0 as 0.0: segmenta has no negative zero.
            Ok(value) if value.is_finite() => Literal::Number { value: value + 0.0, int: None },
            _ => {
                self.diagnostics.push(Diagnostic::new(
                    "invalid_number",
                    format!("number `{text}` is out of range"),
                    span,
                ));
                Literal::Number { value: 0.0, int: Some(0) }
            }
        }
    }

    fn date(&mut self, text: &str, span: Span) -> Literal {
        match parse_date(text) {
            Some(days) => Literal::Date(days),
            None => {
                self.diagnostics.push(
                    Diagnostic::new("invalid_date", format!("invalid date '{text}'"), span)
                        .with_hint("write a real calendar day as DATE 'YYYY-MM-DD'"),
                );
                Literal::Date(0)
            }
        }
    }

    fn timestamp(&mut self, text: &str, span: Span) -> Literal {
        match parse_timestamp(text) {
            Some(micros) => Literal::Timestamp(micros),
            None => {
                self.diagnostics.push(
                    Diagnostic::new("invalid_timestamp", format!("invalid timestamp '{text}'"), span)
                        .with_hint("write TIMESTAMP 'YYYY-MM-DDTHH:MM:SSZ' (RFC 3339; UTC if no offset)"),
                );
                Literal::Timestamp(0)
            }
        }
    }

    fn literal(&mut self, what: &str) -> Parsed<SpannedLiteral> {
        if let Some(literal) = self.try_literal() {
            return Ok(literal);
        }
        let mut diagnostic = self.number_word().unwrap_or_else(|| self.expected(what));
        if let Tok::BareDate(text) = &self.peek().tok {
            diagnostic = diagnostic.with_hint(format!("write a date as DATE '{text}'"));
        }
        if matches!(self.peek().tok, Tok::Word(_) | Tok::Quoted(_)) && diagnostic.hint.is_none() {
            diagnostic = diagnostic
                .with_hint("only constants may appear here, such as 'text', 5 or DATE '2024-01-31'");
        }
        Err(diagnostic)
    }

    /// A diagnostic for a number glued to letters, such as `90d` in a rule.
    fn number_word(&self) -> Option<Diagnostic> {
        let token = self.peek();
        let Tok::NumWord(word) = &token.tok else { return None };
        Some(
            Diagnostic::new("invalid_number", format!("invalid number `{word}`"), token.span)
                .with_hint("separate words with spaces; windows like 90d belong after `within` in traits"),
        )
    }

    /// A value: `sum := product {(+|-) product}`, `product := factor {(*|/) factor}`,
    /// `factor := - factor | primary`, `primary := literal | name | ( sum ) | f(sum, ...)`.
    fn value(&mut self, what: &str) -> Parsed<Value> {
        Ok(self.sum(what)?.0)
    }

    fn arith_chain(
        &mut self,
        what: &str,
        ops: [ArithOp; 2],
        operand: fn(&mut Self, &str) -> Parsed<(Value, usize)>,
    ) -> Parsed<(Value, usize)> {
        let (mut left, mut depth) = operand(self, what)?;
        while let Tok::Arith(op) = self.peek().tok
            && ops.contains(&op)
        {
            let token = self.bump();
            let (right, right_depth) = operand(self, "a value")?;
            depth = depth.max(right_depth) + 1;
            if depth > MAX_DEPTH {
                return Err(too_deep(token.span));
            }
            let span = left.span.to(right.span);
            left =
                Value { kind: ValueKind::Arith { op, left: Box::new(left), right: Box::new(right) }, span };
        }
        Ok((left, depth))
    }

    fn sum(&mut self, what: &str) -> Parsed<(Value, usize)> {
        self.arith_chain(what, [ArithOp::Add, ArithOp::Sub], Self::product)
    }

    fn product(&mut self, what: &str) -> Parsed<(Value, usize)> {
        self.arith_chain(what, [ArithOp::Mul, ArithOp::Div], Self::factor)
    }

    fn factor(&mut self, what: &str) -> Parsed<(Value, usize)> {
        let token = self.peek().clone();
        if token.tok == Tok::Arith(ArithOp::Sub) && !matches!(self.peek_at(1).tok, Tok::Number(_)) {
            self.bump();
            self.enter(token.span)?;
            let (inner, depth) = self.factor("a value")?;
            self.leave();
            let span = token.span.to(inner.span);
            return Ok((Value { kind: ValueKind::Neg(Box::new(inner)), span }, depth + 1));
        }
        self.primary(what)
    }

    fn primary(&mut self, what: &str) -> Parsed<(Value, usize)> {
        let token = self.peek().clone();
        if token.tok == Tok::LParen {
            self.bump();
            self.enter(token.span)?;
            let (mut inner, depth) = self.sum("a value")?;
            let close = self.expect_close(token.span)?;
            self.leave();
            inner.span = token.span.to(close);
            return Ok((inner, depth));
        }
        if let Tok::Word(word) = &token.tok
            && self.peek_at(1).tok == Tok::LParen
            && !RESERVED.iter().any(|k| k.eq_ignore_ascii_case(word))
        {
            return self.call(word, token.span);
        }
        if let Some(SpannedLiteral { literal, span }) = self.try_literal() {
            return Ok((Value { kind: ValueKind::Literal(literal), span }, 1));
        }
        if let Some((ident, span)) = self.ident()? {
            return Ok((Value { kind: ValueKind::Ident(ident), span }, 1));
        }
        if let Some(diagnostic) = self.number_word() {
            return Err(diagnostic);
        }
        let mut diagnostic = self.expected(what);
        if self.at_kw("null") {
            diagnostic = diagnostic.with_hint("test for null with `x is null`");
        }
        Err(diagnostic)
    }

    /// `name(arg, ...)`, the current token being the name.
    fn call(&mut self, word: &str, name_span: Span) -> Parsed<(Value, usize)> {
        let Some(func) = CallFunc::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(word)) else {
            let mut diagnostic =
                Diagnostic::new("unknown_function", format!("unknown function `{word}`"), name_span);
            diagnostic = if AggFunc::ALL.iter().any(|a| a.name().eq_ignore_ascii_case(word)) {
                diagnostic.with_hint(format!(
                    "{word}() is an aggregate: declare it as its own trait (e.g. n = \"{word}(...)\") and use the trait's name here"
                ))
            } else {
                let names: Vec<String> = CallFunc::ALL.iter().map(|f| f.name().to_string()).collect();
                diagnostic.hint = suggestion(word, &names, "functions");
                diagnostic
            };
            return Err(diagnostic);
        };
        self.bump();
        let open = self.bump();
        self.enter(open.span)?;
        let mut args = Vec::new();
        let mut depth = 0;
        if self.peek().tok != Tok::RParen {
            loop {
                let (arg, arg_depth) = self.sum("an argument")?;
                depth = depth.max(arg_depth);
                args.push(arg);
                if self.peek().tok != Tok::Comma {
                    break;
                }
                self.bump();
            }
        }
        let close = self.expect_close(open.span)?;
        self.leave();
        let span = name_span.to(close);
        Ok((Value { kind: ValueKind::Call { func, args, name_span }, span }, depth + 1))
    }

    /// A derived trait: one value over other traits and attributes.
    fn derived(&mut self) -> Parsed<Value> {
        if self.peek().tok == Tok::Eof {
            return Err(Diagnostic::new("empty_trait", "the trait is empty", self.peek().span)
                .with_hint("write e.g. count() where event_type = 'purchase' within 90d"));
        }
        let (value, _) = self.sum("a value")?;
        let token = self.peek();
        if token.tok != Tok::Eof {
            let hint = if token.tok == Tok::RParen {
                "this `)` has no matching `(`"
            } else {
                "a derived trait is one value, e.g. revenue / orders"
            };
            return Err(Diagnostic::new(
                "unexpected_token",
                format!("unexpected {}", token.describe()),
                token.span,
            )
            .with_hint(hint));
        }
        Ok(value)
    }

    fn end(&mut self) -> Parsed<()> {
        let token = self.peek();
        let hint = match token.tok {
            Tok::Eof => return Ok(()),
            Tok::RParen => "this `)` has no matching `(`",
            _ if Self::is_kw(token, "where") && self.tokens.iter().any(|t| Self::is_kw(t, "within")) => {
                "write `where` before `within`"
            }
            _ => "combine conditions with `and` or `or`",
        };
        Err(Diagnostic::new("unexpected_token", format!("unexpected {}", token.describe()), token.span)
            .with_hint(hint))
    }

    fn rule(&mut self) -> Parsed<Expr> {
        if self.peek().tok == Tok::Eof {
            return Err(Diagnostic::new("empty_rule", "the rule is empty", self.peek().span)
                .with_hint("write a condition, e.g. industry = 'retail'"));
        }
        let (expr, _) = self.or_expr()?;
        self.end()?;
        Ok(expr)
    }

    /// The length after `within`: `90d`, `6mo`, `1y`.
    fn window(&mut self) -> Parsed<(Within, Span)> {
        let token = self.peek().clone();
        let hint = segmenta_core::WITHIN_HINT;
        let text = match &token.tok {
            Tok::NumWord(text) => text.clone(),
            Tok::Number(text) => {
                return Err(Diagnostic::new(
                    "invalid_window",
                    format!("window `{text}` has no unit"),
                    token.span,
                )
                .with_hint(format!(
                    "write {text}d (days), {text}h (hours), {text}w (weeks), {text}mo (months) or {text}y (years)"
                )));
            }
            _ => return Err(self.expected("a window such as 90d").with_hint(hint)),
        };
        self.bump();
        let window = Within::parse_length(&text).map_err(|message: String| {
            let hint = if message.ends_with("is empty") { "use a positive length, e.g. 1d" } else { hint };
            let diagnostic = Diagnostic::new("invalid_window", message.clone(), token.span);
            if message.ends_with("too long") { diagnostic } else { diagnostic.with_hint(hint) }
        })?;
        Ok((window, token.span))
    }

    /// One bound of a `between` range: a bare date `YYYY-MM-DD`, as days since the epoch.
    fn range_day(&mut self, what: &str) -> Parsed<(i32, Span)> {
        let token = self.peek().clone();
        let hint = "write between 2025-01-01 and 2025-03-31 (UTC days, both inclusive)";
        let Tok::BareDate(text) = &token.tok else {
            return Err(self.expected(what).with_hint(hint));
        };
        self.bump();
        // Years 1 to 9999 only, so that the range prints as it is read.
        match parse_date(text).filter(|_| !text.starts_with("0000")) {
            Some(days) => Ok((days, token.span)),
            None => Err(Diagnostic::new("invalid_window", format!("invalid date `{text}`"), token.span)
                .with_hint("write a real day as YYYY-MM-DD, e.g. 2025-02-28")),
        }
    }

    /// The range after `between`: `2025-01-01 and 2025-03-31`.
    fn range(&mut self, between: Span) -> Parsed<(Within, Span)> {
        let (first, _) = self.range_day("the first day of the range, such as 2025-01-01")?;
        if !self.eat_kw("and") {
            return Err(self.expected("`and`").with_hint("write between 2025-01-01 and 2025-03-31"));
        }
        let (last, last_span) = self.range_day("the last day of the range, such as 2025-03-31")?;
        let span = between.to(last_span);
        if last < first {
            return Err(Diagnostic::new("invalid_window", "the range ends before it starts", span)
                .with_hint("write the earlier day first"));
        }
        Ok((Within::Days { first, last }, span))
    }

    /// The `, p` of `percentile(col, p)`: a number from 0 to 1.
    fn fraction(&mut self, agg: AggFunc) -> Parsed<Fraction> {
        let name = agg.name();
        let hint = format!("write e.g. {name}(amount, 0.9) for the 90th percentile");
        if self.peek().tok != Tok::Comma {
            return Err(self.expected("`,` and a fraction from 0 to 1").with_hint(hint));
        }
        self.bump();
        let mut token = self.peek().clone();
        let minus = token.tok == Tok::Arith(ArithOp::Sub) && matches!(self.peek_at(1).tok, Tok::Number(_));
        if minus {
            self.bump();
        }
        let Tok::Number(text) = &self.peek().tok.clone() else {
            return Err(self.expected("a fraction from 0 to 1").with_hint(hint));
        };
        token.span = token.span.to(self.peek().span);
        let text = if minus { format!("-{text}") } else { text.clone() };
        let text = &text;
        self.bump();
        fraction(text).ok_or_else(|| {
            let message = format!("the fraction of {name} must be a number from 0 to 1, found `{text}`");
            let hint = match text.split_once('.') {
                Some((_, digits)) if digits.len() > Fraction::MAX_SCALE as usize => {
                    format!("write the fraction with at most {} decimals", Fraction::MAX_SCALE)
                }
                _ => hint,
            };
            Diagnostic::new("invalid_fraction", message, token.span).with_hint(hint)
        })
    }

    fn trait_expr(&mut self) -> Parsed<TraitExpr> {
        let token = self.peek().clone();
        let names: Vec<String> = AggFunc::ALL.iter().map(|a| a.name().to_string()).collect();
        let agg = match &token.tok {
            Tok::Eof => {
                return Err(Diagnostic::new("empty_trait", "the trait is empty", token.span)
                    .with_hint("write e.g. count() where event_type = 'purchase' within 90d"));
            }
            Tok::Word(word) => AggFunc::ALL.into_iter().find(|a| a.name().eq_ignore_ascii_case(word)),
            _ => None,
        };
        let Some(agg) = agg else {
            let word = match &token.tok {
                Tok::Word(word) => word.clone(),
                _ => return Err(self.expected("an aggregate such as count()")),
            };
            let mut diagnostic =
                Diagnostic::new("unknown_aggregate", format!("unknown aggregate `{word}`"), token.span);
            diagnostic.hint = suggestion(&word, &names, "aggregates");
            return Err(diagnostic);
        };
        self.bump();
        if self.peek().tok != Tok::LParen {
            return Err(self.expected("`(`").with_hint(format!("write {}()", agg.name())));
        }
        let open = self.bump();
        let (arg, condition) = if agg == AggFunc::Share {
            if self.peek().tok == Tok::RParen {
                return Err(self
                    .expected("a condition")
                    .with_hint("write e.g. share(logins_30d > 0): the share of rows where it is true"));
            }
            (None, Some(self.or_expr()?.0))
        } else {
            let arg = match self.peek().tok {
                Tok::RParen => None,
                Tok::Arith(ArithOp::Mul) if self.peek_at(1).tok == Tok::RParen => {
                    return Err(self
                        .expected("a column name or `)`")
                        .with_hint(format!("write {}() to count the events", agg.name())));
                }
                _ => Some(self.value("a column name or `)`")?),
            };
            (arg, None)
        };
        let agg = match agg {
            AggFunc::Percentile(_) | AggFunc::PercentileDisc(_) => {
                let fraction = self.fraction(agg)?;
                if let AggFunc::Percentile(_) = agg {
                    AggFunc::Percentile(fraction)
                } else {
                    AggFunc::PercentileDisc(fraction)
                }
            }
            other => other,
        };
        self.expect_close(open.span)?;
        let filter = if self.eat_kw("where") {
            if self.peek().tok == Tok::Eof || self.at_kw("within") || self.at_kw("between") {
                return Err(self.expected("a condition"));
            }
            self.in_trait_filter = true;
            let filter = self.or_expr();
            self.in_trait_filter = false;
            Some(filter?.0)
        } else {
            None
        };
        let within = if self.eat_kw("within") {
            Some(self.window()?)
        } else if self.at_kw("between") {
            let between = self.bump();
            Some(self.range(between.span)?)
        } else {
            None
        };
        self.end()?;
        Ok(TraitExpr { agg, agg_span: token.span, arg, condition, filter, within })
    }
}

/// A percentile's fraction from its text: a decimal (`0.25`, `1`) exactly as written, a number
/// with an exponent as the double it denotes; `None` outside [0, 1].
fn fraction(text: &str) -> Option<Fraction> {
    if text.contains(['e', 'E']) {
        return Fraction::from_f64(text.parse().ok()?);
    }
    let (whole, digits) = text.split_once('.').unwrap_or((text, ""));
    let scale = u32::try_from(digits.len()).ok()?;
    if whole.starts_with('-') || scale > Fraction::MAX_SCALE {
        return None;
    }
    let units: i64 = format!("{whole}{digits}").parse().ok()?;
    Fraction::from_decimal(units, scale)
}

fn run<T>(text: &str, parse: fn(&mut Parser) -> Parsed<T>) -> Result<T, Vec<Diagnostic>> {
    let mut diagnostics = Vec::new();
    let tokens = lex(text, &mut diagnostics);
    let mut matching = vec![usize::MAX; tokens.len()];
    let mut open = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        match token.tok {
            Tok::LParen => open.push(i),
            Tok::RParen => {
                if let Some(o) = open.pop() {
                    matching[o] = i;
                }
            }
            _ => {}
        }
    }
    let mut parser =
        Parser { tokens, matching, pos: 0, depth: 0, diagnostics: Vec::new(), in_trait_filter: false };
    let result = parse(&mut parser);
    diagnostics.append(&mut parser.diagnostics);
    let parsed = match result {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            diagnostics.push(error);
            None
        }
    };
    match parsed {
        Some(parsed) if diagnostics.is_empty() => Ok(parsed),
        _ => {
            diagnostics.sort_by_key(|d| d.span.start);
            Err(diagnostics)
        }
    }
}

/// Parses a rule; see the grammar in the crate documentation.
pub fn parse_rule(text: &str) -> Result<Expr, Vec<Diagnostic>> {
    run(text, Parser::rule)
}

/// Parses a trait expression: `AGG(ARG?) [where CONDITION] [within DURATION]`.
pub fn parse_trait(text: &str) -> Result<TraitExpr, Vec<Diagnostic>> {
    run(text, Parser::trait_expr)
}

/// Parses a derived trait: one value over the entity's attributes and other traits, such as
/// `revenue / orders` or `round(coalesce(spend, 0) * 1.2, 2)`.
pub fn parse_derived(text: &str) -> Result<Value, Vec<Diagnostic>> {
    run(text, Parser::derived)
}

/// Whether a trait's text is a derived trait (read by [`parse_derived`]) rather than an
/// aggregate over rows (read by [`parse_trait`]): it does not start with the name of an
/// aggregate, nor with another name followed by `(` that is not a function of values (so that
/// `cnt()` is reported as an unknown aggregate), and it is not empty.
pub fn is_derived_trait(text: &str) -> bool {
    let mut diagnostics = Vec::new();
    let tokens = lex(text, &mut diagnostics);
    match (&tokens[0].tok, tokens.get(1).map(|t| &t.tok)) {
        (Tok::Eof, _) => false,
        (Tok::Word(word), next) => {
            let aggregate = AggFunc::ALL.iter().any(|a| a.name().eq_ignore_ascii_case(word));
            let function = CallFunc::ALL.iter().any(|f| f.name().eq_ignore_ascii_case(word));
            !aggregate && (function || next != Some(&Tok::LParen))
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `input` and compares its canonical form with `expected`, then checks that the
    /// canonical form parses to the same tree. An `expected` starting with `!` is the rendered
    /// list of diagnostics (codes and messages) instead.
    fn check(input: &str, expected: &str) {
        match parse_rule(input) {
            Ok(expr) => {
                let printed = expr.to_string();
                assert_eq!(printed, expected, "input: {input:?}");
                let again = parse_rule(&printed).expect("canonical text parses");
                assert_eq!(again.to_string(), printed);
            }
            Err(diagnostics) => {
                let rendered: Vec<String> =
                    diagnostics.iter().map(|d| format!("!{}: {}", d.code, d.message)).collect();
                assert_eq!(rendered.join("\n"), expected, "input: {input:?}");
            }
        }
    }

    fn check_trait(input: &str, expected: &str) {
        match parse_trait(input) {
            Ok(parsed) => {
                let printed = parsed.to_string();
                assert_eq!(printed, expected, "input: {input:?}");
                let again = parse_trait(&printed).expect("canonical text parses");
                assert_eq!(again.to_string(), printed);
            }
            Err(diagnostics) => {
                let rendered: Vec<String> =
                    diagnostics.iter().map(|d| format!("!{}: {}", d.code, d.message)).collect();
                assert_eq!(rendered.join("\n"), expected, "input: {input:?}");
            }
        }
    }

    #[test]
    fn arithmetic() {
        check("a + b * c > 1", "a + b * c > 1");
        check("(a + b) * c > 1", "(a + b) * c > 1");
        check("a - (b - c) = a - b - c", "a - (b - c) = a - b - c");
        check("a/b/c = a/(b/c)", "a / b / c = a / (b / c)");
        check("a -5 > -5", "a - 5 > -5");
        check("a - -5 > 2 * -b", "a - -5 > 2 * -b");
        check("-(5) = --5", "-(5) = -(-5)");
        check("-(a + b) < 0", "-(a + b) < 0");
        check("((a + 1)) * 2 > 3 and (b or c)", "(a + 1) * 2 > 3 and (b or c)");
        check("((a) > 1)", "a > 1");
        check("(a) in (1, -2)", "a in (1, -2)");
        check("x between -5 and -0.0", "x between -5 and 0.0");
        check("-9223372036854775808 < a", "-9223372036854775808 < a");
        check(
            "ROUND(a, -2) = Abs(b) and coalesce(c, d, 0) is null",
            "round(a, -2) = abs(b) and coalesce(c, d, 0) is null",
        );
        check("coalesce(name, '') contains 'x'", "coalesce(name, '') contains 'x'");
        check("a +", "!unexpected_token: expected a value after `+`");
        check("a * * b", "!unexpected_token: expected a value after `*`, found `*`");
        check("a % 2 = 0", "!invalid_character: unexpected character `%`\n!unexpected_token: unexpected `2`");
        check("count() > 1", "!unknown_function: unknown function `count`");
        check("rond(a) > 1", "!unknown_function: unknown function `rond`");
        check("(a + b > 1", "!unexpected_token: expected `)` after `1`");
        let deep = format!("{}1{} > 0", "(".repeat(70), ")".repeat(70));
        check(&deep, "!nesting_too_deep: the rule is nested too deeply");
        let long = format!("{} > 0", vec!["a"; 100].join(" + "));
        check(&long, "!nesting_too_deep: the rule is nested too deeply");
        let diagnostics = parse_rule("rond(a) > 1").expect_err("unknown");
        assert_eq!(diagnostics[0].hint.as_deref(), Some("did you mean `round`?"));
        let diagnostics = parse_rule("sum(a) > 1").expect_err("an aggregate");
        assert!(diagnostics[0].hint.as_deref().is_some_and(|h| h.contains("declare it as its own trait")));
    }

    #[test]
    fn derived_traits() {
        for (text, derived) in [
            ("revenue / orders", true),
            ("round(revenue, 2)", true),
            ("(a + b) / 2", true),
            ("-a", true),
            ("5", true),
            ("count()", false),
            ("Sum(amount) where x > 1", false),
            ("cnt()", false),
            ("count", false),
            ("", false),
            ("  ", false),
        ] {
            assert_eq!(is_derived_trait(text), derived, "{text:?}");
        }
        assert_eq!(parse_derived("revenue/orders").expect("parses").to_string(), "revenue / orders");
        let errors = parse_derived("revenue / orders within 30d").expect_err("not a value");
        assert_eq!(errors[0].message, "unexpected `within`");
        assert_eq!(errors[0].hint.as_deref(), Some("a derived trait is one value, e.g. revenue / orders"));
        assert_eq!(parse_derived("").expect_err("empty")[0].code, "empty_trait");
    }

    #[test]
    fn precedence() {
        check("a or b and not c", "a or b and not c");
        check("(a or b) and c", "(a or b) and c");
        check("a and (b and c)", "a and (b and c)");
        check("(a and b) and c", "a and b and c");
        check("not (a and b)", "not (a and b)");
        check("not not a", "not not a");
        check("a or (b or c)", "a or (b or c)");
        let expr = parse_rule("a or b and not c").expect("valid");
        let ExprKind::Or(_, right) = expr.kind else { panic!("or at the top: {expr:?}") };
        let ExprKind::And(_, negated) = right.kind else { panic!("and on the right") };
        assert!(matches!(negated.kind, ExprKind::Not(_)));
    }

    #[test]
    fn keywords_are_case_insensitive() {
        check("A AND b Or NOT c", "A and b or not c");
        check("x NOT In (1, 2) aNd y Is Not NULL", "x not in (1, 2) and y is not null");
        check("x BETWEEN 1 AND 5 and y STARTS_WITH 'a'", "x between 1 and 5 and y starts_with 'a'");
        check("IN_SEGMENT('vip') or flag = TRUE", "in_segment('vip') or flag = true");
        check("d >= date '2024-01-31'", "d >= DATE '2024-01-31'");
    }

    #[test]
    fn predicates() {
        check("industry = 'healthcare'", "industry = 'healthcare'");
        check("employees <> 5", "employees != 5");
        check("employees<=-5", "employees <= -5");
        check("arr > 2.5 and arr < 1e3", "arr > 2.5 and arr < 1000.0");
        check("x in ('a', \"b\", 'it''s')", "x in ('a', 'b', 'it''s')");
        check("x not between 1 and 2.5", "x not between 1 and 2.5");
        check("x is null", "x is null");
        check(
            "name not contains 'inc' and name ends_with 'ltd'",
            "name not contains 'inc' and name ends_with 'ltd'",
        );
        check("is_active", "is_active");
        check("not is_active", "not is_active");
        check("true", "true");
        check("5", "5");
        check("99999999999999999999 = x", "1e20 = x");
        check("x = 1.0", "x = 1.0");
    }

    #[test]
    fn identifiers() {
        check("parent.industry = 'x'", "parent.industry = 'x'");
        check("PARENT.industry = 'x'", "parent.industry = 'x'");
        check("`annual revenue` > 5", "`annual revenue` > 5");
        check("`a``b` = 1", "`a``b` = 1");
        check("`and` = 1 and `date` = 2", "`and` = 1 and `date` = 2");
        check("date = 1", "`date` = 1");
        check("parent.`my col` = 1", "parent.`my col` = 1");
        check("parent = 1", "`parent` = 1");
    }

    #[test]
    fn dates_and_timestamps() {
        check("d = DATE '2024-02-29'", "d = DATE '2024-02-29'");
        check("t > TIMESTAMP '2024-01-01T00:00:00'", "t > TIMESTAMP '2024-01-01T00:00:00Z'");
        check("t > timestamp '2024-01-01 10:00:00.25+01:00'", "t > TIMESTAMP '2024-01-01T09:00:00.250000Z'");
        check("d = DATE '2024-02-30'", "!invalid_date: invalid date '2024-02-30'");
        check(
            "t = TIMESTAMP 'soon' or d = DATE 'x'",
            "!invalid_timestamp: invalid timestamp 'soon'\n!invalid_date: invalid date 'x'",
        );
    }

    #[test]
    fn errors() {
        check("", "!empty_rule: the rule is empty");
        check("a >=", "!unexpected_token: expected a value after `>=`");
        check("a = 'x", "!unterminated_string: unterminated string starting here");
        check(
            "a == 1 && !b",
            "!unexpected_token: unexpected `==`\n!unexpected_token: unexpected `&&`\n!unexpected_token: unexpected `!`",
        );
        check("(a = 1", "!unexpected_token: expected `)` after `1`");
        check("a = 1)", "!unexpected_token: unexpected `)`");
        check("a = 1 b = 2", "!unexpected_token: unexpected `b`");
        check("a in ()", "!unexpected_token: expected a constant in the list after `(`, found `)`");
        check("a in (b)", "!unexpected_token: expected a constant in the list after `(`, found `b`");
        check("a between 1 or 2", "!unexpected_token: expected `and` after `1`, found `or`");
        check("a is true", "!unexpected_token: expected `null` after `is`, found `true`");
        check("a and", "!unexpected_token: expected a condition after `and`");
        check("a = and", "!unexpected_token: expected a value after `=`, found `and`");
        check("x.y = 1", "!unknown_qualifier: unknown qualifier `x`");
        check("a = 90d", "!invalid_number: invalid number `90d`");
        check("a = 1e999", "!invalid_number: number `1e999` is out of range");
        check(
            "a not b",
            "!unexpected_token: expected `in`, `between`, `contains`, `starts_with` or `ends_with` after `not`, found `b`",
        );
        check("a contains 5", "!unexpected_token: expected a quoted string after `contains`, found `5`");
        check(
            "in_segment(vip)",
            "!unexpected_token: expected a segment name in quotes after `(`, found `vip`",
        );
        check(
            "a = 1; é",
            "!invalid_character: unexpected character `;`\n!invalid_character: unexpected character `é`",
        );
    }

    #[test]
    fn nesting_is_capped() {
        let deep = format!("{}a{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse_rule(&deep).is_ok());
        let deeper = format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000));
        let errors = parse_rule(&deeper).expect_err("too deep");
        assert_eq!(errors[0].code, "nesting_too_deep");
        let nots = format!("{}a", "not ".repeat(100_000));
        assert_eq!(parse_rule(&nots).expect_err("too deep")[0].code, "nesting_too_deep");
        let chain = vec!["a"; 100_000].join(" and ");
        assert_eq!(parse_rule(&chain).expect_err("too deep")[0].code, "nesting_too_deep");
    }

    #[test]
    fn traits() {
        check_trait(
            "median(qty) where (-amount < -0.2 or qty / 4 > 1) between 2024-01-26 and 2024-04-25",
            "median(qty) where -amount < -0.2 or qty / 4 > 1 between 2024-01-26 and 2024-04-25",
        );
        check_trait(
            "count() where (qty + 1) * 2 between 1 and 5 within 7d",
            "count() where (qty + 1) * 2 between 1 and 5 within 7d",
        );
        check_trait("count()", "count()");
        check_trait(
            "COUNT() WHERE event_type = 'purchase' WITHIN 90d",
            "count() where event_type = 'purchase' within 90d",
        );
        check_trait("sum(amount) within 12w", "sum(amount) within 12w");
        check_trait("avg(amount) where a or b within 36h", "avg(amount) where a or b within 36h");
        check_trait("min(ts)", "min(ts)");
        check_trait("max(`the amount`)", "max(`the amount`)");
        check_trait("count_distinct(product)", "count_distinct(product)");
        check_trait("first_seen()", "first_seen()");
        check_trait("last_seen() within 1d", "last_seen() within 1d");
        check_trait("days_since_last()", "days_since_last()");
        check_trait("days_since_first() where x = 1", "days_since_first() where x = 1");
        check_trait("SHARE(a > 1 or b) where c within 30d", "share(a > 1 or b) where c within 30d");
        check_trait("share()", "!unexpected_token: expected a condition after `(`, found `)`");
        check_trait("MEDIAN(amount) where a within 30d", "median(amount) where a within 30d");
        check_trait("percentile(amount, 0.9)", "percentile(amount, 0.9)");
        check_trait("percentile(amount, 0.250)", "percentile(amount, 0.250)");
        check_trait("percentile_disc(amount, 1)", "percentile_disc(amount, 1)");
        check_trait("percentile_disc(amount, 0)", "percentile_disc(amount, 0)");
        check_trait("percentile(amount, 0.05)", "percentile(amount, 0.05)");
        check_trait("percentile(amount, 25e-2)", "percentile(amount, 2.5e-1)");
        check_trait("percentile(amount, 1e0)", "percentile(amount, 1e0)");
        check_trait(
            "percentile(amount, 1.5)",
            "!invalid_fraction: the fraction of percentile must be a number from 0 to 1, found `1.5`",
        );
        check_trait(
            "percentile(amount, -0.5)",
            "!invalid_fraction: the fraction of percentile must be a number from 0 to 1, found `-0.5`",
        );
        check_trait(
            "percentile(amount, 0.1234567890123456789)",
            "!invalid_fraction: the fraction of percentile must be a number from 0 to 1, found `0.1234567890123456789`",
        );
        check_trait(
            "percentile(amount)",
            "!unexpected_token: expected `,` and a fraction from 0 to 1 after `amount`, found `)`",
        );
        check_trait(
            "percentile(amount, p)",
            "!unexpected_token: expected a fraction from 0 to 1 after `,`, found `p`",
        );
        check_trait("median(amount, 0.5)", "!unexpected_token: expected `)` after `amount`, found `,`");
        check_trait("count() within 0d", "!invalid_window: window `0d` is empty");
        check_trait("count() within 90", "!invalid_window: window `90` has no unit");
        check_trait("count() within 90x", "!invalid_window: invalid window `90x`");
        check_trait("count() within 99999999999d", "!invalid_window: window `99999999999d` is too long");
        check_trait("count() within 4294967295w", "!invalid_window: window `4294967295w` is too long");
        check_trait("cnt()", "!unknown_aggregate: unknown aggregate `cnt`");
        check_trait("", "!empty_trait: the trait is empty");
        check_trait("count", "!unexpected_token: expected `(` after `count`");
        check_trait("count() within 9d where a", "!unexpected_token: unexpected `where`");
        check_trait("sum(a b)", "!unexpected_token: expected `)` after `a`, found `b`");
    }

    #[test]
    fn issue_11_calendar_windows_and_day_ranges_parse_and_print() {
        check_trait("count() within 6mo", "count() within 6mo");
        check_trait("count() WITHIN 1Y", "count() within 1y");
        check_trait("sum(amount) where a within 12MO", "sum(amount) where a within 12mo");
        check_trait("count() between 2025-01-01 and 2025-03-31", "count() between 2025-01-01 and 2025-03-31");
        check_trait("count() BETWEEN 2025-01-01 AND 2025-01-01", "count() between 2025-01-01 and 2025-01-01");
        check_trait(
            "count() where a = 1 between 2024-02-29 and 2024-03-01",
            "count() where a = 1 between 2024-02-29 and 2024-03-01",
        );
        // A predicate's BETWEEN takes literals; a bare day after `between` is the trait's range.
        check_trait(
            "count() where x between 1 and 5 between 2025-01-01 and 2025-03-31",
            "count() where x between 1 and 5 between 2025-01-01 and 2025-03-31",
        );
        check_trait(
            "count() where flag between 2025-01-01 and 2025-03-31",
            "count() where flag between 2025-01-01 and 2025-03-31",
        );
        check_trait(
            "count() where d between DATE '2025-01-01' and DATE '2025-02-01' between 2025-01-01 and 2025-03-31",
            "count() where d between DATE '2025-01-01' and DATE '2025-02-01' between 2025-01-01 and 2025-03-31",
        );
    }

    #[test]
    fn issue_11_bad_calendar_windows_and_ranges_are_reported() {
        check_trait("count() within 0mo", "!invalid_window: window `0mo` is empty");
        check_trait("count() within 0y", "!invalid_window: window `0y` is empty");
        check_trait("count() within 200001y", "!invalid_window: window `200001y` is too long");
        check_trait("count() within 6m", "!invalid_window: invalid window `6m`");
        check_trait(
            "count() between 2025-03-31 and 2025-01-01",
            "!invalid_window: the range ends before it starts",
        );
        check_trait(
            "count() between 2025-02-30 and 2025-03-01",
            "!invalid_window: invalid date `2025-02-30`",
        );
        check_trait(
            "count() between 0000-01-01 and 2025-03-01",
            "!invalid_window: invalid date `0000-01-01`",
        );
        check_trait("count() between 2025-01-01", "!unexpected_token: expected `and` after `2025-01-01`");
        check_trait(
            "count() between 2025-01-01 and 5",
            "!unexpected_token: expected the last day of the range, such as 2025-03-31 after `and`, found `5`",
        );
        check_trait(
            "count() between DATE '2025-01-01' and DATE '2025-02-01'",
            "!unexpected_token: expected the first day of the range, such as 2025-01-01 after `between`, found `DATE`",
        );
        check_trait(
            "count() within 1mo between 2025-01-01 and 2025-03-31",
            "!unexpected_token: unexpected `between`",
        );
        check_trait(
            "count() where between 2025-01-01 and 2025-01-02",
            "!unexpected_token: expected a condition after `where`, found `between`",
        );
        let rule = parse_rule("d between 2025-01-01 and 2025-03-31").expect_err("bare days are no literals");
        assert_eq!(rule[0].hint.as_deref(), Some("write a date as DATE '2025-01-01'"));
    }

    #[test]
    fn rendered_diagnostics() {
        let cases = [
            ("unexpected_after_cmp", "employees >= and x"),
            ("unterminated", "industry = 'health"),
            ("double_equals", "industry == 'x' && employees > 5"),
            ("unclosed_paren", "(a = 1 or b = 2"),
            ("bad_date", "signup_date > DATE '2024-02-30'"),
            ("trailing", "a = 1 b"),
            ("reserved_word", "in = 5"),
            ("null_value", "a = null"),
            ("bang", "!is_active"),
            ("window_in_rule", "x > 90d"),
            ("bad_window", "count() within 0d"),
            ("unknown_aggregate", "cout()"),
        ];
        for (name, input) in cases {
            let errors = if name.contains("window") && !name.contains("rule") || name == "unknown_aggregate" {
                parse_trait(input).expect_err("invalid")
            } else {
                parse_rule(input).expect_err("invalid")
            };
            let rendered: Vec<String> = errors.iter().map(|d| d.render("segment `s`", input)).collect();
            insta::assert_snapshot!(name, rendered.join("\n\n"));
        }
    }
}
