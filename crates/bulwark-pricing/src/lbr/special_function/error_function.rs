use crate::lbr::LibmF64;
use crate::lbr::SpecialFn;
use crate::lbr::fused_multiply_add::MulAddSelected;
use crate::lbr::special_function::normal_distribution;
use std::cmp::Ordering;
use std::f64::consts::FRAC_1_SQRT_2;
use std::ops::Neg;

#[inline]
#[allow(
    clippy::excessive_precision,
    reason = "Retain Cody's published coefficient literals for source correspondence."
)]
fn ab(z: f64) -> f64 {
    const A: [f64; 5] = [
        3.161_123_743_870_565_6,
        113.864_154_151_050_156,
        377.485_237_685_302_021,
        3_209.377_589_138_469_47,
        0.185_777_706_184_603_153,
    ];
    const B: [f64; 4] = [
        23.601_290_952_344_120_9,
        244.024_637_934_444_173,
        1_282.616_526_077_372_28,
        2_844.236_833_439_170_62,
    ];
    z.mul_add2_sel(A[4], A[0])
        .mul_add2_sel(z, A[1])
        .mul_add2_sel(z, A[2])
        .mul_add2_sel(z, A[3])
        / z.mul_add2_sel(1.0, B[0])
            .mul_add2_sel(z, B[1])
            .mul_add2_sel(z, B[2])
            .mul_add2_sel(z, B[3])
}

#[inline]
#[allow(
    clippy::excessive_precision,
    reason = "Retain Cody's published coefficient literals for source correspondence."
)]
fn cd(y: f64) -> f64 {
    const C: [f64; 9] = [
        0.564_188_496_988_670_089,
        8.883_149_794_388_375_94,
        66.119_190_637_141_629_5,
        298.635_138_197_400_131,
        881.952_221_241_769_09,
        1_712.047_612_634_070_58,
        2_051.078_377_826_071_47,
        1_230.339_354_797_997_25,
        2.153_115_354_744_038_46E-8,
    ];
    const D: [f64; 8] = [
        15.744_926_110_709_834_7,
        117.693_950_891_312_499,
        537.181_101_862_009_858,
        1_621.389_574_566_690_19,
        3_290.799_235_733_459_63,
        4_362.619_090_143_247_16,
        3_439.367_674_143_721_64,
        1_230.339_354_803_749_42,
    ];
    C[8].mul_add2_sel(y, C[0])
        .mul_add2_sel(y, C[1])
        .mul_add2_sel(y, C[2])
        .mul_add2_sel(y, C[3])
        .mul_add2_sel(y, C[4])
        .mul_add2_sel(y, C[5])
        .mul_add2_sel(y, C[6])
        .mul_add2_sel(y, C[7])
        / (y + D[0])
            .mul_add2_sel(y, D[1])
            .mul_add2_sel(y, D[2])
            .mul_add2_sel(y, D[3])
            .mul_add2_sel(y, D[4])
            .mul_add2_sel(y, D[5])
            .mul_add2_sel(y, D[6])
            .mul_add2_sel(y, D[7])
}

#[inline]
#[allow(
    clippy::excessive_precision,
    reason = "Retain Cody's published coefficient literals for source correspondence."
)]
fn pq(z: f64) -> f64 {
    const P: [f64; 6] = [
        0.305_326_634_961_232_344,
        0.360_344_899_949_804_439,
        0.125_781_726_111_229_246,
        0.016_083_785_148_742_276_6,
        6.587_491_615_298_378_03E-4,
        0.016_315_387_137_302_097_8,
    ];
    const Q: [f64; 5] = [
        2.568_520_192_289_822_42,
        1.872_952_849_923_460_47,
        0.527_905_102_951_428_412,
        0.060_518_341_312_441_319_1,
        0.002_335_204_976_268_691_85,
    ];
    z * (P[5]
        .mul_add2_sel(z, P[0])
        .mul_add2_sel(z, P[1])
        .mul_add2_sel(z, P[2])
        .mul_add2_sel(z, P[3])
        .mul_add2_sel(z, P[4]))
        / ((z + Q[0])
            .mul_add2_sel(z, Q[1])
            .mul_add2_sel(z, Q[2])
            .mul_add2_sel(z, Q[3])
            .mul_add2_sel(z, Q[4]))
}

#[inline]
fn smoothened_exponential_of_negative_square(y: f64) -> f64 {
    let y_tilde = (y * 16.0).trunc() * 0.0625;
    (-(y_tilde * y_tilde)).exp_libm() * (-(y - y_tilde) * (y + y_tilde)).exp_libm()
}

#[inline]
fn smoothened_exponential_of_positive_square(x: f64) -> f64 {
    let x_tilde = (x * 16.0).trunc() * 0.0625;
    (x_tilde * x_tilde).exp_libm() * ((x - x_tilde) * (x + x_tilde)).exp_libm()
}

