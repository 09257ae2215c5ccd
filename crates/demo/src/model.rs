//! The demo company's customers: vocabularies, and the static profile of each account and its
//! contacts, drawn from distributions with realistic shapes (long-tailed sizes and revenue,
//! growth in signups, size-dependent plans, regional consent rates).
//!
//! A profile is a pure function of the seed and the account's index, so any part of the data
//! can be generated independently (in parallel, in any order) with the same result.

use chrono::{Duration, NaiveDate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Poisson};

/// The first day events are recorded.
pub fn window_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2023, 1, 1).expect("a valid date")
}

/// The last day of the data; the demo project's `as_of`.
pub fn window_end() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 12, 31).expect("a valid date")
}

/// Months of events (2023-01 to 2025-12).
pub const MONTHS: u32 = 36;

/// Industries with their weights and revenue per employee (USD).
pub const INDUSTRIES: [(&str, f64, f64); 10] = [
    ("software", 0.22, 250_000.0),
    ("financial_services", 0.11, 400_000.0),
    ("healthcare", 0.12, 180_000.0),
    ("retail", 0.12, 220_000.0),
    ("manufacturing", 0.12, 300_000.0),
    ("education", 0.07, 90_000.0),
    ("media", 0.06, 200_000.0),
    ("logistics", 0.07, 250_000.0),
    ("professional_services", 0.08, 150_000.0),
    ("government", 0.03, 120_000.0),
];

/// Countries: code, region, weight, UTC offset of business hours.
pub const COUNTRIES: [(&str, &str, f64, i64); 14] = [
    ("US", "NA", 0.38, -5),
    ("CA", "NA", 0.05, -5),
    ("GB", "EMEA", 0.09, 0),
    ("DE", "EMEA", 0.08, 1),
    ("FR", "EMEA", 0.05, 1),
    ("NL", "EMEA", 0.03, 1),
    ("SE", "EMEA", 0.02, 1),
    ("ES", "EMEA", 0.03, 1),
    ("AU", "APAC", 0.04, 10),
    ("JP", "APAC", 0.03, 9),
    ("SG", "APAC", 0.02, 8),
    ("IN", "APAC", 0.05, 5),
    ("BR", "LATAM", 0.04, -3),
    ("MX", "LATAM", 0.03, -6),
];

/// Plans and their price per seat and month (USD).
pub const PLANS: [(&str, f64); 4] = [("free", 0.0), ("starter", 25.0), ("pro", 65.0), ("enterprise", 150.0)];
/// Index of the free plan in [`PLANS`].
pub const FREE: u8 = 0;
/// Index of the starter plan.
pub const STARTER: u8 = 1;
/// Index of the pro plan.
pub const PRO: u8 = 2;
/// Index of the enterprise plan.
pub const ENTERPRISE: u8 = 3;

/// CRMs (technographic).
pub const CRMS: [(&str, f64); 5] =
    [("salesforce", 0.35), ("hubspot", 0.30), ("pipedrive", 0.10), ("dynamics", 0.10), ("none", 0.15)];
/// Clouds (technographic).
pub const CLOUDS: [(&str, f64); 4] = [("aws", 0.50), ("azure", 0.25), ("gcp", 0.18), ("on_prem", 0.07)];

/// Contact roles: name, weight, seniority, department.
pub const ROLES: [(&str, f64, &str, &str); 14] = [
    ("ceo", 0.05, "c_level", "executive"),
    ("cto", 0.05, "c_level", "engineering"),
    ("cfo", 0.03, "c_level", "finance"),
    ("vp_engineering", 0.05, "vp", "engineering"),
    ("vp_sales", 0.04, "vp", "sales"),
    ("head_of_marketing", 0.05, "director", "marketing"),
    ("engineering_manager", 0.08, "manager", "engineering"),
    ("sales_manager", 0.07, "manager", "sales"),
    ("marketing_manager", 0.07, "manager", "marketing"),
    ("developer", 0.18, "individual", "engineering"),
    ("analyst", 0.10, "individual", "operations"),
    ("account_executive", 0.09, "individual", "sales"),
    ("support_agent", 0.07, "individual", "support"),
    ("admin", 0.07, "individual", "operations"),
];

