//! `telctl probe`: sends the fixed matrix of [`matrix`] to a collector, one small request per
//! row, and shows what each row was answered: the diagnosis of a tenant's silent 401s and 400s
//! without writing a probe script.
//!
//! The requests are built here (varying exactly one thing per row is the point) from the
//! library's own pieces: envelope time and iKey forms, the NDJSON body, the encoder, the SDK
//! version, and its reading of responses (status classes, `efi`, kill directives).

mod matrix;

use crate::term::{self, Color, Out};
use clap::Args;
use matrix::{Expect, Row, Run};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use tel::config::{Endpoint, DEFAULT_ENDPOINT};
use tel::internals::ikey::InstrumentationKey;
use tel::internals::kill::KillSwitch;
use tel::internals::response::{classify, directives, HttpResponse, NetworkError, Verdict};
use tel::internals::transport::Transport;
use tel::SDK_VERSION;

pub use matrix::help as matrix_help;

/// Exit statuses, as `--help` lists them.
pub const EXIT_HELP: &str =
    "Exit status: 0 every row answered as documented; 1 some row answered otherwise \
(an unexpected rejection, acceptance or retryable failure); 2 usage error; 3 a kill window \
stopped the probe (or was already active); 4 the collector could not be reached.";

const EXIT_UNEXPECTED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_KILLED: u8 = 3;
const EXIT_NETWORK: u8 = 4;

#[derive(Args)]
pub struct ProbeArgs {
    /// Full instrumentation key `<tenant>-<rest>` (or the TEL_IKEY environment variable, which
    /// keeps it out of the shell history and the process list). Shown as `<tenant>-***` only.
    #[arg(long, value_name = "KEY", env = "TEL_IKEY", hide_env_values = true)]
    ikey: String,
    /// Collector URL: https://, or http:// to a loopback host (e.g. `telctl serve`).
    #[arg(long, value_name = "URL", default_value = DEFAULT_ENDPOINT)]
    endpoint: String,
    /// Cache file whose kill state (`<FILE>.kill`) is honoured and updated, as the library
    /// does; default: the library's default cache file of the tenant.
    #[arg(long, value_name = "FILE")]
    cache_path: Option<PathBuf>,
    /// Seconds allowed for each request, connection included.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    timeout: u64,
    /// Print one JSON document at the end instead of the table.
    #[arg(long)]
    json: bool,
}

/// What the probe made of one row's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Rejected,
    /// 408, 429, 5xx, 1xx, 3xx: the service did not judge the event.
    Retryable,
    Network,
}

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Rejected => "rejected",
            Outcome::Retryable => "retryable",
            Outcome::Network => "network failure",
        }
    }
}

struct RowResult {
    row: Row,
    status: Option<u16>,
    collector_error: Option<String>,
    body: String,
    /// The `efi` reasons of the answer, e.g. `InvalidDeviceLocalId`.
    reasons: Vec<String>,
    outcome: Outcome,
    network_error: Option<String>,
}

impl RowResult {
    fn as_expected(&self) -> bool {
        matches!(
            (self.row.expect, self.outcome),
            (Expect::Accepted, Outcome::Accepted) | (Expect::Rejected(_), Outcome::Rejected)
        )
    }

    fn verdict(&self) -> String {
        match (self.as_expected(), self.outcome) {
            (true, Outcome::Accepted) => "accepted".to_string(),
            (true, _) => "rejected as expected".to_string(),
            (false, Outcome::Network) => "network failure".to_string(),
            (false, outcome) => format!("UNEXPECTED: {}", outcome.name()),
        }
    }

    /// Why, in one line: `Collector-Error`, the `efi` reasons, the body.
    fn detail(&self) -> String {
        if let Some(error) = &self.network_error {
            return error.clone();
        }
        let mut parts = Vec::new();
        if let Some(error) = &self.collector_error {
            parts.push(error.clone());
        }
        if !self.reasons.is_empty() && self.outcome != Outcome::Accepted {
            parts.push(format!("efi {}", self.reasons.join(", ")));
        }
        if !self.body.is_empty() {
            parts.push(term::excerpt(&self.body, 80));
        }
        parts.join(" | ")
    }

