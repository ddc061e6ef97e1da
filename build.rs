//! The facade links libpython through subactor-host, so its own tests, examples and
//! benchmarks need the same version check and rpath.

include!("crates/subactor-host/build/python.rs");
