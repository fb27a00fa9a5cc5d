//! Mini-batches: an iterator over `(images, labels)` with optional seeded shuffling per epoch,
//! optional augmentation, and one-hot targets.

use super::{augment, Dataset, Rng};
use crate::{Error, Result};

/// Iterates over a [`Dataset`] in mini-batches of `(images, labels)`: `images` is
/// `(b, 1, rows, cols)` row-major, `labels` has `b` entries. The last batch is smaller when the
/// batch size does not divide `n`, unless [`drop_last`](Self::drop_last) is set.
///
/// ```
/// use kiln::data::{procedural_digits, Batches};
/// let ds = procedural_digits(10, 3);
/// let sizes: Vec<usize> = Batches::new(&ds, 4)?.map(|(_, y)| y.len()).collect();
/// assert_eq!(sizes, vec![4, 4, 2]);
/// let sizes: Vec<usize> = Batches::new(&ds, 4)?.drop_last(true).map(|(_, y)| y.len()).collect();
/// assert_eq!(sizes, vec![4, 4]);
/// # Ok::<(), kiln::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Batches<'a> {
    data: &'a Dataset,
    order: Vec<usize>,
    pos: usize,
    batch_size: usize,
    drop_last: bool,
    augment: Option<(f32, f32, Rng)>,
}

impl<'a> Batches<'a> {
    /// Batches of `batch_size` images in stored order. Fails for `batch_size == 0` or when the
    /// data set's fields disagree (`images.len() != n * rows * cols` or `labels.len() != n`).
    pub fn new(data: &'a Dataset, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::invalid("batches", "batch size must be at least 1"));
        }
        if data.labels.len() != data.n
            || Some(data.images.len()) != data.n.checked_mul(data.pixels())
        {
            return Err(Error::invalid(
                "batches",
                format!(
                    "data set fields disagree: n = {}, {} labels, {} pixels for {}x{} images",
                    data.n,
                    data.labels.len(),
                    data.images.len(),
                    data.rows,
                    data.cols
                ),
            ));
        }
        Ok(Batches {
            data,
            order: (0..data.n).collect(),
            pos: 0,
            batch_size,
            drop_last: false,
            augment: None,
        })
    }

    /// Visits the images in a random order determined by `(seed, epoch)`: a Fisher-Yates
    /// shuffle with [`Rng::with_stream`]`(seed, epoch)`, so each epoch gets a different,
    /// reproducible order.
    pub fn shuffle(mut self, seed: u64, epoch: u64) -> Self {
        self.order = (0..self.data.n).collect();
        Rng::with_stream(seed, epoch).shuffle(&mut self.order);
        self
    }

    /// Whether to skip a final batch smaller than the batch size.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Applies [`augment::random_shift_rotate`] to every image, with shifts up to `max_shift`
    /// pixels and rotations up to `max_degrees`, drawn from `Rng::with_stream(seed, epoch)`.
    pub fn augment(mut self, max_shift: f32, max_degrees: f32, seed: u64, epoch: u64) -> Self {
        // A stream of its own, so augmenting does not change the shuffle order.
        let rng = Rng::with_stream(seed ^ 0xA5A5_A5A5_A5A5_A5A5, epoch);
        self.augment = Some((max_shift, max_degrees, rng));
        self
    }

    /// The number of batches still to come.
    fn remaining(&self) -> usize {
        let left = self.order.len() - self.pos;
        if self.drop_last {
            left / self.batch_size
        } else {
            left.div_ceil(self.batch_size)
        }
    }
}

impl Iterator for Batches<'_> {
    type Item = (Vec<f32>, Vec<u8>);

    fn next(&mut self) -> Option<Self::Item> {
        let left = self.order.len() - self.pos;
        let b = left.min(self.batch_size);
        if b == 0 || (self.drop_last && b < self.batch_size) {
            return None;
        }
        let (rows, cols) = (self.data.rows, self.data.cols);
        let mut images = Vec::with_capacity(b * rows * cols);
        let mut labels = Vec::with_capacity(b);
        for &i in &self.order[self.pos..self.pos + b] {
            // Indices come from 0..n and `new` checked the sizes, so these are present.
            let (Some(img), Some(&label)) = (self.data.image(i), self.data.labels.get(i)) else {
                return None;
            };
            match &mut self.augment {
                Some((shift, degrees, rng)) => images.extend(augment::random_shift_rotate(
                    img, rows, cols, *shift, *degrees, rng,
                )),
                None => images.extend_from_slice(img),
            }
            labels.push(label);
        }
        self.pos += b;
        Some((images, labels))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.remaining();
        (n, Some(n))
    }
}

impl ExactSizeIterator for Batches<'_> {}

/// One-hot targets: `(labels.len(), classes)` row-major, 1 at each label's column, 0 elsewhere.
/// Fails if a label is not below `classes`.
///
/// ```
/// assert_eq!(kiln::data::one_hot(&[2, 0], 3)?, vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
/// # Ok::<(), kiln::Error>(())
/// ```
pub fn one_hot(labels: &[u8], classes: usize) -> Result<Vec<f32>> {
    let mut out = vec![0.0; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        let l = l as usize;
        if l >= classes {
            return Err(Error::invalid(
                "one_hot",
                format!("label {l} at position {i} is not below the class count {classes}"),
            ));
        }
        out[i * classes + l] = 1.0;
    }
    Ok(out)
}
