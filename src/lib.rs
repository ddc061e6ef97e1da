//! subactor
