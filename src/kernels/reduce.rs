//! Placeholder: the reduce kernel (being written).
