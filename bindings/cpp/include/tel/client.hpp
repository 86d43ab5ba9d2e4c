/*
 * tel/client.hpp: independent clients, delivery reports and purge (docs/abi.md, "1.1"), for
 * tel/tel.hpp, which includes it at its end: include <tel/tel.hpp>.
 *
 *     tel::Client client(tel::Config("<tenant>-<rest>").cache_path(path), 2s);
 *     client.set_delivery_callback([](const tel::DeliveryReport& report) {
 *         if (report.outcome == tel::Outcome::rejected) std::cerr << report.reason << '\n';
 *     });
 *     client.log("Plugin.Loaded", {{"version", "2.1"}});
 *     // ~Client: tel_client_close with a 2 s deadline.
 *
 *     tel::purge(tel::Config("<tenant>-<rest>"));   // consent revoked: nothing left to send
 */

#ifndef TEL_CLIENT_HPP
#define TEL_CLIENT_HPP

#include "tel.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tel {

// ------------------------------------------------------------------------------------------
// Delivery reports
// ------------------------------------------------------------------------------------------

/// What happened to a group of events: the counter of the same name moved by `events`.
enum class Outcome {
    sent,
    rejected,
    dropped_killed,
    persisted,
    dropped_shutdown,
    dropped_evicted,
    /// An outcome newer than this header; `DeliveryReport::outcome_name` says which.
    unknown,
};

/// The outcome's name in reports and stats: "sent", "dropped_killed", ...
constexpr std::string_view to_string(Outcome outcome) noexcept {
    switch (outcome) {
        case Outcome::sent: return "sent";
        case Outcome::rejected: return "rejected";
        case Outcome::dropped_killed: return "dropped_killed";
        case Outcome::persisted: return "persisted";
        case Outcome::dropped_shutdown: return "dropped_shutdown";
        case Outcome::dropped_evicted: return "dropped_evicted";
        case Outcome::unknown: break;
    }
    return "unknown";
}

/// One report of the library: a group of events resolved together (abi.md, "Delivery
/// reports").
struct DeliveryReport {
    Outcome outcome = Outcome::unknown;
    /// The outcome as the library wrote it (useful when `outcome` is `unknown`).
    std::string outcome_name;
    /// How many events.
    std::uint64_t events = 0;
    /// Event name -> how many of the events had it.
    std::map<std::string, std::uint64_t> names;
    /// The HTTP status that decided it, 0 when none.
    int status = 0;
    /// One sentence a person can act on (the collector's reason when it gave one).
    std::string reason;
    /// The report as the library wrote it.
    std::string json;

    /// Parses a report of the library; fields this header does not know are ignored. Throws
    /// `tel::Error(Status::internal)` when `json` is not a JSON object.
    static DeliveryReport from_json(std::string_view json) {
        Value document;
        try {
            document = detail::JsonReader(json).read_document();
        } catch (const std::invalid_argument& e) {
            throw Error(Status::internal, std::string("delivery report from the library: ") +
                                              e.what());
        }
        const Object* object = document.get_if<Object>();
        if (object == nullptr) throw Error(Status::internal, "delivery report is not an object");
        DeliveryReport r;
        r.json = std::string(json);
        if (const Value* v = object->find("outcome"))
            if (const auto* name = v->get_if<std::string>()) {
                r.outcome_name = *name;
                for (Outcome o : {Outcome::sent, Outcome::rejected, Outcome::dropped_killed,
                                  Outcome::persisted, Outcome::dropped_shutdown,
                                  Outcome::dropped_evicted})
                    if (to_string(o) == *name) r.outcome = o;
            }
        if (const Value* v = object->find("events")) r.events = count_of(*v);
        if (const Value* v = object->find("names"))
            if (const auto* names = v->get_if<Object>())
                for (const auto& [name, count] : *names) r.names[name] += count_of(count);
        if (const Value* v = object->find("status"))
            r.status = static_cast<int>(std::min<std::uint64_t>(count_of(*v), 999));
        if (const Value* v = object->find("reason"))
            if (const auto* reason = v->get_if<std::string>()) r.reason = *reason;
        return r;
    }

private:
    static std::uint64_t count_of(const Value& v) noexcept {
        if (const auto* u = v.get_if<std::uint64_t>()) return *u;
        if (const auto* i = v.get_if<std::int64_t>(); i && *i >= 0)
            return static_cast<std::uint64_t>(*i);
        return 0;
    }
};

/// Receives one delivery report. It runs on the library's threads, never while the library
/// holds a lock that `tel_*` needs, so it may call `tel::` functions; a client's own callback
/// must not close that client. An exception it throws is swallowed.
using DeliveryCallback = std::function<void(const DeliveryReport& report)>;

