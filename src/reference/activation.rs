//! Placeholder: references for the activation kernels (being written).
