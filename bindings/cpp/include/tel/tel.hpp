/*
 * tel/tel.hpp: the C++17 wrapper of onecollector-tel's C ABI (tel.h).
 *
 * Header-only (with tel/value.hpp, the property values and their JSON, tel/options.hpp, the
 * per-event options, and tel/client.hpp, independent clients, delivery reports and purge); needs
 * nothing beyond the standard library and libtel. It adds only what C++ users expect around the
 * ABI: a configuration builder, an RAII session and RAII clients, properties written as C++
 * values and serialised to JSON here, `tel::Error` exceptions with non-throwing `try_`
 * variants, parsed stats and delivery reports, and the logger and delivery callbacks as
 * `std::function`s. Every rule (validation, limits, retries, opt-out) stays in the library; see
 * docs/abi.md for what each call means.
 *
 *     tel::Session session(tel::Config("<tenant>-<rest>").ext("app", "ver", "1.2.3"));
 *     session.log("MyApp.Started", {{"mode", "cli"}, {"threads", 4}, {"fast", true}});
 *
 *     tel::Client plugin(tel::Config("<other tenant>-<rest>"));   // beside the session
 *     plugin.log("Plugin.Loaded", {}, tel::LogOptions().priority(tel::Priority::high));
 *
 * Thread safety: as the C ABI, every call may come from any thread; a `const tel::Session&` or
 * `const tel::Client&` may be shared between threads (moving or destroying it may not race
 * with its use).
 */

#ifndef TEL_TEL_HPP
#define TEL_TEL_HPP

#if defined(_MSVC_LANG) ? (_MSVC_LANG < 201703L) : (__cplusplus < 201703L)
#error "tel/tel.hpp needs C++17 or later"
#endif

#include <tel.h>

#include "options.hpp"
#include "value.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tel {

// ------------------------------------------------------------------------------------------
// Status, errors, results
// ------------------------------------------------------------------------------------------

/// The status codes of the C ABI (abi.md, "Status codes").
enum class Status : std::int32_t {
    ok = TEL_OK,
    invalid_argument = TEL_ERR_INVALID_ARGUMENT,
    invalid_config = TEL_ERR_INVALID_CONFIG,
    invalid_event = TEL_ERR_INVALID_EVENT,
    not_initialized = TEL_ERR_NOT_INITIALIZED,
    already_initialized = TEL_ERR_ALREADY_INITIALIZED,
    queue_full = TEL_ERR_QUEUE_FULL,
    timeout = TEL_ERR_TIMEOUT,
    internal = TEL_ERR_INTERNAL,
    /// A critical event was queued and will be sent, but could not be written to the cache
    /// file (a full disk...): it would not survive the end of the process. Not a lost event:
    /// the throwing `log` does not throw for it; `try_log` returns it.
    not_durable = TEL_ERR_NOT_DURABLE,
};

/// The C name of a status, e.g. "TEL_ERR_TIMEOUT"; "TEL_ERR_UNKNOWN" for a code this header
/// does not know (a newer library may add codes).
constexpr std::string_view to_string(Status status) noexcept {
    switch (status) {
        case Status::ok: return "TEL_OK";
        case Status::invalid_argument: return "TEL_ERR_INVALID_ARGUMENT";
        case Status::invalid_config: return "TEL_ERR_INVALID_CONFIG";
        case Status::invalid_event: return "TEL_ERR_INVALID_EVENT";
        case Status::not_initialized: return "TEL_ERR_NOT_INITIALIZED";
        case Status::already_initialized: return "TEL_ERR_ALREADY_INITIALIZED";
        case Status::queue_full: return "TEL_ERR_QUEUE_FULL";
        case Status::timeout: return "TEL_ERR_TIMEOUT";
        case Status::internal: return "TEL_ERR_INTERNAL";
        case Status::not_durable: return "TEL_ERR_NOT_DURABLE";
    }
    return "TEL_ERR_UNKNOWN";
}

/// A failed call: the library's status and its message (`tel_last_error`).
class Error : public std::runtime_error {
public:
    Error(Status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}

    Status status() const noexcept { return status_; }
    /// The library's message, e.g. `unknown configuration key "bogus" (known keys: ...)`.
    const char* message() const noexcept { return what(); }

private:
    Status status_;
};

/// What a `try_` call returns instead of throwing: the status, and the message when it failed.
struct [[nodiscard]] Result {
    Status status = Status::ok;
    std::string message;

