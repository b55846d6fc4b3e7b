//! The one version number ([workspace.package] in Cargo.toml) is the one everywhere else: the C
//! header's `SIO_VERSION_*`, `sio_version()`, the npm package and its platform packages.

use std::ffi::CStr;

fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `"version"` of a package.json.
fn npm_version(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    json["version"].as_str().unwrap_or_else(|| panic!("{}: no version", path.display())).to_owned()
}

#[test]
fn the_c_header_and_library_carry_the_crate_version() {
    let parts = [sioadapter::ffi::SIO_VERSION_MAJOR, sioadapter::ffi::SIO_VERSION_MINOR, sioadapter::ffi::SIO_VERSION_PATCH];
    let expected = [env!("CARGO_PKG_VERSION_MAJOR"), env!("CARGO_PKG_VERSION_MINOR"), env!("CARGO_PKG_VERSION_PATCH")].map(|p| p.parse::<u32>().unwrap());
    assert_eq!(parts, expected, "SIO_VERSION_* in src/ffi/mod.rs: set them to {}", env!("CARGO_PKG_VERSION"));
    // SAFETY: sio_version returns a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(sioadapter::ffi::sio_version()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn the_npm_packages_carry_the_crate_version() {
    assert_eq!(npm_version(&root().join("npm/package.json")), env!("CARGO_PKG_VERSION"), "npm/package.json: set its version to the one in Cargo.toml");
    let platforms = std::fs::read_dir(root().join("npm/platforms")).expect("npm/platforms");
    let mut seen = 0;
    for dir in platforms {
        let manifest = dir.expect("npm/platforms entry").path().join("package.json");
        assert_eq!(npm_version(&manifest), env!("CARGO_PKG_VERSION"), "{}: run `node npm/scripts/platforms.js sync`", manifest.display());
        seen += 1;
    }
    assert!(seen >= 7, "npm/platforms holds {seen} platform packages");
}
