//! snapshot: to be written.
