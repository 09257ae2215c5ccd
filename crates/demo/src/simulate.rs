//! Month-by-month simulation of each account: engagement drifts, contacts log in and use
//! features, invoices are paid, plans are bought, expanded, contracted and churned (churn
//! depends on engagement), e-mails are opened, the website is visited and surveys answered.
//!
//! Each (account, month) draws from its own seeded generator, so months can be simulated for
//! all accounts in parallel and the result does not depend on the thread count.

use chrono::{Datelike, Duration, NaiveDate};
use rand::Rng;
use rand_distr::{Beta, Distribution, Exp, Gamma, Normal};

use crate::model::{
    self, ADVANCED_FEATURES, COUNTRIES, ENTERPRISE, FEATURES, FREE, NEEDS, PAGES, PAINS, PLANS, PRICING_PAGE,
    Profile, STARTER, poisson,
};

/// Event types, in the order of [`EventType::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum EventType {
    /// A contact logged in.
    Login,
    /// A contact used a feature.
    FeatureUsed,
    /// An invoice was paid (`amount`).
    InvoicePaid,
    /// A support ticket was opened.
    SupportTicket,
    /// A marketing e-mail was opened.
    EmailOpen,
    /// A link in a marketing e-mail was clicked.
    EmailClick,
    /// A page of the website was visited.
    WebVisit,
    /// A survey was answered (`need`, `pain_point`, `nps`).
    SurveyResponse,
    /// A paid subscription started (`plan`, `amount` = MRR).
    SubscriptionNew,
    /// Seats were added (`amount` = added MRR).
    SubscriptionExpansion,
    /// Seats were removed (`amount` = removed MRR).
    SubscriptionContraction,
    /// The subscription ended (`amount` = lost MRR).
    SubscriptionChurn,
    /// A one-off order of add-ons or services (`amount`): repeat purchases as BG/NBD and
    /// Gamma-Gamma describe them (see [`OrderHabit`]).
    Order,
}

impl EventType {
    /// The event type as written in the data.
    pub fn name(self) -> &'static str {
        match self {
            EventType::Login => "login",
            EventType::FeatureUsed => "feature_used",
            EventType::InvoicePaid => "invoice_paid",
            EventType::SupportTicket => "support_ticket",
            EventType::EmailOpen => "email_open",
            EventType::EmailClick => "email_click",
            EventType::WebVisit => "web_visit",
            EventType::SurveyResponse => "survey_response",
            EventType::SubscriptionNew => "subscription_new",
            EventType::SubscriptionExpansion => "subscription_expansion",
            EventType::SubscriptionContraction => "subscription_contraction",
            EventType::SubscriptionChurn => "subscription_churn",
            EventType::Order => "order",
        }
    }
}

/// One event, compactly. `u8::MAX` marks an absent index.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// Microseconds since the epoch, UTC.
    pub ts: i64,
    /// The account's index.
    pub account: u32,
    /// The contact's number within the account, or `u8::MAX`.
    pub contact: u8,
    /// What happened.
    pub kind: EventType,
    /// Index in [`FEATURES`].
    pub feature: u8,
    /// Index in [`PAGES`].
    pub page: u8,
    /// Index in [`crate::model::PLANS`].
    pub plan: u8,
    /// Index in [`NEEDS`].
    pub need: u8,
    /// Index in [`PAINS`].
    pub pain: u8,
    /// 0 to 10, or `u8::MAX`.
    pub nps: u8,
    /// Money, or NaN.
    pub amount: f64,
}

impl Event {
    fn new(ts: i64, account: u32, kind: EventType) -> Event {
        Event {
            ts,
            account,
            contact: u8::MAX,
            kind,
            feature: u8::MAX,
            page: u8::MAX,
            plan: u8::MAX,
            need: u8::MAX,
            pain: u8::MAX,
            nps: u8::MAX,
            amount: f64::NAN,
        }
    }
}

/// An account's state between months.
#[derive(Debug, Clone)]
pub struct State {
    /// The account's index.
    pub index: u64,
    /// Its static profile.
    pub profile: Profile,
    /// Current plan.
    pub plan: u8,
    /// Current seats.
    pub seats: u32,
    /// Current engagement, 0 to 1.
    pub engagement: f64,
    /// The month the subscription ended, if it did (paid plans churn; free plans go dormant).
    pub churned: Option<NaiveDate>,
    /// Contacts active last month.
    pub active_last_month: u32,
    /// How the account orders add-ons and services.
    pub orders: OrderHabit,
}

