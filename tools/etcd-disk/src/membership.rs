//! membership: to be written.