namespace detail {

struct DeliveryHolder {
    explicit DeliveryHolder(DeliveryCallback f) : callback(std::move(f)) {}
    DeliveryCallback callback;
    std::size_t running = 0;  // calls in progress, guarded by DeliverySlot::mutex
};

/// Where the library's `user_data` points: the callback of one client (or of the default
/// session), replaceable while reports arrive. It outlives every call the library makes to it.
struct DeliverySlot {
    std::mutex mutex;
    std::condition_variable idle;
    std::shared_ptr<DeliveryHolder> current;
};

/// The slots whose callbacks run on this thread, innermost last: replacing a callback from
/// inside itself must not wait for itself, and a client must not be closed from its own.
inline thread_local std::vector<const DeliverySlot*> delivering;

inline bool delivering_now(const DeliverySlot* slot) {
    return std::find(delivering.begin(), delivering.end(), slot) != delivering.end();
}

/// The default session's slot, process-wide and never destroyed (the library may report
/// while static destructors run at exit).
inline DeliverySlot& default_delivery_slot() {
    static DeliverySlot* slot = new DeliverySlot();
    return *slot;
}

/// Keeps, for the rest of the process, the slot of a closed client whose callback was still
/// running when the close returned: the library does not wait for it past the close's deadline
/// (abi.md), and the call ends by touching its slot. Rare (a callback still running past a
/// deadline), so the slots are kept rather than tracked.
inline void retire_delivery_slot(std::unique_ptr<DeliverySlot> slot) {
    static std::mutex* mutex = new std::mutex();
    static std::vector<std::unique_ptr<DeliverySlot>>* retired =
        new std::vector<std::unique_ptr<DeliverySlot>>();
    std::lock_guard<std::mutex> lock(*mutex);
    retired->push_back(std::move(slot));
}

}  // namespace detail
}  // namespace tel

extern "C" inline void tel_cpp_delivery_trampoline(const char* report_json, void* user_data) {
    auto* slot = static_cast<tel::detail::DeliverySlot*>(user_data);
    if (slot == nullptr || report_json == nullptr) return;
    std::shared_ptr<tel::detail::DeliveryHolder> holder;
    {
        std::lock_guard<std::mutex> lock(slot->mutex);
        holder = slot->current;
        if (!holder) return;
        ++holder->running;
    }
    try {
        tel::detail::delivering.push_back(slot);
        try {
            holder->callback(tel::DeliveryReport::from_json(report_json));
        } catch (...) {
            // An exception must not unwind into the library.
        }
        tel::detail::delivering.pop_back();
    } catch (...) {
        // push_back could not allocate: the report is lost, the library is not.
    }
    {
        std::lock_guard<std::mutex> lock(slot->mutex);
        --holder->running;
    }
    slot->idle.notify_all();
}

namespace tel {
namespace detail {

/// Installs `callback` in `slot` through `install(trampoline or NULL, slot)`. When it returns,
/// the previous callback is no longer running on another thread and will not be called again.
template <typename Install>
Result set_delivery(DeliverySlot& slot, DeliveryCallback callback, Install install) {
    std::shared_ptr<DeliveryHolder> next;
    if (callback) next = std::make_shared<DeliveryHolder>(std::move(callback));
    std::shared_ptr<DeliveryHolder> previous;
    {
        // Swapped before the library is told, so that no report is missed when one callback
        // replaces another; with none left, the library stops calling at once.
        std::unique_lock<std::mutex> lock(slot.mutex);
        previous = std::exchange(slot.current, next);
    }
    const tel_status code = install(next ? &tel_cpp_delivery_trampoline : nullptr, &slot);
    if (code != TEL_OK) {
        std::lock_guard<std::mutex> lock(slot.mutex);
        slot.current = std::move(previous);
        return result_of(code);
    }
    {
        std::unique_lock<std::mutex> lock(slot.mutex);
        if (previous && !delivering_now(&slot))
            slot.idle.wait(lock, [&] { return previous->running == 0; });
    }
    previous.reset();  // destroys the old callback outside the lock
    return Result{};
}

}  // namespace detail

/// Sends the default session's delivery reports, of this session and later ones, to `callback`
/// (`tel_set_delivery_callback`); an empty callback removes it. When it returns, the previous
/// callback is no longer running on another thread and will not be called again.
[[nodiscard]] inline Result try_set_delivery_callback(DeliveryCallback callback) noexcept {
    return detail::guarded([&]() -> Result {
        return detail::set_delivery(detail::default_delivery_slot(), std::move(callback),
                                    [](tel_delivery_fn f, void* slot) {
                                        return tel_set_delivery_callback(f, slot);
                                    });
    });
}

inline void set_delivery_callback(DeliveryCallback callback) {
    try_set_delivery_callback(std::move(callback)).throw_if_error();
}

/// Removes the default session's delivery callback.
inline void clear_delivery_callback() { set_delivery_callback(nullptr); }

// ------------------------------------------------------------------------------------------
// Client
// ------------------------------------------------------------------------------------------

/// An independent client (`tel_client_new`): its own tenant, endpoint, worker, queue, counters
/// and cache file, beside the default session and any number of other clients. RAII:
/// `tel_client_close` with a deadline in the destructor. Movable, not copyable: moving hands the
/// client over (its delivery callback goes with it), and move-assigning closes the client the
/// target held. A default-constructed, moved-from or closed Client is inactive, and its calls
/// fail with `Status::not_initialized` without reaching the library.
class Client : public detail::EventLogging<Client>, public detail::Controls<Client> {
public:
    /// An inactive client (see `try_open`).
    Client() noexcept = default;

