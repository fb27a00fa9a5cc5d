//! Placeholder: references for the dropout kernels (being written).
