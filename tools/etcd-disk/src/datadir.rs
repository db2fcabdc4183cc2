//! datadir: to be written.
