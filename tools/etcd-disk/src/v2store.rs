//! v2store: to be written.