    bool ok() const noexcept { return status == Status::ok; }
    explicit operator bool() const noexcept { return ok(); }
    /// Throws the `tel::Error` this result stands for; does nothing when it is `ok()`.
    void throw_if_error() const {
        if (!ok()) throw Error(status, message);
    }
};

/// The message of the most recent failure on this thread (`tel_last_error`); empty when none.
inline std::string last_error() {
    std::string text(tel_last_error(nullptr, 0) + 1, '\0');
    const std::size_t length = tel_last_error(text.data(), text.size());
    text.resize(std::min(length, text.size() - 1));
    return text;
}

namespace detail {

inline Result result_of(tel_status code) {
    if (code == TEL_OK) return Result{};
    return Result{static_cast<Status>(code), last_error()};
}

/// Runs `f` (which returns a Result) and turns any exception into a Result, for the `try_`
/// variants, which promise not to throw.
template <typename F>
Result guarded(F&& f) noexcept {
    try {
        return std::forward<F>(f)();
    } catch (const Error& e) {
        try {
            return Result{e.status(), e.what()};
        } catch (...) {
            return Result{e.status(), {}};
        }
    } catch (...) {
        return Result{Status::internal, {}};
    }
}

/// A deadline as the ABI's `uint32_t` milliseconds: negative is 0, too long is clamped.
inline std::uint32_t to_timeout_ms(std::chrono::milliseconds timeout) noexcept {
    const auto count = timeout.count();
    if (count <= 0) return 0;
    if (static_cast<unsigned long long>(count) > std::numeric_limits<std::uint32_t>::max())
        return std::numeric_limits<std::uint32_t>::max();
    return static_cast<std::uint32_t>(count);
}

}  // namespace detail

// ------------------------------------------------------------------------------------------
// Configuration
// ------------------------------------------------------------------------------------------

/// How request bodies are compressed (the `compression` key).
enum class Compression { deflate, gzip, none };

/// What a missing or outdated consent record means (the `consent` key, ABI 1.2).
enum class ConsentDefault {
    /// Consent is assumed (the 1.1 behaviour, and the library's default).
    granted,
    /// Unknown until the host records an answer: events wait in memory, nothing is sent or
    /// written.
    required,
};

/// A consent state (`TEL_CONSENT_*`, ABI 1.2): what `Session::consent()` and
/// `Client::consent()` give, and what `set_consent` records (granted or denied).
enum class Consent : std::int32_t { unknown = 0, granted = 1, denied = 2 };

/// The state's name in the stats: "unknown", "granted", "denied".
constexpr std::string_view to_string(Consent consent) noexcept {
    switch (consent) {
        case Consent::unknown: return "unknown";
        case Consent::granted: return "granted";
        case Consent::denied: return "denied";
    }
    return "unknown";
}

/// A builder of `tel_init`'s JSON object: one method per key of abi.md, "Configuration",
/// named as the key. Keys that are not set are left out, so the library's defaults apply; the
/// library validates every value (`TEL_ERR_INVALID_CONFIG` names the key).
class Config {
public:
    Config() = default;
    /// `ikey`: the full instrumentation key `<tenant_token>-<rest>`.
    explicit Config(std::string key) { ikey(std::move(key)); }

