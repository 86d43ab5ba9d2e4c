//! The checked-in `include/tel.h` must be exactly what cbindgen generates from the source.

include!("../tools/header.rs");

#[test]
fn checked_in_header_matches_a_fresh_generation() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let fresh = generate_header(dir).expect("cbindgen runs");
    let checked_in = std::fs::read_to_string(dir.join("include/tel.h")).unwrap();
    assert!(
        fresh == checked_in,
        "include/tel.h is stale: regenerate it with `TEL_WRITE_HEADER=1 cargo build -p onecollector-tel` and commit it"
    );
}

#[test]
fn header_declares_every_abi_function() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(dir.join("include/tel.h")).unwrap();
    for decl in [
        "tel_status tel_init(const char *config_json);",
        "tel_status tel_log(const char *name, const char *properties_json);",
        "tel_status tel_flush(uint32_t timeout_ms);",
        "tel_status tel_shutdown(uint32_t timeout_ms);",
        "size_t tel_stats_json(char *buf, size_t buf_len);",
        "size_t tel_last_error(char *buf, size_t buf_len);",
        "const char *tel_version(void);",
        "typedef void (*tel_log_fn)(int32_t level, const char *message, void *user_data);",
        "tel_status tel_set_logger(tel_log_fn callback, int32_t max_level, void *user_data);",
        "typedef int32_t tel_status;",
    ] {
        assert!(header.contains(decl), "tel.h lacks {decl}");
    }
    for (name, value) in [
        ("TEL_OK", 0),
        ("TEL_ERR_INVALID_ARGUMENT", 1),
        ("TEL_ERR_INVALID_CONFIG", 2),
        ("TEL_ERR_INVALID_EVENT", 3),
        ("TEL_ERR_NOT_INITIALIZED", 4),
        ("TEL_ERR_ALREADY_INITIALIZED", 5),
        ("TEL_ERR_QUEUE_FULL", 6),
        ("TEL_ERR_TIMEOUT", 7),
        ("TEL_ERR_INTERNAL", 8),
    ] {
        assert!(
            header.contains(&format!("#define {name} {value}\n")),
            "{name}"
        );
    }
    assert!(header.contains(&format!(
        "#define TEL_VERSION \"{}\"",
        env!("CARGO_PKG_VERSION")
    )));
}
