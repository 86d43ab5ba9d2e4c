//! The checked-in `include/tel.h` must be exactly what cbindgen generates from the source, and
//! no internal module is `pub`.
//!
//! This is the one place cbindgen runs (a dev-dependency: a consumer's build never compiles
//! it). `TEL_WRITE_HEADER=1 cargo test --test header` writes the fresh header to
//! `include/tel.h` instead of failing on a difference.

include!("../tools/header.rs");

#[test]
fn checked_in_header_matches_a_fresh_generation() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let fresh = generate_header(dir).expect("cbindgen runs");
    let path = dir.join("include/tel.h");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if fresh != checked_in && std::env::var_os("TEL_WRITE_HEADER").is_some_and(|v| v == "1") {
        std::fs::write(&path, &fresh).unwrap();
        println!("wrote {}", path.display());
        return;
    }
    assert!(
        fresh == checked_in,
        "include/tel.h is stale: regenerate it with `TEL_WRITE_HEADER=1 cargo test --test header` and commit it"
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
        ("TEL_ERR_NOT_DURABLE", 9),
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

#[test]
fn header_declares_the_abi_1_1_functions() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(dir.join("include/tel.h")).unwrap();
    for decl in [
        "typedef struct tel_client tel_client;",
        "tel_status tel_client_new(const char *config_json, tel_client **out);",
        "tel_status tel_client_log(tel_client *client, const char *name, const char *properties_json);",
        "tel_status tel_client_log_ex(tel_client *client, const char *name, const char *properties_json, const char *options_json);",
        "tel_status tel_client_flush(tel_client *client, uint32_t timeout_ms);",
        "size_t tel_client_stats_json(tel_client *client, char *buf, size_t buf_len);",
        "tel_status tel_client_close(tel_client *client, uint32_t timeout_ms);",
        "tel_status tel_log_ex(const char *name, const char *properties_json, const char *options_json);",
        "typedef void (*tel_delivery_fn)(const char *report_json, void *user_data);",
        "tel_status tel_set_delivery_callback(tel_delivery_fn callback, void *user_data);",
        "tel_status tel_client_set_delivery_callback(tel_client *client, tel_delivery_fn callback, void *user_data);",
        "tel_status tel_purge(const char *config_json);",
    ] {
        assert!(header.contains(decl), "tel.h lacks {decl}");
    }
    // 1.2 (0.3.0)
    for decl in [
        "#define TEL_CONSENT_UNKNOWN 0",
        "#define TEL_CONSENT_GRANTED 1",
        "#define TEL_CONSENT_DENIED 2",
        "tel_status tel_set_consent(int32_t state);",
        "int32_t tel_consent(void);",
        "tel_status tel_client_set_consent(tel_client *client, int32_t state);",
        "int32_t tel_client_consent(tel_client *client);",
        "tel_status tel_set_property(const char *name, const char *value_json);",
        "tel_status tel_client_set_property(tel_client *client, const char *name, const char *value_json);",
        "tel_status tel_pause(void);",
        "tel_status tel_resume(void);",
        "tel_status tel_client_pause(tel_client *client);",
        "tel_status tel_client_resume(tel_client *client);",
    ] {
        assert!(header.contains(decl), "tel.h lacks {decl}");
    }
    assert!(header
        .contains("#define TEL_HAS_ABI_1_2 (TEL_VERSION_MAJOR > 0 || TEL_VERSION_MINOR >= 3)"));
    // 0.2: TEL_VERSION_MINOR says the 1.1 functions exist.
    assert!(header
        .contains("#define TEL_HAS_ABI_1_1 (TEL_VERSION_MAJOR > 0 || TEL_VERSION_MINOR >= 2)"));
    let minor: u32 = env!("CARGO_PKG_VERSION_MINOR").parse().unwrap();
    let major: u32 = env!("CARGO_PKG_VERSION_MAJOR").parse().unwrap();
    assert!(major > 0 || minor >= 3);
}

/// Every function's comment says what it returns, TEL_ERR_INTERNAL included (or what a caught
/// panic gives for those returning a size), and whether a callback may call it.
#[test]
fn every_function_documents_internal_errors_and_callbacks() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(dir.join("include/tel.h")).unwrap();
    let mut doc = String::new();
    let mut functions = 0;
    for line in header.lines() {
        if line.starts_with("/**") {
            doc.clear();
        }
        if line.starts_with(" *") || line.starts_with("/**") {
            doc.push_str(line);
            doc.push('\n');
            continue;
        }
        let Some(name) = ["tel_status ", "size_t ", "const char *", "int32_t "]
            .iter()
            .find_map(|p| line.strip_prefix(p))
            .and_then(|rest| rest.split('(').next())
            .filter(|n| n.starts_with("tel_"))
        else {
            continue;
        };
        functions += 1;
        let flat = doc.replace("\n *", " ");
        if line.starts_with("tel_status ") {
            assert!(
                flat.contains("TEL_ERR_INTERNAL"),
                "{name} does not document TEL_ERR_INTERNAL"
            );
        } else if name != "tel_version" {
            assert!(
                flat.contains("panic"),
                "{name} does not say what a caught panic gives"
            );
        }
        assert!(
            flat.contains("callback"),
            "{name} does not say whether a callback may call it"
        );
    }
    assert_eq!(functions, 28, "every function of abi.md, 1.1 and 1.2");
}

/// Only the Rust API (`client`, `config`, `stats`, `status`), the C ABI (`ffi`) and the hidden
/// `internals` re-exports are `pub` modules of the crate: an internal module made `pub` again
/// would put its items in the API (and in reach of the header's generation) by accident.
#[test]
fn only_the_api_modules_are_public() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    let tokens: Vec<&str> = lib
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .flat_map(|l| l.split(|c: char| c.is_whitespace() || c == ';' || c == '{'))
        .filter(|t| !t.is_empty())
        .collect();
    let mut public: Vec<&str> = tokens
        .windows(3)
        .filter(|w| w[0] == "pub" && w[1] == "mod")
        .map(|w| w[2])
        .collect();
    public.sort_unstable();
    assert_eq!(
        public,
        ["client", "config", "ffi", "internals", "stats", "status"],
        "src/lib.rs: a module outside the API is `pub`; make it `pub(crate)` and re-export what \
         the project's tools need from `internals`"
    );
    assert!(
        lib.contains("#[doc(hidden)]\npub mod internals;"),
        "`internals` stays hidden from the docs"
    );
}