    Config& ikey(std::string key) { return set("ikey", std::move(key)); }
    /// `endpoint`: `https://` (or `http://` for a loopback host).
    Config& endpoint(std::string url) { return set("endpoint", std::move(url)); }
    /// `enabled`: false turns the session into a no-op that deletes the cache file.
    Config& enabled(bool on) { return set("enabled", on); }
    /// `cache_path`: the cache file (kill state and device id live beside it).
    Config& cache_path(std::string path) { return set("cache_path", std::move(path)); }
    /// `cache_path: null`: nothing is persisted.
    Config& disable_cache() { return set("cache_path", nullptr); }
    /// One `ext` field, e.g. `ext("app", "ver", "1.2.3")`: documented Common Schema 4.0 fields
    /// only; they override the library's defaults one by one.
    Config& ext(std::string extension, std::string field, std::string value) {
        detail::set_ext_field(entries_, std::move(extension), std::move(field), std::move(value));
        return *this;
    }
    /// `batch_max_events`: events per POST.
    Config& batch_max_events(std::uint64_t n) { return set("batch_max_events", n); }
    /// `batch_max_bytes`: uncompressed bytes per POST.
    Config& batch_max_bytes(std::uint64_t n) { return set("batch_max_bytes", n); }
    /// `event_max_bytes`: one serialised event; larger ones are `Status::invalid_event`.
    Config& event_max_bytes(std::uint64_t n) { return set("event_max_bytes", n); }
    /// `flush_interval_ms`: longest an event waits in memory before a POST is attempted.
    Config& flush_interval_ms(std::chrono::milliseconds t) {
        return set("flush_interval_ms", static_cast<std::int64_t>(t.count()));
    }
    /// `queue_max_events`: events held in memory; beyond it `Status::queue_full`.
    Config& queue_max_events(std::uint64_t n) { return set("queue_max_events", n); }
    /// `cache_max_bytes`: the cache file's bound.
    Config& cache_max_bytes(std::uint64_t n) { return set("cache_max_bytes", n); }
    /// `cache_max_age_s`: cached entries older than this are dropped at replay.
    Config& cache_max_age_s(std::chrono::seconds t) {
        return set("cache_max_age_s", static_cast<std::int64_t>(t.count()));
    }
    /// `http_timeout_ms`: per request, connect included.
    Config& http_timeout_ms(std::chrono::milliseconds t) {
        return set("http_timeout_ms", static_cast<std::int64_t>(t.count()));
    }
    /// `compression`.
    Config& compression(Compression c) {
        return set("compression", c == Compression::gzip   ? "gzip"
                                  : c == Compression::none ? "none"
                                                           : "deflate");
    }
    /// `retry_initial_ms`: the first backoff delay.
    Config& retry_initial_ms(std::chrono::milliseconds t) {
        return set("retry_initial_ms", static_cast<std::int64_t>(t.count()));
    }
    /// `retry_max_ms`: the longest backoff delay.
    Config& retry_max_ms(std::chrono::milliseconds t) {
        return set("retry_max_ms", static_cast<std::int64_t>(t.count()));
    }
    /// `retry_max_attempts`: after the last attempt a batch goes to the cache file.
    Config& retry_max_attempts(std::uint32_t n) { return set("retry_max_attempts", n); }

    // ABI 1.2 (0.3.0): consent, privacy and control.

    /// `consent`: what a missing or outdated consent record means.
    Config& consent(ConsentDefault mode) {
        return set("consent", mode == ConsentDefault::required ? "required" : "granted");
    }
    /// `consent_version`: >= 1; a record written for a lower version counts as missing.
    Config& consent_version(std::uint32_t version) { return set("consent_version", version); }
    /// `properties`: common properties merged into every event's `data` (its own keys win).
    /// Replaces those given before.
    Config& properties(Properties common) { return set("properties", std::move(common)); }
    /// One common property, added to `properties` (or replacing one of the same name).
    Config& property(std::string name, Value value) {
        member_object("properties").set(std::move(name), std::move(value));
        return *this;
    }
    /// `sample.rate`: the share of devices that send an event, in [0, 1].
    Config& sample_rate(double rate) {
        member_object("sample").set("rate", rate);
        return *this;
    }
    /// `sample.events[name]`: the rate of one event name, over `sample_rate`.
    Config& sample_event(std::string name, double rate) {
        Object& sample = member_object("sample");
        Value* events = sample.find("events");
        if (events == nullptr || events->get_if<Object>() == nullptr) {
            sample.set("events", Object{});
            events = sample.find("events");
        }
        events->get_if<Object>()->set(std::move(name), rate);
        return *this;
    }
    /// `scrub`: the detectors applied to string values ("email", "user_path", "ipv4", "ipv6",
    /// "guid", "token"); an empty list turns scrubbing off.
    Config& scrub(std::vector<std::string> detectors) { return set("scrub", std::move(detectors)); }
    /// `audit_path`: a file that receives one line per event the collector answered.
    Config& audit_path(std::string path) { return set("audit_path", std::move(path)); }
    /// `audit_max_bytes`: the audit file's bound before it rotates.
    Config& audit_max_bytes(std::uint64_t n) { return set("audit_max_bytes", n); }
    /// `max_inflight_requests`: how many batches may be on the wire at once (1-16).
    Config& max_inflight_requests(std::uint32_t n) { return set("max_inflight_requests", n); }

    /// Any key, as JSON: for keys newer than this header. Replaces an earlier value.
    Config& set(std::string key, Value value) {
        entries_.set(std::move(key), std::move(value));
        return *this;
    }

