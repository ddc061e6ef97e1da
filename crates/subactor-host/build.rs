//! Checks the Python version, exposes PyO3's `Py_3_*` cfgs and embeds an rpath so that
//! this crate's tests find libpython without `LD_LIBRARY_PATH`.

include!("build/python.rs");
