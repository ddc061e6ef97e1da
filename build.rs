// The facade links libpython through subactor-host, so it needs the same checks
// and rpath for its own tests, examples and benchmarks.
include!("crates/subactor-host/build.rs");