    /// The JSON object given to `tel_init`.
    std::string to_json() const { return entries_.to_json(); }

private:
    /// The object under `key`, made (or replacing a value of another kind) when needed.
    Object& member_object(const char* key) {
        Value* member = entries_.find(key);
        if (member == nullptr || member->get_if<Object>() == nullptr) {
            entries_.set(key, Object{});
            member = entries_.find(key);
        }
        return *member->get_if<Object>();
    }

    Object entries_;
};

// ------------------------------------------------------------------------------------------
// Stats
// ------------------------------------------------------------------------------------------

/// The counters of `tel_stats_json` (abi.md, "Stats"), since `tel_init`; after `tel_shutdown`
/// the last session's figures, until the next `tel_init`.
struct Stats {
    bool enabled = false;
    std::uint64_t logged = 0;
    std::uint64_t sent = 0;
    std::uint64_t rejected = 0;
    std::uint64_t dropped_queue_full = 0;
    std::uint64_t dropped_killed = 0;
    std::uint64_t dropped_shutdown = 0;
    /// Queued events pushed out of a full queue by an event of higher priority.
    std::uint64_t dropped_evicted = 0;
    std::uint64_t replayed = 0;
    std::uint64_t persisted = 0;
    std::uint64_t cache_evicted = 0;
    std::uint64_t pending = 0;
    std::uint64_t retries = 0;
    std::uint64_t http_requests = 0;
    std::uint64_t http_failures = 0;
    /// Unix ms of the end of the current kill window, 0 when none.
    std::uint64_t killed_until_ms = 0;
    /// Critical events queued without being written to the cache file (`Status::not_durable`);
    /// each is also in `logged`, so not part of `conserved()`.
    std::uint64_t not_durable = 0;
    /// Events dropped for consent: waiting at shutdown while unknown, or denied (ABI 1.2).
    std::uint64_t dropped_consent = 0;
    /// Events dropped by sampling (ABI 1.2).
    std::uint64_t dropped_sampled = 0;
    /// Replacements made by scrubbing; not events, so not part of `conserved()` (ABI 1.2).
    std::uint64_t scrubbed = 0;
    /// The consent state (ABI 1.2; `granted` from a library that predates it).
    Consent consent = Consent::granted;
    /// Whether sending is paused (ABI 1.2).
    bool paused = false;

    /// abi.md's conservation law, true at every quiet point (after a successful flush, or
    /// after shutdown or close).
    bool conserved() const noexcept {
        return logged + replayed == sent + rejected + dropped_killed + dropped_shutdown +
                                        dropped_evicted + dropped_consent + dropped_sampled +
                                        persisted + pending;
    }

    /// Parses the library's stats JSON; counters this header does not know are ignored.
    static Stats from_json(std::string_view json) {
        Value document;
        try {
            document = detail::JsonReader(json).read_document();
        } catch (const std::invalid_argument& e) {
            throw Error(Status::internal, std::string("stats from the library: ") + e.what());
        }
        const Object* object = document.get_if<Object>();
        if (object == nullptr) throw Error(Status::internal, "stats JSON is not an object");
        Stats s;
        const std::pair<const char*, std::uint64_t Stats::*> counters[] = {
            {"logged", &Stats::logged},
            {"sent", &Stats::sent},
            {"rejected", &Stats::rejected},
            {"dropped_queue_full", &Stats::dropped_queue_full},
            {"dropped_killed", &Stats::dropped_killed},
            {"dropped_shutdown", &Stats::dropped_shutdown},
            {"dropped_evicted", &Stats::dropped_evicted},
            {"replayed", &Stats::replayed},
            {"persisted", &Stats::persisted},
            {"cache_evicted", &Stats::cache_evicted},
            {"pending", &Stats::pending},
            {"retries", &Stats::retries},
            {"http_requests", &Stats::http_requests},
            {"http_failures", &Stats::http_failures},
            {"killed_until_ms", &Stats::killed_until_ms},
            {"not_durable", &Stats::not_durable},
            {"dropped_consent", &Stats::dropped_consent},
            {"dropped_sampled", &Stats::dropped_sampled},
            {"scrubbed", &Stats::scrubbed},
        };
        for (const auto& [name, field] : counters) {
            const Value* v = object->find(name);
            if (v == nullptr) continue;
            if (const auto* u = v->get_if<std::uint64_t>())
                s.*field = *u;
            else if (const auto* i = v->get_if<std::int64_t>(); i && *i >= 0)
                s.*field = static_cast<std::uint64_t>(*i);
        }
        if (const Value* v = object->find("enabled"))
            if (const auto* b = v->get_if<bool>()) s.enabled = *b;
        if (const Value* v = object->find("paused"))
            if (const auto* b = v->get_if<bool>()) s.paused = *b;
        if (const Value* v = object->find("consent"))
            if (const auto* name = v->get_if<std::string>())
                for (Consent c : {Consent::unknown, Consent::granted, Consent::denied})
                    if (to_string(c) == *name) s.consent = c;
        return s;
    }
};

