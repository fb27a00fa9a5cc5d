//! Placeholder: the conv kernels (being written).
