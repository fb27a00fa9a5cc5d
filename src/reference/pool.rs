//! Placeholder: references for the pool kernels (being written).
