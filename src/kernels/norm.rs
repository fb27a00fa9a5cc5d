//! Placeholder: the norm kernels (being written).