namespace detail {

/// The text of an `snprintf`-like call of the ABI (`tel_stats_json`, `tel_client_stats_json`).
template <typename Write>
std::string snprintf_text(Write write) {
    std::string text;
    std::size_t needed = write(nullptr, 0);
    // Counters may grow between the sizing call and the copy: retry until the text fits.
    for (;;) {
        text.assign(needed + 1, '\0');
        const std::size_t length = write(text.data(), text.size());
        if (length <= needed) {
            text.resize(length);
            return text;
        }
        needed = length + 16;
    }
}

}  // namespace detail

/// The counters as the library writes them (`tel_stats_json`).
inline std::string stats_json() { return detail::snprintf_text(&tel_stats_json); }

/// The counters of the live session, or of the last one after `tel_shutdown`.
inline Stats stats() { return Stats::from_json(stats_json()); }

// ------------------------------------------------------------------------------------------
// Logger
// ------------------------------------------------------------------------------------------

/// Log levels of the library's diagnostics.
enum class Level : std::int32_t {
    off = TEL_LOG_OFF,
    error = TEL_LOG_ERROR,
    warn = TEL_LOG_WARN,
    info = TEL_LOG_INFO,
    debug = TEL_LOG_DEBUG,
    trace = TEL_LOG_TRACE,
};

/// Receives one line of the library's diagnostics; the view is valid during the call only.
/// It may run on any thread, the library's worker included, and may itself call `tel::`
/// functions; an exception it throws is swallowed.
using LogCallback = std::function<void(Level level, std::string_view message)>;

namespace detail {

struct LoggerHolder {
    explicit LoggerHolder(LogCallback f) : callback(std::move(f)) {}
    LogCallback callback;
    std::size_t running = 0;  // calls in progress, guarded by LoggerSlot::mutex
};

struct LoggerSlot {
    std::mutex mutex;
    std::condition_variable idle;
    std::shared_ptr<LoggerHolder> current;
};

/// Process-wide and never destroyed: the library's worker may log while static destructors
/// run at exit.
inline LoggerSlot& logger_slot() {
    static LoggerSlot* slot = new LoggerSlot();
    return *slot;
}

/// How deep this thread is inside logger callbacks: replacing the logger from inside one must
/// not wait for itself.
inline thread_local int logger_depth = 0;

}  // namespace detail
}  // namespace tel

extern "C" inline void tel_cpp_logger_trampoline(std::int32_t level, const char* message,
                                                 void* /*user_data*/) {
    auto& slot = tel::detail::logger_slot();
    std::shared_ptr<tel::detail::LoggerHolder> holder;
    {
        std::lock_guard<std::mutex> lock(slot.mutex);
        holder = slot.current;
        if (!holder) return;
        ++holder->running;
    }
    ++tel::detail::logger_depth;
    try {
        holder->callback(static_cast<tel::Level>(level),
                         message ? std::string_view(message) : std::string_view());
    } catch (...) {
        // An exception must not unwind into the library.
    }
    --tel::detail::logger_depth;
    {
        std::lock_guard<std::mutex> lock(slot.mutex);
        --holder->running;
    }
    slot.idle.notify_all();
}

