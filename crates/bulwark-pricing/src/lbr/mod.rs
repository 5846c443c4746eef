//! Jäckel's "Let's Be Rational" implied Black volatility, made deterministic.
//!
//! Owns: the normalised Black price `b(x, s)` and its inverse, with `x = ln(F/K)` and total
//! volatility `s = sigma * sqrt(T)`, on undiscounted prices.
//! Never: calls the platform's `f64::exp`, `ln`, `ln_1p`, `cbrt` or `sqrt`; every
//! transcendental goes through `libm` (see [`LibmF64`]), so validators on different machines get
//! bit-identical results.
//! Bounds: at most two Householder corrective steps per inversion
//! (`MAX_HOUSEHOLDER_CORRECTIVE_STEPS`); the one series loop (normal tail) stops by 64 terms.
//!
//! Provenance: ported from the `implied-vol` crate 2.1.0 (MIT License, Copyright (c) 2025-2026
//! Hikaru Nakashima; full notice in `src/lbr/LICENSE-implied-vol`), files
//! `src/lets_be_rational.rs`, `src/lets_be_rational/*.rs` and `src/solver.rs`, itself a port of
//! Peter Jäckel's reference implementation. Changes: the Jäckel path only (no FlashIV hybrid, no
//! Bachelier, no tests, no FMA feature), a bound on the normal-tail series loop, and every
//! platform float method replaced by the `libm` function of the same name through [`LibmF64`].
//! That crate calls `f64::exp`/`ln`/`ln_1p`/`cbrt` from std, whose last bit may differ between C
//! libraries; it stays a dev-dependency and `tests/implied.rs` checks this port agrees with it.
#![allow(
    clippy::excessive_precision,
    clippy::unreadable_literal,
    clippy::many_single_char_names,
    clippy::suboptimal_flops,
    clippy::float_cmp,
    clippy::neg_cmp_op_on_partial_ord,
    reason = "vendored numerical code kept textually close to its reference"
)]

pub mod bs_option_price;
mod constants;
mod fused_multiply_add;
mod householder;
mod rational_cubic;
pub mod special_function;

/// `libm` versions of the float methods the vendored code used from std.
///
/// The names end in `_libm` so a grep for `.exp()` and friends stays empty in this crate.
pub(crate) trait LibmF64 {
    fn exp_libm(self) -> f64;
    fn ln_libm(self) -> f64;
    fn ln_1p_libm(self) -> f64;
    fn sqrt_libm(self) -> f64;
    fn cbrt_libm(self) -> f64;
    fn square_libm(self) -> f64;
}

impl LibmF64 for f64 {
    #[inline(always)]
    fn exp_libm(self) -> f64 {
        libm::exp(self)
    }
    #[inline(always)]
    fn ln_libm(self) -> f64 {
        libm::log(self)
    }
    #[inline(always)]
    fn ln_1p_libm(self) -> f64 {
        libm::log1p(self)
    }
    #[inline(always)]
    fn sqrt_libm(self) -> f64 {
        libm::sqrt(self)
    }
    #[inline(always)]
    fn cbrt_libm(self) -> f64 {
        libm::cbrt(self)
    }
    #[inline(always)]
    fn square_libm(self) -> f64 {
        self * self
    }
}

use crate::lbr::fused_multiply_add::MulAdd;

use crate::lbr::constants::{
    FRAC_1_SQRT_3, FRAC_2_PI_SQRT_27, FRAC_SQRT_3_CUBIC_ROOT_2_PI, SQRT_2_OVER_PI, SQRT_2_PI,
    SQRT_3, SQRT_DBL_MAX, SQRT_PI_OVER_2,
};
use crate::lbr::rational_cubic::{
    convex_rational_cubic_control_parameter_to_fit_second_derivative_at_left_side,
    convex_rational_cubic_control_parameter_to_fit_second_derivative_at_right_side,
    rational_cubic_interpolation,
};
use crate::lbr::special_function::normal_distribution::inv_norm_pdf;
use crate::lbr::special_function::{DefaultSpecialFn, SpecialFn};
use std::f64::consts::{FRAC_1_SQRT_2, SQRT_2};
use std::ops::Neg;

const MAX_HOUSEHOLDER_CORRECTIVE_STEPS: usize = 2;

