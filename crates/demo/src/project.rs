//! The demo project's `segmenta.toml` (a segment for every segmentation model) and README.

use crate::DemoOptions;

/// The demo's project file, with `{predictive}` and `{predictive_segments}` where
/// [`project_toml`] puts the predictive sections. `docs/models.md` walks through it; keep the
/// two in step.
const TEMPLATE: &str = r#"# The demo company: a B2B SaaS vendor with a few thousand accounts (or a million), their contacts
# and three years of events (2023-01-01 to 2025-12-31). Written by `segmenta demo`; every
# segmentation model has at least one segment below, named after the model.
# docs/models.md walks through them.

[project]
name = "demo-saas"
entity = "account"          # who the customer is: "contact" works too (see docs/models.md)
as_of = "2025-12-31"        # the last day of the demo data; `--as-of` overrides it

[entities.account]
source = "data/accounts.parquet"
key = "account_id"
hierarchy = "parent_account_id"   # subsidiaries point to their parent account

[entities.contact]
source = "data/contacts.parquet"
key = "contact_id"
parent = "account"

[events]
source = "data/events.parquet"
entity_key = "account_id"
time = "ts"
type = "event_type"

[traits]
# Behavioral: usage in time windows.
logins_30d = "count() where event_type = 'login' within 30d"
logins_180d = "count() where event_type = 'login' within 180d"
active_users_30d = "count_distinct(contact_id) where event_type = 'login' within 30d"
features_used_90d = "count_distinct(feature) where event_type = 'feature_used' within 90d"
advanced_uses_90d = "count() where event_type = 'feature_used' and feature in ('api', 'automation', 'sso', 'audit_log', 'ai_assistant') within 90d"
days_since_last_login = "days_since_last() where event_type = 'login'"
tenure_days = "days_since_first()"
tickets_30d = "count() where event_type = 'support_ticket' within 30d"
pricing_visits_30d = "count() where event_type = 'web_visit' and page = 'pricing' within 30d"
email_clicks_90d = "count() where event_type = 'email_click' within 90d"
# Value.
revenue_365d = "sum(amount) where event_type = 'invoice_paid' within 365d"
expansions_365d = "count() where event_type = 'subscription_expansion' within 365d"
churn_events = "count() where event_type = 'subscription_churn'"
# Psychographic and needs-based: survey answers.
nps_avg = "avg(nps) where event_type = 'survey_response' within 540d"
said_automation = "count() where event_type = 'survey_response' and need = 'automation'"
said_compliance = "count() where event_type = 'survey_response' and need = 'compliance'"
price_sensitive = "count() where event_type = 'survey_response' and pain_point = 'price' within 365d"
# Contacts' own traits, and account rollups over contacts (demographic).
contact_logins_30d = { entity = "contact", expr = "count() where event_type = 'login' within 30d" }
contact_clicks_90d = { entity = "contact", expr = "count() where event_type = 'email_click' within 90d" }
contacts = { over = "contact", expr = "count()" }
exec_engaged = { over = "contact", expr = "count() where seniority in ('c_level', 'vp') and (contact_logins_30d > 0 or contact_clicks_90d > 0)" }
dm_engaged_share = { over = "contact", expr = "share(contact_logins_30d > 0) where decision_maker" }
engineering_share = { over = "contact", expr = "share(department = 'engineering')" }
marketable_contacts = { over = "contact", expr = "count() where consent_email_marketing" }
seat_utilization = { over = "contact", expr = "share(contact_logins_30d > 0)" }
# Account hierarchies: rollups over subsidiaries.
subsidiaries = { over = "children", expr = "count()" }
subsidiaries_arr = { over = "descendants", expr = "sum(arr)" }

# Value-based: RFM over paid invoices in the last year.
[rfm]
purchase = "event_type = 'invoice_paid'"
amount = "amount"
within = "365d"

{predictive}# Scoring: fit (ideal customer profile) from rules, engagement from events with decay.
[scores.fit]
description = "Ideal customer profile fit, 0 to 100"
min = 0
max = 100
rules = [
  { rule = "industry in ('software', 'financial_services', 'healthcare')", points = 20 },
  { rule = "employees between 200 and 5000", points = 25 },
  { rule = "employees > 5000", points = 10 },
  { rule = "region in ('NA', 'EMEA')", points = 10 },
  { rule = "crm in ('salesforce', 'hubspot')", points = 15 },
  { rule = "cloud != 'on_prem'", points = 5 },
  { rule = "integrations_enabled >= 3", points = 15 },
  { rule = "employees < 10", points = -15 },
]

