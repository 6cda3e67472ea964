//! How well a per-country number (the high-side share) separates the countries on the high
//! side of a dimension (score > 50) from those on the low side: the paper's Table 3.

/// Separation of two classes by a score, higher meaning "more likely high side".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Separation {
    pub n: usize,
    pub n_high_side: usize,
    /// Accuracy of "high side iff share > 0.5".
    pub accuracy_at_half: f64,
    /// The threshold t of the rule "high side iff share >= t" with the best accuracy (the
    /// smallest such t; +inf = "everything low").
    pub best_threshold: f64,
    pub best_accuracy: f64,
    /// Area under the ROC curve: P(a high-side country's share > a low-side one's), ties
    /// counting one half (the Mann–Whitney U statistic over n_high · n_low). None when one
    /// class is empty.
    pub roc_auc: Option<f64>,
}

pub fn separation(share: &[f64], high_side: &[bool]) -> Option<Separation> {
    assert_eq!(share.len(), high_side.len());
    let n = share.len();
    if n == 0 {
        return None;
    }
    let accuracy = |predict: &dyn Fn(f64) -> bool| {
        let right = share
            .iter()
            .zip(high_side)
            .filter(|(&s, &h)| predict(s) == h)
            .count();
        right as f64 / n as f64
    };
    let mut thresholds: Vec<f64> = share.to_vec();
    thresholds.sort_by(f64::total_cmp);
    thresholds.dedup();
    thresholds.push(f64::INFINITY);
    let (mut best_threshold, mut best_accuracy) = (f64::NAN, -1.0);
    for &t in &thresholds {
        let acc = accuracy(&|s| s >= t);
        if acc > best_accuracy {
            (best_threshold, best_accuracy) = (t, acc);
        }
    }
    let pos: Vec<f64> = (0..n).filter(|&i| high_side[i]).map(|i| share[i]).collect();
    let neg: Vec<f64> = (0..n)
        .filter(|&i| !high_side[i])
        .map(|i| share[i])
        .collect();
    let roc_auc = (!pos.is_empty() && !neg.is_empty()).then(|| {
        let mut u = 0.0;
        for &p in &pos {
            for &q in &neg {
                u += if p > q {
                    1.0
                } else if p == q {
                    0.5
                } else {
                    0.0
                };
            }
        }
        u / (pos.len() * neg.len()) as f64
    });
    Some(Separation {
        n,
        n_high_side: pos.len(),
        accuracy_at_half: accuracy(&|s| s > 0.5),
        best_threshold,
        best_accuracy,
        roc_auc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_and_tied_separation() {
        let s = separation(&[0.9, 0.8, 0.2, 0.1], &[true, true, false, false]).unwrap();
        assert_eq!((s.best_accuracy, s.best_threshold), (1.0, 0.8));
        assert_eq!(s.roc_auc, Some(1.0));
        let s = separation(&[0.5, 0.5], &[true, false]).unwrap();
        assert_eq!(s.roc_auc, Some(0.5));
        assert_eq!(s.best_accuracy, 0.5);
        let s = separation(&[0.3, 0.4], &[false, false]).unwrap();
        assert_eq!(s.roc_auc, None);
        assert_eq!((s.best_accuracy, s.best_threshold), (1.0, f64::INFINITY));
    }
}
