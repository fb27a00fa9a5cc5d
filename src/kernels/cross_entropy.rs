//! Placeholder: the cross_entropy kernels (being written).
