//! snap: to be written.