#[inline]
fn b_u_over_b_max(s_c: f64) -> f64 {
    if s_c >= 2.449_489_742_783_178 {
        let y = s_c.recip();

        let g = y
            .mul_add2(-1.229_189_712_271_654_4, 6.589_280_957_677_407E2)
            .mul_add2(y, 6.169_692_835_129_17E2)
            .mul_add2(y, 2.983_680_162_805_663E2)
            .mul_add2(y, 8.488_089_220_080_239E1)
            .mul_add2(y, 1.455_319_886_249_397_7E1)
            .mul_add2(y, 1.375_163_082_077_259_1)
            .mul_add2(y, -4.605_394_817_212_609E-2)
            / y.mul_add2(5.206_084_752_279_256E2, 8.881_238_333_960_678E2)
                .mul_add2(y, 8.698_830_313_690_185E2)
                .mul_add2(y, 5.079_647_179_123_228E2)
                .mul_add2(y, 2.030_420_459_952_177_3E2)
                .mul_add2(y, 5.436_378_146_588_073E1)
                .mul_add2(y, 9.327_034_903_790_405)
                .mul_add2(y, 1.0);
        y.mul_add2(g, -1.253_314_137_315_500_3)
            .mul_add2(0.113_984_531_941_499_06 * y, 0.894_954_297_278_031_3)
    } else {
        let g = s_c
            .mul_add2(-3.386_756_817_001_176_5E-9, -8.733_991_026_156_887E-4)
            .mul_add2(s_c, -8.143_812_878_548_491E-3)
            .mul_add2(s_c, -3.512_133_741_041_69E-2)
            .mul_add2(s_c, -8.976_383_086_137_545E-2)
            .mul_add2(s_c, -1.416_368_116_424_721E-1)
            .mul_add2(s_c, -1.344_864_378_589_371E-1)
            .mul_add2(s_c, -6.063_099_880_334_851E-2)
            / s_c
                .mul_add2(1.421_206_743_529_177_8E-2, 1.324_801_623_892_073E-1)
                .mul_add2(s_c, 5.959_161_649_351_221E-1)
                .mul_add2(s_c, 1.652_734_794_196_848_7)
                .mul_add2(s_c, 3.018_638_953_766_389_6)
                .mul_add2(s_c, 3.650_335_036_015_884_6)
                .mul_add2(s_c, 2.722_003_340_655_505_5)
                .mul_add2(s_c, 1.0);

        s_c.mul_add2(g, 0.061_461_680_580_514_74)
            .mul_add2(s_c * s_c, 0.789_908_594_556_062_8)
    }
}

#[inline]
fn b_l_over_b_max(s_c: f64) -> f64 {
    if s_c < 0.709_929_573_971_953_9 {
        let g = s_c
            .mul_add2(4.542_510_209_361_606_4E-7, -6.403_639_934_147_98E-6)
            .mul_add2(s_c, 5.971_692_845_958_919E-3)
            .mul_add2(s_c, 3.976_063_144_567_705_5E-2)
            .mul_add2(s_c, 9.807_891_178_635_89E-2)
            .mul_add2(s_c, 8.074_107_237_288_286E-2)
            / s_c
                .mul_add2(6.125_459_704_983_172E-2, 4.613_270_710_865_565E-1)
                .mul_add2(s_c, 1.365_880_147_571_179)
                .mul_add2(s_c, 1.859_497_767_228_766_5)
                .mul_add2(s_c, 1.0);
        (s_c * s_c)
            * s_c.mul_add2(
                s_c.mul_add2(g, -0.096_727_192_813_394_37),
                0.075_609_966_402_963_62,
            )
    } else if s_c < 2.626_785_107_312_739_5 {
        s_c.mul_add2(6.971_140_063_983_471E-4, 6.584_925_270_230_231E-3)
            .mul_add2(s_c, 2.953_705_895_096_301_8E-2)
            .mul_add2(s_c, 6.917_130_174_466_835E-2)
            .mul_add2(s_c, 7.561_014_227_254_904E-2)
            .mul_add2(s_c, -2.708_128_856_468_558_7E-8)
            .mul_add2(s_c, 1.979_573_792_759_858E-9)
            / s_c
                .mul_add2(6.636_197_582_786_12E-3, 7.171_486_244_882_935E-2)
                .mul_add2(s_c, 3.783_162_225_306_046E-1)
                .mul_add2(s_c, 1.157_148_318_717_978_3)
                .mul_add2(s_c, 2.129_710_354_999_518)
                .mul_add2(s_c, 2.194_144_852_558_658)
                .mul_add2(s_c, 1.0)
    } else if s_c < 7.348_469_228_349_534 {
        s_c.mul_add2(1.701_257_940_724_605_5E-3, 1.002_291_337_825_409E-2)
            .mul_add2(s_c, 3.922_517_740_768_760_6E-2)
            .mul_add2(s_c, 7.403_965_818_682_282E-2)
            .mul_add2(s_c, 7.411_485_544_834_501E-2)
            .mul_add2(s_c, 5.311_803_397_279_465E-4)
            .mul_add2(s_c, -9.332_511_535_483_788E-5)
            / s_c
                .mul_add2(1.619_540_589_593_093_7E-2, 1.174_400_591_971_610_1E-1)
                .mul_add2(s_c, 5.323_125_844_350_184E-1)
                .mul_add2(s_c, 1.391_232_364_627_114)
                .mul_add2(s_c, 2.344_181_670_708_740_4)
                .mul_add2(s_c, 2.221_723_813_222_813_4)
                .mul_add2(s_c, 1.0)
    } else {
        s_c.mul_add2(1.693_020_807_842_147_5E-3, 5.183_252_617_163_152E-3)
            .mul_add2(s_c, 2.934_240_565_862_844_5E-2)
            .mul_add2(s_c, 3.921_610_857_820_463_6E-2)
            .mul_add2(s_c, 7.168_217_831_093_633E-2)
            .mul_add2(s_c, -1.511_669_248_501_119_6E-3)
            .mul_add2(s_c, 1.450_007_229_724_060_4E-3)
            / s_c
                .mul_add2(1.611_699_254_678_867_7E-2, 7.126_137_099_644_303E-2)
                .mul_add2(s_c, 3.754_374_213_737_579E-1)
                .mul_add2(s_c, 8.487_830_756_737_222E-1)
                .mul_add2(s_c, 1.682_315_917_528_153_2)
                .mul_add2(s_c, 1.617_631_350_230_541_5)
                .mul_add2(s_c, 1.0)
    }
}

