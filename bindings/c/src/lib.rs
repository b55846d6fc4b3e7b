//! `libsioadapter.so` and `libsioadapter.a`: the C ABI of the sioadapter core.
//!
//! The functions, their conventions and the generated header live in the core's `ffi` module
//! (feature `c-api`, `include/sioadapter.h`); this crate only links them into C libraries, so
//! that Rust users of the core are not built as C libraries too. `bindings/c/install.sh`
//! installs the result into a prefix.

pub use sioadapter::ffi::*;
