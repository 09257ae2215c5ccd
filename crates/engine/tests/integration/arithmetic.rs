//! Issue 11, "the language analysts reach for": arithmetic in rules and trait conditions,
//! `round` / `abs` / `coalesce`, derived traits read in dependency order, values out of range
//! as errors naming their owner, ints compared exactly with float constants, and no negative
//! zero.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type};
use segmenta_engine::{BadRows, ErrorCode, ErrorKind};

use crate::support::{TempProject, memberships};

const AS_OF: &str = "2024-06-30";

/// A project of customers and purchases with `traits`, `segments` and more appended.
fn project(customers: &str, events: &str, rest: &str) -> TempProject {
    project_with(customers, events, "", rest)
}

fn project_with(customers: &str, events: &str, entity: &str, rest: &str) -> TempProject {
    let toml = format!(
        r#"[project]
name = "t"
entity = "customer"

[entities.customer]
source = "customers.csv"
key = "id"
{entity}

[events]
source = "events.csv"
entity_key = "customer_id"
time = "ts"

{rest}
"#
    );
    TempProject::new(&[("segmenta.toml", &toml), ("customers.csv", customers), ("events.csv", events)])
}

/// A float column of `traits.parquet`, by entity id.
fn floats(p: &TempProject, column: &str) -> BTreeMap<String, Option<f64>> {
    let traits = segmenta_store::read_parquet(&p.out().join("traits.parquet")).expect("traits");
    let ids = arrow::compute::cast(traits.column(0), &DataType::Utf8).expect("ids as text");
    let values = traits.column_by_name(column).unwrap_or_else(|| panic!("a column `{column}`"));
    let values = arrow::compute::cast(values, &DataType::Float64).expect("numbers");
    let values = values.as_primitive::<Float64Type>();
    (0..traits.num_rows())
        .map(|i| {
            let id = ids.as_string::<i32>().value(i).to_string();
            (id, (!values.is_null(i)).then(|| values.value(i)))
        })
        .collect()
}

const PURCHASES: &str = "customer_id,ts,amount,qty\n\
c1,2024-01-05T00:00:00Z,10.5,1\n\
c1,2024-02-05T00:00:00Z,20.25,3\n\
c2,2024-03-01T00:00:00Z,7,2\n\
c2,2024-03-02T00:00:00Z,0.5,4\n\
c2,2024-03-03T00:00:00Z,1,5\n";

#[test]
fn derived_traits_compute_from_other_traits_in_dependency_order() {
    // `aov_rounded` reads `aov`, declared after it; `aov` reads two aggregates. c3 has no
    // purchases: its order count is 0 and `revenue / orders` is NULL (division by zero).
    let rest = r#"[traits]
aov_rounded = "round(aov, 1)"
aov = "revenue / orders"
revenue = "sum(amount)"
orders = "count()"
units = "sum(qty)"
spread = "abs(units - orders * 3) + coalesce(aov, -1)"
line_total = "sum(amount * qty) where amount * 2 > 1"

[segments.big_baskets]
rule = "aov * 2 > 30 and units - orders >= 2"
"#;
    let p = project("id\nc1\nc2\nc3\n", PURCHASES, rest);
    p.run(AS_OF, BadRows::Strict).expect("runs");
    // The expectations, computed here from the rows above.
    let rows: Vec<(&str, f64, i64)> = PURCHASES
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            (fields[0], fields[2].parse().expect("amount"), fields[3].parse().expect("qty"))
        })
        .collect();
    let (aov, rounded, spread) = (floats(&p, "aov"), floats(&p, "aov_rounded"), floats(&p, "spread"));
    let line_total = floats(&p, "line_total");
    let mut members = Vec::new();
    for id in ["c1", "c2"] {
        let mine: Vec<&(&str, f64, i64)> = rows.iter().filter(|r| r.0 == id).collect();
        let revenue: f64 = mine.iter().map(|r| r.1).sum();
        let (orders, units) = (mine.len() as i64, mine.iter().map(|r| r.2).sum::<i64>());
        let expected = revenue / orders as f64;
        assert_eq!(aov[id], Some(expected), "{id}");
        assert_eq!(rounded[id], Some((expected * 10.0).round() / 10.0), "{id}");
        assert_eq!(spread[id], Some((units - orders * 3).abs() as f64 + expected), "{id}");
        let total: f64 = mine.iter().filter(|r| r.1 * 2.0 > 1.0).map(|r| r.1 * r.2 as f64).sum();
        assert_eq!(line_total[id], Some(total), "{id}");
        if expected * 2.0 > 30.0 && units - orders >= 2 {
            members.push(id.to_string());
        }
    }
    assert_eq!(aov["c3"], None, "no orders: revenue / 0 is NULL");
    assert_eq!(rounded["c3"], None);
    assert_eq!(spread["c3"], Some(-1.0), "coalesce(NULL, -1) is -1; abs(0 - 0) is 0");
    assert_eq!(memberships(&p)["big_baskets"], members);
    assert_eq!(members, ["c1"], "the test data has one big basket");
}

