//! Gives the shared library its SONAME, `libsioadapter.so.<major>` (one ABI per major version of
//! the workspace's one version number), on ELF platforms.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if matches!(os.as_str(), "linux" | "android" | "freebsd" | "netbsd" | "openbsd" | "dragonfly") {
        let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("set by cargo");
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libsioadapter.so.{major}");
    }
}
