//! The facade links libpython through subactor-host: its own tests, examples and
//! benchmarks need libpython's rpath, and the applications that depend on it need to
//! know where libpython is (they embed it with `subactor_build::link_python`).

fn main() {
    let config = subactor_build::checked_config();
    // The rpath of our own tests, examples and benchmarks, and libpython's folder for
    // the build scripts of applications (`links = "subactor"` in Cargo.toml).
    subactor_build::link_and_export(config);
    println!("cargo:rerun-if-changed=build.rs");
}