[scores.engagement]
description = "Recent engagement, 0 to 100; points halve every half-life"
min = 0
max = 100
events = [
  { where = "event_type = 'login'", points = 2, half_life = "14d", max = 40 },
  { where = "event_type = 'feature_used' and feature in ('api', 'automation', 'ai_assistant')", points = 3, half_life = "14d", max = 30 },
  { where = "event_type = 'email_click'", points = 5, half_life = "30d", max = 15 },
  { where = "event_type = 'web_visit' and page = 'pricing'", points = 8, half_life = "7d", max = 16 },
  { where = "event_type = 'support_ticket'", points = -2, within = "30d" },
]

# Schemes: every account is in exactly one tier; the first matching tier wins.
[schemes.company_size]
description = "Firmographic size bands"
otherwise = "smb"
tiers = [
  { name = "enterprise", rule = "employees >= 1000" },
  { name = "mid_market", rule = "employees >= 100" },
]

[schemes.value_tier]
description = "Value-based: ARR tiers"
otherwise = "non_paying"
tiers = [
  { name = "strategic", rule = "arr >= 50000" },
  { name = "growth", rule = "arr >= 10000" },
  { name = "starter", rule = "arr > 0" },
]

[schemes.lifecycle]
description = "Lifecycle stages"
otherwise = "active"
tiers = [
  { name = "churned", rule = "churn_events > 0 or (plan = 'free' and (days_since_last_login > 90 or days_since_last_login is null))", description = "cancelled, or a free account gone quiet" },
  { name = "new", rule = "tenure_days <= 30", description = "first activity in the last 30 days" },
  { name = "onboarding", rule = "tenure_days <= 120", description = "in the first four months" },
  { name = "at_risk", rule = "logins_30d = 0 or tickets_30d >= 3 or nps_avg <= 5", description = "silent, struggling or unhappy" },
  { name = "adopted", rule = "features_used_90d >= 4 and logins_30d >= 5", description = "broad, regular use" },
]

# Firmographic / a priori.
[segments.firmographic_enterprise_healthcare]
rule = "industry = 'healthcare' and employees >= 1000"
description = "Large healthcare accounts"

[segments.firmographic_smb_software]
rule = "in_segment('company_size.smb') and industry = 'software'"
description = "Small software companies"

# Demographic (over the account's contacts).
[segments.demographic_exec_sponsor]
rule = "exec_engaged >= 1"
description = "An engaged C-level or VP contact"

[segments.demographic_developer_led]
rule = "engineering_share >= 0.5 and contacts >= 3"
description = "Most contacts are engineers"

# Geographic.
[segments.geographic_dach]
rule = "country in ('DE', 'AT', 'CH')"
description = "German-speaking Europe"

[segments.geographic_apac_growth]
rule = "region = 'APAC' and in_segment('value_tier.growth')"
description = "Growth-tier accounts in APAC"

# Psychographic and needs-based (survey answers).
[segments.psychographic_promoters]
rule = "nps_avg >= 9"
description = "Average NPS answer of 9 or 10"

[segments.psychographic_detractors]
rule = "nps_avg <= 6"
description = "Average NPS answer of 6 or less"

[segments.needs_automation]
rule = "said_automation > 0"
description = "Said automation is their primary need"

[segments.needs_compliance_regulated]
rule = "said_compliance > 0 and industry in ('financial_services', 'healthcare')"
description = "Regulated industries that need compliance"

# Technographic.
[segments.technographic_salesforce_aws]
rule = "crm = 'salesforce' and cloud = 'aws'"
description = "Salesforce on AWS"

[segments.technographic_integration_heavy]
rule = "integrations_enabled >= 6"
description = "Six or more integrations enabled"

# Behavioral.
[segments.behavioral_power_users]
rule = "logins_30d >= 15 and features_used_90d >= 6"
description = "Frequent, broad use"
owner = "customer-success"
channel = "in-app"

[segments.behavioral_struggling_onboarding]
rule = "tenure_days <= 120 and (logins_30d < 3 or tickets_30d >= 2)"
description = "New accounts that barely log in or keep filing tickets"

# Value-based (RFM segments come from [rfm]; ARR tiers from the value_tier scheme).
[segments.value_top_spenders]
rule = "revenue_365d >= 50000"
description = "Paid 50k or more in the last year"
owner = "account-management"
channel = "sales"

{predictive_segments}# Opportunity.
[segments.opportunity_near_plan_limits]
rule = "plan != 'free' and contacts >= 3 and seat_utilization >= 0.8"
description = "Paid accounts whose users (a seat each) are nearly all active"

[segments.opportunity_upsell]
rule = "plan in ('free', 'starter', 'pro') and pricing_visits_30d >= 1 and engagement >= 10"
description = "Engaged accounts looking at pricing"
owner = "growth-marketing"
channel = "email"