namespace tel {

/// Routes the library's diagnostics up to `max_level` to `callback` (`tel_set_logger`); an
/// empty callback restores the default sink (stderr when `TEL_LOG` names a level). May be
/// called at any time, before a session too. When it returns, the previous callback is no
/// longer running on any other thread and will not be called again.
[[nodiscard]] inline Result try_set_logger(LogCallback callback,
                                           Level max_level = Level::info) noexcept {
    return detail::guarded([&]() -> Result {
        auto& slot = detail::logger_slot();
        std::shared_ptr<detail::LoggerHolder> next;
        if (callback) next = std::make_shared<detail::LoggerHolder>(std::move(callback));
        const tel_status code = tel_set_logger(next ? &tel_cpp_logger_trampoline : nullptr,
                                               static_cast<std::int32_t>(max_level), nullptr);
        if (code != TEL_OK) return detail::result_of(code);
        std::shared_ptr<detail::LoggerHolder> previous;
        {
            std::unique_lock<std::mutex> lock(slot.mutex);
            previous = std::exchange(slot.current, std::move(next));
            if (previous && detail::logger_depth == 0)
                slot.idle.wait(lock, [&] { return previous->running == 0; });
        }
        previous.reset();  // destroys the old callback outside the lock
        return Result{};
    });
}

inline void set_logger(LogCallback callback, Level max_level = Level::info) {
    try_set_logger(std::move(callback), max_level).throw_if_error();
}

/// Restores the default sink; see `try_set_logger`.
inline void clear_logger() { set_logger(nullptr, Level::off); }

/// The library's version, e.g. "0.1.0" (`tel_version`).
inline std::string_view version() noexcept { return tel_version(); }

/// The version of the headers compiled in (`TEL_VERSION`); equal to `version()` unless the
/// program runs with another build of the library than it was compiled against.
inline constexpr std::string_view header_version = TEL_VERSION;

namespace detail {

/// The C strings of one log call, handed to `call(name, properties, options)`: properties NULL
/// when empty, options NULL when empty (so that a plain call stays a `tel_log`).
template <typename Call>
Result log_event(std::string_view name, const Properties& properties, const LogOptions& options,
                 Call call) {
    if (name.find('\0') != std::string_view::npos)
        return Result{Status::invalid_argument, "the event name contains a NUL byte"};
    const std::string name_z(name);
    const std::string properties_json = properties.empty() ? std::string() : properties.to_json();
    const std::string options_json = options.empty() ? std::string() : options.to_json();
    return result_of(call(name_z.c_str(), properties.empty() ? nullptr : properties_json.c_str(),
                          options.empty() ? nullptr : options_json.c_str()));
}

/// The `log` and `try_log` overloads of `Session` and `Client`, written once. `Owner` gives
/// `active()`, `inactive()` (the result of a call on an inactive owner) and `log_call()` (the
/// C function pair to call, as `log_event`'s `call`).
template <typename Owner>
class EventLogging {
public:
    /// Logs one event (`tel_log`, `tel_client_log`): `name` is 4-100 characters of
    /// `[A-Za-z0-9_.]`. Never blocks on I/O. Throws `tel::Error`: `invalid_event`,
    /// `invalid_argument` (e.g. a string that is not UTF-8), `queue_full` (the event was
    /// dropped and counted), `not_initialized`.
    void log(std::string_view name, const Properties& properties = {}) const {
        try_log(name, properties).throw_if_error();
    }

    [[nodiscard]] Result try_log(std::string_view name,
                                 const Properties& properties = {}) const noexcept {
        return try_log(name, properties, LogOptions());
    }

    /// Logs one event with options (`tel_log_ex`, `tel_client_log_ex`): its time, priority,
    /// trace context, exception. Throws as `log`; bad options are `Status::invalid_event`,
    /// naming the key. A critical event that could not be written to the cache file is queued
    /// and sent all the same: no exception for that (`try_log` returns `Status::not_durable`,
    /// the library logs a warning, `Stats::not_durable` counts it).
    void log(std::string_view name, const Properties& properties,
             const LogOptions& options) const {
        const Result result = try_log(name, properties, options);
        if (result.status != Status::not_durable) result.throw_if_error();
    }

    [[nodiscard]] Result try_log(std::string_view name, const Properties& properties,
                                 const LogOptions& options) const noexcept {
        return guarded([&]() -> Result {
            const Owner& owner = static_cast<const Owner&>(*this);
            if (!owner.active()) return Owner::inactive();
            return log_event(name, properties, options, owner.log_call());
        });
    }
};

#if defined(TEL_HAS_ABI_1_2)
/// Consent, common properties, pause and resume (ABI 1.2) of `Session` and `Client`, written
/// once. `Owner` gives `active()`, `inactive()` and `native_controls()`, whose members call the
/// C functions of the session or of the client.
template <typename Owner>
class Controls {
public:
    /// Records the user's answer (`tel_set_consent`, `tel_client_set_consent`): `granted` sends
    /// what waits and replays the cache; `denied` drops what waits (`Stats::dropped_consent`),
    /// purges the tenant's cache and the device id, and drops every later event. Writes the
    /// consent record. Throws `tel::Error`: `invalid_argument` for `Consent::unknown`,
    /// `not_initialized`.
    void set_consent(Consent state) const { try_set_consent(state).throw_if_error(); }