/// Age bands (demographic).
pub const AGE_BANDS: [&str; 5] = ["18-24", "25-34", "35-44", "45-54", "55+"];

/// Features of the product.
pub const FEATURES: [&str; 10] = [
    "dashboards",
    "reports",
    "exports",
    "alerts",
    "integrations",
    "api",
    "automation",
    "sso",
    "audit_log",
    "ai_assistant",
];
/// Features from this index on are advanced (used by engaged and larger customers).
pub const ADVANCED_FEATURES: usize = 5;

/// Pages of the website.
pub const PAGES: [&str; 8] =
    ["home", "pricing", "docs", "blog", "integrations", "security", "case_studies", "careers"];
/// Index of the pricing page.
pub const PRICING_PAGE: u8 = 1;

/// Survey answers: the customer's primary need.
pub const NEEDS: [&str; 6] =
    ["analytics", "automation", "collaboration", "compliance", "cost_reduction", "integrations"];
/// Survey answers: the customer's main pain point.
pub const PAINS: [&str; 6] =
    ["price", "performance", "missing_features", "support", "ease_of_use", "onboarding"];

/// A contact of an account.
#[derive(Debug, Clone)]
pub struct Contact {
    /// Index in [`ROLES`].
    pub role: u8,
    /// Whether the contact signs off purchases.
    pub decision_maker: bool,
    /// Index in [`AGE_BANDS`].
    pub age_band: u8,
    /// Consent to marketing e-mail.
    pub consent_email: bool,
    /// Consent to product updates.
    pub consent_updates: bool,
    /// Consent to profiling.
    pub consent_profiling: bool,
    /// How much of the account's engagement this contact carries (0 to 1.5).
    pub activity: f64,
    /// Days after the account's signup the contact was created.
    pub created_after_days: i64,
}

/// An account's static profile.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Index in [`INDUSTRIES`].
    pub industry: u8,
    /// Number of employees.
    pub employees: u64,
    /// Annual revenue (USD).
    pub revenue: f64,
    /// Index in [`COUNTRIES`].
    pub country: u8,
    /// Index in [`CRMS`].
    pub crm: u8,
    /// Index in [`CLOUDS`].
    pub cloud: u8,
    /// Whether single sign-on is enabled.
    pub uses_sso: bool,
    /// Integrations enabled.
    pub integrations: u32,
    /// Day of signup.
    pub signup: NaiveDate,
    /// The parent account (subsidiaries), an index lower than this account's.
    pub parent: Option<u64>,
    /// The plan at signup (or at the start of the window).
    pub plan: u8,
    /// Seats at signup.
    pub seats: u32,
    /// Engagement at signup, 0 to 1.
    pub engagement: f64,
    /// Index in [`NEEDS`] of the primary need.
    pub need: u8,
    /// Index in [`PAINS`] of the main pain point.
    pub pain: u8,
    /// The contacts.
    pub contacts: Vec<Contact>,
    /// A short company name.
    pub name: String,
}

/// A generator seeded for one purpose of one account (or account and month).
pub fn rng(seed: u64, account: u64, salt: u64) -> ChaCha8Rng {
    // SplitMix64-style mixing so that nearby inputs give unrelated streams.
    let mut x = seed ^ account.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ChaCha8Rng::seed_from_u64(x ^ (x >> 31))
}

/// Picks an index by weight.
pub fn pick(rng: &mut impl Rng, weights: impl Iterator<Item = f64> + Clone) -> u8 {
    let total: f64 = weights.clone().sum();
    let mut u = rng.random::<f64>() * total;
    let mut last = 0;
    for (i, w) in weights.enumerate() {
        last = i;
        if u < w {
            return i as u8;
        }
        u -= w;
    }
    last as u8
}

/// A Poisson draw (0 for a non-positive rate).
pub fn poisson(rng: &mut impl Rng, rate: f64) -> u32 {
    if rate <= 0.0 {
        return 0;
    }
    Poisson::new(rate).map_or(0, |p| p.sample(rng) as u32)
}

