//! Placeholder: references for the cross_entropy kernels (being written).
