//! Placeholder: the activation kernels (being written).
