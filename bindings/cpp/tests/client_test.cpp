// tel::Client, the log options, delivery reports and purge (ABI 1.1) through the C++ wrapper,
// against a `telctl serve` collector. One case per run: `client_test <case>`.

#include <tel/tel.hpp>

#include "support/check.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <sys/syscall.h>
#include <unistd.h>

namespace {

constexpr const char* kKeyA = "tenanta-0123456789abcdef";
constexpr const char* kKeyB = "tenantb-fedcba9876543210";

// 2026-12-01T09:30:00.125Z
constexpr std::int64_t kRecordedMs = 1796117400125;
constexpr const char* kRecordedText = "2026-12-01T09:30:00.125Z";
constexpr const char* kTraceId = "0af7651916cd43dd8448eb211c80319c";
constexpr const char* kSpanId = "b7ad6b7169203331";

// A fresh folder of its own under the test's cache folder (TEL_CACHE_DIR), and the path of a
// cache file in it.
std::string cache_file(const std::string& name) {
    const char* base = std::getenv("TEL_CACHE_DIR");
    const std::filesystem::path folder = std::filesystem::path(base && *base ? base : "/tmp") /
                                         (name + "." + std::to_string(static_cast<long>(getpid())));
    std::filesystem::remove_all(folder);
    std::filesystem::create_directories(folder);
    return (folder / "events.cache").string();
}

void remove_cache(const std::string& path) {
    std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}

// Whether some file beside `cache_path` (the cache file, its claim files) holds `text`.
bool cache_folder_holds(const std::string& cache_path, const std::string& text) {
    for (const auto& entry :
         std::filesystem::directory_iterator(std::filesystem::path(cache_path).parent_path())) {
        std::ifstream in(entry.path(), std::ios::binary);
        const std::string content((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
        if (content.find(text) != std::string::npos) return true;
    }
    return false;
}

std::size_t count_events(const tel::Array& envelopes, std::string_view name) {
    std::size_t n = 0;
    for (const auto& envelope : envelopes) {
        const auto* object = envelope.get_if<tel::Object>();
        const tel::Value* v = object ? object->find("name") : nullptr;
        if (v && v->get_if<std::string>() && *v->get_if<std::string>() == name) ++n;
    }
    return n;
}

const tel::Value* ext_of(const tel::Object* envelope, const char* extension) {
    const tel::Object* ext = envelope ? object_of(envelope->find("ext")) : nullptr;
    return ext ? ext->find(extension) : nullptr;
}

// Reports received by a callback, thread-safe.
class Reports {
public:
    tel::DeliveryCallback callback() {
        return [this](const tel::DeliveryReport& r) {
            std::lock_guard<std::mutex> lock(mutex_);
            all_.push_back(r);
        };
    }
    std::vector<tel::DeliveryReport> all() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return all_;
    }
    // The sum of `events` over the reports of `outcome`.
    std::uint64_t events(tel::Outcome outcome) const {
        std::uint64_t n = 0;
        for (const auto& r : all()) n += r.outcome == outcome ? r.events : 0;
        return n;
    }
    std::uint64_t named(tel::Outcome outcome, const std::string& name) const {
        std::uint64_t n = 0;
        for (const auto& r : all())
            if (r.outcome == outcome && r.names.count(name)) n += r.names.at(name);
        return n;
    }

private:
    mutable std::mutex mutex_;
    std::vector<tel::DeliveryReport> all_;
};

// ------------------------------------------------------------------------------------------

// The options reach the collector: time, ext.dt, ext.ex, a per-event ext field; through a
// client (tel_client_log_ex) and through the default session (tel_log_ex).
void case_options() {
    Collector collector;
    const auto recorded = std::chrono::system_clock::time_point(std::chrono::milliseconds(kRecordedMs)) +
                          std::chrono::microseconds(999);  // truncated to the millisecond
    const auto options = tel::LogOptions()
                             .time(recorded)
                             .priority(tel::Priority::high)
                             .trace(kTraceId, kSpanId, 1)
                             .exception("std::runtime_error", "disk full", "at main.cpp:42")
                             .ext("app", "ver", "9.9.9");
    CHECK_EQ(options.to_json(),
             std::string(R"({"time":1796117400125,"priority":"high","ext":{"dt":{"traceId":")") +
                 kTraceId + R"(","spanId":")" + kSpanId +
                 R"(","traceFlags":1},"ex":{"type":"std::runtime_error","msg":"disk full",)"
                 R"("stack":"at main.cpp:42"},"app":{"ver":"9.9.9"}}})");
    CHECK(tel::LogOptions().empty());
    CHECK_EQ(tel::LogOptions().exception("E", "m").to_json(),
             std::string(R"({"ext":{"ex":{"type":"E","msg":"m"}}})"));
    CHECK_EQ(std::string(tel::to_string(tel::Priority::critical)), std::string("critical"));

    {
        tel::Client client(fast_config(collector, kKeyA).ext("app", "ver", "1.0.0"));
        client.log("Cpp.Client.WithOptions", {{"k", "v"}}, options);
        client.log("Cpp.Client.UnixMs", {}, tel::LogOptions().time_unix_ms(kRecordedMs));
        client.log("Cpp.Client.Plain", {}, tel::LogOptions());  // empty options: tel_client_log
        CHECK(client.try_log("Cpp.Client.Critical", {},
                             tel::LogOptions().priority(tel::Priority::critical))
                  .ok());

        // Bad options are refused, naming the key.
        CHECK_THROWS(client.log("Cpp.Client.BadTrace", {}, tel::LogOptions().trace("xyz", kSpanId)),
                     tel::Status::invalid_event);
        tel::Result bad = client.try_log("Cpp.Client.BadKey", {}, tel::LogOptions().set("bogus", 1));
        CHECK(bad.status == tel::Status::invalid_event &&
              bad.message.find("bogus") != std::string::npos);
        bad = client.try_log("Cpp.Client.BadPriority", {},
                             tel::LogOptions().set("priority", "urgent"));
        CHECK(bad.status == tel::Status::invalid_event &&
              bad.message.find("priority") != std::string::npos);

        client.flush(20s);
        const tel::Stats s = client.stats();
        CHECK_EQ(s.logged, 4u);
        CHECK_EQ(s.sent, 4u);
        CHECK_EQ(s.pending, 0u);
        CHECK(s.conserved());
    }
    {
        tel::Session session(fast_config(collector));
        session.log("Cpp.Session.WithOptions", {{"n", 1}}, options);
        CHECK(session.try_log("Cpp.Session.UnixMs", {}, tel::LogOptions().time_unix_ms(kRecordedMs))
                  .ok());
        CHECK_THROWS(session.log("Cpp.Session.Bad", {}, tel::LogOptions().set("time", "yesterday")),
                     tel::Status::invalid_event);
        session.flush(20s);
        CHECK_EQ(session.stats().sent, 2u);
    }
    CHECK(collector.wait(6, 0));
    const tel::Array envelopes = collector.accepted();
    CHECK_EQ(envelopes.size(), 6u);

    const tel::Value dt = tel::Object{{"traceId", kTraceId}, {"spanId", kSpanId}, {"traceFlags", 1}};
    const tel::Value ex = tel::Object{
        {"type", "std::runtime_error"}, {"msg", "disk full"}, {"stack", "at main.cpp:42"}};
    for (const char* name : {"Cpp.Client.WithOptions", "Cpp.Session.WithOptions"}) {
        const tel::Object* event = find_event(envelopes, name);
        report(event != nullptr, std::string(name) + " arrived", __LINE__);
        if (!event) continue;
        CHECK_EQ(*event->find("time"), tel::Value(kRecordedText));
        const tel::Value* got_dt = ext_of(event, "dt");
        const tel::Value* got_ex = ext_of(event, "ex");
        report(got_dt && *got_dt == dt, std::string(name) + ": ext.dt", __LINE__);
        report(got_ex && *got_ex == ex, std::string(name) + ": ext.ex", __LINE__);
        // The per-event field is merged over the configuration's.
        const tel::Object* app = object_of(ext_of(event, "app"));
        report(app && app->find("ver") && *app->find("ver") == tel::Value("9.9.9"),
               std::string(name) + ": ext.app.ver", __LINE__);
    }
    for (const char* name : {"Cpp.Client.UnixMs", "Cpp.Session.UnixMs"}) {
        const tel::Object* event = find_event(envelopes, name);
        report(event && *event->find("time") == tel::Value(kRecordedText),
               std::string(name) + ": time", __LINE__);
        report(event && !ext_of(event, "dt") && !ext_of(event, "ex"),
               std::string(name) + ": no dt, no ex", __LINE__);
    }
    // Without a time option, the time of the call.
    const tel::Object* plain = find_event(envelopes, "Cpp.Client.Plain");
    CHECK(plain && *plain->find("time") != tel::Value(kRecordedText));
    const tel::Object* app = object_of(ext_of(plain, "app"));
    CHECK(app && app->find("ver") && *app->find("ver") == tel::Value("1.0.0"));
    CHECK(find_event(envelopes, "Cpp.Client.Critical") != nullptr);
}

// A critical event with a cache: in the cache file when the call returns, delivered once.
void case_critical() {
    Collector collector;
    const std::string path = cache_file("critical");
    {
        // A long flush interval: only the critical event's own urgency sends it.
        tel::Client client(fast_config(collector, kKeyA).cache_path(path).flush_interval_ms(10min));
        client.log("Cpp.Critical.Crash", {{"code", 3}},
                   tel::LogOptions().priority(tel::Priority::critical));
        // On disk when the call returns (in the cache's folder: abi.md leaves the file to the
        // library, which keeps a session's critical events in a claim file of the cache).
        CHECK(cache_folder_holds(path, "Cpp.Critical.Crash"));
        CHECK(collector.wait(1, 1));  // sent at once
        client.flush(20s);
        const tel::Stats s = client.stats();
        CHECK_EQ(s.logged, 1u);
        CHECK_EQ(s.sent, 1u);
        CHECK(s.conserved());
    }
    // A later client on the same cache finds nothing to send again.
    {
        tel::Client again(fast_config(collector, kKeyA).cache_path(path));
        again.flush(20s);
        CHECK_EQ(again.stats().sent, 0u);
    }
    CHECK_EQ(count_events(collector.accepted(), "Cpp.Critical.Crash"), 1u);
    remove_cache(path);
}

// A critical event that cannot be written (its cache folder would have to be where a file is):
// `log` does not throw, `try_log` says `not_durable`, and both are sent all the same.
void case_critical_not_durable() {
    Collector collector;
    const std::string blocker = cache_file("not-a-folder");
    std::ofstream(blocker).put('x');
    {
        tel::Client client(fast_config(collector, kKeyA).cache_path(blocker + "/events.cache"));
        const auto critical = tel::LogOptions().priority(tel::Priority::critical);
        client.log("Cpp.Critical.Thrown", {}, critical);
        const tel::Result r = client.try_log("Cpp.Critical.Tried", {}, critical);
        CHECK(r.status == tel::Status::not_durable);
        CHECK(r.message.find("not written to the cache file") != std::string::npos);
        CHECK_EQ(std::string(tel::to_string(r.status)), std::string("TEL_ERR_NOT_DURABLE"));
        client.flush(20s);
        const tel::Stats s = client.stats();
        CHECK_EQ(s.logged, 2u);
        CHECK_EQ(s.not_durable, 2u);
        CHECK_EQ(s.sent, 2u);
        CHECK(s.conserved());
    }
    CHECK_EQ(count_events(collector.accepted(), "Cpp.Critical.Thrown"), 1u);
    CHECK_EQ(count_events(collector.accepted(), "Cpp.Critical.Tried"), 1u);
    std::filesystem::remove(blocker);
}

// Two clients with different keys, and the default session, side by side.
void case_two_clients() {
    Collector collector;
    tel::Session session(fast_config(collector));
    tel::Client a(fast_config(collector, kKeyA).ext("app", "ver", "1.0.0"));
    tel::Client b(fast_config(collector, kKeyB).ext("app", "ver", "2.0.0"));
    const tel::Client& shared_a = a;
    const tel::Client& shared_b = b;
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
        threads.emplace_back([&shared_a, t] {
            for (int k = 0; k < 30; ++k) shared_a.log("Cpp.Tenant.A", {{"t", t}, {"k", k}});
        });
        threads.emplace_back([&shared_b, t] {
            for (int k = 0; k < 20; ++k) shared_b.log("Cpp.Tenant.B", {{"t", t}, {"k", k}});
        });
    }
    session.log("Cpp.Tenant.Default");
    for (auto& thread : threads) thread.join();
    a.flush(20s);
    b.flush(20s);
    session.flush(20s);

