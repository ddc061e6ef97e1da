//! The one line an application that spawns Python actors needs in its build script:
//! it checks the CPython that PyO3 chose for this build (3.12 or newer, with a shared
//! libpython; see `.cargo/config.toml` for the choice) and embeds libpython's folder in
//! the binary, which then starts without `LD_LIBRARY_PATH`.

fn main() {
    subactor_build::link_python();
}
