//! Data sets for training: the IDX format of MNIST and Fashion-MNIST ([`idx`]), a procedural
//! handwritten-digit set that kiln draws itself ([`digits`]), mini-batches with seeded shuffling
//! ([`batch`]) and image augmentation ([`augment`]).
//!
//! Everything here works from bytes in memory, so it runs in the browser too; only the
//! file-system loaders ([`Dataset::load_idx_dir`], [`idx::read_file`]) are native-only.
//!
//! ```
//! use kiln::data::{procedural_digits, Batches};
//! let train = procedural_digits(100, 1);
//! assert_eq!((train.n, train.rows, train.cols, train.classes), (100, 28, 28, 10));
//! let (folds_train, folds_val) = train.fold(5, 0)?;
//! assert_eq!((folds_train.n, folds_val.n), (80, 20));
//! for (images, labels) in Batches::new(&train, 32)?.shuffle(7, 0) {
//!     assert_eq!(images.len(), labels.len() * 28 * 28); // (b, 1, 28, 28)
//! }
//! # Ok::<(), kiln::Error>(())
//! ```

pub mod augment;
pub mod batch;
pub mod digits;
pub mod idx;
mod rng;

pub use batch::{one_hot, Batches};
pub use digits::procedural_digits;
pub use rng::Rng;

use crate::{Error, Result};

/// A labelled set of single-channel images, stored contiguously.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Pixels, `(n, rows, cols)` row-major, scaled to `[0, 1]` (MNIST polarity: ink is bright).
    pub images: Vec<f32>,
    /// One class index per image, each `< classes`.
    pub labels: Vec<u8>,
    /// Number of images.
    pub n: usize,
    /// Image height in pixels.
    pub rows: usize,
    /// Image width in pixels.
    pub cols: usize,
    /// Number of classes (10 for digits).
    pub classes: usize,
}

impl Dataset {
    /// A data set from its parts, checked: `images.len() == labels.len() * rows * cols`,
    /// `rows, cols > 0` and every label `< classes`.
    pub fn new(
        images: Vec<f32>,
        labels: Vec<u8>,
        rows: usize,
        cols: usize,
        classes: usize,
    ) -> Result<Self> {
        let n = labels.len();
        if rows == 0 || cols == 0 {
            return Err(Error::invalid(
                "dataset",
                format!("images must be at least 1x1, got {rows}x{cols}"),
            ));
        }
        let want = n.checked_mul(rows * cols);
        if want != Some(images.len()) {
            return Err(Error::invalid(
                "dataset",
                format!(
                    "{n} labels of {rows}x{cols} images need {} pixels, got {}",
                    n.saturating_mul(rows * cols),
                    images.len()
                ),
            ));
        }
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|(_, &l)| l as usize >= classes)
        {
            return Err(Error::invalid(
                "dataset",
                format!("label {l} of image {i} is not below the class count {classes}"),
            ));
        }
        Ok(Dataset {
            images,
            labels,
            n,
            rows,
            cols,
            classes,
        })
    }

    /// Pixels per image (`rows * cols`).
    pub fn pixels(&self) -> usize {
        self.rows * self.cols
    }

    /// Image `i` as `(rows, cols)` pixels, or `None` past the end.
    pub fn image(&self, i: usize) -> Option<&[f32]> {
        let p = self.pixels();
        self.images
            .get(i.checked_mul(p)?..i.checked_add(1)?.checked_mul(p)?)
    }

    /// How many images each class has (length `classes`).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// A new data set of the images at `indices`, in that order (repeats allowed).
    /// Fails on an index `>= n`.
    pub fn subset(&self, indices: &[usize]) -> Result<Dataset> {
        let p = self.pixels();
        let mut images = Vec::with_capacity(indices.len() * p);
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            match (self.image(i), self.labels.get(i)) {
                (Some(img), Some(&l)) => {
                    images.extend_from_slice(img);
                    labels.push(l);
                }
                _ => {
                    return Err(Error::invalid(
                        "dataset.subset",
                        format!("index {i} out of range for {} images", self.n),
                    ))
                }
            }
        }
        Ok(Dataset {
            images,
            labels,
            n: indices.len(),
            rows: self.rows,
            cols: self.cols,
            classes: self.classes,
        })
    }

    /// The same images in a random order fixed by `seed` (shuffle once before
    /// [`split`](Self::split) when the stored order is sorted by class).
    pub fn shuffled(&self, seed: u64) -> Result<Dataset> {
        self.subset(&Rng::new(seed).permutation(self.n))
    }

    /// Index ranges of `k` contiguous folds in stored order whose sizes differ by at most one
    /// (fold `j` is `j * n / k .. (j + 1) * n / k`). Needs `1 <= k <= n`.
    fn fold_ranges(&self, k: usize) -> Result<Vec<std::ops::Range<usize>>> {
        if k == 0 || k > self.n {
            return Err(Error::invalid(
                "dataset.split",
                format!("cannot cut {} images into {k} folds", self.n),
            ));
        }
        // n * j fits: n is a Vec length (< isize::MAX) and in practice far below u64 overflow.
        let at = |j: usize| ((self.n as u128 * j as u128) / k as u128) as usize;
        Ok((0..k).map(|j| at(j)..at(j + 1)).collect())
    }

    /// Cuts the data set into `k` contiguous folds whose sizes differ by at most one, for k-fold
    /// cross-validation. Needs `1 <= k <= n`.
    pub fn split(&self, k: usize) -> Result<Vec<Dataset>> {
        self.fold_ranges(k)?
            .into_iter()
            .map(|r| self.subset(&r.collect::<Vec<_>>()))
            .collect()
    }

    /// Fold `i` of `k` (as in [`split`](Self::split)) as validation data and the other `k - 1`
    /// folds, in stored order, as training data: returns `(train, validation)`.
    pub fn fold(&self, k: usize, i: usize) -> Result<(Dataset, Dataset)> {
        let ranges = self.fold_ranges(k)?;
        let Some(val) = ranges.get(i).cloned() else {
            return Err(Error::invalid(
                "dataset.fold",
                format!("fold {i} out of range for {k} folds"),
            ));
        };
        let train: Vec<usize> = (0..self.n).filter(|j| !val.contains(j)).collect();
        Ok((self.subset(&train)?, self.subset(&val.collect::<Vec<_>>())?))
    }

    /// A data set from the bytes of an IDX image file and an IDX label file, raw or gzip
    /// compressed (see [`idx`]). Malformed bytes give an [`Error::Format`] with the reason.
    pub fn from_idx(images: &[u8], labels: &[u8]) -> Result<Dataset> {
        idx::dataset_from_idx(images, labels, "images", "labels")
    }

    /// Loads MNIST-layout IDX files from `dir`: returns `(train, test)` from
    /// `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and
    /// `t10k-labels-idx1-ubyte`, each either raw or with a `.gz` suffix. A missing or
    /// unreadable file gives an [`Error::Io`], a malformed one an [`Error::Format`]; both name
    /// the file.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_idx_dir(dir: impl AsRef<std::path::Path>) -> Result<(Dataset, Dataset)> {
        let dir = dir.as_ref();
        let train = idx::load_pair(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")?;
        let test = idx::load_pair(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")?;
        if (train.rows, train.cols) != (test.rows, test.cols) {
            return Err(Error::format(
                "idx",
                dir,
                format!(
                    "train images are {}x{} but test images are {}x{}",
                    train.rows, train.cols, test.rows, test.cols
                ),
            ));
        }
        let classes = train.classes.max(test.classes);
        Ok((Dataset { classes, ..train }, Dataset { classes, ..test }))
    }
}