    // Each has its own counters.
    const tel::Stats sa = a.stats(), sb = b.stats(), sd = session.stats();
    CHECK_EQ(sa.logged, 60u);
    CHECK_EQ(sa.sent, 60u);
    CHECK_EQ(sb.logged, 40u);
    CHECK_EQ(sb.sent, 40u);
    CHECK_EQ(sd.logged, 1u);
    CHECK(sa.conserved() && sb.conserved() && sd.conserved());

    // Closing one leaves the others working.
    a.close();
    CHECK(!a.active());
    b.log("Cpp.Tenant.B");
    session.log("Cpp.Tenant.Default");
    b.flush(20s);
    session.flush(20s);
    CHECK_EQ(b.stats().sent, 41u);

    CHECK(collector.wait(103, 0));
    const tel::Array envelopes = collector.accepted();
    CHECK_EQ(envelopes.size(), 103u);
    std::map<std::string, std::map<std::string, int>> ikeys;  // name -> iKey -> count
    std::map<std::string, std::map<std::string, int>> versions;
    for (const auto& envelope : envelopes) {
        const auto* e = envelope.get_if<tel::Object>();
        if (!e) continue;
        const std::string name = *e->find("name")->get_if<std::string>();
        ikeys[name][*e->find("iKey")->get_if<std::string>()]++;
        const tel::Object* app = object_of(ext_of(e, "app"));
        const tel::Value* ver = app ? app->find("ver") : nullptr;
        if (ver && ver->get_if<std::string>()) versions[name][*ver->get_if<std::string>()]++;
    }
    CHECK(ikeys["Cpp.Tenant.A"] == (std::map<std::string, int>{{"o:tenanta", 60}}));
    CHECK(ikeys["Cpp.Tenant.B"] == (std::map<std::string, int>{{"o:tenantb", 41}}));
    CHECK(ikeys["Cpp.Tenant.Default"] == (std::map<std::string, int>{{"o:cpptenant", 2}}));
    CHECK(versions["Cpp.Tenant.A"] == (std::map<std::string, int>{{"1.0.0", 60}}));
    CHECK(versions["Cpp.Tenant.B"] == (std::map<std::string, int>{{"2.0.0", 41}}));
    // No full key on the wire but in x-apikey (the accepted envelopes hold none).
    const std::string raw = collector.get("/_emulator/accepted");
    CHECK(raw.find(kKeyA) == std::string::npos && raw.find(kKeyB) == std::string::npos);
}

