//! Placeholder: references for the embedding kernels (being written).
