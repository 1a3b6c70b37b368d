//! Packet views (in progress).