    [[nodiscard]] Result try_set_consent(Consent state) const noexcept {
        return guarded([&]() -> Result {
            const Owner& owner = static_cast<const Owner&>(*this);
            if (!owner.active()) return Owner::inactive();
            return result_of(owner.native_controls().set_consent(static_cast<std::int32_t>(state)));
        });
    }

    /// The consent state (`tel_consent`, `tel_client_consent`). Throws
    /// `tel::Error(Status::not_initialized)` without a session.
    Consent consent() const {
        const std::optional<Consent> state = try_consent();
        if (!state)
            throw Error(Status::not_initialized, "no telemetry session or client to ask for its consent state");
        return *state;
    }

    /// The consent state; empty without a session (the library's -1).
    [[nodiscard]] std::optional<Consent> try_consent() const noexcept {
        const Owner& owner = static_cast<const Owner&>(*this);
        if (!owner.active()) return std::nullopt;
        const std::int32_t code = owner.native_controls().consent();
        if (code < TEL_CONSENT_UNKNOWN || code > TEL_CONSENT_DENIED) return std::nullopt;
        return static_cast<Consent>(code);
    }

    /// Adds or replaces a common property (`tel_set_property`, `tel_client_set_property`),
    /// merged into the `data` of every event logged after the call; an event's own key wins.
    /// Throws `tel::Error`: `invalid_event` naming a bad name or value, `not_initialized`.
    void set_property(std::string_view name, const Value& value) const {
        try_set_property(name, value).throw_if_error();
    }

    [[nodiscard]] Result try_set_property(std::string_view name, const Value& value) const noexcept {
        return guarded([&]() -> Result { return property_call(name, &value); });
    }

    /// Removes a common property (`value_json` NULL); removing one that is not set is fine.
    void remove_property(std::string_view name) const { try_remove_property(name).throw_if_error(); }

    [[nodiscard]] Result try_remove_property(std::string_view name) const noexcept {
        return guarded([&]() -> Result { return property_call(name, nullptr); });
    }

    /// Stops sending (`tel_pause`, `tel_client_pause`): no request, no connection; events are
    /// still accepted and go to the cache (or wait in memory without one). Idempotent.
    void pause() const { try_pause().throw_if_error(); }

    [[nodiscard]] Result try_pause() const noexcept {
        return guarded([&]() -> Result {
            const Owner& owner = static_cast<const Owner&>(*this);
            if (!owner.active()) return Owner::inactive();
            return result_of(owner.native_controls().pause());
        });
    }

    /// Restarts sending at once, the replay of the cache included (`tel_resume`,
    /// `tel_client_resume`). Idempotent.
    void resume() const { try_resume().throw_if_error(); }

    [[nodiscard]] Result try_resume() const noexcept {
        return guarded([&]() -> Result {
            const Owner& owner = static_cast<const Owner&>(*this);
            if (!owner.active()) return Owner::inactive();
            return result_of(owner.native_controls().resume());
        });
    }

private:
    Result property_call(std::string_view name, const Value* value) const {
        const Owner& owner = static_cast<const Owner&>(*this);
        if (!owner.active()) return Owner::inactive();
        if (name.find('\0') != std::string_view::npos)
            return Result{Status::invalid_argument, "the property name contains a NUL byte"};
        const std::string name_z(name);
        const std::string value_json = value ? value->to_json() : std::string();
        return result_of(owner.native_controls().set_property(name_z.c_str(),
                                                              value ? value_json.c_str() : nullptr));
    }
};
#else
/// The library's header predates ABI 1.2: no consent, properties, pause or resume.
template <typename Owner>
class Controls {};
#endif

}  // namespace detail

// ------------------------------------------------------------------------------------------
// Session
// ------------------------------------------------------------------------------------------

/// How long `~Session` waits for pending events by default.
inline constexpr std::chrono::milliseconds default_shutdown_deadline{2000};

/// The process-wide telemetry session: `tel_init` in the constructor, `tel_shutdown` with a
/// deadline in the destructor. One may be active at a time (a second one gets
/// `Status::already_initialized`); a new one may start after the previous one ended. Other
/// tenants or endpoints in the same process use `tel::Client`s beside it. Movable,
/// not copyable: moving hands the session over, and move-assigning ends the session the target
/// held. A default-constructed, moved-from or shut-down Session is inactive, and its calls fail
/// with `Status::not_initialized` without reaching the library.
class Session : public detail::EventLogging<Session>, public detail::Controls<Session> {
public:
    /// An inactive session (see `try_start`).
    Session() noexcept = default;

