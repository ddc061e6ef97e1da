//! Checks the Python version (with a message in the terms of whoever builds subactor,
//! see `subactor-build`), exposes PyO3's `Py_3_*` cfgs, embeds an rpath so that this
//! crate's tests find libpython without `LD_LIBRARY_PATH`, and reads the layout of
//! CPython's small-object allocator from the interpreter's own headers (see
//! `obmalloc_probe.c` and `src/ffi/reclaim.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

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
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let layout = match probe_obmalloc(config.executable(), &out) {
        Ok(layout) => layout,
        Err(why) => {
            println!(
                "cargo:warning=subactor-host: the layout of CPython's allocator could not be read ({why}); \
                 interpreters that end will keep their allocator memory (see ARCHITECTURE.md, \"Memory of ended \
                 interpreters\")"
            );
            "None".to_owned()
        }
    };
    std::fs::write(out.join("obmalloc_layout.rs"), format!("{layout}\n")).expect("write OUT_DIR/obmalloc_layout.rs");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=obmalloc_probe.c");
}

/// Compiles and runs `obmalloc_probe.c` against the interpreter's internal headers;
/// answers the Rust expression it prints (`None` when the build has no such allocator).
fn probe_obmalloc(executable: Option<&str>, out: &Path) -> Result<String, String> {
    if std::env::var("TARGET").ok() != std::env::var("HOST").ok() {
        return Err("cross-compiling: the probe cannot run here".into());
    }
    let python = executable.ok_or("no interpreter executable known")?;
    let include = Command::new(python)
        .args(["-c", "import sysconfig; print(sysconfig.get_path('include'))"])
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    let include = String::from_utf8_lossy(&include.stdout).trim().to_owned();
    if !Path::new(&include).join("internal").join("pycore_obmalloc.h").exists() {
        return Err(format!("{include} has no internal headers"));
    }
    let probe = out.join("obmalloc_probe");
    let compiler = cc::Build::new().cargo_metadata(false).cargo_warnings(false).get_compiler();
    let status = compiler
        .to_command()
        .arg(format!("-I{include}"))
        .arg("obmalloc_probe.c")
        .arg("-o")
        .arg(&probe)
        .status()
        .map_err(|e| format!("cannot run the C compiler: {e}"))?;
    if !status.success() {
        return Err(format!("the C compiler failed ({status})"));
    }
    let output = Command::new(&probe).output().map_err(|e| format!("cannot run the probe: {e}"))?;
    if !output.status.success() {
        return Err(format!("the probe failed ({})", output.status));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