    fn to_json(&self) -> Value {
        json!({
            "row": self.row.id,
            "varies": self.row.varies,
            "event": matrix::event_name(&self.row),
            "expected": match self.row.expect {
                Expect::Accepted => "accepted",
                Expect::Rejected(_) => "rejected",
            },
            "expected_status": self.row.expect.status(),
            "status": self.status,
            "collector_error": self.collector_error,
            "efi": self.reasons,
            "body": self.body,
            "outcome": self.outcome.name(),
            "as_expected": self.as_expected(),
            "network_error": self.network_error,
        })
    }
}

/// Why the probe stopped before the last row.
enum Stop {
    Killed { until_ms: u64, seconds: u64 },
    Network,
}

pub fn run(args: ProbeArgs) -> ExitCode {
    let key = match InstrumentationKey::parse(&args.ikey) {
        Ok(key) => key,
        Err(e) => {
            term::error("probe", None, &e.message);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let endpoint = match Endpoint::parse(&args.endpoint) {
        Ok(endpoint) => endpoint,
        Err(e) => {
            term::error("probe", Some(&key), &e.message);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if args.timeout == 0 {
        term::error("probe", Some(&key), "--timeout must be at least 1 second");
        return ExitCode::from(EXIT_USAGE);
    }
    let transport = match transport(&key, &endpoint, args.timeout) {
        Ok(transport) => transport,
        Err(e) => {
            term::error("probe", Some(&key), &e.message);
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let out = Out::stdout().redacting(&key);
    let kill_file = kill_file(&key, args.cache_path);
    let kill = KillSwitch::load(key.tenant(), kill_file.clone());
    if kill.active() {
        let until = kill.until_ms();
        let message = format!(
            "not probing: tenant o:{} is told to stop sending until {}{}; `telctl cache clear` forgets the window",
            key.tenant(),
            term::instant(until),
            kill_file
                .as_ref()
                .map(|f| format!(", recorded in {}", f.display()))
                .unwrap_or_default()
        );
        if args.json {
            out.json(&json!({
                "tenant": format!("o:{}", key.tenant()),
                "key": key.redacted(),
                "endpoint": endpoint.url,
                "rows": [],
                "stopped": {"reason": "killed", "until_ms": until, "until": tel::internals::clock::iso8601(until), "before_start": true},
                "exit_code": EXIT_KILLED,
            }));
        } else {
            out.line(&out.paint(Color::Red, &message));
        }
        return ExitCode::from(EXIT_KILLED);
    }

    let rows = matrix::rows();
    let run = Run {
        key: &key,
        run_id: tel::internals::random::uuid4(),
        now_ms: tel::internals::clock::now_ms(),
    };
    let table = !args.json;
    if table {
        out.line(&format!(
            "telctl probe sends {} real events, one request each, to tenant o:{} (key {}) at {}.",
            rows.len(),
            key.tenant(),
            key.redacted(),
            endpoint.url
        ));
        out.line(&format!(
            "They are named TelctlProbe.* and carry data.probe_run = \"{}\".",
            run.run_id
        ));
        out.line(&format!("Route: {}.\n", transport.route()));
        out.line(&format!(
            "{:<22}{:<8}{:<8}{:<24}{}",
            "ROW", "EXPECT", "STATUS", "VERDICT", "COLLECTOR-ERROR | EFI | BODY"
        ));
    }
    let mut results: Vec<RowResult> = Vec::new();
    let mut stop = None;
    let total = rows.len();
    for (index, row) in rows.into_iter().enumerate() {
        let progress = out.is_terminal() && table;
        if progress {
            out.partial(&format!("{:<22}sending {}/{total}…", row.id, index + 1));
        }
        let request = row.request(&run);
        let answer = post(&transport, &key, &request);
        let kill_directive = answer
            .as_ref()
            .ok()
            .and_then(|r| directives(r).kill)
            .filter(|d| d.names(key.tenant()));
        let result = judge(row, &answer);
        if table {
            let line = table_line(&out, &result);
            if progress {
                out.replace_line(&line);
            } else {
                out.line(&line);
            }
        }
        let network = result.outcome == Outcome::Network;
        results.push(result);
        if let Some(directive) = kill_directive {
            // The collector told this tenant to stop: no further request, and the window is
            // recorded where the library's processes read it.
            let until_ms = kill.engage(directive.seconds);
            stop = Some(Stop::Killed {
                until_ms,
                seconds: directive.seconds,
            });
            break;
        }
        if network {
            stop = Some(Stop::Network);
            break;
        }
    }

    let unexpected = results.iter().filter(|r| !r.as_expected()).count();
    let code = match stop {
        Some(Stop::Killed { .. }) => EXIT_KILLED,
        Some(Stop::Network) => EXIT_NETWORK,
        None if unexpected > 0 => EXIT_UNEXPECTED,
        None => 0,
    };
    let tls = tls_verdict(&endpoint, &results);
    if args.json {
        out.json(&json!({
            "tenant": format!("o:{}", key.tenant()),
            "key": key.redacted(),
            "endpoint": endpoint.url,
            "route": transport.route().to_string(),
            "tls": tls,
            "run": run.run_id,
            "rows": results.iter().map(RowResult::to_json).collect::<Vec<_>>(),
            "stopped": match &stop {
                None => Value::Null,
                Some(Stop::Killed { until_ms, seconds }) => json!({
                    "reason": "killed",
                    "seconds": seconds,
                    "until_ms": until_ms,
                    "until": tel::internals::clock::iso8601(*until_ms),
                    "kill_state": kill_file,
                }),
                Some(Stop::Network) => json!({"reason": "network"}),
            },
            "exit_code": code,
        }));
    } else {
        out.line(&format!("\nTLS: {tls}."));
        summary(&out, &results, total, &stop, kill_file.as_deref());
    }
    ExitCode::from(code)
}

/// The library's transport for the probe: its route (proxy variables, NO_PROXY, the Windows
/// settings), its trust store, and `timeout_s` per request.
fn transport(
    key: &InstrumentationKey,
    endpoint: &Endpoint,
    timeout_s: u64,
) -> tel::status::Result<Transport> {
    let mut config = tel::Config::new(key.header_value())?;
    config.endpoint = endpoint.clone();
    config.http_timeout_ms = timeout_s.saturating_mul(1000);
    Ok(Transport::new(&config))
}

/// What came of TLS: not used (plain http to loopback), a session the operating system's
/// verifier accepted (some row was answered), or the reason none was made.
fn tls_verdict(endpoint: &Endpoint, results: &[RowResult]) -> String {
    if !endpoint.url.to_ascii_lowercase().starts_with("https://") {
        return "not used (plain http to a loopback host)".into();
    }
    if results.iter().any(|r| r.status.is_some()) {
        return "the collector's certificate is trusted (verified by the operating system's trust store)".into();
    }
    match results.iter().find_map(|r| r.network_error.as_deref()) {
        Some(error) => format!("no session was made: {error}"),
        None => "no request was sent".into(),
    }
}

/// Where the library keeps the tenant's kill state (None: persistence unusable).
fn kill_file(key: &InstrumentationKey, cache_path: Option<PathBuf>) -> Option<PathBuf> {
    match cache_path {
        Some(path) => Some(tel::internals::cache::CacheFiles::new(path).kill),
        None => {
            let config = tel::Config::new(key.header_value()).ok()?;
            tel::client::cache_files(&config).map(|files| files.kill)
        }
    }
}

fn table_line(out: &Out, result: &RowResult) -> String {
    let status = result
        .status
        .map_or_else(|| "-".to_string(), |s| s.to_string());
    let verdict = format!("{:<24}", result.verdict());
    let color = match (result.as_expected(), result.outcome) {
        (true, _) => Color::Green,
        (false, Outcome::Retryable) => Color::Yellow,
        (false, _) => Color::Red,
    };
    format!(
        "{:<22}{:<8}{:<8}{}{}",
        result.row.id,
        result.row.expect.status(),
        status,
        out.paint(color, &verdict),
        result.detail()
    )
}

fn summary(
    out: &Out,
    results: &[RowResult],
    total: usize,
    stop: &Option<Stop>,
    kill_file: Option<&std::path::Path>,
) {
    let count = |f: &dyn Fn(&RowResult) -> bool| results.iter().filter(|r| f(r)).count();
    let accepted = count(&|r| r.as_expected() && r.outcome == Outcome::Accepted);
    let rejected = count(&|r| r.as_expected() && r.outcome == Outcome::Rejected);
    let unexpected = count(&|r| !r.as_expected());
    out.line(&format!(
        "\n{} of {total} rows sent: {accepted} accepted, {rejected} rejected as expected, {unexpected} answered otherwise.",
        results.len()
    ));
    match stop {
        Some(Stop::Killed { until_ms, seconds }) => out.line(&out.paint(
            Color::Red,
            &format!(
                "Stopped: the collector told this tenant to stop sending for {seconds} s, until {}. {} rows not sent.{}",
                term::instant(*until_ms),
                total - results.len(),
                kill_file
                    .map(|f| format!(" The window is recorded in {}, which the library honours.", f.display()))
                    .unwrap_or_default()
            ),
        )),
        Some(Stop::Network) => out.line(&out.paint(
            Color::Red,
            &format!(
                "Stopped: the collector could not be reached. {} rows not sent.",
                total - results.len()
            ),
        )),
        None => {}
    }
    if unexpected > 0 && stop.is_none() {
        out.line("Rows answered otherwise than documented point at the cause: compare each with `minimal`.");
    }
}

/// One POST with the library's headers, except for what the row varies, through the
/// library's transport: its route, no redirects (the key must not go elsewhere), the caps on
/// what is read back.
fn post(
    transport: &Transport,
    key: &InstrumentationKey,
    request: &matrix::Request,
) -> Result<HttpResponse, NetworkError> {
    let (payload, encoding) = tel::internals::transport::encode(&request.body, request.compression);
    let mut headers = vec![
        ("Content-Type", request.content_type.to_string()),
        ("x-apikey", key.header_value().to_string()),
        ("Client-Id", "NO_AUTH".to_string()),
        ("sdk-version", SDK_VERSION.to_string()),
        ("Upload-Time", tel::internals::clock::now_ms().to_string()),
    ];
    if let Some(encoding) = encoding {
        headers.push(("Content-Encoding", encoding.to_string()));
    }
    transport
        .send(&headers, &payload, None)
        .map_err(|e| NetworkError(key.redact_in(&e.0)))
}

/// The row's outcome by the library's own response policy ([`classify`]); a 2xx whose `efi`
/// refuses the row's one event is a rejection.
fn judge(row: Row, answer: &Result<HttpResponse, NetworkError>) -> RowResult {
    let response = match answer {
        Ok(response) => response,
        Err(e) => {
            return RowResult {
                row,
                status: None,
                collector_error: None,
                body: String::new(),
                reasons: Vec::new(),
                outcome: Outcome::Network,
                network_error: Some(e.0.clone()),
            }
        }
    };
    let outcome = match classify(answer) {
        Verdict::Accepted(refused) if refused.count(1) == 0 => Outcome::Accepted,
        Verdict::Accepted(_) | Verdict::Split | Verdict::Rejected => Outcome::Rejected,
        Verdict::Retry { .. } => Outcome::Retryable,
    };
    RowResult {
        row,
        status: Some(response.status),
        collector_error: response.collector_error().map(str::to_string),
        body: response.body_excerpt(),
        reasons: efi_reasons(&response.body),
        outcome,
        network_error: None,
    }
}

/// The reasons named in a response's `efi` map.
fn efi_reasons(body: &[u8]) -> Vec<String> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("efi")?.as_object().cloned())
        .map(|efi| efi.keys().cloned().collect())
        .unwrap_or_default()
}
