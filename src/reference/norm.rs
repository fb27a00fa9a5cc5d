//! Placeholder: references for the norm kernels (being written).
