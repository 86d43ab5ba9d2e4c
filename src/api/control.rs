//! The client's ABI 1.2 controls (abi.md, "1.2: consent, privacy and control"): the consent
//! answer and its record, common properties at runtime, pause and resume. What they change is
//! acted on by the worker's gate (`worker::gate`); this file records the host's commands.

use super::client::Client;
use crate::cache;
use crate::model::status::{Error, Result};
use crate::sys::log::{tel_log, Level};
use crate::worker::gate;
use serde_json::Value;
use std::sync::atomic::Ordering;

impl Client {
    /// The consent state (abi.md 1.2): `TEL_CONSENT_UNKNOWN` (0), `_GRANTED` (1), `_DENIED`
    /// (2). Under opt-out, denied.
    pub fn consent(&self) -> i32 {
        match &self.live {
            Some(live) => live.worker.shared().consent().into(),
            None => gate::DENIED.into(),
        }
    }

    /// Records the user's answer (abi.md 1.2, "Consent"): 1 granted (what waits is sent, the
    /// cache replayed), 2 denied (what waits is dropped, the tenant's cache entries and the
    /// device id deleted). Anything else is [`Status::InvalidArgument`]. Under opt-out,
    /// nothing is recorded.
    pub fn set_consent(&self, state: i32) -> Result<()> {
        let state = match state {
            1 => gate::GRANTED,
            2 => gate::DENIED,
            _ => {
                return Err(Error::argument(format!(
                    "consent state must be TEL_CONSENT_GRANTED (1) or TEL_CONSENT_DENIED (2), got {state}"
                )))
            }
        };
        let Some(live) = &self.live else {
            return Ok(());
        };
        if self.shut_down.load(Ordering::Relaxed) {
            return Err(Error::not_initialized());
        }
        let shared = live.worker.shared();
        let granted = state == gate::GRANTED;
        if let Some(files) = &shared.cache_files {
            let record = cache::consent::Record {
                granted,
                version: self.config.consent_version,
            };
            // A failure is logged; the answer holds for this session all the same.
            let _ = cache::consent::write(&files.dir, record, crate::sys::clock::now_ms());
        }
        if granted {
            if let (Some(files), Some(id)) =
                (&shared.cache_files, live.device_file_id.lock().take())
            {
                crate::cache::device::write(&files.dir, &id);
            }
            shared.set_consent_state(state);
            return Ok(());
        }
        shared.set_consent_state(state);
        if let Some(files) = &shared.cache_files {
            crate::api::purge::purge(&self.config)?;
            crate::cache::device::delete(&files.dir);
            if self.config.ext.get("device", "localId").is_none() {
                // A later grant writes a new id.
                *live.device_file_id.lock() = Some(format!("r:{}", crate::sys::random::uuid4()));
            }
        }
        Ok(())
    }

    /// Adds, replaces or (with `value_json` None) removes a common property (abi.md 1.2,
    /// "Common properties"), for events logged after the call returns.
    pub fn set_property(&self, name: &str, value_json: Option<&str>) -> Result<()> {
        let value = match value_json {
            None => None,
            Some(text) => Some(serde_json::from_str::<Value>(text).map_err(|e| {
                Error::event(format!(
                    "the value of property {:?} is not one JSON value: {e}",
                    crate::model::status::excerpt(name)
                ))
            })?),
        };
        match &value {
            Some(v) => crate::model::config::check_property(name, v)?,
            None => crate::model::config::check_property(name, &Value::Null)?,
        }
        let Some(live) = &self.live else {
            return Ok(());
        };
        if self.shut_down.load(Ordering::Relaxed) {
            return Err(Error::not_initialized());
        }
        let mut props = live.properties.write();
        props.set(name, value.as_ref());
        live.has_properties
            .store(!props.items.is_empty(), Ordering::Relaxed);
        Ok(())
    }

    /// Pauses (true) or resumes (false) sending (abi.md 1.2, "Pause and resume"). Idempotent.
    pub fn set_paused(&self, paused: bool) -> Result<()> {
        let Some(live) = &self.live else {
            return Ok(());
        };
        if self.shut_down.load(Ordering::Relaxed) {
            return Err(Error::not_initialized());
        }
        if live.worker.shared().set_paused(paused) {
            tel_log!(
                Level::Debug,
                "{}",
                if paused {
                    "paused: no request until tel_resume; batches go to the cache"
                } else {
                    "resumed: sending again"
                }
            );
        }
        Ok(())
    }
}
