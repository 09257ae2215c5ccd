//! The CDNOW reproduction (issue #6): summaries built with `summarize` from the raw
//! transactions, calibration end 1997-09-30, weeks; the fits must reproduce Fader, Hardie & Lee
//! (2005) and Fader & Hardie's Gamma-Gamma note within 1%.

use segmenta_ml::clv::{self, CustomerSummary, FitOptions, TimeUnit};

use super::{cdnow_summaries, relative_difference};

fn check_within(name: &str, got: f64, paper: f64, tolerance: f64) {
    let difference = relative_difference(got, paper);
    assert!(
        difference <= tolerance,
        "{name}: got {got}, the paper has {paper} (relative difference {difference:.2e})"
    );
}

#[test]
fn summaries_match_the_paper_data() {
    let summaries: Vec<CustomerSummary> = cdnow_summaries(TimeUnit::Week).into_values().collect();
    assert_eq!(summaries.len(), 2357);
    let repeat_purchases: f64 = summaries.iter().map(|s| s.frequency()).sum();
    assert_eq!(repeat_purchases, 2457.0);
    assert_eq!(summaries.iter().filter(|s| s.frequency() > 0.0).count(), 946);
    let max_t = summaries.iter().map(|s| s.t()).fold(0.0, f64::max);
    assert_eq!(max_t, 272.0 / 7.0);
}

#[test]
fn reproduces_the_paper_parameters_issue_6() {
    let summaries: Vec<CustomerSummary> = cdnow_summaries(TimeUnit::Week).into_values().collect();
    let fit = clv::fit(&summaries, TimeUnit::Week, &FitOptions::default()).expect("CDNOW fits");

    let bg = &fit.bg_nbd;
    assert!(bg.converged);
    check_within("r", bg.model.r(), 0.243, 0.01);
    check_within("alpha", bg.model.alpha(), 4.414, 0.01);
    check_within("a", bg.model.a(), 0.793, 0.01);
    check_within("b", bg.model.b(), 2.426, 0.01);
    check_within("log-likelihood", bg.log_likelihood, -9582.4, 0.01);
    // The paper rounds to one decimal; we are much closer than 1%.
    assert!((bg.log_likelihood + 9582.4).abs() < 0.05, "log-likelihood {}", bg.log_likelihood);
    assert_eq!(bg.customers, 2357);
    assert!(bg.patterns < bg.customers, "identical (x, t_x, T) are collapsed");

    let gg = &fit.gamma_gamma;
    assert!(gg.converged);
    check_within("p", gg.model.p(), 6.25, 0.01);
    check_within("q", gg.model.q(), 3.74, 0.01);
    check_within("gamma", gg.model.gamma(), 15.44, 0.01);
    assert_eq!((gg.customers, gg.excluded_one_time, gg.excluded_unusable_monetary), (946, 1411, 0));
}

#[test]
fn the_fit_does_not_depend_on_the_time_unit() {
    // In days, alpha scales by 7 and the log-likelihood shifts by -sum(x) ln 7; the other
    // parameters are unchanged.
    let weeks: Vec<CustomerSummary> = cdnow_summaries(TimeUnit::Week).into_values().collect();
    let days: Vec<CustomerSummary> = cdnow_summaries(TimeUnit::Day).into_values().collect();
    let options = FitOptions::default();
    let in_weeks = clv::BgNbd::fit(&weeks, &options).expect("fits in weeks");
    let in_days = clv::BgNbd::fit(&days, &options).expect("fits in days");
    check_within("r", in_days.model.r(), in_weeks.model.r(), 1e-5);
    check_within("alpha", in_days.model.alpha(), 7.0 * in_weeks.model.alpha(), 1e-5);
    check_within("a", in_days.model.a(), in_weeks.model.a(), 1e-5);
    check_within("b", in_days.model.b(), in_weeks.model.b(), 1e-5);
    let shift = 2457.0 * 7f64.ln();
    check_within("log-likelihood", in_days.log_likelihood, in_weeks.log_likelihood - shift, 1e-9);
}