/// One-off orders, drawn as the models of Fader, Hardie & Lee assume, so that CLV has a known
/// truth to recover (except that an account whose subscription ends stops ordering too): while
/// "alive", an account orders as a Poisson process of rate lambda ~
/// Gamma(0.5, 1/4 per week); after each order it stops ordering for good with probability
/// p ~ Beta(0.7, 2.5); the amount of an order is Gamma(6, nu) with nu ~ Gamma(4, 300) per account
/// (mean 600).
#[derive(Debug, Clone)]
pub struct OrderHabit {
    /// Orders per day while alive.
    pub rate_per_day: f64,
    /// Probability of stopping after an order.
    pub dropout: f64,
    /// The rate nu of the account's order amounts.
    pub spend_rate: f64,
    /// Still ordering.
    pub alive: bool,
}

/// The parameters of [`OrderHabit`]: BG/NBD r, alpha (weeks), a, b; Gamma-Gamma p, q, gamma.
pub const ORDER_TRUTH: [f64; 7] = [0.5, 4.0, 0.7, 2.5, 6.0, 4.0, 300.0];

impl OrderHabit {
    fn new(seed: u64, index: u64) -> OrderHabit {
        let [r, alpha, a, b, _, q, gamma] = ORDER_TRUTH;
        let mut rng = model::rng(seed, index, 77);
        let weekly = Gamma::new(r, 1.0 / alpha).map_or(0.1, |g| g.sample(&mut rng));
        let dropout = Beta::new(a, b).map_or(0.2, |d| d.sample(&mut rng));
        let spend_rate = Gamma::new(q, 1.0 / gamma).map_or(0.01, |g| g.sample(&mut rng));
        OrderHabit { rate_per_day: weekly / 7.0, dropout, spend_rate, alive: true }
    }
}

impl State {
    /// The state at the start of the event window (or at signup).
    pub fn new(seed: u64, index: u64) -> State {
        let profile = model::profile(seed, index);
        State {
            index,
            plan: profile.plan,
            seats: profile.seats,
            engagement: profile.engagement,
            churned: None,
            active_last_month: 0,
            orders: OrderHabit::new(seed, index),
            profile,
        }
    }

    /// Monthly recurring revenue now (0 on the free plan or after churn).
    pub fn mrr(&self) -> f64 {
        if self.churned.is_some() && self.plan != FREE {
            return 0.0;
        }
        f64::from(self.seats) * PLANS[self.plan as usize].1
    }
}

/// How active people are in each calendar month (summer and year-end dips).
const SEASON: [f64; 12] = [0.95, 1.0, 1.05, 1.0, 1.0, 0.95, 0.85, 0.8, 1.0, 1.05, 1.05, 0.85];

/// The first day of month `m` of the window.
pub fn month_start(m: u32) -> NaiveDate {
    let start = model::window_start();
    let months = start.month0() + m;
    NaiveDate::from_ymd_opt(start.year() + (months / 12) as i32, months % 12 + 1, 1).expect("a valid date")
}

fn days_in_month(first: NaiveDate) -> i64 {
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    };
    next.map_or(30, |n| (n - first).num_days())
}

/// A time in the month: a day (from `first_day` on), weekdays preferred when `workday`, during
/// local business hours, as UTC microseconds.
fn time_in_month(
    rng: &mut impl Rng,
    first: NaiveDate,
    first_day: i64,
    utc_offset: i64,
    workday: bool,
) -> i64 {
    let days = days_in_month(first);
    let mut day = first + Duration::days(rng.random_range(first_day.min(days - 1)..days));
    for _ in 0..2 {
        if !workday || day.weekday().num_days_from_monday() < 5 || rng.random::<f64>() < 0.2 {
            break;
        }
        day = first + Duration::days(rng.random_range(first_day.min(days - 1)..days));
    }
    let hour = Normal::<f64>::new(13.0, 3.0).map_or(13.0, |n| n.sample(rng)).clamp(0.0, 23.99);
    let seconds = (hour * 3600.0) as i64 + rng.random_range(0..60) - utc_offset * 3600;
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp();
    // Keep the event inside the window even when the time zone shift crosses its edges.
    let end = model::window_end().and_hms_opt(23, 59, 59).expect("valid").and_utc().timestamp();
    (midnight + seconds).min(end) * 1_000_000 + rng.random_range(0..1_000_000)
}

