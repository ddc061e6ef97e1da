//! Build-script support for Rust applications that depend on `subactor`.
//!
//! An application that spawns Python actors links libpython (through `subactor`), so its
//! binary must know where libpython lives: its folder embedded in the binary (the rpath)
//! lets it start without `LD_LIBRARY_PATH`. Cargo does not pass link arguments from a
//! dependency to the binaries that use it, so one line in the application's own
//! `build.rs` does it:
//!
//! ```no_run
//! // build.rs
//! fn main() {
//!     subactor_build::link_python();
//! }
//! ```
//!
//! with, in the application's `Cargo.toml`:
//!
//! ```toml
//! [dependencies]
//! subactor = { path = "../subactor" }
//!
//! [build-dependencies]
//! subactor-build = { path = "../subactor/crates/subactor-build" }
//! ```
//!
//! Which interpreter: PyO3's choice, made once per build. It takes `PYO3_PYTHON` if set
//! (`[env]` in the application's `.cargo/config.toml` is the place for it), else the
//! active virtualenv's, else `python3` on `PATH`. subactor's template application
//! (`examples/rust-app`) sets `PYO3_PYTHON` to subactor's finder (`.cargo/python3`),
//! which picks a suitable CPython on every machine. subactor's own build checks the
//! choice ([`checked_config`]: CPython 3.12 or newer, a shared libpython, not
//! free-threaded) and, when it does not suit, stops with a message that says what to
//! write where, naming an interpreter that suits if the machine has one.

// The example above is a whole build script, `fn main` included.
#![allow(clippy::needless_doctest_main)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// For an application's `build.rs`: embeds the folder of the libpython that `subactor`
/// links (which `subactor`'s own build checked and passes down) as the rpath of the
/// package's binaries, examples, tests and benchmarks.
///
/// The package must depend on `subactor` directly: Cargo hands a dependency's build
/// metadata (`DEP_SUBACTOR_*`) to direct dependents only. Otherwise the build stops with
/// a message saying so.
pub fn link_python() {
    println!("cargo:rerun-if-env-changed=DEP_SUBACTOR_LIBPYTHON_DIR");
    match std::env::var("DEP_SUBACTOR_LIBPYTHON_DIR") {
        Ok(dir) if !dir.is_empty() => println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}"),
        // subactor's build found no library folder to embed (a static libpython, a
        // platform without rpath): nothing to add.
        Ok(_) => {}
        Err(_) => {
            eprintln!(
                "error: subactor_build::link_python() embeds the libpython that `subactor` links, which Cargo \
                 tells only the build scripts of packages that depend on `subactor` directly.\n\
                 Add it to this package's [dependencies] in Cargo.toml, for example:\n\n    \
                 subactor = {{ path = \"../subactor\" }}\n"
            );
            std::process::exit(1);
        }
    }
}

/// For the build scripts of subactor's own crates (which depend on `pyo3-ffi`
/// directly, as `pyo3_build_config::get` requires): PyO3's interpreter configuration,
/// once checked: CPython >= 3.12, a shared libpython, not free-threaded. Otherwise the
/// build stops (exit status 1) with a message that says how to choose another
/// interpreter, in the terms of the application being built.
pub fn checked_config() -> &'static pyo3_build_config::InterpreterConfig {
    let config = pyo3_build_config::get();
    if let Some(problem) = problem(config) {
        eprintln!("{}", message(config, &problem));
        std::process::exit(1);
    }
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    config
}

/// For the build script of the `subactor` crate itself (which has `links = "subactor"`):
/// embeds libpython's rpath in its own tests, examples and benchmarks, and passes the
/// library folder down to the build scripts of direct dependents, where
/// [`link_python`] embeds it.
pub fn link_and_export(config: &pyo3_build_config::InterpreterConfig) {
    pyo3_build_config::add_libpython_rpath_link_args();
    println!("cargo:libpython_dir={}", config.lib_dir().unwrap_or_default());
}

