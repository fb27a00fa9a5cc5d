//! Placeholder: references for the conv kernels (being written).
