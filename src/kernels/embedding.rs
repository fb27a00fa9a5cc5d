//! Placeholder: the embedding kernels (being written).
