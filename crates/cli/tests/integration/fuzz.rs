//! Issue 11: the fuzz harness. Generated projects (a project file from a template with random
//! mutations, rules from a small grammar with random edits, data files with hostile values and
//! headers) go through the real binary (`validate`, then `run` in both bad-row modes), and every
//! outcome must be one a user can act on:
//!
//! - no panic and no exit 3 (a bug) or any code but 0 and 2;
//! - every exit-2 message names where the problem is (the project file, a data file or an
//!   option) and is bounded in size, however large the input;
//! - every process ends within its time limit.
//!
//! The number of cases is fixed (`SEGMENTA_FUZZ_CASES`, default 64) and each process has a
//! time limit, so CI's time is bounded; a failure prints the case's files. Seeds are fixed by
//! proptest's deterministic runner, so a failure reproduces.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// The longest an exit-2 message may be.
const MAX_MESSAGE: usize = 16 * 1024;
/// The longest one command may take (debug build, small files).
const LIMIT: Duration = Duration::from_secs(30);

const COLUMNS: [&str; 6] = ["plan", "n", "x", "d", "flag", "id"];
const OPERATORS: [&str; 16] = [
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    " in ",
    " between ",
    " and ",
    " or ",
    " is null",
    " contains ",
    " + ",
    " * ",
    " / ",
    " - ",
];
const VALUES: [&str; 14] = [
    "'pro'",
    "'PRO'",
    "1",
    "-0.0",
    "0",
    "2.5",
    "9223372036854775807",
    "9223372036854775808",
    "DATE '2024-01-01'",
    "('a', 'b')",
    "1 and 3",
    "null",
    "true",
    "pro",
];
const TRAITS: [&str; 13] = [
    "t0 / 2",
    "round(coalesce(t1, 0) * 1e300 * 1e300, 2)",
    "t0 * 9223372036854775807 + t1",
    "count()",
    "count() where type = 'buy' within 30d",
    "sum(amount)",
    "avg(amount) within 1y",
    "max(ts)",
    "count_distinct(type)",
    "days_since_last()",
    "share(type = 'buy')",
    "min(amount) where amount > 0",
    "first_seen()",
];
const CELLS: [&str; 16] = [
    "",
    "a",
    "pro",
    "PRO",
    "1",
    "-1",
    "0012",
    "-0.0",
    "1e308",
    "NaN",
    "9223372036854775808",
    "2024-02-30",
    "2024-01-01",
    "\"quoted, comma\"",
    "\"unbalanced",
    "żółć",
];
const TIMES: [&str; 8] = [
    "2024-01-01T00:00:00Z",
    "2024-06-29 12:00:00",
    "2024-13-01T00:00:00Z",
    "",
    "20240101",
    "1704067200",
    "2023-12-31",
    "2024-06-30T23:59:60Z",
];

/// Well-typed conditions over the declared columns (most generated rules are valid, so runs
/// get past validation and reach the data).
const TYPED: [&str; 18] = [
    "n * 2 + 1 > 3",
    "(n + x) / 0 is null",
    "round(x, 1) = abs(-2.5)",
    "coalesce(n, 0) * 9223372036854775807 > 1",
    "plan = 'pro'",
    "plan in ('pro', 'free')",
    "plan contains 'r'",
    "plan is null",
    "n > 1",
    "n between 1 and 3",
    "n = 9223372036854775807",
    "x <= 2.5",
    "x = -0.0",
    "d >= DATE '2024-01-01'",
    "flag",
    "not flag",
    "x between -0.0 and 0",
    "n != 0 or plan = 'PRO'",
];

/// A valid rule, or (one time in five) a hostile one.
fn rule() -> impl Strategy<Value = String> {
    let typed = proptest::collection::vec(0..TYPED.len(), 1..4)
        .prop_map(|atoms| atoms.iter().map(|&a| TYPED[a]).collect::<Vec<_>>().join(" and "));
    prop_oneof![4 => typed, 1 => hostile_rule()]
}

