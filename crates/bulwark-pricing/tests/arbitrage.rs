//! Butterfly and calendar arbitrage reports.

use bulwark_pricing::{
    LogMoneynessGrid, PricingError, SviParams, butterfly_violations, calendar_violations,
};

fn grid() -> LogMoneynessGrid {
    LogMoneynessGrid::new(-1.5, 1.5, 301).unwrap()
}

#[test]
fn gatheral_jacquier_counterexample_has_butterfly_arbitrage() {
    // Gatheral and Jacquier (2014), "Arbitrage-free SVI volatility surfaces", Example 3.1 (from
    // Axel Vogt): a = -0.0410, b = 0.1331, rho = 0.3060, m = 0.3586, sigma = 0.4153, T = 1. Their
    // Figure 2 shows g(k) < 0 for k around 0.5 to 1.
    let params = SviParams::new(-0.0410, 0.1331, 0.3060, 0.3586, 0.4153).unwrap();
    let violations = butterfly_violations(&params, &grid());
    assert!(!violations.is_empty());
    assert!(violations.iter().all(|v| v.density < 0.0));
    assert!(
        violations
            .iter()
            .any(|v| (0.5..=1.0).contains(&v.log_moneyness))
    );
}

#[test]
fn moderate_smile_has_no_butterfly_arbitrage() {
    let params = SviParams::new(0.02, 0.15, -0.4, 0.05, 0.15).unwrap();
    assert!(butterfly_violations(&params, &grid()).is_empty());
}

#[test]
fn falling_total_variance_is_a_calendar_violation() {
    let near = SviParams::new(0.04, 0.1, -0.3, 0.0, 0.2).unwrap();
    let far = SviParams::new(0.02, 0.1, -0.3, 0.0, 0.2).unwrap();
    let violations = calendar_violations(&[(1.0, far), (0.5, near)], &grid()).unwrap();
    assert_eq!(violations.len(), grid().points());
    assert!(
        violations
            .iter()
            .all(|v| v.time_years_earlier == 0.5 && v.time_years_later == 1.0)
    );
}

#[test]
fn rising_total_variance_has_no_calendar_violation() {
    let near = SviParams::new(0.02, 0.1, -0.3, 0.0, 0.2).unwrap();
    let far = SviParams::new(0.04, 0.12, -0.3, 0.0, 0.2).unwrap();
    assert!(
        calendar_violations(&[(0.5, near), (1.0, far)], &grid())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn invalid_grids_are_refused() {
    assert!(matches!(
        LogMoneynessGrid::new(1.0, -1.0, 10),
        Err(PricingError::InvalidGrid { .. })
    ));
    assert!(matches!(
        LogMoneynessGrid::new(-1.0, 1.0, 1),
        Err(PricingError::InvalidGrid { .. })
    ));
    assert!(matches!(
        LogMoneynessGrid::new(f64::NAN, 1.0, 10),
        Err(PricingError::InvalidGrid { .. })
    ));
    assert!(matches!(
        LogMoneynessGrid::new(-1.0, 1.0, 1_000_000),
        Err(PricingError::InvalidGrid { .. })
    ));
}

#[test]
fn svi_constraints_are_enforced() {
    use bulwark_pricing::SviConstraint;
    let cases = [
        (
            SviParams::new(0.01, -0.1, 0.0, 0.0, 0.1),
            SviConstraint::SlopeNegative,
        ),
        (
            SviParams::new(0.01, 0.1, 1.0, 0.0, 0.1),
            SviConstraint::CorrelationOutOfRange,
        ),
        (
            SviParams::new(0.01, 0.1, 0.0, 0.0, 0.0),
            SviConstraint::CurvatureNotPositive,
        ),
        (
            SviParams::new(-0.5, 0.1, 0.0, 0.0, 0.1),
            SviConstraint::MinimumVarianceNegative,
        ),
        (
            SviParams::new(f64::NAN, 0.1, 0.0, 0.0, 0.1),
            SviConstraint::NotFinite,
        ),
    ];
    for (result, constraint) in cases {
        assert_eq!(result, Err(PricingError::SviConstraint { constraint }));
    }
}
