//! Correlation coefficients and what goes with them: two-sided p-values from the t
//! distribution (as scipy's `pearsonr`/`spearmanr`), Fisher-z confidence intervals, a seeded
//! percentile bootstrap, Benjamini–Hochberg adjustment and the paper's significance stars.

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// A correlation coefficient over `n` pairs and its two-sided p-value (t distribution with
/// n - 2 degrees of freedom).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Correlation {
    pub n: usize,
    pub r: f64,
    pub p: f64,
}

fn is_constant(v: &[f64]) -> bool {
    v.iter().all(|&x| x == v[0])
}

/// Pearson's r. None when n < 3 or either variable is constant (r undefined).
pub fn pearson(x: &[f64], y: &[f64]) -> Option<Correlation> {
    assert_eq!(x.len(), y.len());
    let n = x.len();
    if n < 3 || is_constant(x) || is_constant(y) {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n as f64;
    let (mx, my) = (mean(x), mean(y));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    // One square root of the product: √a·√b rounds twice, and perfectly related ranks of
    // three points then give |r| = 1 - 2e-16, whose p (df = 1) is 1e-8 instead of 0.
    let r = (sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0);
    Some(Correlation {
        n,
        r,
        p: two_sided_p(r, n),
    })
}

/// Spearman's rho: Pearson's r on the ranks (ties get their average rank), with the
/// t-distribution p-value, as `scipy.stats.spearmanr`.
pub fn spearman(x: &[f64], y: &[f64]) -> Option<Correlation> {
    pearson(&ranks(x), &ranks(y))
}

/// 1-based ranks, ties sharing the mean of the ranks they span.
pub fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut out = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            out[k] = rank;
        }
        i = j + 1;
    }
    out
}

/// Two-sided p-value of a correlation `r` over `n` pairs: t = r √((n-2)/(1-r²)), df = n-2.
/// The paper computed it with n = number of answers; `pearson_p_paper` reuses this with that n.
pub fn two_sided_p(r: f64, n: usize) -> f64 {
    assert!(n >= 3, "a p-value needs at least 3 pairs");
    if r.abs() >= 1.0 {
        return 0.0;
    }
    let df = (n - 2) as f64;
    let t = r * (df / ((1.0 - r) * (1.0 + r))).sqrt();
    let dist = StudentsT::new(0.0, 1.0, df).expect("df > 0");
    2.0 * dist.sf(t.abs())
}

/// Two-sided normal quantile for a confidence level, e.g. 1.959963984540054 for 0.95.
fn z_crit(level: f64) -> f64 {
    Normal::new(0.0, 1.0)
        .expect("standard normal")
        .inverse_cdf((1.0 + level) / 2.0)
}

/// Fisher-z confidence interval for Pearson's r: tanh(atanh(r) ± z/√(n-3)), as scipy's
/// `pearsonr(...).confidence_interval()`. None when n ≤ 3 (scipy then returns (-1, 1)).
pub fn fisher_ci(r: f64, n: usize, level: f64) -> Option<(f64, f64)> {
    if n <= 3 {
        return None;
    }
    if r.abs() >= 1.0 {
        return Some((r, r));
    }
    let z = r.atanh();
    let half = z_crit(level) / ((n - 3) as f64).sqrt();
    Some(((z - half).tanh(), (z + half).tanh()))
}

/// Benjamini–Hochberg adjusted p-values over the defined entries (None stays None and does
/// not count towards m), as `scipy.stats.false_discovery_control(method="bh")`.
pub fn benjamini_hochberg(p: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut idx: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_some()).collect();
    idx.sort_by(|&a, &b| p[a].unwrap().total_cmp(&p[b].unwrap()));
    let m = idx.len() as f64;
    let mut out = vec![None; p.len()];
    let mut running_min = 1.0f64;
    for (rank, &i) in idx.iter().enumerate().rev() {
        let adjusted = p[i].unwrap() * m / (rank + 1) as f64;
        running_min = running_min.min(adjusted);
        out[i] = Some(running_min);
    }
    out
}

