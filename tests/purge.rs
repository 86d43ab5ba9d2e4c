//! `tel_purge` through the C ABI: deletes the cache file and the claims taken from it (a live
//! client's included), keeps the device id and the kill window, needs no session and no
//! network, validates the configuration like `tel_init`, and deletes this tenant's entries
//! only, from a cache file and nothing else.

mod common;

use common::*;
use serde_json::json;
use std::path::Path;

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn purge_deletes_the_cache_and_claims_but_keeps_device_id_and_kill_window() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("purge");
    let cache = dir.join("events.cache");
    fill_cache(&cache, "Purged.Entry", 20);
    // A dead session's claim and critical-events file.
    std::fs::write(
        dir.join("events.cache.claim-0123456789abcdef"),
        cached_line("Claimed.Entry", "dead", 1, "") + "\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("events.cache.claim-fedcba9876543210-critical"),
        cached_line("Critical.Entry", "dead", 2, "  ") + "\n",
    )
    .unwrap();
    let kill = format!("{{\"tenant\":\"{TENANT}\",\"until_ms\":1}}");
    std::fs::write(dir.join("events.cache.kill"), &kill).unwrap();
    std::fs::write(
        dir.join("device-id"),
        "r:11111111-2222-4333-8444-555555555555",
    )
    .unwrap();
    let cfg = config(&c, Some(&dir), json!({}));
    assert_eq!(purge(&cfg), 0, "{}", last_error());
    let left = files_in(&dir);
    assert!(
        !left
            .iter()
            .any(|f| f == "events.cache" || f.contains(".claim-")),
        "{left:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("events.cache.kill")).unwrap(),
        kill
    );
    assert!(dir.join("device-id").exists());
    assert_eq!(c.request_count(), 0, "no network I/O");
    // Nothing to delete: still TEL_OK.
    assert_eq!(purge(&cfg), 0);
    // A later session has nothing to send.
    let client = TestClient::new(&cfg);
    assert_eq!(client.flush(5000), 0);
    assert_eq!(client.stats()["replayed"], 0);
    assert_eq!(client.close(5000), 0);
    assert_eq!(c.accepted_count(), 0);
}

#[test]
fn purge_validates_the_configuration() {
    for (cfg, word) in [
        (json!({}), "ikey"),
        (json!({"ikey": "nodash"}), "ikey"),
        (json!({"ikey": IKEY, "colour": 1}), "colour"),
        (
            json!({"ikey": IKEY, "ext": {"os": {"release": "x"}}}),
            "ext.os.release",
        ),
    ] {
        assert_eq!(purge(&cfg), 2, "{cfg}");
        assert!(last_error().contains(word), "{cfg}: {}", last_error());
    }
    assert_eq!(unsafe { tel::ffi::tel_purge(std::ptr::null()) }, 1);
    // No cache configured: nothing to delete.
    assert_eq!(purge(&json!({"ikey": IKEY, "cache_path": null})), 0);
    // A folder that does not exist is not created.
    let dir = temp_dir("purge-missing").join("not-there");
    assert_eq!(
        purge(&json!({"ikey": IKEY, "cache_path": dir.join("x.cache")})),
        0
    );
    assert!(!dir.exists());
}

#[test]
fn purge_deletes_a_live_clients_claim_and_the_client_goes_on() {
    let c = Collector::start().unwrap();
    let dir = temp_dir("purge-live");
    fill_cache(&dir.join("events.cache"), "Live.Entry", 10);
    // The replay hangs: the client holds a claim while the purge runs.
    c.push(Scripted::fault(Fault::HangBeforeHeaders));
    let cfg = config(&c, Some(&dir), json!({}));
    let client = TestClient::new(&cfg);
    assert!(c.wait_for_requests(1, WAIT));
    assert!(files_in(&dir).iter().any(|f| f.contains(".claim-")));
    assert_eq!(purge(&cfg), 0, "{}", last_error());
    assert!(!files_in(&dir)
        .iter()
        .any(|f| f.contains(".claim-") || f == "events.cache"));
    c.release();
    assert_eq!(client.log("After.Purge", None), 0);
    assert_eq!(client.flush(10_000), 0);
    assert!(names(&c.accepted()).contains(&"After.Purge".to_owned()));
    assert_eq!(client.close(5000), 0);
}

/// `tel_purge` on a `cache_path` naming a file that is not a cache leaves it, and on a file
/// shared with another tenant deletes this tenant's entries only.
#[test]
fn a_purge_deletes_this_tenants_entries_only() {
    let _s = serial();
    let dir = temp_dir("purge-not-ours");
    let notes = dir.join("notes.txt");
    let text = "my notes, not a cache\n";
    std::fs::write(&notes, text).unwrap();
    assert_eq!(
        purge(&json!({"ikey": IKEY, "cache_path": notes})),
        0,
        "{}",
        last_error()
    );
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), text);

    let cache = dir.join("shared.cache");
    cache_through_outage(OTHER_IKEY, &cache, 3, "Other.Tenant");
    cache_through_outage(IKEY, &cache, 2, "This.Tenant");
    assert_eq!(read_lines(&cache).len(), 5);
    assert_eq!(
        purge(&json!({"ikey": IKEY, "cache_path": cache})),
        0,
        "{}",
        last_error()
    );
    let left = read_lines(&cache);
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left
        .iter()
        .all(|l| l.contains(&format!("o:{OTHER_TENANT}"))));
}
