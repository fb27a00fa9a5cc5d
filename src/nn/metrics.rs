//! Classification metrics from a confusion matrix, and k-fold splits.

/// A metric to report during training and evaluation (classification).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Fraction of correct predictions (counted on the GPU during training).
    Accuracy,
    /// Macro-averaged precision.
    Precision,
    /// Macro-averaged recall.
    Recall,
    /// Macro-averaged F1.
    F1,
}

impl Metric {
    /// The metric's value from a confusion matrix.
    pub fn from_confusion(self, c: &Confusion) -> f64 {
        let (p, r, f1) = c.macro_scores();
        match self {
            Metric::Accuracy => c.accuracy(),
            Metric::Precision => p,
            Metric::Recall => r,
            Metric::F1 => f1,
        }
    }

    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::Precision => "precision",
            Metric::Recall => "recall",
            Metric::F1 => "f1",
        }
    }
}

/// A confusion matrix: `counts[truth][predicted]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confusion {
    /// Rows are true classes, columns predicted classes.
    pub counts: Vec<Vec<u64>>,
}

impl Confusion {
    /// Counts pairs of (true, predicted) classes among `classes`.
    pub fn new(classes: usize, truth: &[u32], predicted: &[u32]) -> Self {
        let mut counts = vec![vec![0u64; classes]; classes];
        for (&t, &p) in truth.iter().zip(predicted) {
            if let Some(row) = counts.get_mut(t as usize) {
                if let Some(c) = row.get_mut(p as usize) {
                    *c += 1;
                }
            }
        }
        Confusion { counts }
    }

    /// Fraction predicted correctly.
    pub fn accuracy(&self) -> f64 {
        let total: u64 = self.counts.iter().flatten().sum();
        let right: u64 = (0..self.counts.len()).map(|i| self.counts[i][i]).sum();
        right as f64 / total.max(1) as f64
    }

    /// Per-class precision (0 where nothing was predicted as the class).
    pub fn precision(&self) -> Vec<f64> {
        (0..self.counts.len())
            .map(|c| {
                let predicted: u64 = self.counts.iter().map(|r| r[c]).sum();
                self.counts[c][c] as f64 / predicted.max(1) as f64
            })
            .collect()
    }

    /// Per-class recall (0 for a class with no examples).
    pub fn recall(&self) -> Vec<f64> {
        (0..self.counts.len())
            .map(|c| {
                let actual: u64 = self.counts[c].iter().sum();
                self.counts[c][c] as f64 / actual.max(1) as f64
            })
            .collect()
    }

    /// Per-class F1.
    pub fn f1(&self) -> Vec<f64> {
        self.precision()
            .iter()
            .zip(self.recall())
            .map(|(&p, r)| {
                if p + r > 0.0 {
                    2.0 * p * r / (p + r)
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// Macro averages: (precision, recall, F1).
    pub fn macro_scores(&self) -> (f64, f64, f64) {
        let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
        (mean(self.precision()), mean(self.recall()), mean(self.f1()))
    }
}

/// The index of the largest value in each row of `rows` x `classes` scores.
pub fn argmax_rows(scores: &[f32], classes: usize) -> Vec<u32> {
    scores
        .chunks(classes.max(1))
        .map(|row| {
            let mut best = 0;
            for (i, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = i;
                }
            }
            best as u32
        })
        .collect()
}

/// Splits `0..n` into `k` folds after a seeded shuffle: returns (train, validation) index sets
/// for each fold. Every index is validated exactly once.
pub fn k_fold(n: usize, k: usize, seed: u64) -> Vec<(Vec<usize>, Vec<usize>)> {
    let k = k.clamp(1, n.max(1));
    let mut idx: Vec<usize> = (0..n).collect();
    let mut state = seed ^ 0x9E37_79B9_7F4A_7C15;
    for i in (1..n).rev() {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        idx.swap(i, (z % (i as u64 + 1)) as usize);
    }
    (0..k)
        .map(|f| {
            let (lo, hi) = (f * n / k, (f + 1) * n / k);
            let val = idx[lo..hi].to_vec();
            let train = idx[..lo].iter().chain(&idx[hi..]).copied().collect();
            (train, val)
        })
        .collect()
}