const THRESHOLD: f64 = 0.46875;
const XNEG: f64 = -26.628_735_713_751_4;
const XBIG: f64 = 26.543;

const ONE_OVER_SQRT_PI: f64 = 0.564_189_583_547_756_3;

#[inline]
pub(super) fn erf_cody(x: f64) -> f64 {
    let y = x.abs();
    if y <= THRESHOLD {
        //       |x| <= 0.46875
        return x * ab(y * y);
    }
    if y >= XBIG {
        return x.signum();
    }
    // Compute erfc(|x|)
    let erfc_abs_x_over_exponential_of_negative_square = if y <= 4.0 {
        cd(y) // when 0.46875 < |x| <= 4.0
    } else {
        (ONE_OVER_SQRT_PI - pq((y * y).recip())) / y // when 4.0 < |x| < 26.543
    };
    let exponential_of_negative_square = smoothened_exponential_of_negative_square(y);
    if x < 0.0 {
        erfc_abs_x_over_exponential_of_negative_square
            .mul_add2_sel(exponential_of_negative_square, -1.0)
    } else {
        erfc_abs_x_over_exponential_of_negative_square
            .mul_add2_sel(-exponential_of_negative_square, 1.0)
    }
}

#[inline(always)]
pub(super) fn erfc_cody(x: f64) -> f64 {
    let y = x.abs();
    if y <= THRESHOLD {
        return ab(y * y).neg().mul_add2_sel(x, 1.0);
    }
    let erfc_abs_x = if y >= XBIG {
        0.0
    } else {
        (if y <= 4.0 {
            cd(y)
        } else {
            (ONE_OVER_SQRT_PI - pq((y * y).recip())) / y
        }) * smoothened_exponential_of_negative_square(y)
    };

    if x < 0.0 {
        2.0 - erfc_abs_x
    } else {
        erfc_abs_x
    }
}

#[inline]
#[allow(clippy::neg_cmp_op_on_partial_ord)] // for performance reason
fn erfcx_cody_above_threshold(y: f64) -> f64 {
    debug_assert!(matches!(
        y.partial_cmp(&THRESHOLD),
        Some(Ordering::Greater) | None
    ));
    if y <= 4.0 {
        cd(y)
    } else {
        (ONE_OVER_SQRT_PI - pq((y * y).recip())) / y
    }
}

#[inline(always)] // important for performance
pub(super) fn erfcx_cody(x: f64) -> f64 {
    let y = x.abs();
    if y <= THRESHOLD {
        let z = y * y;
        return z.exp_libm() * (ab(z).neg().mul_add2_sel(x, 1.0));
    }
    if x < XNEG {
        return f64::MAX;
    }
    let result = erfcx_cody_above_threshold(y);
    if x < 0.0 {
        let expx2 = smoothened_exponential_of_positive_square(x);
        expx2.mul_add2_sel(2.0, -result)
    } else {
        result
    }
}

#[inline]
pub(super) fn one_minus_erfcx<SpFn: SpecialFn + ?Sized>(x: f64) -> f64 {
    if (-1.0 / 5.0..=1.0 / 3.0).contains(&x) {
        x * (x
            .mul_add2_sel(1.406_928_571_363_456_5E-2, 1.406_918_874_460_965E-1)
            .mul_add2_sel(x, 5.768_900_120_887_374E-1)
            .mul_add2_sel(x, 1.151_496_718_178_475_6)
            .mul_add2_sel(x, 1.000_000_000_000_000_2)
            / x.mul_add2_sel(1.246_332_072_834_634_7E-2, 1.358_008_134_514_386E-1)
                .mul_add2_sel(x, 6.248_608_165_864_026E-1)
                .mul_add2_sel(x, 1.508_990_859_374_272_3)
                .mul_add2_sel(x, 1.903_749_496_242_156_3)
                .mul_add2_sel(x, 1.0))
        .mul_add2_sel(-x, std::f64::consts::FRAC_2_SQRT_PI)
    } else {
        1.0 - SpFn::erfcx(x)
    }
}

#[inline]
pub(super) fn erfinv(e: f64) -> f64 {
    if e.abs() < 2.0 * normal_distribution::U_MAX {
        normal_distribution::inverse_norm_cdfm_half_for_midrange_probabilities(0.5 * e)
            * FRAC_1_SQRT_2
    } else {
        (if e < 0.0 {
            normal_distribution::inverse_norm_cdf_for_low_probabilities(e.mul_add2_sel(0.5, 0.5))
        } else {
            -normal_distribution::inverse_norm_cdf_for_low_probabilities(e.mul_add2_sel(-0.5, 0.5))
        }) * FRAC_1_SQRT_2
    }
}
