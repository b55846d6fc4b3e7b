//! The committed C header is exactly what cbindgen generates from `src/ffi` (no drift).
//! Regenerate it with `SIOADAPTER_WRITE_HEADER=1 cargo build`.

#[test]
fn committed_header_matches_the_generated_one() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/sioadapter.h"));
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/sioadapter.h")).expect("include/sioadapter.h");
    assert!(committed == generated, "include/sioadapter.h is out of date: run `SIOADAPTER_WRITE_HEADER=1 cargo build` and commit it");
}