/// A rule from the grammar, then a few random edits of its characters.
fn hostile_rule() -> impl Strategy<Value = String> {
    let atom = (0..COLUMNS.len(), 0..OPERATORS.len(), 0..VALUES.len())
        .prop_map(|(c, o, v)| format!("{}{}{}", COLUMNS[c], OPERATORS[o], VALUES[v]));
    let joined = proptest::collection::vec(atom, 1..4).prop_map(|atoms| atoms.join(" and "));
    let edits = proptest::collection::vec((any::<prop::sample::Index>(), 0..5usize, any::<char>()), 0..3);
    (joined, edits).prop_map(|(mut text, edits)| {
        for (at, kind, c) in edits {
            let chars: Vec<char> = text.chars().collect();
            if chars.is_empty() {
                break;
            }
            let i = at.index(chars.len());
            let mut out: Vec<char> = chars.clone();
            match kind {
                0 => {
                    out.remove(i);
                }
                1 => out.insert(i, c),
                2 => out.insert(i, "()'\"\\"[i % 5..i % 5 + 1].chars().next().unwrap_or('(')),
                3 => out.truncate(i),
                _ => out[i] = c,
            }
            text = out.into_iter().collect();
        }
        text
    })
}

/// Cells that fit each column of the standard header (`id,plan,n,x,d,flag`).
const FITTING: [&[&str]; 6] = [
    &["1", "0012", "a", "pro", "zz", "b7"],
    &["pro", "free", "PRO", ""],
    &["1", "-3", "0", "", "9223372036854775807"],
    &["2.5", "-0.0", "0", "1e3", ""],
    &["2024-01-01", "2023-12-31", ""],
    &["true", "false", ""],
];

/// A CSV file: a header from `names` (sometimes hostile) and rows whose cells mostly fit their
/// column (code < 48), else are hostile.
fn csv(names: Vec<String>, rows: Vec<Vec<usize>>) -> String {
    let mut text = names.join(",");
    text.push('\n');
    for row in rows {
        let cells: Vec<&str> = (0..names.len())
            .map(|i| {
                let code = row.get(i).copied().unwrap_or(0);
                match FITTING.get(i) {
                    Some(fitting) if code < 48 => fitting[code % fitting.len()],
                    _ => CELLS[code % CELLS.len()],
                }
            })
            .collect();
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    text
}

#[derive(Clone)]
struct Case {
    toml: String,
    accounts: String,
    events: String,
}

/// The files of a case, each cut at 2,000 characters (a header can be 20,000).
impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cut = |text: &str| -> String {
            let mut shown: String = text.chars().take(2_000).collect();
            if shown.len() < text.len() {
                shown.push_str(&format!("… ({} bytes)", text.len()));
            }
            shown
        };
        writeln!(f, "--- segmenta.toml\n{}", cut(&self.toml))?;
        writeln!(f, "--- accounts.csv\n{}", cut(&self.accounts))?;
        write!(f, "--- events.csv\n{}", cut(&self.events))
    }
}

fn case() -> impl Strategy<Value = Case> {
    let header = prop_oneof![
        16 => Just(vec!["id", "plan", "n", "x", "d", "flag"].into_iter().map(String::from).collect::<Vec<_>>()),
        1 => Just(vec!["id".to_string(), "id".to_string(), "n".to_string()]),
        1 => Just(vec!["\u{feff}id".to_string(), String::new(), "n".to_string()]),
        1 => Just(vec!["id".to_string(), "x".repeat(20_000)]),
    ];
    let rows = proptest::collection::vec(proptest::collection::vec(0..56usize, 5..8), 0..12);
    let event_rows = proptest::collection::vec((0..6usize, 0..TIMES.len(), 0..3usize, 0..CELLS.len()), 0..20);
    let traits = proptest::collection::vec(0..TRAITS.len(), 0..4);
    let rules = proptest::collection::vec(rule(), 1..4);
    let mutation = 0..30usize;
    (header, rows, event_rows, traits, rules, mutation).prop_map(|(header, rows, event_rows, traits, rules, mutation)| {
        let accounts = csv(header, rows);
        let mut events = String::from("id,ts,type,amount\n");
        for (id, ts, kind, amount) in event_rows {
            let ids = ["", "1", "0012", "pro", "zz", "a"];
            events.push_str(&format!("{},{},{},{}\n", ids[id], TIMES[ts], ["buy", "view", ""][kind], CELLS[amount]));
        }
        let mut toml = String::from(
            "[project]\nname = \"fuzz\"\nentity = \"account\"\n\n[entities.account]\nsource = \"accounts.csv\"\nkey = \"id\"\ncolumns = { n = \"int\", x = \"float\", d = \"date\", flag = \"bool\" }\n\n[events]\nsource = \"events.csv\"\nentity_key = \"id\"\ntime = \"ts\"\ncolumns = { amount = \"float\" }\n\n[traits]\n",
        );
        for (i, t) in traits.iter().enumerate() {
            toml.push_str(&format!("t{i} = \"{}\"\n", TRAITS[*t].replace('"', "\\\"")));
        }
        for (i, r) in rules.iter().enumerate() {
            toml.push_str(&format!("\n[segments.s{i}]\nrule = {}\n", toml_string(r)));
        }
        // One mutation of the project file, most of the time none.
        let toml = match mutation {
            0 => toml.replace("key = \"id\"", ""),
            1 => toml.replace("entity = \"account\"", "entity = \"acount\""),
            2 => toml.replace("columns = { amount = \"float\" }", "columns = { amount = \"flaot\" }"),
            3 => format!("{toml}\n[rfm]\npurchase = \"type = 'buy'\"\namount = \"amount\"\nwithin = \"10x\"\n"),
            4 => format!("{toml}\n[segments.s0]\nrule = \"true\"\n"),
            5 => toml.replace("source = \"events.csv\"", "source = \"evnts.csv\""),
            6 => format!("{toml}\n[scores.e]\nmin = 5\nmax = 1\nrules = [{{ rule = \"n > 1\", points = 1e309 }}]\n"),
            7 => toml.replace("[traits]\n", "[traits]\n\"\" = \"count()\"\nentity_id = \"count()\"\n"),
            8 => format!("{toml}\n[clv]\npurchase = \"type = 'buy'\"\namount = \"amount\"\nhorizon = \"0d\"\n"),
            _ => toml,
        };
        Case { toml, accounts, events }
    })
}

