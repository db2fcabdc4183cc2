//! proto: to be written.