    /// Opens a client; throws `tel::Error` (`invalid_config`, ...). The destructor waits at
    /// most `close_deadline` (plus the library's small margin) for pending events, even when
    /// the collector hangs; what is left is persisted.
    explicit Client(const Config& config,
                    std::chrono::milliseconds close_deadline = default_shutdown_deadline)
        : deadline_(close_deadline) {
        tel_client* handle = nullptr;
        detail::result_of(tel_client_new(config.to_json().c_str(), &handle)).throw_if_error();
        handle_ = handle;
    }

    /// The non-throwing constructor: on success `client` holds the new client (and the client
    /// it held before is closed).
    [[nodiscard]] static Result try_open(
        const Config& config, Client& client,
        std::chrono::milliseconds close_deadline = default_shutdown_deadline) noexcept {
        return detail::guarded([&]() -> Result {
            const std::string json = config.to_json();
            tel_client* handle = nullptr;
            Result result = detail::result_of(tel_client_new(json.c_str(), &handle));
            if (result) {
                client = Client();
                client.handle_ = handle;
                client.deadline_ = close_deadline;
            }
            return result;
        });
    }

    ~Client() { end(); }

    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    Client(Client&& other) noexcept
        : handle_(std::exchange(other.handle_, nullptr)),
          deliveries_(std::move(other.deliveries_)),
          deadline_(other.deadline_) {}

    Client& operator=(Client&& other) noexcept {
        if (this != &other) {
            end();
            handle_ = std::exchange(other.handle_, nullptr);
            deliveries_ = std::move(other.deliveries_);
            deadline_ = other.deadline_;
        }
        return *this;
    }

    bool active() const noexcept { return handle_ != nullptr; }

    /// The C handle, for calls this wrapper does not cover; owned by this object.
    tel_client* native_handle() const noexcept { return handle_; }

    std::chrono::milliseconds close_deadline() const noexcept { return deadline_; }
    void set_close_deadline(std::chrono::milliseconds deadline) noexcept { deadline_ = deadline; }

    // log, try_log (`tel_client_log`, `tel_client_log_ex`): see detail::EventLogging.
    // set_consent, consent, set_property, remove_property, pause, resume and their try_ forms
    // (`tel_client_set_consent`, ..., ABI 1.2): see detail::Controls.

    /// Waits until every event logged on this client before the call is resolved
    /// (`tel_client_flush`); throws `tel::Error(Status::timeout)` when `timeout` passes first.
    void flush(std::chrono::milliseconds timeout) const { try_flush(timeout).throw_if_error(); }

    [[nodiscard]] Result try_flush(std::chrono::milliseconds timeout) const noexcept {
        return detail::guarded([&]() -> Result {
            if (!handle_) return inactive();
            return detail::result_of(tel_client_flush(handle_, detail::to_timeout_ms(timeout)));
        });
    }

    /// This client's counters (`tel_client_stats_json`); throws `Status::not_initialized` on
    /// an inactive client (a closed client's figures are gone with it).
    Stats stats() const { return Stats::from_json(stats_json()); }

    /// This client's counters as the library writes them.
    std::string stats_json() const {
        if (!handle_) inactive().throw_if_error();
        tel_client* const handle = handle_;
        return detail::snprintf_text(
            [handle](char* buf, std::size_t len) { return tel_client_stats_json(handle, buf, len); });
    }

    /// Sends this client's delivery reports to `callback` (`tel_client_set_delivery_callback`);
    /// an empty callback removes it. Kept alive as long as the client. When it returns, the
    /// previous callback is no longer running on another thread and will not be called again.
    /// Reports of cache entries resolved before it was set (the replay starts with the client)
    /// are not seen.
    void set_delivery_callback(DeliveryCallback callback) {
        try_set_delivery_callback(std::move(callback)).throw_if_error();
    }

