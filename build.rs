//! Gives the shared library its SONAME on Linux, `libtel.so.<abi-major>` (`abi-major` in
//! `[package.metadata.tel]` of Cargo.toml): a program linked against it records that name, so
//! the library can be installed beside others of another ABI major (docs/abi.md, "Versions").
//! That is all a build needs; the C header is generated and checked by `tests/header.rs`.

fn main() {
    println!("cargo:rerun-if-changed=Cargo.toml");
    let manifest =
        std::path::Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").unwrap()).join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let major = abi_major(&text).unwrap_or_else(|| {
        panic!(
            "{}: no `abi-major = <number>` in [package.metadata.tel]",
            manifest.display()
        )
    });
    // Android's loader and packaging expect the plain `libtel.so`; other systems are not
    // built for yet.
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtel.so.{major}");
    }
}

/// `abi-major` of the `[package.metadata.tel]` table: the two lines that hold it are all that
/// is read, which keeps TOML parsing out of the build.
fn abi_major(manifest: &str) -> Option<u32> {
    let mut in_table = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_table = line == "[package.metadata.tel]";
        } else if in_table {
            if let Some(value) = line
                .strip_prefix("abi-major")
                .and_then(|rest| rest.trim_start().strip_prefix('='))
            {
                return value.split('#').next()?.trim().parse().ok();
            }
        }
    }
    None
}