// RAII and move semantics.
void case_lifecycle() {
    Collector collector;
    static_assert(!std::is_copy_constructible_v<tel::Client>);
    static_assert(!std::is_copy_assignable_v<tel::Client>);
    static_assert(std::is_nothrow_move_constructible_v<tel::Client>);
    static_assert(std::is_nothrow_move_assignable_v<tel::Client>);

    tel::Client idle;
    CHECK(!idle.active() && idle.native_handle() == nullptr);
    CHECK_THROWS(idle.log("Cpp.Idle"), tel::Status::not_initialized);
    CHECK_THROWS(idle.flush(1s), tel::Status::not_initialized);
    CHECK_THROWS(idle.stats(), tel::Status::not_initialized);
    CHECK(idle.try_close().status == tel::Status::not_initialized);
    CHECK(idle.try_set_delivery_callback([](const tel::DeliveryReport&) {}).status ==
          tel::Status::not_initialized);
    CHECK_EQ(idle.close_deadline(), tel::default_shutdown_deadline);

    // Configuration errors, thrown and returned; a failed try_open leaves the target alone.
    CHECK_THROWS(tel::Client(tel::Config("nodash")), tel::Status::invalid_config);
    tel::Client kept(fast_config(collector, kKeyA));
    tel::Result r = tel::Client::try_open(fast_config(collector).set("bogus", 1), kept);
    CHECK(r.status == tel::Status::invalid_config && r.message.find("bogus") != std::string::npos);
    CHECK(kept.active());

    // The destructor closes: what was queued (a long flush interval keeps it there) is
    // delivered within the close deadline.
    {
        tel::Client client(fast_config(collector, kKeyA).flush_interval_ms(10min), 5s);
        CHECK_EQ(client.close_deadline(), 5s);
        client.log("Cpp.Raii.Destructor");
    }
    CHECK(collector.wait(1, 0));
    CHECK_EQ(count_events(collector.accepted(), "Cpp.Raii.Destructor"), 1u);

    // Move construction hands the client over; the moved-from one is inactive.
    tel::Client first(fast_config(collector, kKeyA).flush_interval_ms(10min));
    tel_client* const handle = first.native_handle();
    tel::Client second = std::move(first);
    CHECK(!first.active() && second.active());  // NOLINT(bugprone-use-after-move)
    CHECK(second.native_handle() == handle);
    CHECK_THROWS(first.log("Cpp.MovedFrom"), tel::Status::not_initialized);
    second.log("Cpp.Raii.Moved");

    // Move assignment closes the client the target held (delivering its queued event).
    second = tel::Client(fast_config(collector, kKeyB));
    CHECK(second.active() && second.native_handle() != handle);
    CHECK(collector.wait(2, 0));
    CHECK_EQ(count_events(collector.accepted(), "Cpp.Raii.Moved"), 1u);
    second = tel::Client();
    CHECK(!second.active());

    // try_open replaces (and closes) what the target held.
    tel::Client opened;
    r = tel::Client::try_open(fast_config(collector, kKeyA), opened, 3s);
    CHECK(r.ok() && opened.active());
    CHECK_EQ(opened.close_deadline(), 3s);
    CHECK(opened.try_log("Cpp.Raii.Opened").ok());
    opened.set_close_deadline(4s);
    CHECK_EQ(opened.close_deadline(), 4s);
    opened.close();
    CHECK(!opened.active());
    CHECK_THROWS(opened.close(), tel::Status::not_initialized);
    CHECK(collector.wait(3, 0));

    // Opt-out: a client that does nothing, and still one to close.
    {
        tel::Client off(fast_config(collector, kKeyA).enabled(false));
        CHECK(off.active());
        off.log("Cpp.OptedOut");
        CHECK(!off.stats().enabled);
        CHECK_EQ(off.stats().logged, 0u);
    }
    CHECK_EQ(count_events(collector.accepted(), "Cpp.OptedOut"), 0u);
}

