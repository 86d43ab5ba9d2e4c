/*
 * tel/options.hpp: the per-event options of `tel_log_ex` / `tel_client_log_ex`, for tel/tel.hpp
 * (which includes it): the event's time, its priority, and per-event Common Schema extensions
 * such as the trace context (`ext.dt`) and an exception (`ext.ex`). docs/abi.md, "1.1", says
 * what each one means; the library validates them (`Status::invalid_event` names the key).
 *
 *     session.log("MyApp.Crashed", {{"code", 3}},
 *                 tel::LogOptions()
 *                     .time(recorded_at)
 *                     .priority(tel::Priority::critical)
 *                     .exception("std::runtime_error", e.what()));
 */

#ifndef TEL_OPTIONS_HPP
#define TEL_OPTIONS_HPP

#if defined(_MSVC_LANG) ? (_MSVC_LANG < 201703L) : (__cplusplus < 201703L)
#error "tel/options.hpp needs C++17 or later"
#endif

#include "value.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

namespace tel {
namespace detail {

/// Sets `entries.ext.<extension>.<field>`, creating the objects on the way (replacing members of
/// those names that are not objects). The `ext` of the configuration and of the log options.
inline void set_ext_field(Object& entries, std::string extension, std::string field, Value value) {
    Value* all = entries.find("ext");
    if (all == nullptr || all->get_if<Object>() == nullptr) {
        entries.set("ext", Object{});
        all = entries.find("ext");
    }
    Object& extensions = *all->get_if<Object>();
    Value* one = extensions.find(extension);
    if (one == nullptr || one->get_if<Object>() == nullptr) {
        extensions.set(extension, Object{});
        one = extensions.find(extension);
    }
    one->get_if<Object>()->set(std::move(field), std::move(value));
}

}  // namespace detail

/// An event's priority (the `priority` option). A full queue makes room for a higher priority by
/// pushing out the oldest queued event of a lower one (counted in `dropped_evicted`); the cache
/// evicts lower priorities first. A `critical` event is also in the cache file before the call
/// returns (when a cache is configured), and is sent at once.
enum class Priority { normal, high, critical };

/// The option's JSON name: "normal", "high" or "critical".
constexpr const char* to_string(Priority priority) noexcept {
    switch (priority) {
        case Priority::high: return "high";
        case Priority::critical: return "critical";
        case Priority::normal: break;
    }
    return "normal";
}

/// A builder of the `options_json` object of `tel_log_ex`: one method per key (`time`,
/// `priority`, `ext`), plus `trace` and `exception` for the two per-event extensions that
/// OpenTelemetry exporters send. Options left out keep the behaviour of a plain log call; empty
/// options are the same as none.
class LogOptions {
public:
    LogOptions() = default;

    /// `time`: when the event happened, instead of the moment of the call (millisecond
    /// precision: the time is truncated towards the past).
    LogOptions& time(std::chrono::system_clock::time_point when) {
        const auto ms = std::chrono::floor<std::chrono::milliseconds>(when.time_since_epoch());
        return time_unix_ms(static_cast<std::int64_t>(ms.count()));
    }
    /// `time` as Unix milliseconds.
    LogOptions& time_unix_ms(std::int64_t unix_ms) { return set("time", unix_ms); }

    /// `priority`.
    LogOptions& priority(Priority p) { return set("priority", to_string(p)); }

    /// One per-event `ext` field, merged over the session's `ext` field by field: the session's
    /// documented fields (`ext("app", "ver", "1.2.4")`), `dt` and `ex`.
    LogOptions& ext(std::string extension, std::string field, Value value) {
        detail::set_ext_field(entries_, std::move(extension), std::move(field), std::move(value));
        return *this;
    }

    /// `ext.dt`, the distributed-trace context of the event: `trace_id` 32 lowercase hex
    /// characters, `span_id` 16, `trace_flags` 0-255 (1: sampled), as W3C Trace Context and
    /// OpenTelemetry write them.
    LogOptions& trace(std::string trace_id, std::string span_id, std::uint32_t trace_flags = 1) {
        ext("dt", "traceId", std::move(trace_id));
        ext("dt", "spanId", std::move(span_id));
        return ext("dt", "traceFlags", trace_flags);
    }

    /// `ext.ex`, an exception the event reports: its type, its message and, when not empty, its
    /// stack trace.
    LogOptions& exception(std::string type, std::string message, std::string stack = {}) {
        ext("ex", "type", std::move(type));
        ext("ex", "msg", std::move(message));
        if (!stack.empty()) ext("ex", "stack", std::move(stack));
        return *this;
    }

    /// Any key, as JSON: for options newer than this header. Replaces an earlier value.
    LogOptions& set(std::string key, Value value) {
        entries_.set(std::move(key), std::move(value));
        return *this;
    }

    bool empty() const noexcept { return entries_.empty(); }

    /// The JSON object given to `tel_log_ex`.
    std::string to_json() const { return entries_.to_json(); }

private:
    Object entries_;
};

}  // namespace tel

#endif  // TEL_OPTIONS_HPP
