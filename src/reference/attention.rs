//! Placeholder: references for the attention kernels (being written).