const NAME_FIRST: [&str; 16] = [
    "Blue", "North", "Bright", "Iron", "Silver", "Rapid", "Green", "Clear", "Prime", "Summit", "Harbor",
    "Vivid", "Atlas", "Cedar", "Nova", "Pioneer",
];
const NAME_SECOND: [&str; 16] = [
    "Labs",
    "Systems",
    "Health",
    "Works",
    "Logistics",
    "Analytics",
    "Retail",
    "Partners",
    "Media",
    "Dynamics",
    "Foods",
    "Capital",
    "Robotics",
    "Learning",
    "Energy",
    "Studio",
];
const NAME_SUFFIX: [&str; 6] = ["Inc", "GmbH", "Ltd", "SA", "Co", "BV"];

/// The static profile of account `index`.
pub fn profile(seed: u64, index: u64) -> Profile {
    let mut rng = rng(seed, index, 1);
    let parent =
        (index > 20 && rng.random::<f64>() < 0.06).then(|| rng.random_range(0..index.min(index / 2 + 10)));
    let industry = match parent {
        // Subsidiaries share their parent's industry.
        Some(p) => profile_industry(seed, p),
        None => pick(&mut rng, INDUSTRIES.iter().map(|i| i.1)),
    };
    let size = LogNormal::new(40f64.ln(), 1.8).map_or(40.0, |d| d.sample(&mut rng));
    let employees = (size.round() as u64).clamp(1, 250_000);
    let per_employee = INDUSTRIES[industry as usize].2;
    let revenue =
        (employees as f64 * per_employee * LogNormal::new(0.0, 0.5).map_or(1.0, |d| d.sample(&mut rng))
            / 1000.0)
            .round()
            * 1000.0;
    let country = pick(&mut rng, COUNTRIES.iter().map(|c| c.2));
    let crm = if employees < 20 && rng.random::<f64>() < 0.3 {
        4
    } else {
        pick(&mut rng, CRMS.iter().map(|c| c.1))
    };
    let cloud = pick(&mut rng, CLOUDS.iter().map(|c| c.1));
    // Signups grow about 35% a year from 2019 to the end of 2025.
    let years = 7.0f64;
    let growth = 0.35f64;
    let u: f64 = rng.random();
    let t = (1.0 + u * ((growth * years).exp() - 1.0)).ln() / growth;
    let start = NaiveDate::from_ymd_opt(2019, 1, 1).expect("a valid date");
    let signup = (start + Duration::days((t * 365.0) as i64)).min(window_end() - Duration::days(3));
    let plan_weights: [f64; 4] = match employees {
        0..20 => [0.35, 0.45, 0.20, 0.0],
        20..200 => [0.10, 0.35, 0.50, 0.05],
        200..1000 => [0.0, 0.10, 0.55, 0.35],
        _ => [0.0, 0.0, 0.30, 0.70],
    };
    let plan = pick(&mut rng, plan_weights.iter().copied());
    let engagement = match rng.random::<f64>() {
        u if u < 0.2 => rng.random_range(0.03..0.3),
        u if u < 0.75 => rng.random_range(0.3..0.7),
        _ => rng.random_range(0.7..0.97),
    };
    let integrations = poisson(&mut rng, 0.5 + 3.0 * engagement + f64::from(plan));
    let uses_sso = rng.random::<f64>()
        < match plan {
            ENTERPRISE => 0.8,
            PRO => 0.3,
            _ => 0.05,
        };
    let need = pick(
        &mut rng,
        [1.0, 1.0, 1.0, if industry == 1 || industry == 2 { 2.5 } else { 0.5 }, 1.0, 1.0].into_iter(),
    );
    let pain = pick(&mut rng, [1.2, 1.0, 1.0, 0.8, 1.0, 0.7].into_iter());
    let emea = COUNTRIES[country as usize].1 == "EMEA";
    // Contacts are the product's users: about 5% of a company's staff, fewer in large ones.
    let contact_count = (1 + poisson(&mut rng, (0.05 * (employees as f64).powf(0.85)).min(250.0))).min(200);
    let contacts = (0..contact_count)
        .map(|k| {
            let role = if k == 0 && employees < 50 { 0 } else { pick(&mut rng, ROLES.iter().map(|r| r.1)) };
            let seniority = ROLES[role as usize].2;
            let decision_maker = rng.random::<f64>()
                < match seniority {
                    "c_level" | "vp" => 1.0,
                    "director" => 0.7,
                    "manager" => 0.3,
                    _ => 0.05,
                };
            let age_band = match seniority {
                "c_level" | "vp" => rng.random_range(2..5),
                "director" | "manager" => rng.random_range(1..4),
                _ => rng.random_range(0..3),
            };
            Contact {
                role,
                decision_maker,
                age_band,
                consent_email: rng.random::<f64>() < if emea { 0.45 } else { 0.7 },
                consent_updates: rng.random::<f64>() < 0.85,
                consent_profiling: rng.random::<f64>() < if emea { 0.3 } else { 0.6 },
                activity: rng.random_range(0.2..1.5),
                created_after_days: if k == 0 { 0 } else { rng.random_range(0..400) },
            }
        })
        .collect::<Vec<Contact>>();
    // A seat per user; the free plan has at most three.
    let seats = if plan == FREE { contact_count.min(3) } else { contact_count.max(u32::from(plan) * 2 - 1) };
    let name = format!(
        "{} {} {}",
        NAME_FIRST[rng.random_range(0..NAME_FIRST.len())],
        NAME_SECOND[rng.random_range(0..NAME_SECOND.len())],
        NAME_SUFFIX[rng.random_range(0..NAME_SUFFIX.len())]
    );
    Profile {
        industry,
        employees,
        revenue,
        country,
        crm,
        cloud,
        uses_sso,
        integrations,
        signup,
        parent,
        plan,
        seats,
        engagement,
        need,
        pain,
        contacts,
        name,
    }
}