/// A TOML basic string of any text.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs the binary with a time limit: (exit code, standard error).
fn run(dir: &Path, args: &[&str]) -> Result<(Option<i32>, String), String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_segmenta"))
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let started = Instant::now();
    loop {
        if let Some(_status) = child.try_wait().map_err(|e| format!("wait: {e}"))? {
            let out = child.wait_with_output().map_err(|e| format!("output: {e}"))?;
            return Ok((out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned()));
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            return Err(format!("{args:?} ran longer than {LIMIT:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What a user-facing message must do: name a file of the project or an option.
fn located(message: &str) -> bool {
    ["segmenta.toml", "accounts.csv", "events.csv", "evnts.csv", "--"].iter().any(|m| message.contains(m))
}

/// Outcomes seen: [exit 0, exit 2] per command, for the summary line.
static OUTCOMES: [std::sync::atomic::AtomicUsize; 6] = [const { std::sync::atomic::AtomicUsize::new(0) }; 6];

fn check(case: &Case) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    for (name, text) in
        [("segmenta.toml", &case.toml), ("accounts.csv", &case.accounts), ("events.csv", &case.events)]
    {
        std::fs::write(dir.path().join(name), text).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    let commands: [&[&str]; 3] = [
        &["validate"],
        &["run", "--as-of", "2024-06-30", "--threads", "2"],
        &["run", "--as-of", "2024-06-30", "--on-bad-rows", "reject", "--strict"],
    ];
    for (n, args) in commands.into_iter().enumerate() {
        let (code, stderr) = run(dir.path(), args).map_err(TestCaseError::fail)?;
        let slot = 2 * n + usize::from(code != Some(0));
        OUTCOMES[slot].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        prop_assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}\n{case:?}");
        prop_assert!(matches!(code, Some(0) | Some(2)), "{args:?} exited {code:?}:\n{stderr}\n{case:?}");
        if code == Some(2) {
            let head: String = stderr.chars().take(2_000).collect();
            prop_assert!(
                stderr.len() <= MAX_MESSAGE,
                "{args:?}: a message of {} bytes:\n{head}\n{case:?}",
                stderr.len()
            );
            prop_assert!(located(&stderr), "{args:?}: an unlocated message:\n{stderr}\n{case:?}");
        }
    }
    Ok(())
}

#[test]
fn generated_projects_get_a_result_or_a_located_bounded_error() {
    let cases = std::env::var("SEGMENTA_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64);
    let config = Config { cases, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let result = runner.run(&case(), |case| check(&case));
    let seen: Vec<usize> = OUTCOMES.iter().map(|o| o.load(std::sync::atomic::Ordering::Relaxed)).collect();
    eprintln!(
        "fuzz: {cases} cases; validate {} ok / {} refused, run {} ok / {} refused, run --on-bad-rows reject --strict {} ok / {} refused",
        seen[0], seen[1], seen[2], seen[3], seen[4], seen[5]
    );
    if let Err(error) = result {
        panic!("{error}");
    }
}
