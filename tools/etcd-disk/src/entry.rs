//! entry: to be written.