/// The industry of account `index` (following its parents).
fn profile_industry(seed: u64, index: u64) -> u8 {
    // The same draws as `profile`, stopping at the industry.
    let mut rng = rng(seed, index, 1);
    let parent =
        (index > 20 && rng.random::<f64>() < 0.06).then(|| rng.random_range(0..index.min(index / 2 + 10)));
    match parent {
        Some(p) => profile_industry(seed, p),
        None => pick(&mut rng, INDUSTRIES.iter().map(|i| i.1)),
    }
}

/// The id of account `index`.
pub fn account_id(index: u64) -> String {
    format!("A{index:07}")
}

/// The id of contact `k` of account `index`.
pub fn contact_id(index: u64, k: usize) -> String {
    format!("C{index:07}-{k:03}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_deterministic_and_plausible() {
        let a = profile(7, 123);
        let b = profile(7, 123);
        assert_eq!(
            (a.employees, a.signup, a.plan, a.contacts.len()),
            (b.employees, b.signup, b.plan, b.contacts.len())
        );
        let profiles: Vec<Profile> = (0..3000).map(|i| profile(7, i)).collect();
        let mut sizes: Vec<u64> = profiles.iter().map(|p| p.employees).collect();
        sizes.sort_unstable();
        let median = sizes[sizes.len() / 2];
        assert!((20..=80).contains(&median), "median size {median}");
        assert!(sizes[sizes.len() - 1] > 20 * median, "a long tail of company sizes");
        for (i, p) in profiles.iter().enumerate() {
            if let Some(parent) = p.parent {
                assert!(parent < i as u64, "parents come first");
                assert_eq!(p.industry, profiles[parent as usize].industry, "subsidiaries share the industry");
            }
            assert!(p.signup <= window_end());
            assert!(!p.contacts.is_empty());
        }
        let subsidiaries = profiles.iter().filter(|p| p.parent.is_some()).count();
        assert!((100..=300).contains(&subsidiaries), "{subsidiaries} subsidiaries");
    }
}
