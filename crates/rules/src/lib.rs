//! The segmenta rule and trait languages: lexer, parser, syntax trees, resolution against a
//! catalog of typed attributes, diagnostics, and a reference evaluator.
//!
//! This crate knows nothing of DataFusion or of files: it turns text into a resolved, typed
//! rule, learning attribute names and types through the [`AttributeCatalog`] trait.
//!
//! # Grammar
//!
//! ```text
//! rule      := or_expr
//! or_expr   := and_expr { OR and_expr }
//! and_expr  := not_expr { AND not_expr }
//! not_expr  := NOT not_expr | predicate
//! predicate := "(" or_expr ")"
//!            | IN_SEGMENT "(" string ")"
//!            | value cmp value                        cmp: = != <> < <= > >=
//!            | value [NOT] IN "(" literal {"," literal} ")"
//!            | value [NOT] BETWEEN literal AND literal
//!            | value IS [NOT] NULL
//!            | value [NOT] (CONTAINS | STARTS_WITH | ENDS_WITH) string
//!            | value                                  a boolean attribute or trait
//! value     := product { ("+" | "-") product }
//! product   := factor { ("*" | "/") factor }
//! factor    := "-" factor | primary
//! primary   := identifier | literal | "(" value ")" | FUNC "(" value {"," value} ")"
//! FUNC      := round | abs | coalesce          round(x) or round(x, digits)
//! literal   := ["-"] number | string | TRUE | FALSE | DATE 'YYYY-MM-DD' | TIMESTAMP 'RFC 3339'
//! derived   := value                          a trait computed from other traits
//! trait     := AGG "(" [value] ")" [WHERE or_expr] [window]
//!            | SHARE "(" or_expr ")" [WHERE or_expr] [window]
//!            | PCT "(" value "," number ")" [WHERE or_expr] [window]
//! window    := WITHIN duration | BETWEEN day AND day
//! AGG       := count | sum | avg | min | max | count_distinct | first_seen | last_seen
//!            | days_since_last | days_since_first | median
//! PCT       := percentile | percentile_disc          the number is a fraction from 0 to 1
//! duration  := integer ("h" | "d" | "w" | "mo" | "y")   e.g. 90d, 12w, 36h, 6mo, 1y
//! day       := YYYY-MM-DD                     a bare UTC day, e.g. 2025-01-01
//! ```
//!
//! - Keywords are case-insensitive. `and`, `or`, `not`, `in`, `between`, `is`, `null`, `true`,
//!   `false`, `contains`, `starts_with`, `ends_with`, `in_segment`, `where` and `within` are
//!   reserved: to use one as a name, backquote it. `date` and `timestamp` start a literal only
//!   when a string follows them.
//! - Strings take single or double quotes; a quote inside is doubled (`'it''s'`).
//! - Identifiers are `[A-Za-z_][A-Za-z0-9_]*`, `parent.name` (the qualifier is
//!   case-insensitive), or backquoted `` `any name` `` (a backquote inside is doubled).
//! - Numbers: an optional `-`, digits, an optional fraction and exponent (`-5`, `2.5`, `1e3`).
//!   An integer that fits in 64 bits is an int; anything else is a float. `-0.0` is `0.0`.
//! - A `(` starts a value, not a condition, when its `)` is followed by an arithmetic or
//!   comparison operator or by a predicate's keyword: `(a + b) * 2 > 10`.
//! - Arithmetic and the functions are typed and checked as [`ast::Func`] says: int `+ - *`
//!   give an int (a result past 64 bits is an error), `/` gives a float and is NULL for a zero
//!   divisor, and a float that overflows is an error.
//! - In `BETWEEN x AND y` the `AND` belongs to `BETWEEN`.
//! - `TIMESTAMP` without an offset means UTC; a space may replace the `T`.
//! - Windows are positive and at most about 292,000 years long (`mo` and `y`: 200,000 years).
//!   `Nmo` and `Ny` are calendar months back from the as-of instant, the day clamped to the
//!   end of a shorter month; `between A and B` keeps the UTC days A to B, both inclusive.
//! - In a trait's `WHERE` condition, `between` followed by a bare day starts the trait's range,
//!   not a `BETWEEN` predicate (a predicate's bounds are literals: `DATE '2025-01-01'`).
//! - Nesting (parentheses, `not`, chains of `and`/`or`) is capped at [`MAX_DEPTH`] levels.
//!
//! # Pipeline
//!
//! [`parse_rule`] / [`parse_trait`] give an [`ast::Expr`] / [`ast::TraitExpr`] with byte spans;
//! [`resolve_rule`] / [`resolve_trait`] check them against an [`AttributeCatalog`] and give the
//! typed [`ast::TypedExpr`] / [`ast::TypedTrait`] that evaluators consume. Every step reports
//! problems as [`Diagnostic`]s; none panics.
#![warn(missing_docs)]

pub mod ast;
mod deps;
mod diagnostic;
mod display;
pub mod eval;
mod lexer;
mod literal;
mod parser;
mod resolve;

pub use deps::{name_references, order_segments, segment_references};
pub use diagnostic::Diagnostic;
pub use literal::{format_date, format_timestamp};
pub use parser::{MAX_DEPTH, is_derived_trait, needs_backquotes, parse_derived, parse_rule, parse_trait};
pub use resolve::{resolve_derived, resolve_rule, resolve_trait};

/// Names and types of what a rule may reference.
pub trait AttributeCatalog {
    /// Resolves an identifier (`name`, `parent.name`, or backquoted name); `None` if unknown.
    fn lookup(&self, ident: &ast::Ident) -> Option<ast::ColumnInfo>;

    /// All names a user could have meant (for "did you mean" hints), e.g. `industry`,
    /// `parent.industry`.
    fn names(&self) -> Vec<String>;

    /// Whether `in_segment(name)` may reference this segment. Default: false.
    fn has_segment(&self, _name: &str) -> bool {
        false
    }

    /// Segment names for hints. Default: empty.
    fn segment_names(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether `in_segment()` is allowed at all here (false for trait conditions over events).
    /// Default: false.
    fn allows_segments(&self) -> bool {
        false
    }
}
