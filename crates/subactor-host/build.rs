//! Build script shared by every package that links libpython (the root package
//! includes this file): checks the Python version, exposes PyO3's `Py_3_*` cfgs
//! and embeds an rpath so tests, examples and binaries find libpython without
//! `LD_LIBRARY_PATH`.

fn main() {
    let config = pyo3_build_config::get();
    let found = config.version;
    if found.major != 3 || found.minor < 12 {
        let executable = config
            .executable
            .as_deref()
            .unwrap_or("an unknown interpreter");
        eprintln!(
            "error: subactor needs CPython >= 3.12 (own-GIL subinterpreters, PEP 684), \
             but PyO3 found Python {found} at {executable}.\n\
             Unset PYO3_PYTHON to let .cargo/python3 pick one, or set \
             PYO3_PYTHON=/path/to/python3.13 (3.13 is recommended)."
        );
        std::process::exit(1);
    }
    pyo3_build_config::use_pyo3_cfgs();
    pyo3_build_config::add_libpython_rpath_link_args();
    println!("cargo:rerun-if-changed=build.rs");
}