// ~Client returns within its deadline (plus the library's margin) while the collector hangs.
void case_close_hang() {
    Collector collector;
    CHECK(collector.post("/_emulator/default", R"({"fault":"hang"})"));
    constexpr double margin_ms = 200;  // the library's, abi.md
    constexpr double slack_ms = 400;   // a loaded machine, sanitizers
    double close_ms = 0;
    {
        tel::Client client(fast_config(collector, kKeyA).http_timeout_ms(1min), 300ms);
        client.log("Cpp.Hung");
        CHECK(collector.wait(0, 1));  // in flight, hanging
        const auto start = std::chrono::steady_clock::now();
        {
            tel::Client ending = std::move(client);
        }
        close_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                             start)
                       .count();
    }
    std::cout << "~Client(300 ms deadline) returned after " << close_ms << " ms" << std::endl;
    CHECK(close_ms < 300 + margin_ms + slack_ms);
    CHECK(collector.post("/_emulator/release", "{}"));
}

// A delivery callback still blocked when the close's deadline has passed: the close returns
// (abi.md), and the callback, let go, ends with its slot still allocated (under AddressSanitizer
// a freed one would show) and is not called again.
void case_close_blocked() {
    Collector collector;
    std::mutex m;
    std::condition_variable changed;
    bool entered = false, open = false;
    std::atomic<int> calls{0}, late{0};
    std::atomic<bool> closed{false};
    std::atomic<long> thread{0};
    auto client = std::make_unique<tel::Client>(fast_config(collector, kKeyA), 300ms);
    client->set_delivery_callback([&](const tel::DeliveryReport&) {
        ++calls;
        if (closed) ++late;
        thread = static_cast<long>(syscall(SYS_gettid));
        std::unique_lock<std::mutex> lock(m);
        entered = true;
        changed.notify_all();
        changed.wait(lock, [&] { return open; });
    });
    client->log("Cpp.Blocked");
    {
        std::unique_lock<std::mutex> lock(m);
        CHECK(changed.wait_for(lock, 20s, [&] { return entered; }));
    }
    std::atomic<bool> returned{false};
    tel::Result result;
    std::thread closer([&] {
        result = client->try_close();
        returned = true;
    });
    const auto until = std::chrono::steady_clock::now() + 30s;
    while (!returned && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
    CHECK(returned.load());
    if (!returned) {
        closer.detach();
        return;  // a hang: nothing more to learn
    }
    closer.join();
    closed = true;
    CHECK(result.ok());
    client.reset();
    {
        std::lock_guard<std::mutex> lock(m);
        open = true;
    }
    changed.notify_all();
    // The callback's thread (the client's worker) ends once the callback has returned.
    const std::string task = "/proc/self/task/" + std::to_string(thread.load());
    while (std::filesystem::exists(task) && std::chrono::steady_clock::now() < until + 30s)
        std::this_thread::sleep_for(5ms);
    CHECK(!std::filesystem::exists(task));
    CHECK_EQ(calls.load(), 1);
    CHECK_EQ(late.load(), 0);
}

// Delivery reports: one per resolved group, adding up to the counters.
void case_delivery() {
    Collector collector;
    Reports reports;
    std::atomic<int> reentrant{0};
    {
        tel::Client client(fast_config(collector, kKeyA));
        client.set_delivery_callback(reports.callback());

        // Refused with a 400: rejected, not retried.
        CHECK(collector.post("/_emulator/script",
                             R"({"status":400,"headers":{"Collector-Error":"bad batch"},"times":1})"));
        for (int i = 0; i < 3; ++i) client.log("Cpp.Report.Rejected");
        client.flush(20s);
        for (int i = 0; i < 5; ++i) client.log("Cpp.Report.Sent", {{"i", i}});
        client.log("Cpp.Report.Other");
        client.flush(20s);

        // The client moves, its callback with it; a callback may call the library.
        tel::Client moved = std::move(client);
        const tel::Client* self = &moved;
        moved.set_delivery_callback([&, self](const tel::DeliveryReport& r) {
            reports.callback()(r);
            if (self->stats().logged > 0) ++reentrant;
            throw std::runtime_error("swallowed");
        });
        moved.log("Cpp.Report.AfterMove");
        moved.flush(20s);

        const tel::Stats s = moved.stats();
        CHECK_EQ(s.sent, 7u);
        CHECK_EQ(s.rejected, 3u);
        CHECK(s.conserved());
        // Reports may still be on their way when a flush returns; after the close they add
        // up to the counters.
        moved.close();
        CHECK_EQ(reports.events(tel::Outcome::sent), s.sent);
        CHECK_EQ(reports.events(tel::Outcome::rejected), s.rejected);
        CHECK_EQ(reports.named(tel::Outcome::rejected, "Cpp.Report.Rejected"), 3u);
        CHECK_EQ(reports.named(tel::Outcome::sent, "Cpp.Report.Sent"), 5u);
        CHECK_EQ(reports.named(tel::Outcome::sent, "Cpp.Report.Other"), 1u);
        CHECK_EQ(reports.named(tel::Outcome::sent, "Cpp.Report.AfterMove"), 1u);
        CHECK(reentrant.load() >= 1);
        for (const auto& r : reports.all()) {
            report(!r.json.empty() && r.events > 0, "report: " + r.json, __LINE__);
            std::uint64_t named = 0;
            for (const auto& entry : r.names) named += entry.second;
            report(named == r.events, "names add up: " + r.json, __LINE__);
            if (r.outcome == tel::Outcome::rejected) {
                CHECK_EQ(r.status, 400);
                CHECK(r.reason.find("bad batch") != std::string::npos);
            }
            if (r.outcome == tel::Outcome::sent) CHECK_EQ(r.status, 200);
            CHECK(r.json.find(kKeyA) == std::string::npos);
        }
    }

    // dropped_shutdown: nothing delivers, nothing persists; reported at close.
    Reports closing;
    {
        tel::Client dead(tel::Config(kKeyA)
                             .endpoint("http://127.0.0.1:1/OneCollector/1.0/")
                             .disable_cache()
                             .retry_initial_ms(10ms)
                             .http_timeout_ms(1s),
                         200ms);
        dead.set_delivery_callback(closing.callback());
        for (int i = 0; i < 4; ++i) dead.log("Cpp.Report.Dropped");
    }
    CHECK_EQ(closing.events(tel::Outcome::dropped_shutdown), 4u);
    CHECK_EQ(closing.named(tel::Outcome::dropped_shutdown, "Cpp.Report.Dropped"), 4u);

    // The default session's callback.
    Reports session_reports;
    tel::set_delivery_callback(session_reports.callback());
    {
        tel::Session session(fast_config(collector));
        session.log("Cpp.Report.Session");
        session.flush(20s);
    }
    tel::clear_delivery_callback();
    CHECK_EQ(session_reports.named(tel::Outcome::sent, "Cpp.Report.Session"), 1u);
    CHECK_EQ(tel::stats().sent, session_reports.events(tel::Outcome::sent));

    // Parsing: unknown outcomes and fields are kept as they are.
    const tel::DeliveryReport parsed = tel::DeliveryReport::from_json(
        R"({"outcome":"teleported","events":2,"names":{"A.B.C":2},"status":0,"reason":"r","new":1})");
    CHECK(parsed.outcome == tel::Outcome::unknown && parsed.outcome_name == "teleported");
    CHECK(parsed.events == 2 && parsed.names.at("A.B.C") == 2 && parsed.reason == "r");
    CHECK_THROWS(tel::DeliveryReport::from_json("[1]"), tel::Status::internal);
}

// tel::purge deletes what waits in the cache, without a session.
void case_purge() {
    Collector collector;
    const std::string path = cache_file("purge");
    const auto dead = [&] {
        return tel::Config(kKeyA)
            .endpoint("http://127.0.0.1:1/OneCollector/1.0/")
            .cache_path(path)
            .retry_initial_ms(10ms)
            .retry_max_attempts(1)
            .http_timeout_ms(1s);
    };
    const auto live = [&] { return fast_config(collector, kKeyA).cache_path(path); };
    // Five events that cannot be delivered now are persisted: one attempt, refused, sends the
    // batch to the cache file, and the flush returns once it is there, however slow the
    // machine (a close's grace alone could end before the attempt, leaving them to it).
    const auto persist_five = [&] {
        Reports reports;
        {
            tel::Client client(dead(), 300ms);
            client.set_delivery_callback(reports.callback());
            for (int i = 0; i < 5; ++i) client.log("Cpp.Purge.Waiting");
            client.flush(20s);
        }
        CHECK_EQ(reports.events(tel::Outcome::persisted), 5u);
    };

    // Without a purge, the next client delivers them.
    persist_five();
    {
        tel::Client client(live());
        client.flush(20s);
        CHECK_EQ(client.stats().replayed, 5u);
        CHECK_EQ(client.stats().sent, 5u);
    }
    CHECK(collector.wait(5, 0));

    // With one, nothing is left to deliver.
    persist_five();
    tel::purge(live());
    {
        tel::Client client(live());
        client.flush(20s);
        CHECK_EQ(client.stats().replayed, 0u);
        CHECK_EQ(client.stats().sent, 0u);
    }
    CHECK_EQ(count_events(collector.accepted(), "Cpp.Purge.Waiting"), 5u);

    // Nothing to delete is fine; a bad configuration is refused.
    CHECK(tel::try_purge(live()).ok());
    CHECK_THROWS(tel::purge(tel::Config("nodash")), tel::Status::invalid_config);
    const tel::Result r = tel::try_purge(tel::Config().cache_path(path));
    CHECK(r.status == tel::Status::invalid_config && !r.message.empty());
    remove_cache(path);
}

// tel::Client's consent, common properties, pause and resume, and the sampling, scrubbing and
// audit keys of its configuration (ABI 1.2).
void case_controls() {
#if defined(TEL_HAS_ABI_1_2)
    Collector collector;
    const std::string path = cache_file("controls");
    const std::string audit = std::filesystem::path(path).parent_path().string() + "/audit.ndjson";
    {
        tel::Client client(fast_config(collector, kKeyA)
                               .cache_path(path)
                               .consent(tel::ConsentDefault::required)
                               .sample_rate(0)
                               .sample_event("Cpp.Controls.Kept", 1)
                               .scrub({"email", "ipv4"})
                               .audit_path(audit));
        CHECK(client.consent() == tel::Consent::unknown);
        client.set_property("channel", "beta");
        client.log("Cpp.Controls.Sampled");
        client.log("Cpp.Controls.Kept", {{"contact", "jane.doe@example.com"}, {"host", "10.1.2.3"}});
        client.flush(20s);
        CHECK_EQ(client.stats().pending, 1u);
        CHECK_EQ(client.stats().dropped_sampled, 1u);
        CHECK(!cache_folder_holds(path, "Cpp.Controls.Kept"));  // unknown: nothing on disk

        client.pause();
        client.set_consent(tel::Consent::granted);
        client.flush(20s);  // paused with a cache: persisted, not sent
        CHECK(client.stats().paused);
        CHECK(client.stats().persisted >= 1u);
        CHECK(collector.accepted().empty());
        client.resume();
        client.flush(20s);
        CHECK(collector.wait(1, 0));
        const tel::Stats s = client.stats();
        CHECK_EQ(s.sent, 1u);
        CHECK_EQ(s.scrubbed, 2u);
        CHECK(s.consent == tel::Consent::granted);
        CHECK(s.conserved());

        client.set_consent(tel::Consent::denied);
        client.log("Cpp.Controls.Kept", {{"after", "denial"}});
        CHECK_EQ(client.stats().dropped_consent, 1u);
        CHECK(client.try_pause().ok());
        CHECK(client.try_resume().ok());
        CHECK(client.try_remove_property("channel").ok());
    }
    const tel::Array accepted = collector.accepted();
    CHECK_EQ(accepted.size(), 1u);
    const tel::Object* kept = find_event(accepted, "Cpp.Controls.Kept");
    CHECK(kept != nullptr);
    if (kept)
        CHECK_EQ(*kept->find("data"),
                 tel::Value(tel::Object{{"channel", "beta"}, {"contact", "<email>"}, {"host", "<ipv4>"}}));
    std::ifstream in(audit);
    const std::string lines((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(lines.find("\"Cpp.Controls.Kept\"") != std::string::npos);
    CHECK(lines.find("jane.doe") == std::string::npos);
    CHECK_EQ(std::count(lines.begin(), lines.end(), '\n'), 1);

    // A closed client answers not_initialized, without reaching the library.
    tel::Client closed(fast_config(collector, kKeyB));
    closed.close();
    CHECK(!closed.try_consent().has_value());
    CHECK_THROWS(closed.set_consent(tel::Consent::granted), tel::Status::not_initialized);
    CHECK(closed.try_set_property("a", 1).status == tel::Status::not_initialized);
    CHECK(closed.try_pause().status == tel::Status::not_initialized);
    remove_cache(path);
#else
    std::cout << "client.controls: the library's header predates ABI 1.2" << std::endl;
#endif
}

const std::map<std::string, std::function<void()>> cases = {
    {"options", case_options},     {"critical", case_critical},
    {"critical_not_durable", case_critical_not_durable},
    {"two_clients", case_two_clients}, {"lifecycle", case_lifecycle},
    {"close_hang", case_close_hang}, {"delivery", case_delivery},
    {"purge", case_purge},         {"close_blocked", case_close_blocked},
    {"controls", case_controls},
};

}  // namespace

int main(int argc, char** argv) { return run_case(argc, argv, "client", cases); }
