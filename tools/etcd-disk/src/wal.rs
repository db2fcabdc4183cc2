//! wal: to be written.