#[inline]
fn compute_f_lower_map_and_first_two_derivatives<SpFn: SpecialFn>(
    theta_x: f64,
    s: f64,
) -> (f64, f64, f64) {
    debug_assert!(theta_x < 0.0);
    let z = -FRAC_1_SQRT_3 * theta_x / s;
    let y = z * z;
    let s2 = s * s;
    let phi_m = 0.5 * SpFn::erfc(FRAC_1_SQRT_2 * z);

    let phi2 = phi_m * phi_m;
    (
        -FRAC_2_PI_SQRT_27 * theta_x * (phi2 * phi_m),
        std::f64::consts::TAU * y * phi2 * s2.mul_add2(0.125, y).exp_libm(),
        std::f64::consts::FRAC_PI_6 * y / (s2 * s)
            * phi_m
            * (-8.0 * SQRT_3 * s).mul_add2(
                theta_x,
                (3.0 * s2).mul_add2(s2 - 8.0, -(8.0 * theta_x * theta_x)) * phi_m * inv_norm_pdf(y),
            )
            * 2.0f64.mul_add2(y, 0.25 * s2).exp_libm(),
    )
}

#[inline]
fn inverse_f_lower_map<SpFn: SpecialFn>(x: f64, f: f64) -> f64 {
    (x * FRAC_1_SQRT_3
        / SpFn::inverse_norm_cdf(FRAC_SQRT_3_CUBIC_ROOT_2_PI * f.cbrt_libm() / x.abs().cbrt_libm()))
    .abs()
}

#[inline]
fn compute_f_upper_map_and_first_two_derivatives<SpFn: SpecialFn>(
    x: f64,
    s: f64,
) -> (f64, f64, f64) {
    let w = (x / s).square_libm();
    (
        0.5 * SpFn::erfc((0.5 * FRAC_1_SQRT_2) * s),
        -0.5 * (0.5 * w).exp_libm(),
        SQRT_PI_OVER_2 * ((0.125 * s).mul_add2(s, w).exp_libm()) * w / s,
    )
}

#[inline]
fn inverse_f_upper_map<SpFn: SpecialFn>(f: f64) -> f64 {
    -2.0 * SpFn::inverse_norm_cdf(f)
}

#[inline]
pub fn implied_normalised_volatility_atm<SpFn: SpecialFn>(beta: f64) -> f64 {
    2.0 * SQRT_2 * SpFn::erfinv(beta)
}

#[inline]
pub fn lets_be_rational_unchecked<SpFn: SpecialFn>(beta: f64, theta_x: f64, b_max: f64) -> f64 {
    lets_be_rational_with_dispatch::<SpFn>(beta, theta_x, b_max)
}