    /// Starts the session; throws `tel::Error` (`invalid_config`, `already_initialized`, ...).
    /// The destructor waits at most `shutdown_deadline` (plus the library's small margin) for
    /// pending events, even when the collector hangs.
    explicit Session(const Config& config,
                     std::chrono::milliseconds shutdown_deadline = default_shutdown_deadline)
        : deadline_(shutdown_deadline) {
        detail::result_of(tel_init(config.to_json().c_str())).throw_if_error();
        active_ = true;
    }

    /// The non-throwing constructor: on success `session` holds the new session.
    [[nodiscard]] static Result try_start(
        const Config& config, Session& session,
        std::chrono::milliseconds shutdown_deadline = default_shutdown_deadline) noexcept {
        return detail::guarded([&]() -> Result {
            Result result = detail::result_of(tel_init(config.to_json().c_str()));
            if (result) {
                session = Session();
                session.active_ = true;
                session.deadline_ = shutdown_deadline;
            }
            return result;
        });
    }

    ~Session() { end(deadline_); }

    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    Session(Session&& other) noexcept
        : active_(std::exchange(other.active_, false)), deadline_(other.deadline_) {}

    Session& operator=(Session&& other) noexcept {
        if (this != &other) {
            end(deadline_);
            active_ = std::exchange(other.active_, false);
            deadline_ = other.deadline_;
        }
        return *this;
    }

    bool active() const noexcept { return active_; }

    std::chrono::milliseconds shutdown_deadline() const noexcept { return deadline_; }
    void set_shutdown_deadline(std::chrono::milliseconds deadline) noexcept { deadline_ = deadline; }

    // log, try_log: see detail::EventLogging. set_consent, consent, set_property,
    // remove_property, pause, resume and their try_ forms (ABI 1.2): see detail::Controls.

    /// Waits until every event logged before the call is resolved (`tel_flush`); throws
    /// `tel::Error(Status::timeout)` when `timeout` passes first (the rest stays queued).
    void flush(std::chrono::milliseconds timeout) const { try_flush(timeout).throw_if_error(); }

    [[nodiscard]] Result try_flush(std::chrono::milliseconds timeout) const noexcept {
        return detail::guarded([&]() -> Result {
            if (!active_) return inactive();
            return detail::result_of(tel_flush(detail::to_timeout_ms(timeout)));
        });
    }

    /// Ends the session now (`tel_shutdown`) within `shutdown_deadline()`; the session is
    /// inactive afterwards even when this throws `tel::Error(Status::timeout)` (what was not
    /// delivered was persisted, or counted in `dropped_shutdown`).
    void shutdown() { try_shutdown().throw_if_error(); }

    [[nodiscard]] Result try_shutdown() noexcept {
        return detail::guarded([&]() -> Result {
            if (!active_) return inactive();
            active_ = false;
            return detail::result_of(tel_shutdown(detail::to_timeout_ms(deadline_)));
        });
    }

    /// The session's counters (see `tel::stats()`).
    Stats stats() const { return tel::stats(); }

private:
    friend class detail::EventLogging<Session>;
    friend class detail::Controls<Session>;

#if defined(TEL_HAS_ABI_1_2)
    struct NativeControls {
        static tel_status set_consent(std::int32_t state) { return tel_set_consent(state); }
        static std::int32_t consent() { return tel_consent(); }
        static tel_status set_property(const char* name, const char* value_json) {
            return tel_set_property(name, value_json);
        }
        static tel_status pause() { return tel_pause(); }
        static tel_status resume() { return tel_resume(); }
    };
    static NativeControls native_controls() noexcept { return {}; }
#endif

    static Result inactive() {
        return Result{Status::not_initialized,
                      "this tel::Session is not active (default-constructed, moved from or "
                      "shut down)"};
    }

    static auto log_call() noexcept {
        return [](const char* n, const char* p, const char* o) {
            return o ? tel_log_ex(n, p, o) : tel_log(n, p);
        };
    }

    void end(std::chrono::milliseconds deadline) noexcept {
        if (active_) {
            active_ = false;
            (void)tel_shutdown(detail::to_timeout_ms(deadline));
        }
    }

    bool active_ = false;
    std::chrono::milliseconds deadline_ = default_shutdown_deadline;
};

}  // namespace tel

// Independent clients, delivery reports and purge (ABI 1.1).
#include "client.hpp"

#endif  // TEL_TEL_HPP
