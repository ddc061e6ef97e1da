// Shared by the build scripts of every package that links libpython.

fn main() {
    let config = pyo3_build_config::get();
    let found = config.version();
    if found.major != 3 || found.minor < 12 {
        let executable = config.executable().unwrap_or("an unknown interpreter");
        eprintln!(
            "error: subactor needs CPython >= 3.12 (own-GIL subinterpreters, PEP 684), \
             but PyO3 found Python {found} at {executable}.\n\
             Unset PYO3_PYTHON to let .cargo/python3 pick one, or set \
             PYO3_PYTHON=/path/to/python3.13 (3.13 is recommended)."
        );
        std::process::exit(1);
    }
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
