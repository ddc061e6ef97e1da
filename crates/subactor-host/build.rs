//! Checks the Python version (with a message in the terms of whoever builds subactor,
//! see `subactor-build`), exposes PyO3's `Py_3_*` cfgs and embeds an rpath so that this
//! crate's tests find libpython without `LD_LIBRARY_PATH`.

fn main() {
    let config = subactor_build::checked_config();
    pyo3_build_config::print_expected_cfgs();
    pyo3_build_config::use_pyo3_cfgs();
    pyo3_build_config::add_libpython_rpath_link_args();
    // The interpreter found at build time: the embedded Python uses it as its program
    // name, so that `sys.executable` and `sys.prefix` are those of that installation.
    if let Some(executable) = config.executable() {
        println!("cargo:rustc-env=SUBACTOR_BUILD_PYTHON={executable}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
