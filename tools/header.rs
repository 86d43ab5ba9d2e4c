// Included by tests/header.rs: the one way `include/tel.h` is generated.

/// Runs cbindgen over the C ABI of the crate at `crate_dir` (`src/ffi/` only: what is meant to
/// be public, so no internal item can reach the header) with `cbindgen.toml`,
/// adding the version macros from the crate's version so they are never edited by hand.
pub fn generate_header(crate_dir: &std::path::Path) -> Result<String, String> {
    let version = env!("CARGO_PKG_VERSION");
    let mut parts = version.split(['.', '-']);
    let mut next = || parts.next().unwrap_or("0").to_owned();
    let (major, minor, patch) = (next(), next(), next());
    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .map_err(|e| e.to_string())?;
    config.after_includes = Some(format!(
        "\n#define TEL_VERSION \"{version}\"\n#define TEL_VERSION_MAJOR {major}\n/* TEL_VERSION_MINOR >= 2: the ABI 1.1 functions exist (tel_client_*, tel_log_ex,\n * tel_set_delivery_callback, tel_purge); test it with TEL_HAS_ABI_1_1.\n * TEL_VERSION_MINOR >= 3: the ABI 1.2 functions exist (tel_set_consent, tel_consent,\n * tel_set_property, tel_pause, tel_resume and their tel_client_* twins); test it with\n * TEL_HAS_ABI_1_2. */\n#define TEL_VERSION_MINOR {minor}\n#define TEL_VERSION_PATCH {patch}\n#define TEL_HAS_ABI_1_1 (TEL_VERSION_MAJOR > 0 || TEL_VERSION_MINOR >= 2)\n#define TEL_HAS_ABI_1_2 (TEL_VERSION_MAJOR > 0 || TEL_VERSION_MINOR >= 3)\n"
    ));
    // src/ffi/mod.rs and the modules it declares: the C ABI and nothing else.
    let builder = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/ffi/mod.rs"));
    let bindings = builder
        .generate()
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).map_err(|e| e.to_string())
}