#[test]
fn a_cycle_of_derived_traits_is_a_located_error() {
    // Two cycles, each reported; the derived trait outside them is still planned and read.
    let rest = "[traits]\norders = \"count()\"\na = \"b + orders\"\nb = \"a * 2\"\nc = \"d\"\nd = \"c\"\nok = \"orders * 2\"\n\n[segments.s]\nrule = \"ok > 1\"\n";
    let p = project("id\nc1\n", PURCHASES, rest);
    let error = segmenta_engine::validate(&p.load().expect("loads")).expect_err("a cycle");
    let message = error.to_string();
    assert_eq!(error.kind(), ErrorKind::User, "{message}");
    assert!(
        message.contains("error[trait_cycle]: derived traits read each other in a cycle: a → b → a"),
        "{message}"
    );
    assert!(message.contains("segmenta.toml:17:6:"), "at the text of `a`: {message}");
    assert!(message.contains("derived traits read each other in a cycle: c → d → c"), "{message}");
    assert!(!message.contains("unknown attribute"), "{message}");
    // A derived trait named as a column is a clash, not a cycle.
    let p = project("id,n\nc1,1\n", PURCHASES, "[traits]\nn = \"n * 2\"\n");
    let message = segmenta_engine::validate(&p.load().expect("loads")).expect_err("a clash").to_string();
    assert!(message.contains("trait `n` has the name of a column of customers.csv"), "{message}");
    assert!(!message.contains("cycle"), "{message}");
}

#[test]
fn a_derived_trait_cannot_roll_up_and_reads_only_known_names() {
    let rest = "[traits]\norders = \"count()\"\nx = { expr = \"orders * 2\", over = \"descendants\" }\ny = \"ordrs + 1\"\n";
    let p = project_with("id,parent_id\nc1,\n", PURCHASES, "hierarchy = \"parent_id\"", rest);
    let message = segmenta_engine::validate(&p.load().expect("loads")).expect_err("two problems").to_string();
    assert!(
        message.contains("error[derived_rollup]: trait `x` computes a value from other traits"),
        "{message}"
    );
    assert!(message.contains("unknown attribute `ordrs`"), "{message}");
    assert!(message.contains("did you mean `orders`?"), "{message}");
}

#[test]
fn an_int_overflow_names_the_segment_or_the_trait() {
    let segment =
        "[traits]\norders = \"count()\"\n\n[segments.huge]\nrule = \"orders * 9223372036854775807 > 1\"\n";
    let p = project("id\nc1\nc2\n", PURCHASES, segment);
    let error = p.run(AS_OF, BadRows::Strict).expect_err("an overflow");
    assert_eq!(error.kind(), ErrorKind::User, "{error}");
    let message = error.to_string();
    assert!(
        message.contains(
            "segmenta.toml:19:9: segment `huge`: `orders * 9223372036854775807` is too large for a 64-bit integer"
        ),
        "located at the rule: {message}"
    );
    assert!(message.contains("hint: compute it in floats"), "{message}");
    assert_eq!(error.code(), "value_out_of_range");
    let condition = "[traits]\nbig = \"count() where qty * 4611686018427387904 > 0\"\n";
    let p = project("id\nc1\nc2\n", PURCHASES, condition);
    let error = p.run(AS_OF, BadRows::Strict).expect_err("an overflow");
    assert_eq!(error.kind(), ErrorKind::User, "{error}");
    assert!(
        error.to_string().contains(
            "segmenta.toml:16:8: trait `big`: `qty * 4611686018427387904` is too large for a 64-bit integer"
        ),
        "{error}"
    );
    let derived = "[traits]\nrevenue = \"sum(amount)\"\nx = \"revenue * 1e307\"\n";
    let p = project("id\nc1\nc2\n", PURCHASES, derived);
    let error = p.run(AS_OF, BadRows::Strict).expect_err("a float overflow");
    assert!(
        error
            .to_string()
            .contains("segmenta.toml:17:6: trait `x`: `revenue * 1e307` is too large for a float"),
        "{error}"
    );
}

