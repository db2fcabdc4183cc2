//! bolt: to be written.
