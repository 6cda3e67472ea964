//! Kendall's tau-b and its two-sided p-value, as `scipy.stats.kendalltau` (default
//! `method="auto"`): the exact null distribution when neither variable has ties and n ≤ 33
//! (or the statistic is at the extreme), the normal approximation with the tie-corrected
//! variance otherwise. Country rankings are what VSM-based studies compare, so
//! correlations.csv carries tau beside Pearson and Spearman.

use super::correlation::Correlation;
use statrs::distribution::{ContinuousCDF, Normal};

/// Sum over groups of tied values of (t(t-1)/2, t(t-1)(t-2), t(t-1)(2t+5)), as scipy's
/// `count_rank_tie`.
fn tie_terms(v: &[f64]) -> (u64, u64, u64) {
    let mut sorted = v.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (mut pairs, mut t2, mut t5) = (0u64, 0u64, 0u64);
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1] == sorted[i] {
            j += 1;
        }
        let t = (j - i + 1) as u64;
        if t > 1 {
            pairs += t * (t - 1) / 2;
            t2 += t * (t - 1) * (t - 2);
            t5 += t * (t - 1) * (2 * t + 5);
        }
        i = j + 1;
    }
    (pairs, t2, t5)
}

/// Kendall's tau-b over pairs, with scipy's two-sided p. None with fewer than 3 pairs or a
/// constant variable (the convention of `pearson` and `spearman` here).
pub fn kendall(x: &[f64], y: &[f64]) -> Option<Correlation> {
    assert_eq!(x.len(), y.len());
    let n = x.len();
    if n < 3 {
        return None;
    }
    let (mut con, mut dis) = (0u64, 0u64);
    for i in 0..n {
        for j in i + 1..n {
            let (dx, dy) = (x[i] - x[j], y[i] - y[j]);
            if dx == 0.0 || dy == 0.0 {
                continue;
            }
            if (dx > 0.0) == (dy > 0.0) {
                con += 1;
            } else {
                dis += 1;
            }
        }
    }
    let tot = (n * (n - 1) / 2) as u64;
    let (xtie, x0, x1) = tie_terms(x);
    let (ytie, y0, y1) = tie_terms(y);
    if xtie == tot || ytie == tot {
        return None;
    }
    let con_minus_dis = con as f64 - dis as f64;
    let tau = (con_minus_dis / ((tot - xtie) as f64).sqrt() / ((tot - ytie) as f64).sqrt())
        .clamp(-1.0, 1.0);
    let exact = xtie == 0 && ytie == 0 && (n <= 33 || dis.min(tot - dis) <= 1);
    let p = if exact {
        exact_p(n, tot - dis)
    } else {
        let size = n as f64;
        let m = size * (size - 1.0);
        let var = (m * (2.0 * size + 5.0) - x1 as f64 - y1 as f64) / 18.0
            + (2 * xtie * ytie) as f64 / m
            + (x0 as f64 * y0 as f64) / (9.0 * m * (size - 2.0));
        let z = con_minus_dis / var.sqrt();
        2.0 * Normal::new(0.0, 1.0).expect("standard normal").sf(z.abs())
    };
    Some(Correlation { n, r: tau, p })
}

/// Two-sided exact p of `c` concordant pairs among n untied values: twice the left tail of
/// the number of permutations with at most min(c, tot - c) inversions (Mahonian numbers), as
/// scipy's `_kendall_p_exact`, operation for operation.
fn exact_p(n: usize, c: u64) -> f64 {
    let tot = (n * (n - 1) / 2) as u64;
    let c = c.min(tot - c) as usize;
    let factorial = |k: usize| (1..=k).fold(1.0f64, |f, i| f * i as f64);
    let p = if n <= 2 {
        1.0
    } else if c == 0 {
        if n < 171 {
            2.0 / factorial(n)
        } else {
            0.0
        }
    } else if c == 1 {
        if n < 172 {
            2.0 / factorial(n - 1)
        } else {
            0.0
        }
    } else if 4 * c == n * (n - 1) {
        1.0
    } else {
        // Reached only for n <= 33 (no ties, see `kendall`).
        let mut new = vec![0.0f64; c + 1];
        new[0] = 1.0;
        new[1] = 1.0;
        for j in 3..=n {
            let mut acc = 0.0;
            for v in new.iter_mut() {
                acc += *v;
                *v = acc;
            }
            if j <= c {
                let old = new.clone();
                for k in j..=c {
                    new[k] -= old[k - j];
                }
            }
        }
        2.0 * new.iter().sum::<f64>() / factorial(n)
    };
    p.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_scipy_exact_and_asymptotic() {
        // scipy 1.17.1 kendalltau([1,2,3,4,5,6], [2,1,4,3,6,5]):
        // statistic 0.6, pvalue 0.1361111111111111 (exact)
        let k = kendall(
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            &[2.0, 1.0, 4.0, 3.0, 6.0, 5.0],
        )
        .unwrap();
        assert!((k.r - 0.6).abs() < 1e-12, "{}", k.r);
        assert!((k.p - 0.136_111_111_111_111_1).abs() < 1e-12, "{}", k.p);
        // With ties: kendalltau([1,1,2,3,4], [1,2,2,3,5]):
        // statistic 0.8888888888888888, pvalue 0.03735647244558174 (asymptotic)
        let k = kendall(&[1.0, 1.0, 2.0, 3.0, 4.0], &[1.0, 2.0, 2.0, 3.0, 5.0]).unwrap();
        assert!((k.r - 0.888_888_888_888_888_8).abs() < 1e-12, "{}", k.r);
        // statrs' normal tail is good to ~1e-10 relative here (scipy: ndtr), within 1e-9.
        assert!(
            (k.p / 0.037_356_472_445_581_74 - 1.0).abs() < 1e-9,
            "{}",
            k.p
        );
        assert!(kendall(&[1.0, 2.0], &[1.0, 2.0]).is_none());
        assert!(kendall(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_none());
    }
}
