//! Placeholder: filled in by the random work.