# Scores as segments.
[segments.score_ideal_fit]
rule = "fit >= 70"
description = "Ideal customer profile"

[segments.score_hot]
rule = "engagement >= 50"
description = "Highly engaged right now"

# Macro segment with micro segments inside it.
[segments.enterprise_customers]
rule = "employees >= 1000 and arr > 0"
description = "Macro: paying enterprise accounts"

[segments.enterprise_expansion_ready]
parent = "enterprise_customers"
rule = "engagement >= 20 and (pricing_visits_30d >= 1 or expansions_365d >= 1)"
description = "Micro: engaged, looking to grow"

[segments.enterprise_at_risk]
parent = "enterprise_customers"
rule = "in_segment('lifecycle.at_risk')"
description = "Micro: at risk"

# Account hierarchies.
[segments.corporate_families]
rule = "subsidiaries >= 1"
description = "Accounts with subsidiaries"

# A static list (lists/strategic_accounts.csv) and a rule on top of it.
[segments.strategic_accounts]
static = "lists/strategic_accounts.csv"
description = "Hand-picked strategic accounts"

[segments.marketable_non_strategic]
rule = "marketable_contacts >= 1 and not in_segment('strategic_accounts')"
description = "Accounts we may e-mail, outside the strategic list"

# Movement: who moved since the previous snapshot (`segmenta backfill`, then history).
[movements.adopted_to_at_risk]
from = "lifecycle.adopted"
to = "lifecycle.at_risk"
description = "Was adopted a snapshot ago, at risk now: a CSM call this week"
owner = "customer-success"
channel = "cs-call"

[movements.became_churned]
to = "lifecycle.churned"
description = "Churned since the previous snapshot"
owner = "customer-success"

# KPIs per segment (`segmenta kpis`): trailing revenue, and expansion within 90 days as the goal.
[kpis]
revenue = "revenue_365d"
goal = "event_type = 'subscription_expansion'"
goal_window = "90d"

# Is each segment worth acting on (`segmenta quality`)?
[quality]
reachable = "email is not null and consent_email_marketing"
min_size = 20

# Customer-success coverage (`segmenta coverage`): engagement models by ARR, and the roster.
[coverage]
roster = "data/csms.csv"
revenue = "arr"

[[coverage.models]]
name = "high_touch"
rule = "arr >= 50000"
accounts_per_csm = 20

[[coverage.models]]
name = "low_touch"
rule = "arr >= 5000"
accounts_per_csm = 150

[[coverage.models]]
name = "tech_touch"
rule = "arr > 0"
accounts_per_csm = 2000
"#;

/// `[coverage]`: the ARR from which an account is high touch.
pub const HIGH_TOUCH_ARR: f64 = 50_000.0;
/// `[coverage]`: the ARR from which an account is low touch.
pub const LOW_TOUCH_ARR: f64 = 5_000.0;
/// `[coverage]`: accounts per high-touch CSM.
pub const HIGH_TOUCH_RATIO: u64 = 20;
/// `[coverage]`: accounts per low-touch CSM.
pub const LOW_TOUCH_RATIO: u64 = 150;
/// `[coverage]`: accounts per tech-touch CSM.
pub const TECH_TOUCH_RATIO: u64 = 2000;

/// The demo's predictive sections: CLV and churn.
const PREDICTIVE: &str = r#"# Predictive: customer lifetime value of one-off orders (add-ons, services) with BG/NBD and
# Gamma-Gamma; adds clv_frequency, clv_recency, clv_t, clv_monetary, clv_value, p_alive,
# expected_purchases_90d, expected_spend, clv_12m and the segment clv.diamonds_in_the_rough.
[clv]
purchase = "event_type = 'order'"
amount = "amount"
time_unit = "week"
horizon = "90d"
months = 12
discount_rate = 0.01

# Predictive: churn propensity of subscriptions. Trained on the traits as of as_of - 180d
# (who cancelled in the next 90 days), checked on those as of as_of - 90d; adds churn_risk and
# churn_drivers.
[churn]
churned = "event_type = 'subscription_churn'"
window = "90d"
features = ["logins_30d", "logins_180d", "active_users_30d", "features_used_90d", "days_since_last_login", "tenure_days", "tickets_30d", "nps_avg", "seat_utilization", "expansions_365d", "employees", "plan"]

"#;

/// The segments on the predictive traits.
const PREDICTIVE_SEGMENTS: &str = r#"# Predictive (clv.diamonds_in_the_rough comes from [clv]).
[segments.value_likely_to_order]
rule = "p_alive >= 0.8 and expected_purchases_90d >= 1"
description = "Still ordering add-ons and services, and expected to order again within 90 days"

