//! Manifest (todo)