#[test]
fn score_points_past_the_largest_float_name_the_score() {
    let rest = r#"[traits]
orders = "count()"

[scores.lead]
rules = [{ rule = "orders >= 0", points = 1e308 }, { rule = "orders >= 1", points = 1e308 }]
"#;
    let p = project("id\nc1\nc3\n", PURCHASES, rest);
    let error = p.run(AS_OF, BadRows::Strict).expect_err("an infinite score");
    assert_eq!(error.kind(), ErrorKind::User, "{error}");
    assert!(
        error.to_string().contains("segmenta.toml:19:20: score `lead`: `points` is too large for a float"),
        "{error}"
    );
}

#[test]
fn ints_compare_exactly_with_float_constants_in_rules_and_conditions() {
    // 2^53 + 1 is not a float: rounded to one it would equal 2^53 and not be above it.
    let customers = "id,big\nc1,9007199254740993\nc2,9007199254740992\nc3,-3\n";
    let events = "customer_id,ts,n\nc1,2024-01-01T00:00:00Z,9007199254740993\nc2,2024-01-01T00:00:00Z,9007199254740992\n";
    let rest = r#"[traits]
n_above = "count() where n > 9007199254740992.0"
n_halves = "count() where n between 9007199254740991.5 and 9007199254740992.5"

[segments.above]
rule = "big > 9007199254740992.0"

[segments.not_half]
rule = "big != -2.5 and big not in (-3.5, 1.5) and big < 1e19 and big > -1e19"

[segments.between]
rule = "big between -3.5 and -2.5"
"#;
    let p = project(customers, events, rest);
    p.run(AS_OF, BadRows::Strict).expect("runs");
    let members = memberships(&p);
    assert_eq!(members["above"], ["c1"]);
    assert_eq!(members["not_half"], ["c1", "c2", "c3"]);
    assert_eq!(members["between"], ["c3"]);
    let (above, halves) = (floats(&p, "n_above"), floats(&p, "n_halves"));
    assert_eq!((above["c1"], above["c2"]), (Some(1.0), Some(0.0)));
    assert_eq!((halves["c1"], halves["c2"]), (Some(0.0), Some(1.0)));
}

#[test]
fn negative_zero_reads_as_zero_everywhere() {
    let customers = "id,x\nc1,-0.0\nc2,0.0\nc3,-1.5\n";
    let events = "customer_id,ts,x\nc1,2024-01-01T00:00:00Z,-0.0\nc2,2024-01-01T00:00:00Z,0\n";
    let rest = r#"[traits]
zeros = "count() where x = 0 and x between 0 and 0 and x >= 0.0"
least = "min(x)"
scaled = "round(zeros * -0.0, 2)"

[segments.zero]
rule = "x = 0.0 and x between -0.0 and 0 and not x < 0 and x * -1 = 0"
"#;
    let p = project(customers, events, rest);
    p.run(AS_OF, BadRows::Strict).expect("runs");
    assert_eq!(memberships(&p)["zero"], ["c1", "c2"]);
    let zeros = floats(&p, "zeros");
    assert_eq!((zeros["c1"], zeros["c2"]), (Some(1.0), Some(1.0)));
    for (id, least) in floats(&p, "least") {
        assert!(least.is_none_or(|v| !(v == 0.0 && v.is_sign_negative())), "{id}: {least:?}");
    }
    for (id, scaled) in floats(&p, "scaled") {
        assert!(scaled.is_some_and(|v| v == 0.0 && v.is_sign_positive()), "{id}: {scaled:?}");
    }
    let traits = segmenta_store::read_parquet(&p.out().join("traits.parquet")).expect("traits");
    assert_eq!(traits.column_by_name("zeros").expect("zeros").data_type(), &DataType::Int64);
}

