//! "Did you mean": the one rule for suggesting a known name in place of a misspelled one, shared
//! by the project file (keys, entities, segments), the rule language (attributes, segments,
//! aggregates), data files (declared columns) and discovery (features), so that the same typo
//! gets the same hint wherever it is made.

/// The candidate closest to `name`, if it is close enough to be a likely typo of it.
///
/// Names are compared case-insensitively with two measures, and a candidate is close when
/// either says so:
/// - **Jaro–Winkler similarity of at least 0.8.** Jaro–Winkler rewards a shared beginning,
///   and the typos users make in names keep the start and slip later (`industy`, `amout`,
///   `entiy`); 0.8 is the usual cut-off, where a random pair of short words stays below.
/// - **At most 2 edits (Levenshtein), and fewer edits than `name` has characters.** Short names
///   fall below 0.8 after one slip (`aa` for `a`); the second condition keeps a one-letter name
///   from matching every other one-letter name (`c` is not a typo of `a`).
///
/// Among the close candidates the one with the highest Jaro–Winkler similarity wins (the last
/// such one on a tie). This is the rule the rule language used before the four sites shared one;
/// it suggests everything the project file's Jaro–Winkler-only rule did, plus the short names.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let name = name.to_lowercase();
    let length = name.chars().count();
    candidates
        .into_iter()
        .filter_map(|candidate| {
            let lower = candidate.to_lowercase();
            let similarity = strsim::jaro_winkler(&name, &lower);
            let edits = strsim::levenshtein(&name, &lower);
            let close = similarity >= 0.8 || (edits <= 2 && edits < length);
            close.then_some((similarity, candidate))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate)
}

/// The longest name a message shows whole.
pub const SHOWN_NAME: usize = 64;

/// A name as messages show it: whole up to [`SHOWN_NAME`] characters, else its beginning and
/// its length, so that a message stays short whatever the input (a 20,000-character header).
pub fn shown(name: &str) -> std::borrow::Cow<'_, str> {
    let length = name.chars().count();
    if length <= SHOWN_NAME {
        return std::borrow::Cow::Borrowed(name);
    }
    let head: String = name.chars().take(SHOWN_NAME - 4).collect();
    std::borrow::Cow::Owned(format!("{head}… ({length} characters)"))
}

#[cfg(test)]
mod tests {
    use super::{closest, shown};

    #[test]
    fn long_names_are_shown_by_their_beginning_and_length() {
        assert_eq!(shown("plan"), "plan");
        let long = "x".repeat(20_000);
        let text = shown(&long);
        assert!(text.len() < 100, "{text}");
        assert!(text.ends_with("… (20000 characters)"), "{text}");
        assert_eq!(shown(&"é".repeat(64)), "é".repeat(64), "64 characters, not bytes, are shown whole");
    }

    #[test]
    fn suggests_typos() {
        assert_eq!(closest("industy", ["industry", "employees"]), Some("industry"));
        assert_eq!(closest("employes", ["id", "employees"]), Some("employees"));
        assert_eq!(closest("entiy", ["name", "entity", "store"]), Some("entity"));
        assert_eq!(closest("Plan", ["plan"]), Some("plan"));
        assert_eq!(closest("aa", ["a", "b"]), Some("a"));
    }

    #[test]
    fn does_not_suggest_unrelated_names() {
        assert_eq!(closest("revenue", ["id", "plan"]), None);
        assert_eq!(closest("c", ["a", "b"]), None);
        assert_eq!(closest("x", []), None);
    }

    #[test]
    fn the_most_similar_wins() {
        assert_eq!(closest("logins_3d", ["logins_30d", "logins_7d", "revenue"]), Some("logins_30d"));
    }
}