    [[nodiscard]] Result try_set_delivery_callback(DeliveryCallback callback) noexcept {
        return detail::guarded([&]() -> Result {
            if (!handle_) return inactive();
            if (!deliveries_) {
                if (!callback) return Result{};
                deliveries_ = std::make_unique<detail::DeliverySlot>();
            }
            tel_client* const handle = handle_;
            return detail::set_delivery(*deliveries_, std::move(callback),
                                        [handle](tel_delivery_fn f, void* slot) {
                                            return tel_client_set_delivery_callback(handle, f, slot);
                                        });
        });
    }

    void clear_delivery_callback() { set_delivery_callback(nullptr); }

    /// Closes the client now (`tel_client_close`) within `close_deadline()`: delivers what it
    /// can, persists the rest. The client is inactive afterwards, even when this throws
    /// `tel::Error(Status::timeout)`. From inside this client's own delivery callback it is
    /// refused (`Status::invalid_argument`) and the client stays open.
    void close() { try_close().throw_if_error(); }

    [[nodiscard]] Result try_close() noexcept {
        return detail::guarded([&]() -> Result {
            if (!handle_) return inactive();
            if (deliveries_ && detail::delivering_now(deliveries_.get()))
                return Result{Status::invalid_argument,
                              "a client cannot be closed from its own delivery callback"};
            // The handle stays set during the call: a delivery callback running meanwhile may
            // still use this client (abi.md allows every call but close).
            const tel_status code = tel_client_close(handle_, detail::to_timeout_ms(deadline_));
            handle_ = nullptr;
            release_deliveries();
            return detail::result_of(code);
        });
    }

private:
    friend class detail::EventLogging<Client>;
    friend class detail::Controls<Client>;

#if defined(TEL_HAS_ABI_1_2)
    struct NativeControls {
        tel_client* handle;
        tel_status set_consent(std::int32_t state) const { return tel_client_set_consent(handle, state); }
        std::int32_t consent() const { return tel_client_consent(handle); }
        tel_status set_property(const char* name, const char* value_json) const {
            return tel_client_set_property(handle, name, value_json);
        }
        tel_status pause() const { return tel_client_pause(handle); }
        tel_status resume() const { return tel_client_resume(handle); }
    };
    NativeControls native_controls() const noexcept { return NativeControls{handle_}; }
#endif

    static Result inactive() {
        return Result{Status::not_initialized,
                      "this tel::Client is not open (default-constructed, moved from or closed)"};
    }

    auto log_call() const noexcept {
        tel_client* const handle = handle_;
        return [handle](const char* n, const char* p, const char* o) {
            return o ? tel_client_log_ex(handle, n, p, o) : tel_client_log(handle, n, p);
        };
    }

    void end() noexcept {
        if (!handle_) return;
        if (deliveries_ && detail::delivering_now(deliveries_.get())) {
            // Destroyed inside its own callback: the library refuses to close it there, so the
            // client and its callback stay alive (and are leaked) rather than freed under it.
            (void)deliveries_.release();
            handle_ = nullptr;
            return;
        }
        (void)tel_client_close(handle_, detail::to_timeout_ms(deadline_));
        handle_ = nullptr;
        release_deliveries();
    }

    /// After `tel_client_close`: the library calls the callback no more, but does not wait past
    /// the close's deadline for a call still running (abi.md). Such a call keeps its slot
    /// (`detail::retire_delivery_slot`) to finish with.
    void release_deliveries() noexcept {
        if (!deliveries_) return;
        bool running = false;
        {
            std::lock_guard<std::mutex> lock(deliveries_->mutex);
            running = deliveries_->current && deliveries_->current->running > 0;
        }
        if (!running) {
            deliveries_.reset();
            return;
        }
        try {
            detail::retire_delivery_slot(std::move(deliveries_));
        } catch (...) {
            (void)deliveries_.release();  // no memory to keep it: leaked, never freed under it
        }
    }

    tel_client* handle_ = nullptr;
    /// Where the library's reports go; it must outlive the handle, so it is a separate
    /// allocation that moves with the client.
    std::unique_ptr<detail::DeliverySlot> deliveries_;
    std::chrono::milliseconds deadline_ = default_shutdown_deadline;
};

// ------------------------------------------------------------------------------------------
// Purge
// ------------------------------------------------------------------------------------------

/// Deletes every undelivered event that a session with `config` would send (`tel_purge`):
/// its cache file and the entries sessions have claimed from it, without starting a session
/// and without network I/O; for when a user revokes consent. `ikey` is required. Safe while
/// other processes use the cache. Throws `tel::Error` (`invalid_config`, ...).
inline void purge(const Config& config) {
    detail::result_of(tel_purge(config.to_json().c_str())).throw_if_error();
}

[[nodiscard]] inline Result try_purge(const Config& config) noexcept {
    return detail::guarded(
        [&]() -> Result { return detail::result_of(tel_purge(config.to_json().c_str())); });
}

}  // namespace tel

#endif  // TEL_CLIENT_HPP
