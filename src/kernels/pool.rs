//! Placeholder: the pool kernels (being written).