#[inline]
fn lets_be_rational_with_dispatch<SpFn: SpecialFn>(beta: f64, theta_x: f64, b_max: f64) -> f64 {
    let mut s;
    let sqrt_ax = theta_x.neg().sqrt_libm();
    let s_c = SQRT_2 * sqrt_ax;
    let ome = SpFn::one_minus_erfcx(sqrt_ax);
    let b_c = 0.5 * b_max * ome;

    // LOWER HALF: s < s_c
    if beta < b_c {
        debug_assert!(theta_x < 0.0);
        let s_l = (-SQRT_PI_OVER_2).mul_add2(ome, s_c);
        debug_assert!(s_l > 0.0);
        let b_l = b_l_over_b_max(s_c) * b_max;

        // LOWEST BRANCH: s < s_l
        if beta < b_l {
            let (f_lower_map_l, d_f_lower_map_l_d_beta, d2_f_lower_map_l_d_beta2) =
                compute_f_lower_map_and_first_two_derivatives::<SpFn>(theta_x, s_l);
            let r2 = convex_rational_cubic_control_parameter_to_fit_second_derivative_at_right_side::<
                true,
            >(
                b_l,
                f_lower_map_l,
                (1.0, d_f_lower_map_l_d_beta),
                d2_f_lower_map_l_d_beta2,
            );
            let mut f = rational_cubic_interpolation(
                beta,
                b_l,
                (0.0, f_lower_map_l),
                (1.0, d_f_lower_map_l_d_beta),
                r2,
            );

            if !(f > 0.0) {
                let t = beta / b_l;
                f = f_lower_map_l.mul_add2(t, b_l.mul_add2(-t, b_l)) * t;
            }

            s = inverse_f_lower_map::<SpFn>(theta_x, f);
            debug_assert!(s > 0.0);

            let ln_beta = beta.ln_libm();
            for _ in 0..MAX_HOUSEHOLDER_CORRECTIVE_STEPS {
                debug_assert!(s > 0.0);
                debug_assert!(s.is_finite(), "s is not finite: s={s}");

                let h = theta_x / s;
                let (bx, ln_vega) = bs_option_price::scaled_normalised_black_and_ln_vega::<SpFn>(
                    0.5 * theta_x,
                    h,
                    0.5 * s,
                );

                let ln_b = bx.ln_libm() + ln_vega;
                if ln_b == ln_beta {
                    return s;
                }
                let bpob = bx.recip();
                let x2_over_s3 = h * h / s;
                let b_h2 = s.mul_add2(-0.25, x2_over_s3);
                let nu = (ln_beta - ln_b) * ln_b / ln_beta / bpob;
                let lambda = ln_b.recip();
                let ot_lambda = lambda.mul_add2(2.0, 1.0);
                let h2 = bpob.mul_add2(-ot_lambda, b_h2);
                let c = 3.0 * (x2_over_s3 / s);
                let b_h3 = b_h2.mul_add2(b_h2, -c - 0.25);
                let sq_bpob = bpob * bpob;
                let bppob = b_h2 * bpob;
                let mu = 6.0 * lambda * (lambda + 1.0);
                let h3 = (bppob * 3.0).mul_add2(-ot_lambda, sq_bpob.mul_add2(2.0 + mu, b_h3));

                let ds = nu
                    * if theta_x < -190.0 {
                        #[allow(
                            clippy::suboptimal_flops,
                            reason = "Keep separate rounding in the reference fourth-order correction; FMA is selected explicitly."
                        )]
                        householder::householder_4factor(
                            nu,
                            h2,
                            h3,
                            (b_h3 * bpob * 4.0).mul_add2(
                                -ot_lambda,
                                (bppob * b_h2 * 3.0).mul_add2(
                                    -ot_lambda,
                                    bpob.mul_add2(
                                        -sq_bpob.mul_add2(
                                            lambda.mul_add2(
                                                lambda.mul_add2(lambda.mul_add2(24.0, 36.0), 22.0),
                                                6.0,
                                            ),
                                            -(bppob * 6.0f64.mul_add2(mu, 12.0)),
                                        ),
                                        b_h2 * (b_h3 - 0.5) - (b_h2 - 2.0 / s) * 2.0 * c,
                                    ),
                                ),
                            ),
                        )
                    } else {
                        householder::householder_3factor(nu, h2, h3)
                    };

                s += ds;
                debug_assert!(s > 0.0);
            }
            return s;
        }

        // Lower middle: s_l <= s < s_c
        let inv_v = (
            bs_option_price::inv_normalised_vega(theta_x / s_l, 0.5 * s_l),
            SQRT_2_PI / b_max,
        );
        let h = b_c - b_l;
        let r_im = convex_rational_cubic_control_parameter_to_fit_second_derivative_at_right_side::<
            false,
        >(h, s_c - s_l, inv_v, 0.0);
        s = rational_cubic_interpolation(beta - b_l, h, (s_l, s_c), inv_v, r_im);
        debug_assert!(s > 0.0);
    } else {
        // UPPER HALF: s_c <= s
        let s_u = SQRT_PI_OVER_2.mul_add2(2.0 - ome, s_c);
        debug_assert!(s_u > 0.0);
        let b_u = b_u_over_b_max(s_c) * b_max;

        if beta <= b_u {
            // UPPER MIDDLE: s_c <= s <= s_u
            let inv_v = (
                SQRT_2_PI / b_max,
                bs_option_price::inv_normalised_vega(theta_x / s_u, 0.5 * s_u),
            );
            let h = b_u - b_c;
            let r_u_m =
                convex_rational_cubic_control_parameter_to_fit_second_derivative_at_left_side::<
                    false,
                >(h, s_u - s_c, inv_v, 0.0);
            s = rational_cubic_interpolation(beta - b_c, h, (s_c, s_u), inv_v, r_u_m);
            debug_assert!(s > 0.0);
        } else {
            // HIGHEST BRANCH: s_u < s
            let (f_upper_map_h, d_f_upper_map_h_d_beta, d2_f_upper_map_h_d_beta2) =
                compute_f_upper_map_and_first_two_derivatives::<SpFn>(theta_x, s_u);
            let mut f = if (-SQRT_DBL_MAX..SQRT_DBL_MAX).contains(&d2_f_upper_map_h_d_beta2) {
                let h = b_max - b_u;
                let r_uu =
                    convex_rational_cubic_control_parameter_to_fit_second_derivative_at_left_side::<
                        true,
                    >(
                        h,
                        -f_upper_map_h,
                        (d_f_upper_map_h_d_beta, -0.5),
                        d2_f_upper_map_h_d_beta2,
                    );
                rational_cubic_interpolation(
                    beta - b_u,
                    h,
                    (f_upper_map_h, 0.0),
                    (d_f_upper_map_h_d_beta, -0.5),
                    r_uu,
                )
            } else {
                f64::MIN
            };
            if f <= 0.0 {
                let h = b_max - b_u;
                let t = (beta - b_u) / h;
                f = f_upper_map_h.mul_add2(1.0 - t, 0.5 * h * t) * (1.0 - t);
            }
            s = inverse_f_upper_map::<SpFn>(f);
            if beta > 0.5 * b_max {
                let beta_bar = b_max - beta;
                for _ in 0..MAX_HOUSEHOLDER_CORRECTIVE_STEPS {
                    let h = theta_x / s;
                    let t = 0.5 * s;
                    let gp = SQRT_2_OVER_PI
                        / (SpFn::erfcx((t + h) * FRAC_1_SQRT_2)
                            + SpFn::erfcx((t - h) * FRAC_1_SQRT_2));
                    debug_assert!(s > 0.0);
                    let g =
                        (beta_bar * gp).ln_libm() + bs_option_price::ln_inv_normalised_vega(h, t);
                    if g == 0.0 {
                        return s;
                    }
                    let x2_over_s3 = h * h / s;
                    let b_h2 = t.mul_add2(-0.5, x2_over_s3);
                    let c = 3.0 * x2_over_s3 / s;
                    let b_h3 = b_h2.mul_add2(b_h2, -c - 0.25);
                    let v = -g / gp;
                    let h2 = b_h2 + gp;
                    let h3 = gp.mul_add2(2.0f64.mul_add2(gp, 3.0 * b_h2), b_h3);
                    let ds = v * if theta_x < -580.0 {
                        householder::householder_4factor(
                            v,
                            h2,
                            h3,
                            gp.mul_add2(
                                4.0f64.mul_add2(
                                    b_h3,
                                    (6.0 * gp).mul_add2(b_h2.mul_add2(2.0, gp), 3.0 * b_h2 * b_h2),
                                ),
                                b_h2.mul_add2(b_h3 - 0.5, -((b_h2 - 2.0 / s) * 2.0 * c)),
                            ),
                        )
                    } else {
                        householder::householder_3factor(v, h2, h3)
                    };
                    s += ds;
                    debug_assert!(s > 0.0);
                }
                return s;
            }
        }
    }

    // MIDDLE BRANCHES (ITERATION)
    for _ in 0..MAX_HOUSEHOLDER_CORRECTIVE_STEPS {
        debug_assert!(s > 0.0);
        debug_assert!(theta_x < 0.0_f64);
        let h = theta_x / s;
        let t = 0.5 * s;
        let (b, inv_bp) =
            bs_option_price::normalised_black_and_inv_vega::<SpFn>(0.5 * theta_x, h, t);
        if b == beta {
            return s;
        }
        let nu = (beta - b) * inv_bp;
        let x2_over_s3 = h * h / s;
        let h2 = s.mul_add2(-0.25, x2_over_s3);
        let h3 = h2.mul_add2(h2, (-3.0f64).mul_add2(x2_over_s3 / s, -0.25));
        let ds = nu * householder::householder_3factor(nu, h2, h3);
        s += ds;
        debug_assert!(s > 0.0);
    }
    s
}