/// Simulates month `m` for one account, appending its events.
pub fn month(seed: u64, m: u32, state: &mut State, out: &mut Vec<Event>) {
    let first = month_start(m);
    let days = days_in_month(first);
    let last = first + Duration::days(days - 1);
    let profile = &state.profile;
    if profile.signup > last || state.churned.is_some() {
        return;
    }
    let mut rng = model::rng(seed, state.index, 1000 + u64::from(m));
    // Events that follow another (a feature used after a login) stay inside the window.
    let last_micro = model::window_end().and_hms_opt(23, 59, 59).expect("valid").and_utc().timestamp_micros();
    let account = state.index as u32;
    let offset = COUNTRIES[profile.country as usize].3;
    let season = SEASON[first.month0() as usize];
    let signup_month = profile.signup >= first;
    let first_day = if signup_month { (profile.signup - first).num_days() } else { 0 };
    let age_months =
        (first.year() - profile.signup.year()) * 12 + first.month() as i32 - profile.signup.month() as i32;
    let onboarding = age_months < 3;

    if signup_month && state.plan != FREE {
        let mut e = Event::new(
            time_in_month(&mut rng, first, first_day, offset, true),
            account,
            EventType::SubscriptionNew,
        );
        e.plan = state.plan;
        e.amount = state.mrr();
        out.push(e);
    }

    // Engagement drifts; a poor start drags it down, a good one lifts it.
    let drift = if state.engagement < 0.3 { -0.012 } else { 0.004 };
    let noise = Normal::new(0.0, 0.05).map_or(0.0, |n| n.sample(&mut rng));
    state.engagement = (state.engagement + drift + noise).clamp(0.01, 0.99);
    let ramp = if onboarding { 0.4 + 0.25 * age_months.max(0) as f64 } else { 1.0 };
    let e = state.engagement * ramp;

    // Contacts: who is active, logins and feature use.
    let mut active = 0;
    for (k, contact) in profile.contacts.iter().enumerate() {
        let created = profile.signup + Duration::days(contact.created_after_days);
        if created > last {
            continue;
        }
        let contact_first_day = if created >= first { (created - first).num_days() } else { first_day };
        if rng.random::<f64>() < (e * contact.activity).min(0.98) {
            active += 1;
            let logins = poisson(&mut rng, (0.4 + 1.4 * e) * season);
            for _ in 0..logins {
                let ts = time_in_month(&mut rng, first, contact_first_day, offset, true);
                let mut login = Event::new(ts, account, EventType::Login);
                login.contact = k as u8;
                out.push(login);
                for _ in 0..poisson(&mut rng, 0.45) {
                    let advanced = rng.random::<f64>() < 0.15 + 0.5 * e + 0.1 * f64::from(state.plan);
                    let feature = if advanced {
                        rng.random_range(ADVANCED_FEATURES..FEATURES.len())
                    } else {
                        rng.random_range(0..ADVANCED_FEATURES)
                    };
                    let at = (ts + rng.random_range(1..1_800_000_000)).min(last_micro);
                    let mut used = Event::new(at, account, EventType::FeatureUsed);
                    used.contact = k as u8;
                    used.feature = feature as u8;
                    out.push(used);
                }
            }
        }
        // Marketing e-mail to contacts who agreed to it.
        if contact.consent_email && rng.random::<f64>() < 0.85 && rng.random::<f64>() < 0.25 + 0.3 * e {
            let ts = time_in_month(&mut rng, first, contact_first_day, offset, true);
            let mut open = Event::new(ts, account, EventType::EmailOpen);
            open.contact = k as u8;
            out.push(open);
            if rng.random::<f64>() < 0.2 + 0.2 * e {
                let at = (ts + rng.random_range(1..600_000_000)).min(last_micro);
                let mut click = Event::new(at, account, EventType::EmailClick);
                click.contact = k as u8;
                out.push(click);
            }
        }
    }
    let near_limit = state.plan != FREE && f64::from(active) >= 0.8 * f64::from(state.seats);
    state.active_last_month = active;

    // The website: pricing is visited more when near the plan's limits or on the free plan.
    for _ in 0..poisson(&mut rng, (0.25 + 0.6 * e) * season) {
        let pricing_bias = if near_limit || state.plan == FREE { 3.0 } else { 0.6 };
        let mut weights: [f64; PAGES.len()] = [1.5, 0.0, 2.0, 1.2, 0.8, 0.5, 0.5, 0.2];
        weights[PRICING_PAGE as usize] = pricing_bias;
        let page = model::pick(&mut rng, weights.into_iter());
        let mut visit = Event::new(
            time_in_month(&mut rng, first, first_day, offset, false),
            account,
            EventType::WebVisit,
        );
        visit.page = page;
        out.push(visit);
    }

    // Support tickets: more while onboarding and when struggling.
    let ticket_rate = 0.05 + 0.25 * (1.0 - e) + if onboarding { 0.3 } else { 0.0 };
    for _ in 0..poisson(&mut rng, ticket_rate * (0.5 + f64::from(active.min(10)) / 5.0)) {
        let mut ticket = Event::new(
            time_in_month(&mut rng, first, first_day, offset, true),
            account,
            EventType::SupportTicket,
        );
        ticket.contact = rng.random_range(0..profile.contacts.len()) as u8;
        out.push(ticket);
    }

    // Surveys: needs, pain points and NPS (which follows engagement).
    if rng.random::<f64>() < 0.06 {
        let mut answer = Event::new(
            time_in_month(&mut rng, first, first_day, offset, true),
            account,
            EventType::SurveyResponse,
        );
        answer.contact = rng.random_range(0..profile.contacts.len()) as u8;
        answer.need =
            if rng.random::<f64>() < 0.7 { profile.need } else { rng.random_range(0..NEEDS.len()) as u8 };
        answer.pain = if e < 0.3 && rng.random::<f64>() < 0.5 {
            4
        } else if rng.random::<f64>() < 0.6 {
            profile.pain
        } else {
            rng.random_range(0..PAINS.len()) as u8
        };
        let nps = 3.0 + 7.0 * state.engagement + Normal::new(0.0, 1.5).map_or(0.0, |n| n.sample(&mut rng));
        answer.nps = nps.round().clamp(0.0, 10.0) as u8;
        out.push(answer);
    }

    // Orders of add-ons and services, from the signup day on.
    if state.orders.alive && state.orders.rate_per_day > 0.0 {
        let mut day = first_day as f64;
        let start = first.and_hms_opt(0, 0, 0).expect("valid").and_utc().timestamp_micros();
        // A stream of its own, so that orders leave every other event as it was.
        let mut rng = model::rng(seed, state.index, 5000 + u64::from(m));
        let waiting = Exp::new(state.orders.rate_per_day).ok();
        while let Some(wait) = waiting.map(|w| w.sample(&mut rng)) {
            day += wait;
            if day >= days as f64 {
                break;
            }
            let mut order =
                Event::new((start + (day * 86_400e6) as i64).min(last_micro), account, EventType::Order);
            let [_, _, _, _, p, _, _] = ORDER_TRUTH;
            order.amount =
                Gamma::new(p, 1.0 / state.orders.spend_rate).map_or(600.0, |g| g.sample(&mut rng)).round();
            out.push(order);
            if rng.random::<f64>() < state.orders.dropout {
                state.orders.alive = false;
                break;
            }
        }
    }

    // Money: invoices on the signup day of month (yearly for enterprise), plan changes, churn.
    if state.plan != FREE {
        let billing_day = (i64::from(profile.signup.day()) - 1).min(days - 1).max(first_day);
        let yearly = state.plan == ENTERPRISE;
        if !yearly || first.month() == profile.signup.month() {
            // Billing runs early in the morning, UTC.
            let ts = first.and_hms_opt(0, 0, 0).expect("valid").and_utc().timestamp_micros()
                + (billing_day * 86_400 + 6 * 3600 + rng.random_range(0..7200)) * 1_000_000;
            let mut invoice = Event::new(ts, account, EventType::InvoicePaid);
            invoice.amount = if yearly { 12.0 * state.mrr() } else { state.mrr() };
            invoice.plan = state.plan;
            out.push(invoice);
        }
        let change_ts =
            |rng: &mut rand_chacha::ChaCha8Rng| time_in_month(rng, first, first_day, offset, true);
        if (near_limit && rng.random::<f64>() < 0.35) || rng.random::<f64>() < 0.015 * e {
            let before = state.mrr();
            state.seats += (f64::from(state.seats) * rng.random_range(0.1..0.4)).ceil() as u32;
            let mut expansion = Event::new(change_ts(&mut rng), account, EventType::SubscriptionExpansion);
            expansion.amount = state.mrr() - before;
            expansion.plan = state.plan;
            out.push(expansion);
        } else if state.seats > 3 && rng.random::<f64>() < 0.03 * (1.0 - e).powi(2) {
            let before = state.mrr();
            state.seats = (f64::from(state.seats) * rng.random_range(0.6..0.9)).floor().max(3.0) as u32;
            let mut contraction =
                Event::new(change_ts(&mut rng), account, EventType::SubscriptionContraction);
            contraction.amount = before - state.mrr();
            contraction.plan = state.plan;
            out.push(contraction);
        }
        // Churn depends on engagement (and is rare while the contract is young).
        let hazard = 0.003 + 0.06 * (1.0 - state.engagement).powi(3);
        if !signup_month && rng.random::<f64>() < hazard {
            let mut churn = Event::new(change_ts(&mut rng), account, EventType::SubscriptionChurn);
            churn.amount = state.mrr();
            churn.plan = state.plan;
            out.push(churn);
            state.churned = Some(first);
        }
    } else {
        // Free accounts upgrade when engaged, or go dormant when not.
        if !signup_month && rng.random::<f64>() < 0.04 * e {
            state.plan = STARTER;
            state.seats = state.seats.max(3);
            let mut upgrade = Event::new(
                time_in_month(&mut rng, first, first_day, offset, true),
                account,
                EventType::SubscriptionNew,
            );
            upgrade.plan = state.plan;
            upgrade.amount = state.mrr();
            out.push(upgrade);
        } else if !signup_month && rng.random::<f64>() < 0.02 + 0.05 * (1.0 - state.engagement).powi(2) {
            state.churned = Some(first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_times() {
        assert_eq!(month_start(0), NaiveDate::from_ymd_opt(2023, 1, 1).expect("valid"));
        assert_eq!(month_start(35), NaiveDate::from_ymd_opt(2025, 12, 1).expect("valid"));
        assert_eq!(days_in_month(month_start(13)), 29);
        let mut rng = model::rng(1, 2, 3);
        for _ in 0..1000 {
            let first = month_start(5);
            let ts = time_in_month(&mut rng, first, 10, -5, true);
            let start = (first + Duration::days(10))
                .and_hms_opt(0, 0, 0)
                .expect("valid")
                .and_utc()
                .timestamp_micros();
            assert!(ts >= start - 86_400_000_000 && ts < start + 22 * 86_400_000_000, "{ts}");
        }
    }

    #[test]
    fn churn_follows_engagement() {
        // Over the whole window, accounts that start disengaged churn more often.
        let (mut low, mut low_churned, mut high, mut high_churned) = (0, 0, 0, 0);
        let mut events = Vec::new();
        for index in 0..1500 {
            let mut state = State::new(11, index);
            if state.plan == FREE {
                continue;
            }
            let start = state.engagement;
            for m in 0..model::MONTHS {
                month(11, m, &mut state, &mut events);
            }
            if start < 0.3 {
                low += 1;
                low_churned += u32::from(state.churned.is_some());
            } else if start > 0.7 {
                high += 1;
                high_churned += u32::from(state.churned.is_some());
            }
        }
        let (low_rate, high_rate) =
            (f64::from(low_churned) / f64::from(low), f64::from(high_churned) / f64::from(high));
        assert!(low_rate > 2.0 * high_rate, "churn {low_rate:.2} (low engagement) vs {high_rate:.2} (high)");
        assert!(events.iter().all(|e| {
            e.ts < model::window_end()
                .succ_opt()
                .expect("valid")
                .and_hms_opt(0, 0, 0)
                .expect("valid")
                .and_utc()
                .timestamp_micros()
        }));
    }
}
