//! Parameters and grid: defaults pass their check, each broken relation is its own error, and
//! the grid has the documented shape.

use bulwark_risk::{
    ParamsError, PortfolioMarginParams, RiskError, ScenarioGrid, ScenarioRole, VolShift,
};

/// Breaks one parameter.
type Breaker = fn(&mut PortfolioMarginParams);

#[test]
fn defaults_pass_and_each_broken_relation_names_itself() {
    let d = PortfolioMarginParams::defaults();
    assert_eq!(d.check(), Ok(()));
    let broken: [(Breaker, ParamsError); 12] = [
        (|p| p.move_points = 8, ParamsError::MovePoints),
        (|p| p.move_points = 1, ParamsError::MovePoints),
        (|p| p.range_min_bps = 0, ParamsError::Range),
        (|p| p.range_min_bps = 4_000, ParamsError::Range),
        // +-70% with 9 points puts the guard step at 87.5%: too close to a zero index.
        (|p| p.range_max_bps = 7_000, ParamsError::Range),
        (|p| p.range_sigmas_bps = 0, ParamsError::RangeSigmas),
        // 40% down at scale 3 would take vols below zero.
        (|p| p.vol_down_bps = 4_000, ParamsError::VolShock),
        (|p| p.vol_scale_min_bps = 40_000, ParamsError::VolScale),
        (|p| p.extreme_cover_bps = 10_001, ParamsError::Extreme),
        (
            |p| p.short_option_addon_bps = 10_001,
            ParamsError::ShortOptionAddon,
        ),
        (
            |p| p.initial_over_maintenance_bps = 9_999,
            ParamsError::InitialMultiple,
        ),
        (|p| p.realised_vol_initial_bps = 0, ParamsError::RealisedVol),
    ];
    for (breaks, error) in broken {
        let mut p = d;
        breaks(&mut p);
        assert_eq!(p.check(), Err(error), "{p:?}");
    }
}

#[test]
fn default_grid_is_deribits_nine_moves_with_three_vols_and_spans_two_extremes() {
    let params = PortfolioMarginParams::defaults();
    let grid = ScenarioGrid::new(&params, 1_600).unwrap();
    assert_eq!(grid.len(), 39);
    assert_eq!(grid.margin_len(), 29);
    let core: Vec<_> = grid
        .scenarios()
        .iter()
        .filter(|s| s.role == ScenarioRole::Core)
        .collect();
    assert_eq!(core.len(), 27);
    let moves: Vec<f64> = core.iter().step_by(3).map(|s| s.index_move).collect();
    assert_eq!(
        moves,
        [-0.16, -0.12, -0.08, -0.04, 0.0, 0.04, 0.08, 0.12, 0.16]
    );
    assert!(core.iter().all(|s| s.cover_bps == 10_000));
    let extremes: Vec<_> = grid.scenarios()[27..29].to_vec();
    assert_eq!(extremes[0].index_move, -0.32);
    assert_eq!(extremes[1].index_move, 0.32);
    assert!(
        extremes
            .iter()
            .all(|s| s.cover_bps == 3_500 && s.vol_shift == VolShift::Unchanged)
    );
    // The guard band: floor(4% / 1.16) = 344 bps; guard core at +-20%.
    assert_eq!(grid.band_bps(), 344);
    assert_eq!(grid.scenarios()[29].index_move, -0.2);
    assert_eq!(grid.scenarios()[34].index_move, 0.2);
    assert!(grid.scenarios()[29..].iter().all(|s| s.cover_bps == 0));
    assert_eq!(grid.core_index(0, VolShift::Unchanged), 13);
    assert_eq!(grid.scenarios()[13].index_move, 0.0);
}

#[test]
fn a_range_outside_the_parameters_is_refused() {
    let params = PortfolioMarginParams::defaults();
    assert_eq!(
        ScenarioGrid::new(&params, 1_599),
        Err(RiskError::RangeOutOfBounds {
            range_bps: 1_599,
            min: 1_600,
            max: 3_200
        })
    );
    assert!(ScenarioGrid::new(&params, 3_200).is_ok());
}
