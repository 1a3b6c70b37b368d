//! Routing tables (in progress).