/// Inverts a normalised out-of-the-money price `beta = time value / sqrt(F K)` at log-moneyness
/// `x = ln(F/K)` to total volatility `s = sigma sqrt(T)`.
///
/// `None` for non-finite or negative inputs and for `beta` above the supremum `exp(-|x|/2)`;
/// `Some(INFINITY)` exactly at the supremum; `Some(0.0)` for `beta == 0`.
#[inline]
fn implied_total_volatility(x: f64, beta: f64) -> Option<f64> {
    if !(x.is_finite() && beta.is_finite() && beta >= 0.0) {
        return None;
    }
    if beta == 0.0 {
        return Some(0.0);
    }
    let theta_x = -x.abs();
    let b_max = (0.5 * theta_x).exp_libm();
    if beta >= b_max {
        return (beta == b_max).then_some(f64::INFINITY);
    }
    if x == 0.0 {
        return Some(implied_normalised_volatility_atm::<DefaultSpecialFn>(beta));
    }
    Some(lets_be_rational_unchecked::<DefaultSpecialFn>(
        beta, theta_x, b_max,
    ))
}

/// Implied Black volatility of an undiscounted price, `None` outside the attainable range.
///
/// Callers validate `f`, `k`, `t` as finite and positive and `price` as finite and non-negative.
/// `Some(0.0)` when the time value underflows; `Some(INFINITY)` at the upper bound.
pub(crate) fn implied_black_volatility(
    price: f64,
    f: f64,
    k: f64,
    t: f64,
    is_call: bool,
) -> Option<f64> {
    debug_assert!(f > 0.0 && k > 0.0 && t > 0.0 && price >= 0.0);
    let intrinsic = (if is_call { f - k } else { k - f }).max(0.0);
    let cap = if is_call { f } else { k };
    if price >= cap {
        return (price == cap).then_some(f64::INFINITY);
    }
    let beta = if intrinsic > 0.0 {
        price - intrinsic
    } else {
        price
    } / (f.sqrt_libm() * k.sqrt_libm());
    if beta <= f64::MIN_POSITIVE {
        return (beta >= 0.0).then_some(0.0);
    }
    let x = if f == k {
        0.0
    } else {
        bs_option_price::negative_abs_log_moneyness(f, k)
    };
    let total_volatility = implied_total_volatility(x, beta)?;
    if f != k && total_volatility.is_infinite() && beta >= (0.5 * -x.abs()).exp_libm() {
        return None;
    }
    Some(total_volatility / t.sqrt_libm())
}

/// Standard normal cumulative distribution, accurate in the far left tail (Cody, with an
/// asymptotic expansion below -10).
#[inline]
pub(crate) fn norm_cdf(z: f64) -> f64 {
    DefaultSpecialFn::norm_cdf(z)
}

/// Undiscounted Black price, accurate in the far wings (Jäckel's normalised form).
///
/// Callers validate every input as finite, `f`, `k` positive and `sigma`, `t` non-negative.
pub(crate) fn black_undiscounted(f: f64, k: f64, sigma: f64, t: f64, is_call: bool) -> f64 {
    if is_call {
        bs_option_price::black_input_unchecked::<DefaultSpecialFn, true>(f, k, sigma, t)
    } else {
        bs_option_price::black_input_unchecked::<DefaultSpecialFn, false>(f, k, sigma, t)
    }
}
