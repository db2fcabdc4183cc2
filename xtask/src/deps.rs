//! deps: being written.
