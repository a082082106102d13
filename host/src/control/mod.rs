//! Control (todo)
