//! Integer median and median absolute deviation, defined exactly for every length.
//!
//! Owns: the one definition of "median" every validator computes: for an odd count the middle
//! value; for an even count the mean of the two middle values rounded toward negative infinity
//! (the house rule for values). Both middles lie between the smallest and largest input, and
//! so does their rounded-down mean.
//! Never: floats, wrapping, or allocation beyond the caller's scratch buffer.
//! Bounds: O(m log m) for m values; no input can overflow (sums are taken in 128 bits).

/// Median of values sorted ascending. Panics on an empty slice (a caller bug: quorum is at
/// least one) and, in debug builds, on unsorted input.
pub fn median_sorted(sorted: &[i64]) -> i64 {
    assert!(!sorted.is_empty(), "median of nothing");
    debug_assert!(sorted.windows(2).all(|w| w[0] <= w[1]), "sorted input");
    let upper = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        return sorted[upper];
    }
    let sum = i128::from(sorted[upper - 1]) + i128::from(sorted[upper]);
    let mean = sum.div_euclid(2);
    let mean = i64::try_from(mean).expect("the mean of two i64 values is an i64");
    debug_assert!(sorted[upper - 1] <= mean && mean <= sorted[upper]);
    mean
}

/// Median of unsigned values sorted ascending, with the same rule as [`median_sorted`].
pub fn median_sorted_unsigned(sorted: &[u64]) -> u64 {
    assert!(!sorted.is_empty(), "median of nothing");
    debug_assert!(sorted.windows(2).all(|w| w[0] <= w[1]), "sorted input");
    let upper = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        return sorted[upper];
    }
    let sum = u128::from(sorted[upper - 1]) + u128::from(sorted[upper]);
    u64::try_from(sum / 2).expect("the mean of two u64 values is a u64")
}

/// Distance between two values, exact for any pair of `i64`s.
pub fn distance(a: i64, b: i64) -> u64 {
    a.abs_diff(b)
}

/// Median absolute deviation of `values` around `center`. `scratch` is cleared and reused, so
/// a caller aggregating many assets allocates once.
pub fn median_abs_deviation(values: &[i64], center: i64, scratch: &mut Vec<u64>) -> u64 {
    scratch.clear();
    scratch.extend(values.iter().map(|v| distance(*v, center)));
    scratch.sort_unstable();
    median_sorted_unsigned(scratch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_count_takes_the_middle() {
        assert_eq!(median_sorted(&[1, 5, 9]), 5);
        assert_eq!(median_sorted(&[7]), 7);
    }

    #[test]
    fn even_count_takes_the_rounded_down_mean_of_the_middles() {
        assert_eq!(median_sorted(&[1, 2, 4, 100]), 3);
        assert_eq!(median_sorted(&[1, 2]), 1);
        assert_eq!(
            median_sorted(&[-3, -2]),
            -3,
            "rounds toward negative infinity"
        );
        assert_eq!(median_sorted(&[i64::MAX - 1, i64::MAX]), i64::MAX - 1);
        assert_eq!(median_sorted(&[i64::MIN, i64::MAX]), -1);
        assert_eq!(median_sorted_unsigned(&[u64::MAX, u64::MAX]), u64::MAX);
    }

    #[test]
    fn mad_of_agreeing_values_is_zero_and_spread_is_measured() {
        let mut scratch = Vec::new();
        assert_eq!(median_abs_deviation(&[5, 5, 5, 9], 5, &mut scratch), 0);
        // Distances 1, 1, 2, 2, 7: median 2.
        assert_eq!(
            median_abs_deviation(&[8, 10, 11, 7, 16], 9, &mut scratch),
            2
        );
        assert_eq!(distance(i64::MIN, i64::MAX), u64::MAX);
    }
}