/// What makes this interpreter unusable for subactor, if anything.
fn problem(config: &pyo3_build_config::InterpreterConfig) -> Option<String> {
    let version = config.version();
    if config.implementation() != pyo3_build_config::PythonImplementation::CPython {
        return Some(format!("it is {:?}, not CPython", config.implementation()));
    }
    if version.major != 3 || version.minor < 12 {
        return Some(format!("it is Python {version}; subactor needs 3.12 or newer"));
    }
    if !config.shared() {
        return Some("it was built without a shared libpython (--enable-shared)".into());
    }
    if config.is_free_threaded() {
        return Some("it is a free-threaded build; subactor needs the default (GIL) build".into());
    }
    None
}

/// The message for an unusable interpreter, in the terms of the application being built.
fn message(config: &pyo3_build_config::InterpreterConfig, problem: &str) -> String {
    let found = config.executable().unwrap_or("an unknown interpreter");
    let source = if std::env::var_os("PYO3_PYTHON").is_some() {
        "PYO3_PYTHON"
    } else if std::env::var_os("VIRTUAL_ENV").is_some() {
        "the active virtualenv"
    } else {
        "`python3` on PATH"
    };
    let suggestion = match suitable_interpreter() {
        Some(path) => format!("PYO3_PYTHON = \"{}\"", path.display()),
        None => "PYO3_PYTHON = \"/path/to/python3.13\"".into(),
    };
    let mut text = format!(
        "error: subactor cannot use the Python that PyO3 found for this build: {found} (from {source}): {problem}.\n\
         subactor runs every actor in an own-GIL subinterpreter (PEP 684): it needs CPython 3.12 or newer \
         (3.13 recommended), built with a shared libpython.\n\n\
         Choose the interpreter in your application's .cargo/config.toml (next to its Cargo.toml{}):\n\n    \
         [env]\n    {suggestion}\n",
        application_dir().map(|dir| format!(", here {}", dir.display())).unwrap_or_default(),
    );
    if source == "PYO3_PYTHON" {
        text.push_str(
            "\n(If PYO3_PYTHON is set in your shell's environment, it wins over the file: unset it, or set it \
             to a suitable interpreter.)\n",
        );
    }
    match finder() {
        Some(finder) => text.push_str(&format!(
            "\nor let subactor's finder pick one on every machine (it checks the version and the shared \
             library):\n\n    [env]\n    PYO3_PYTHON = \"{}\"\n",
            finder.display()
        )),
        None => text.push_str(
            "\nNo suitable interpreter was found on this machine: install one (for example with pyenv: \
             PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install 3.13).\n",
        ),
    }
    text
}

/// subactor's interpreter finder (`.cargo/python3` of the subactor source this crate
/// comes from), when it is there (a clone or a git dependency).
fn finder() -> Option<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let finder = here.parent()?.parent()?.join(".cargo").join("python3");
    finder.is_file().then_some(finder)
}

/// A suitable interpreter on this machine, as the finder picks it.
fn suitable_interpreter() -> Option<PathBuf> {
    let output = Command::new(finder()?).args(["-c", "import sys; print(sys.executable)"]).output().ok()?;
    let path = String::from_utf8(output.stdout).ok()?;
    let path = PathBuf::from(path.trim());
    (output.status.success() && path.is_file()).then_some(path)
}

/// The directory of the package being built, when this runs in an application's own
/// build script; otherwise (a dependency's build script) the workspace root Cargo's
/// target folder suggests.
fn application_dir() -> Option<PathBuf> {
    // In a dependency's build script, CARGO_MANIFEST_DIR is that dependency's folder;
    // OUT_DIR is <target>/<profile>/build/<package>-<hash>/out under the root.
    let out = PathBuf::from(std::env::var_os("OUT_DIR")?);
    let target = out.ancestors().nth(4)?;
    let root = target.parent()?;
    root.join("Cargo.toml").is_file().then(|| root.to_path_buf())
}
