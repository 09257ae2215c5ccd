//! A tiny, independent reader and three-valued evaluator of the rule subset that discovery
//! writes (or/and/not, parentheses, comparisons, [not] in, is [not] null, true/false), used to
//! recompute each rule's fidelity from its text over the original values.

use segmenta_ml::cluster::FeatureColumn;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    Number(f64),
    Text(String),
    Symbol(String),
}

fn tokens(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '`' || c == '\'' {
            let mut value = String::new();
            i += 1;
            loop {
                assert!(i < chars.len(), "unterminated quote in {text}");
                if chars[i] == c {
                    if chars.get(i + 1) == Some(&c) {
                        value.push(c);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                value.push(chars[i]);
                i += 1;
            }
            out.push(if c == '`' { Token::Name(value) } else { Token::Text(value) });
        } else if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let start = i;
            i += 1;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || chars[i] == '.'
                    || chars[i] == 'e'
                    || (chars[i] == '-' && chars[i - 1] == 'e'))
            {
                i += 1;
            }
            let literal: String = chars[start..i].iter().collect();
            out.push(Token::Number(literal.parse().expect("a number literal")));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            out.push(Token::Name(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if ["<=", ">=", "!=", "<>"].contains(&two.as_str()) {
                out.push(Token::Symbol(two));
                i += 2;
            } else {
                out.push(Token::Symbol(c.to_string()));
                i += 1;
            }
        }
    }
    out
}

/// A value of a rule operand.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Number(f64),
    Text(String),
    Null,
}

struct Reader<'a> {
    tokens: Vec<Token>,
    pos: usize,
    columns: &'a [FeatureColumn],
    row: usize,
}

fn and(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

fn or(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

impl Reader<'_> {
    fn peek_keyword(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token::Name(n)) if n.eq_ignore_ascii_case(word))
    }

    fn keyword(&mut self, word: &str) -> bool {
        let found = self.peek_keyword(word);
        if found {
            self.pos += 1;
        }
        found
    }

    fn symbol(&mut self, symbol: &str) -> bool {
        let found = matches!(self.tokens.get(self.pos), Some(Token::Symbol(s)) if s == symbol);
        if found {
            self.pos += 1;
        }
        found
    }

    fn or_expr(&mut self) -> Option<bool> {
        let mut value = self.and_expr();
        while self.keyword("or") {
            value = or(value, self.and_expr());
        }
        value
    }

    fn and_expr(&mut self) -> Option<bool> {
        let mut value = self.not_expr();
        while self.keyword("and") {
            value = and(value, self.not_expr());
        }
        value
    }

    fn not_expr(&mut self) -> Option<bool> {
        if self.keyword("not") {
            return self.not_expr().map(|v| !v);
        }
        self.predicate()
    }

    fn literal(&mut self) -> Value {
        let token = self.tokens[self.pos].clone();
        self.pos += 1;
        match token {
            Token::Number(x) => Value::Number(x),
            Token::Text(s) => Value::Text(s),
            other => panic!("expected a literal, found {other:?}"),
        }
    }

    fn operand(&mut self) -> Value {
        match self.tokens[self.pos].clone() {
            Token::Name(name) => {
                self.pos += 1;
                let column = self
                    .columns
                    .iter()
                    .find(|c| c.name() == name)
                    .unwrap_or_else(|| panic!("the rule names an unknown feature `{name}`"));
                match column {
                    FeatureColumn::Numeric { values, .. } => {
                        values[self.row].map_or(Value::Null, Value::Number)
                    }
                    FeatureColumn::Categorical { values, .. } => {
                        values[self.row].clone().map_or(Value::Null, Value::Text)
                    }
                }
            }
            _ => self.literal(),
        }
    }

    fn predicate(&mut self) -> Option<bool> {
        if self.symbol("(") {
            let value = self.or_expr();
            assert!(self.symbol(")"), "unbalanced parentheses");
            return value;
        }
        if self.keyword("true") {
            return Some(true);
        }
        if self.keyword("false") {
            return Some(false);
        }
        let left = self.operand();
        if self.keyword("is") {
            let negated = self.keyword("not");
            assert!(self.keyword("null"), "expected null after is");
            return Some((left == Value::Null) != negated);
        }
        let negated = self.keyword("not");
        if self.keyword("in") {
            assert!(self.symbol("("), "expected ( after in");
            let mut list = vec![self.literal()];
            while self.symbol(",") {
                list.push(self.literal());
            }
            assert!(self.symbol(")"), "expected ) after the list");
            if left == Value::Null {
                return None;
            }
            return Some(list.contains(&left) != negated);
        }
        assert!(!negated, "unsupported `not` form");
        let Some(Token::Symbol(op)) = self.tokens.get(self.pos).cloned() else {
            panic!("expected a comparison at token {}", self.pos)
        };
        self.pos += 1;
        let right = self.literal();
        let ordering = match (&left, &right) {
            (Value::Null, _) | (_, Value::Null) => return None,
            (Value::Number(a), Value::Number(b)) => a.partial_cmp(b).expect("finite values"),
            (Value::Text(a), Value::Text(b)) => a.cmp(b),
            _ => panic!("type mismatch in the rule"),
        };
        use std::cmp::Ordering::*;
        Some(match op.as_str() {
            "=" => ordering == Equal,
            "!=" | "<>" => ordering != Equal,
            "<" => ordering == Less,
            "<=" => ordering != Greater,
            ">" => ordering == Greater,
            ">=" => ordering != Less,
            other => panic!("unknown operator {other}"),
        })
    }
}

/// The rule's three-valued value for entity `row`.
pub fn evaluate(rule: &str, columns: &[FeatureColumn], row: usize) -> Option<bool> {
    let mut reader = Reader { tokens: tokens(rule), pos: 0, columns, row };
    let value = reader.or_expr();
    assert_eq!(reader.pos, reader.tokens.len(), "trailing tokens in {rule}");
    value
}

/// Share of entities on which "the rule is TRUE" and "the label is `id`" agree.
pub fn fidelity(rule: &str, columns: &[FeatureColumn], labels: &[u32], id: u32) -> f64 {
    let agree = labels
        .iter()
        .enumerate()
        .filter(|(row, label)| (evaluate(rule, columns, *row) == Some(true)) == (**label == id))
        .count();
    agree as f64 / labels.len() as f64
}

#[test]
fn the_evaluator_follows_three_valued_logic() {
    let columns = vec![
        FeatureColumn::Numeric { name: "x".into(), values: vec![Some(1.0), None] },
        FeatureColumn::Categorical { name: "my plan".into(), values: vec![None, Some("it's".into())] },
    ];
    assert_eq!(evaluate("x > 0", &columns, 1), None);
    assert_eq!(evaluate("not x > 0", &columns, 1), None);
    assert_eq!(evaluate("x > 0 or x is null", &columns, 1), Some(true));
    assert_eq!(evaluate("`my plan` in ('it''s', 'b')", &columns, 1), Some(true));
    assert_eq!(evaluate("`my plan` not in ('a')", &columns, 0), None);
    assert_eq!(evaluate("(x <= 1 and `my plan` is null) or (false)", &columns, 0), Some(true));
    assert_eq!(evaluate("x > -1e-3", &columns, 0), Some(true));
}
