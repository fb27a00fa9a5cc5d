//! Placeholder: datasets (being written).
