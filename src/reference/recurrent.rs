//! Placeholder: references for the recurrent kernels (being written).