/// The paper's significance stars: * p<0.05, ** p<0.01, *** p<0.001.
pub fn stars(p: f64) -> &'static str {
    if p < 0.001 {
        "***"
    } else if p < 0.01 {
        "**"
    } else if p < 0.05 {
        "*"
    } else {
        ""
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny generator that is easy to reimplement
/// bit for bit (tests/fixtures/stats/gen_stats_fixture.py does, in Python).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Percentile bootstrap confidence intervals for Pearson's r and Spearman's rho over pairs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapCi {
    pub resamples: usize,
    /// Resamples where r (resp. rho) is defined: a resample can draw a constant variable.
    pub valid_pearson: usize,
    pub valid_spearman: usize,
    pub pearson: Option<(f64, f64)>,
    pub spearman: Option<(f64, f64)>,
}

/// The algorithm, so that another implementation can reproduce it exactly: a fresh
/// `SplitMix64::new(seed)` per call; for each of `resamples` resamples draw n indices as
/// `next_u64() % n` (n ≤ a few hundred, so the modulo bias is below 1e-16); compute r and rho
/// on the resampled pairs, skipping resamples where one is undefined; the interval is the
/// (1-level)/2 and (1+level)/2 quantiles of the defined values with linear interpolation
/// (numpy's default `np.percentile`). None when n < 3 or fewer than 2 resamples are defined.
pub fn bootstrap_ci(x: &[f64], y: &[f64], resamples: usize, seed: u64, level: f64) -> BootstrapCi {
    assert_eq!(x.len(), y.len());
    let n = x.len();
    let mut rs = Vec::with_capacity(resamples);
    let mut rhos = Vec::with_capacity(resamples);
    if n >= 3 {
        let mut rng = SplitMix64::new(seed);
        let (mut bx, mut by) = (vec![0.0; n], vec![0.0; n]);
        for _ in 0..resamples {
            for k in 0..n {
                let i = (rng.next_u64() % n as u64) as usize;
                bx[k] = x[i];
                by[k] = y[i];
            }
            if let Some(c) = pearson(&bx, &by) {
                rs.push(c.r);
            }
            if let Some(c) = spearman(&bx, &by) {
                rhos.push(c.r);
            }
        }
    }
    let interval = |v: &mut Vec<f64>| {
        (v.len() >= 2).then(|| {
            v.sort_by(f64::total_cmp);
            let q = (1.0 - level) / 2.0;
            (quantile(v, q), quantile(v, 1.0 - q))
        })
    };
    BootstrapCi {
        resamples,
        valid_pearson: rs.len(),
        valid_spearman: rhos.len(),
        pearson: interval(&mut rs),
        spearman: interval(&mut rhos),
    }
}

/// Quantile `q` in [0, 1] of sorted values, linear interpolation between closest ranks.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_matches_scipy() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let y = [2.0, 1.0, 4.0, 3.0, 6.0, 5.0];
        // scipy.stats.pearsonr(x, y): statistic 0.8285714285714286, pvalue 0.04156268221574347
        let p = pearson(&x, &y).unwrap();
        assert!((p.r - 0.828_571_428_571_428_6).abs() < 1e-12, "{}", p.r);
        assert!((p.p - 0.041_562_682_215_743_47).abs() < 1e-12, "{}", p.p);
        assert!(pearson(&x[..2], &y[..2]).is_none());
        assert!(pearson(&x, &[1.0; 6]).is_none());
        let perfect = pearson(&x, &x).unwrap();
        assert_eq!((perfect.r, perfect.p), (1.0, 0.0));
    }

    #[test]
    fn ties_share_their_mean_rank() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn bh_is_monotone_and_skips_undefined() {
        let adj = benjamini_hochberg(&[Some(0.01), None, Some(0.04), Some(0.03)]);
        // m = 3: 0.01*3/1 = 0.03; 0.03*3/2 = 0.045; 0.04*3/3 = 0.04 -> min from the top
        assert_eq!(adj[1], None);
        assert!((adj[0].unwrap() - 0.03).abs() < 1e-15);
        assert!((adj[3].unwrap() - 0.04).abs() < 1e-15);
        assert!((adj[2].unwrap() - 0.04).abs() < 1e-15);
    }

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 0 from the reference C implementation (Vigna, prng.di.unimi.it).
        let mut g = SplitMix64::new(0);
        assert_eq!(g.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(g.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }
}
