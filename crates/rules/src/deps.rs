//! References between segments: which segments a rule names through `in_segment()`, which
//! unqualified names it reads, and an evaluation order in which every segment comes after
//! those it references.

use std::collections::HashMap;

use crate::ast::{Expr, ExprKind, Span, Value};

/// Names of segments referenced by `in_segment()` in a parsed rule, with spans, in text order.
pub fn segment_references(expr: &Expr) -> Vec<(String, Span)> {
    let mut found = Vec::new();
    // An explicit stack: trees built by hand may be deeper than the parser allows.
    let mut stack = vec![expr];
    while let Some(expr) = stack.pop() {
        match &expr.kind {
            ExprKind::Or(left, right) | ExprKind::And(left, right) => {
                stack.push(right);
                stack.push(left);
            }
            ExprKind::Not(inner) => stack.push(inner),
            ExprKind::InSegment { name } => found.push((name.clone(), expr.span)),
            _ => {}
        }
    }
    found
}

/// Unqualified identifiers a parsed rule reads (not `parent.x`), in text order, repeats kept.
/// Callers use them to order rules after the derived columns (scores, schemes) they read.
pub fn name_references(expr: &Expr) -> Vec<String> {
    let mut found = Vec::new();
    let mut value = |v: &Value| {
        found.extend(v.idents().into_iter().filter(|i| i.qualifier.is_none()).map(|i| i.name.clone()));
    };
    let mut stack = vec![expr];
    while let Some(expr) = stack.pop() {
        match &expr.kind {
            ExprKind::Or(left, right) | ExprKind::And(left, right) => {
                stack.push(right);
                stack.push(left);
            }
            ExprKind::Not(inner) => stack.push(inner),
            ExprKind::Compare { left, right, .. } => {
                value(left);
                value(right);
            }
            ExprKind::InList { value: v, .. }
            | ExprKind::Between { value: v, .. }
            | ExprKind::IsNull { value: v, .. }
            | ExprKind::StringMatch { value: v, .. }
            | ExprKind::Truthy(v) => value(v),
            ExprKind::InSegment { .. } => {}
        }
    }
    found
}

/// Orders segments so that each comes after those it references. `deps[i]` is a segment's
/// name and the names it references; names that are not in `deps` are ignored, as are repeated
/// definitions of a name after its first.
///
/// Returns indexes into `deps`, in evaluation order (segments without references keep their
/// relative order as far as the references allow). On a cycle returns its path of names,
/// starting and ending with the same name, e.g. `["a", "b", "a"]`.
pub fn order_segments(deps: &[(String, Vec<String>)]) -> Result<Vec<usize>, Vec<String>> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, (name, _)) in deps.iter().enumerate() {
        index.entry(name.as_str()).or_insert(i);
    }
    let edges: Vec<Vec<usize>> = deps
        .iter()
        .map(|(_, references)| references.iter().filter_map(|r| index.get(r.as_str()).copied()).collect())
        .collect();

    #[derive(Clone, Copy, PartialEq)]
    enum State {
        New,
        Active,
        Done,
    }
    let mut state = vec![State::New; deps.len()];
    let mut order = Vec::with_capacity(deps.len());
    for root in 0..deps.len() {
        if state[root] != State::New {
            continue;
        }
        // Depth-first search with an explicit stack of (node, next edge to follow).
        let mut stack = vec![(root, 0usize)];
        state[root] = State::Active;
        while let Some(top) = stack.last_mut() {
            let node = top.0;
            if let Some(&target) = edges[node].get(top.1) {
                top.1 += 1;
                match state[target] {
                    State::New => {
                        state[target] = State::Active;
                        stack.push((target, 0));
                    }
                    State::Active => {
                        let from = stack.iter().position(|&(n, _)| n == target).unwrap_or(0);
                        let mut cycle: Vec<String> =
                            stack[from..].iter().map(|&(n, _)| deps[n].0.clone()).collect();
                        cycle.push(deps[target].0.clone());
                        return Err(cycle);
                    }
                    State::Done => {}
                }
            } else {
                state[node] = State::Done;
                order.push(node);
                stack.pop();
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `input` is `name:ref,ref` entries separated by spaces; `expected` is the order of names,
    /// or `!a>b>a` for a cycle.
    fn check(input: &str, expected: &str) {
        let deps: Vec<(String, Vec<String>)> = input
            .split_whitespace()
            .map(|entry| {
                let (name, refs) = entry.split_once(':').unwrap_or((entry, ""));
                let refs = refs.split(',').filter(|r| !r.is_empty()).map(String::from).collect();
                (name.to_string(), refs)
            })
            .collect();
        let actual = match order_segments(&deps) {
            Ok(order) => order.iter().map(|&i| deps[i].0.as_str()).collect::<Vec<_>>().join(" "),
            Err(cycle) => format!("!{}", cycle.join(">")),
        };
        assert_eq!(actual, expected, "input: {input:?}");
    }

    #[test]
    fn orders() {
        check("", "");
        check("a b c", "a b c");
        check("a:b b:c c", "c b a");
        check("a:b,c b:c c d:a", "c b a d");
        check("a:unknown b", "a b");
    }

    #[test]
    fn cycles() {
        check("a:a", "!a>a");
        check("a:b b:c c:a", "!a>b>c>a");
        check("x a:b b:c c:b", "!b>c>b");
    }

    #[test]
    fn references() {
        let expr = crate::parse_rule("in_segment('a') and (x or not in_segment('b'))").expect("valid");
        let names: Vec<(String, Span)> = segment_references(&expr);
        assert_eq!(names, vec![("a".to_string(), Span::new(0, 15)), ("b".to_string(), Span::new(30, 45))]);
        let expr = crate::parse_rule("x > 1 and (parent.y or not z in (1)) or `w v` is null or 3 = x")
            .expect("valid");
        assert_eq!(name_references(&expr), ["x", "z", "w v", "x"]);
        let expr = crate::parse_rule("(a + b) * 2 > coalesce(c, -d, parent.e)").expect("valid");
        assert_eq!(name_references(&expr), ["a", "b", "c", "d"]);
    }
}
