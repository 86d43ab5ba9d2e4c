"""Consent, common properties, pause and resume, sampling, scrubbing and the audit file (ABI 1.2)
through the binding: the module functions for the default session, the same methods on a
Client, and the configuration keywords."""

from __future__ import annotations

import json

import pytest
from support import FAST, IKEY, assert_conserved

import onecollector_tel as tel
from onecollector_tel import _api, _native

needs_abi_1_2 = pytest.mark.skipif(
    not _native.has("tel_set_consent"), reason="the library predates ABI 1.2 (tel_set_consent)"
)


def _names(emulator) -> list:
    return sorted(e["name"] for e in emulator.accepted())


# --- what needs no library: the configuration the binding writes -----------------------------


def test_the_new_keywords_are_written_into_the_configuration(tmp_path):
    config = _api._config(
        IKEY,
        None,
        None,
        dict(
            consent="required",
            consent_version=2,
            properties={"build": "abc", "flags": ("x", "y")},
            sample={"rate": 0.5, "events": {"App.Rare": 1}},
            scrub=("email", "ipv4"),
            audit_path=tmp_path / "audit.ndjson",
            audit_max_bytes=4096,
            max_inflight_requests=8,
        ),
    )
    # As the library reads it: JSON, a tuple as an array, a path as text.
    assert json.loads(json.dumps(config)) == {
        "ikey": IKEY,
        "consent": "required",
        "consent_version": 2,
        "properties": {"build": "abc", "flags": ["x", "y"]},
        "sample": {"rate": 0.5, "events": {"App.Rare": 1}},
        "scrub": ["email", "ipv4"],
        "audit_path": str(tmp_path / "audit.ndjson"),
        "audit_max_bytes": 4096,
        "max_inflight_requests": 8,
    }


def test_set_consent_takes_a_bool_only():
    for value in (1, "granted", None):
        with pytest.raises(TypeError, match="True or False"):
            tel.set_consent(value)  # type: ignore[arg-type]


# --- the default session ---------------------------------------------------------------------


@needs_abi_1_2
def test_without_a_session_the_new_calls_raise_not_initialized():
    with pytest.raises(tel.NotInitializedError):
        tel.consent()
    with pytest.raises(tel.NotInitializedError):
        tel.set_consent(True)
    with pytest.raises(tel.NotInitializedError):
        tel.set_property("build", "abc")
    with pytest.raises(tel.NotInitializedError):
        tel.pause()
    with pytest.raises(tel.NotInitializedError):
        tel.resume()


@needs_abi_1_2
def test_required_consent_holds_events_until_granted(start, emulator):
    start(consent="required")
    assert tel.consent() == "unknown"
    tel.log("WaitsForConsent", n=1)
    tel.log("WaitsForConsent", n=2)
    tel.flush()  # returns at once: nothing can be sent
    stats = tel.stats()
    assert stats["consent"] == "unknown" and stats["pending"] == 2, stats
    assert emulator.requests() == []
    tel.set_consent(True)
    assert tel.consent() == "granted"
    tel.flush()
    assert _names(emulator) == ["WaitsForConsent", "WaitsForConsent"]
    stats = tel.stats()
    assert stats["sent"] == 2 and stats["consent"] == "granted", stats
    assert_conserved(stats)


@needs_abi_1_2
def test_a_denial_drops_what_waits_and_every_later_event(start, emulator):
    start(consent="required")
    tel.log("DroppedByDenial")
    tel.set_consent(False)
    assert tel.consent() == "denied"
    tel.log("DroppedAfterDenial")
    tel.flush()
    stats = tel.stats()
    assert stats["dropped_consent"] == 2 and stats["logged"] == 2 and stats["sent"] == 0, stats
    assert_conserved(stats)
    tel.shutdown()
    assert emulator.requests() == []


@needs_abi_1_2
def test_a_recorded_answer_is_read_by_the_next_session(start, emulator):
    start(consent="required")
    tel.set_consent(True)
    tel.shutdown()
    start(consent="required")
    assert tel.consent() == "granted"
    tel.shutdown()
    # A newer notice asks again.
    start(consent="required", consent_version=2)
    assert tel.consent() == "unknown"


