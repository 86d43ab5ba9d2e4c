//! Generates the C header from the Rust source. The checked-in `include/tel.h` is compared with a
//! fresh generation by `tests/header.rs`; set `TEL_WRITE_HEADER=1` to rewrite it.

include!("tools/header.rs");

fn main() {
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=tools/header.rs");
    println!("cargo:rerun-if-env-changed=TEL_WRITE_HEADER");
    let dir = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    match generate_header(&dir) {
        Ok(header) => {
            std::fs::write(out.join("tel.h"), &header).unwrap();
            if std::env::var_os("TEL_WRITE_HEADER").is_some_and(|v| v == "1") {
                std::fs::write(dir.join("include/tel.h"), &header).unwrap();
            }
        }
        Err(e) => println!("cargo:warning=tel.h not generated: {e}"),
    }
}
