//! Placeholder: the attention kernels (being written).