[segments.lifecycle_churn_risk]
rule = "plan != 'free' and churn_risk >= 0.1"
description = "Paying accounts the churn model gives a 10% or higher chance of cancelling within 90 days"

"#;

/// Below this many accounts the demo leaves CLV and churn out: a few hundred accounts are too
/// few buyers for Gamma-Gamma (its fit runs off to a boundary) and too few churns for a holdout.
pub const PREDICTIVE_MIN_ACCOUNTS: u64 = 1000;

/// The first line of every demo project file (how `segmenta demo` recognises its own folders).
pub fn first_line() -> &'static str {
    TEMPLATE.lines().next().unwrap_or_default()
}

/// The demo's project file for `accounts` accounts.
pub fn project_toml(accounts: u64) -> String {
    let (predictive, segments) = if accounts >= PREDICTIVE_MIN_ACCOUNTS {
        (PREDICTIVE.to_string(), PREDICTIVE_SEGMENTS.to_string())
    } else {
        (
            format!(
                "# Predictive traits ([clv], [churn]) are left out below {PREDICTIVE_MIN_ACCOUNTS} accounts: too few\n\
                 # buyers and churns to fit them. See docs/predictive.md.\n\n"
            ),
            String::new(),
        )
    };
    TEMPLATE.replace("{predictive}", &predictive).replace("{predictive_segments}", &segments)
}

/// The demo project's README.
pub fn readme(options: &DemoOptions, contacts: u64, events: u64) -> String {
    format!(
        r#"# demo-saas

A synthetic B2B SaaS company written by `segmenta demo` (seed {seed}): {accounts} accounts,
{contacts} contacts and {events} events from 2023-01-01 to 2025-12-31. The same seed and size
always give the same data.

- `data/accounts.parquet`: industry, employees, annual revenue, country and region, plan, seats,
  MRR and ARR, signup date, parent account (subsidiaries), CRM, cloud, integrations, SSO.
- `data/contacts.parquet`: role, seniority, department, decision maker, age band, consents.
- `data/events.parquet`: logins, feature use, paid invoices, support tickets, e-mail opens and
  clicks, website visits, survey answers (primary need, pain point, NPS) and subscription
  changes (new, expansion, contraction, churn); churn depends on engagement; one-off orders of
  add-ons and services, drawn as the BG/NBD and Gamma-Gamma models assume.
- `lists/strategic_accounts.csv`: a static list.
- `segmenta.toml`: traits, RFM, scores, schemes, a segment for every segmentation model, and
  (from {min} accounts) CLV and churn propensity.

- `data/csms.csv`: the customer-success roster that `[coverage]` assigns accounts to.

Run it with `segmenta run --project .` (it evaluates as of 2025-12-31) and read
`docs/models.md` in the segmenta repository for a walk through the models.

Watch the segments over the year, one snapshot per month end:

```sh
segmenta backfill --project . --from 2025-01-31 --to 2025-12-31 --every 1mo
segmenta history lifecycle.at_risk --project .          # size, entered, exited per month
segmenta history adopted_to_at_risk --project .         # a movement segment
segmenta transitions rfm --from 2025-06-30 --to 2025-12-31 --project .
segmenta transitions lifecycle --from 2025-06-30 --to 2025-12-31 --project .
segmenta kpis --project . --compare 2025-06-30          # retention, GRR, NRR, acquisition
segmenta kpis --project . --at 2025-06-30 --by owner    # goal conversion in the 90 days after
segmenta quality --project .                            # measurable, accessible, substantial, ...
segmenta coverage --project .                           # CSMs needed per engagement model
```
"#,
        seed = options.seed,
        accounts = options.accounts,
        min = PREDICTIVE_MIN_ACCOUNTS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The roster is sized from the constants; the project file must say the same.
    #[test]
    fn the_coverage_section_matches_the_roster_constants() {
        let toml = project_toml(2000);
        for (model, arr, ratio) in [
            ("high_touch", Some(HIGH_TOUCH_ARR), HIGH_TOUCH_RATIO),
            ("low_touch", Some(LOW_TOUCH_ARR), LOW_TOUCH_RATIO),
            ("tech_touch", None, TECH_TOUCH_RATIO),
        ] {
            let rule = match arr {
                Some(arr) => format!("rule = \"arr >= {arr}\""),
                None => "rule = \"arr > 0\"".to_string(),
            };
            let block = format!("name = \"{model}\"\n{rule}\naccounts_per_csm = {ratio}\n");
            assert!(toml.contains(&block), "{block}");
        }
    }
}