#[test]
fn config_windows_take_calendar_months_as_trait_windows_do() {
    // As of 2024-06-30 the instant is 2024-07-01T00:00Z: `2mo` starts on 2024-05-01T00:00Z,
    // a day before `60d` would. c1's purchase lies between the two; c2's just before both.
    let events = "customer_id,ts,amount\n\
c1,2024-05-01T12:00:00Z,10\n\
c2,2024-04-30T23:59:59.999999Z,10\n\
c3,2024-06-15T00:00:00Z,10\n";
    let rest = r#"[traits]
n_2mo = "count() within 2mo"
n_60d = "count() within 60d"

[rfm]
purchase = "amount > 0"
amount = "amount"
within = "2mo"

[scores.recent]
events = [{ where = "amount > 0", points = 1, within = "2mo" }]
"#;
    let p = project("id\nc1\nc2\nc3\n", events, rest);
    p.run(AS_OF, BadRows::Strict).expect("runs");
    let (months, days) = (floats(&p, "n_2mo"), floats(&p, "n_60d"));
    assert_eq!((months["c1"], months["c2"], months["c3"]), (Some(1.0), Some(0.0), Some(1.0)));
    assert_eq!((days["c1"], days["c2"], days["c3"]), (Some(0.0), Some(0.0), Some(1.0)));
    // RFM and the score read the same window as the trait `within 2mo`.
    assert_eq!(floats(&p, "rfm_frequency"), months);
    assert_eq!(floats(&p, "recent"), months);
    let bad = project(
        "id\nc1\n",
        events,
        "[rfm]\npurchase = \"amount > 0\"\namount = \"amount\"\nwithin = \"2months\"\n",
    );
    let message = bad.load().expect_err("a bad window").to_string();
    assert!(message.contains("[rfm] within: invalid window `2months`"), "{message}");
    assert!(message.contains("hint: write a whole number followed by h, d, w, mo or y"), "{message}");
}

#[test]
fn a_value_out_of_range_is_an_error_even_where_another_condition_decides() {
    // `orders < 0` is FALSE for everyone: the product is still computed, as in the reference.
    let rules = [
        "[segments.lazy]\nrule = \"orders < 0 and orders * 9223372036854775807 > 1\"\n",
        "[segments.lazy]\nrule = \"orders >= 0 or orders * 9223372036854775807 > 1\"\n",
        "[segments.outer]\nrule = \"orders < 0\"\n\n[segments.lazy]\nrule = \"orders * 9223372036854775807 > 1\"\nparent = \"outer\"\n",
        "[schemes.tiering]\ntiers = [{ name = \"all\", rule = \"orders >= 0\" }, { name = \"big\", rule = \"orders * 9223372036854775807 > 1\" }]\notherwise = \"none\"\n",
    ];
    for rule in rules {
        let rest = format!("[traits]\norders = \"count()\"\n\n{rule}");
        let p = project("id\nc1\nc2\n", PURCHASES, &rest);
        let error = p.run(AS_OF, BadRows::Strict).expect_err(rule);
        assert_eq!(error.code(), "value_out_of_range", "{rule}: {error}");
        assert!(error.to_string().contains("`orders * 9223372036854775807` is too large"), "{error}");
    }
}

#[test]
fn events_the_run_does_not_use_cannot_be_out_of_range() {
    // After the as-of instant, or of no known customer: never computed into a trait.
    let events = "customer_id,ts,qty\n\
c1,2024-01-01T00:00:00Z,1\n\
c1,2024-12-01T00:00:00Z,9223372036854775807\n\
zz,2024-01-01T00:00:00Z,9223372036854775807\n";
    let rest = "[traits]\nbig = \"sum(qty * 2) where qty * 2 > 0\"\n";
    let p = project("id\nc1\n", events, rest);
    p.run(AS_OF, BadRows::Strict).expect("runs");
    assert_eq!(floats(&p, "big")["c1"], Some(2.0));
    let used = "customer_id,ts,qty\nc1,2024-01-01T00:00:00Z,9223372036854775807\n";
    let p = project("id\nc1\n", used, rest);
    assert_eq!(p.run(AS_OF, BadRows::Strict).expect_err("used").code(), "value_out_of_range");
}