@needs_abi_1_2
def test_common_properties_are_merged_under_the_events_own_keys(start, emulator):
    start(properties={"channel": "beta"})
    tel.set_property("build", {"id": 42})
    tel.log("WithProperties", n=1)
    tel.log("OwnKeyWins", channel="stable")
    tel.set_property("build", None)
    tel.log("PropertyRemoved")
    tel.flush()
    data = {e["name"]: e["data"] for e in emulator.accepted()}
    assert data["WithProperties"] == {"channel": "beta", "build": {"id": 42}, "n": 1}
    assert data["OwnKeyWins"] == {"channel": "stable", "build": {"id": 42}}
    assert data["PropertyRemoved"] == {"channel": "beta"}
    assert_conserved(tel.stats())


@needs_abi_1_2
def test_a_refused_property_raises_naming_it(start):
    start()
    with pytest.raises(tel.InvalidEventError):
        tel.set_property("", "empty name")
    with pytest.raises(tel.InvalidEventError, match="not JSON-serialisable"):
        tel.set_property("build", object())
    with pytest.raises(TypeError):
        tel.set_property(7, "x")  # type: ignore[arg-type]


@needs_abi_1_2
def test_pause_sends_nothing_until_resume(start, emulator):
    start(cache_path=None)
    tel.pause()
    tel.pause()  # idempotent
    tel.log("SentAfterResume")
    tel.flush()
    stats = tel.stats()
    assert stats["paused"] is True and stats["pending"] == 1, stats
    assert emulator.requests() == []
    tel.resume()
    tel.flush()
    stats = tel.stats()
    assert stats["paused"] is False and stats["sent"] == 1, stats
    assert _names(emulator) == ["SentAfterResume"]
    assert_conserved(stats)


# --- a client ----------------------------------------------------------------------------------


@needs_abi_1_2
def test_a_client_has_the_same_five_calls(make_client, emulator):
    client = make_client(consent="required", properties={"channel": "beta"})
    assert client.consent() == "unknown"
    client.set_property("build", "abc")
    client.log("ClientWaits")
    client.pause()
    client.set_consent(True)
    assert client.consent() == "granted"
    client.flush()
    assert emulator.requests() == [], "paused: granted, but nothing sent"
    client.resume()
    client.flush()
    assert [e["data"] for e in emulator.accepted()] == [{"channel": "beta", "build": "abc"}]
    stats = client.stats()
    assert stats["sent"] + stats["persisted"] >= 1
    assert_conserved(stats)
    client.set_consent(False)
    client.log("ClientDenied")
    stats = client.stats()
    assert stats["consent"] == "denied" and stats["dropped_consent"] == 1, stats
    client.close()
    for call in (client.consent, client.pause, client.resume, lambda: client.set_consent(True),
                 lambda: client.set_property("build", None)):
        with pytest.raises(tel.NotInitializedError):
            call()


@needs_abi_1_2
def test_a_client_samples_scrubs_and_audits_as_configured(make_client, emulator, tmp_path):
    audit = tmp_path / "audit.ndjson"
    client = make_client(
        sample={"rate": 0, "events": {"Kept.Event": 1}},
        scrub=["email", "ipv4"],
        audit_path=audit,
        audit_max_bytes=1_000_000,
    )
    client.log("Sampled.Out")
    client.log("Kept.Event", contact="jane.doe@example.com", host="10.1.2.3", note="plain")
    client.flush()
    assert [e["data"] for e in emulator.accepted()] == [{"contact": "<email>", "host": "<ipv4>", "note": "plain"}]
    stats = client.stats()
    assert stats["dropped_sampled"] == 1 and stats["sent"] == 1 and stats["scrubbed"] == 2, stats
    assert_conserved(stats)
    lines = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    assert [(line["outcome"], line["event"]["name"]) for line in lines] == [("sent", "Kept.Event")]
    assert "jane.doe" not in audit.read_text(encoding="utf-8")


@needs_abi_1_2
def test_a_bad_new_keyword_is_refused_naming_it(make_client):
    for key, value in (("consent", "maybe"), ("consent_version", 0), ("sample", {"rate": 2}), ("scrub", ["phone"])):
        with pytest.raises(tel.InvalidConfigError, match=key):
            make_client(**{key: value})
