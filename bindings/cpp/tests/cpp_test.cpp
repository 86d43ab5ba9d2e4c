// The C++ wrapper (tel/tel.hpp) against a `telctl serve` collector. One executable, one case
// per run: `cpp_test <case>` (ctest registers each case on its own, so that each gets a fresh
// process, as the session is process-wide).

#include <tel/tel.hpp>

#include "support/check.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#ifndef TEL_TEST_EXPECTED_VERSION
#error "TEL_TEST_EXPECTED_VERSION (the crate version, from Cargo.toml) must be defined"
#endif

namespace {

std::string all_control_characters() {
    std::string s;
    for (int c = 0; c < 0x20; ++c) s += static_cast<char>(c);
    s += '\x7f';
    return s;
}

// ------------------------------------------------------------------------------------------

void case_json_writer() {
    using tel::Value;
    CHECK_EQ(Value("a\"b\\c/d").to_json(), std::string(R"("a\"b\\c/d")"));
    CHECK_EQ(Value(all_control_characters()).to_json(),
             std::string("\"\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n"
                         "\\u000b\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015"
                         "\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f"
                         "\x7f\""));
    CHECK_EQ(Value("\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80").to_json(),
             std::string("\"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80\""));
    CHECK_EQ(Value(std::string("a\0b", 3)).to_json(), std::string(R"("a\u0000b")"));
    CHECK_EQ(Value(std::numeric_limits<std::int64_t>::min()).to_json(),
             std::string("-9223372036854775808"));
    CHECK_EQ(Value(std::numeric_limits<std::uint64_t>::max()).to_json(),
             std::string("18446744073709551615"));
    CHECK_EQ(Value(static_cast<short>(-7)).to_json(), std::string("-7"));
    CHECK_EQ(Value(0.1).to_json(), std::string("0.1"));
    CHECK_EQ(Value(2.0).to_json(), std::string("2.0"));
    CHECK_EQ(Value(-0.0).to_json(), std::string("-0.0"));
    CHECK_EQ(Value(3.25f).to_json(), std::string("3.25"));
    CHECK_EQ(Value(std::numeric_limits<double>::quiet_NaN()).to_json(), std::string("null"));
    CHECK_EQ(Value(-std::numeric_limits<double>::infinity()).to_json(), std::string("null"));
    CHECK_EQ(Value(true).to_json(), std::string("true"));
    CHECK_EQ(Value(nullptr).to_json(), std::string("null"));
    CHECK_EQ(Value(static_cast<const char*>(nullptr)).to_json(), std::string("null"));
    CHECK_EQ(Value(std::optional<int>()).to_json(), std::string("null"));
    CHECK_EQ(Value(std::optional<int>(5)).to_json(), std::string("5"));
    CHECK_EQ(Value(std::vector<std::string>{"x", "y"}).to_json(), std::string(R"(["x","y"])"));
    CHECK_EQ((tel::Properties{{"a", tel::Array{1, tel::Object{{"b", nullptr}}, "c"}},
                              {"k\"ey", tel::Object{}},
                              {"e", tel::Array{}}})
                 .to_json(),
             std::string(R"({"a":[1,{"b":null},"c"],"k\"ey":{},"e":[]})"));
    CHECK_EQ(tel::Properties{}.to_json(), std::string("{}"));

    // Every double reads back exactly.
    for (double x : {0.1, 1.0 / 3.0, 1e300, 5e-324, -123456.789, 1e21, 123456789012345680.0}) {
        const Value back = tel::detail::JsonReader(Value(x).to_json()).read_document();
        CHECK(back.get_if<double>() && *back.get_if<double>() == x);
    }

    // Every configuration key of abi.md, named as the key.
    const std::string config =
        tel::Config("abc-def")
            .endpoint("http://127.0.0.1:9/OneCollector/1.0/")
            .enabled(true)
            .cache_path("/tmp/x.cache")
            .ext("app", "ver", "1.2.3")
            .ext("device", "localId", "r:1")
            .ext("app", "name", "n")
            .batch_max_events(10)
            .batch_max_bytes(4096)
            .event_max_bytes(2048)
            .flush_interval_ms(1s)
            .queue_max_events(100)
            .cache_max_bytes(0)
            .cache_max_age_s(std::chrono::hours(1))
            .http_timeout_ms(500ms)
            .compression(tel::Compression::gzip)
            .retry_initial_ms(10ms)
            .retry_max_ms(20ms)
            .retry_max_attempts(3)
            .to_json();
    CHECK_EQ(config,
             std::string(R"({"ikey":"abc-def","endpoint":"http://127.0.0.1:9/OneCollector/1.0/",)"
                         R"("enabled":true,"cache_path":"/tmp/x.cache","ext":{"app":{"ver":"1.2.3",)"
                         R"("name":"n"},"device":{"localId":"r:1"}},"batch_max_events":10,)"
                         R"("batch_max_bytes":4096,"event_max_bytes":2048,"flush_interval_ms":1000,)"
                         R"("queue_max_events":100,"cache_max_bytes":0,"cache_max_age_s":3600,)"
                         R"("http_timeout_ms":500,"compression":"gzip","retry_initial_ms":10,)"
                         R"("retry_max_ms":20,"retry_max_attempts":3})"));
    CHECK_EQ(tel::Config("k-1").disable_cache().cache_path("p").to_json(),
             std::string(R"({"ikey":"k-1","cache_path":"p"})"));
    CHECK_EQ(tel::Config("k-1").compression(tel::Compression::none).to_json(),
             std::string(R"({"ikey":"k-1","compression":"none"})"));

    // The reader: escapes, surrogate pairs, numbers of every kind, strictness.
    const Value parsed = tel::detail::JsonReader(
                             R"( {"s":"\ud83d\ude00\u00e9\/\"","i":-5,"u":18446744073709551615,)"
                             R"("d":1.5e2,"l":[true,false,null],"o":{}} )")
                             .read_document();
    const Value expected = tel::Object{{"s", "\xf0\x9f\x98\x80\xc3\xa9/\""},
                                       {"i", -5},
                                       {"u", std::numeric_limits<std::uint64_t>::max()},
                                       {"d", 150.0},
                                       {"l", tel::Array{true, false, nullptr}},
                                       {"o", tel::Object{}}};
    CHECK_EQ(parsed, expected);
    for (const char* bad : {"{", "[1,]", "\"\\ud800\"", "01", "tru", "{\"a\" 1}", "\"\x01\"", "1 2"}) {
        bool threw = false;
        try {
            tel::detail::JsonReader(bad).read_document();
        } catch (const std::invalid_argument&) {
            threw = true;
        }
        report(threw, std::string("JsonReader refuses ") + bad, __LINE__);
    }

    // Equality is JSON's: member order does not matter, integer signedness does not either.
    CHECK(Value(tel::Object{{"a", 1}, {"b", 2}}) == Value(tel::Object{{"b", 2u}, {"a", 1}}));
    CHECK(Value(tel::Object{{"a", 1}}) != Value(tel::Object{{"a", 1.0}}));

    // Refused at compile time: they would silently become true or a number.
    enum class Color { red };
    static_assert(!std::is_convertible_v<int*, tel::Value>);
    static_assert(!std::is_convertible_v<char, tel::Value>);
    static_assert(!std::is_convertible_v<Color, tel::Value>);
    static_assert(std::is_convertible_v<const char*, tel::Value>);
    static_assert(std::is_convertible_v<std::string_view, tel::Value>);

    // Stats parsing ignores counters it does not know.
    const tel::Stats s =
        tel::Stats::from_json(R"({"enabled":true,"sent":5,"logged":5,"future_counter":1})");
    CHECK(s.enabled && s.sent == 5 && s.logged == 5 && s.conserved());
}

void case_events_arrive() {
    Collector collector;
    const tel::Properties kinds{{"text", "hello"},
                                {"count", 42},
                                {"negative", -7},
                                {"big", std::numeric_limits<std::uint64_t>::max()},
                                {"ratio", 0.25},
                                {"whole", 3.0},
                                {"flag", false},
                                {"nothing", nullptr},
                                {"list", tel::Array{1, "two", 3.5, true, nullptr}},
                                {"nested", tel::Object{{"inner", tel::Object{{"deep", "yes"}}},
                                                       {"empty", tel::Array{}}}}};
    {
        tel::Session session(fast_config(collector).ext("app", "ver", "1.2.3"));
        CHECK(session.active());
        session.log("Cpp.Simple", {{"k", "v"}});
        session.log("Cpp.Kinds", kinds);
        session.log("Cpp.NoProperties");

        // Many threads may log through one const session.
        const tel::Session& shared = session;
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t)
            threads.emplace_back([&shared, t] {
                for (int k = 0; k < 25; ++k)
                    shared.log("Cpp.Threaded", {{"thread", t}, {"k", k}});
            });
        for (auto& thread : threads) thread.join();

        session.flush(20s);
        const tel::Stats stats = session.stats();
        CHECK(stats.enabled);
        CHECK_EQ(stats.logged, 103u);
        CHECK_EQ(stats.sent, 103u);
        CHECK_EQ(stats.pending, 0u);
        CHECK(stats.http_requests >= 1);
        CHECK(stats.conserved());
    }
    CHECK(collector.wait(103, 0));
    const tel::Array envelopes = collector.accepted();
    CHECK_EQ(envelopes.size(), 103u);

    const tel::Object* kinds_event = find_event(envelopes, "Cpp.Kinds");
    CHECK(kinds_event != nullptr);
    if (kinds_event) {
        CHECK_EQ(*kinds_event->find("data"), tel::Value(kinds));
        CHECK_EQ(*kinds_event->find("iKey"), tel::Value("o:cpptenant"));
        const tel::Object* ext = object_of(kinds_event->find("ext"));
        const tel::Object* app = ext ? object_of(ext->find("app")) : nullptr;
        CHECK(app && app->find("ver") && *app->find("ver") == tel::Value("1.2.3"));
    }
    const tel::Object* bare = find_event(envelopes, "Cpp.NoProperties");
    CHECK(bare && bare->find("data") && *bare->find("data") == tel::Value(tel::Object{}));
    const tel::Object* simple = find_event(envelopes, "Cpp.Simple");
    CHECK(simple && *simple->find("data") == tel::Value(tel::Object{{"k", "v"}}));
    CHECK(collector.get("/_emulator/accepted").find(kIkey) == std::string::npos);
}

void case_escaping() {
    Collector collector;
    const std::string controls = all_control_characters();
    const tel::Properties tricky{
        {"quotes", "she said \"hi\""},
        {"backslashes", "C:\\path\\to\\file \\\\server"},
        {"slash", "a/b</script>"},
        {"controls", controls},
        {"nul", std::string("before\0after", 12)},
        {"latin", "caf\xc3\xa9 na\xc3\xafve"},
        {"cjk", "\xe4\xb8\xad\xe6\x96\x87"},
        {"emoji", "\xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd"},
        {"rtl", "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d"},
        {"separators", "\xe2\x80\xa8\xe2\x80\xa9"},
        {"k\"ey\\with\nescapes", "value"},
        {"\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87", "\xd0\xb7\xd0\xbd\xd0\xb0\xd1\x87\xd0\xb5\xd0\xbd\xd0\xb8\xd0\xb5"},
        {"mixed", tel::Array{"\"", "\\", "\n", "\xc3\xa9", tel::Object{{"\t", "\x01"}}}},
        {"extremes", tel::Array{std::numeric_limits<std::int64_t>::min(),
                                std::numeric_limits<std::int64_t>::max(),
                                std::numeric_limits<std::uint64_t>::max(), 1e-300, -1.5e300,
                                0.1, -0.0}},
    };
    {
        tel::Session session(fast_config(collector));
        session.log("Cpp.Escaping", tricky);
        // Invalid UTF-8 is the library's to refuse, and it does.
        CHECK_THROWS(session.log("Cpp.Invalid", {{"s", std::string("\xff\xfe")}}),
                     tel::Status::invalid_argument);
        CHECK_THROWS(session.log("Cpp.Overlong", {{"s", std::string("\xc0\xaf")}}),
                     tel::Status::invalid_argument);
        session.flush(20s);
    }
    CHECK(collector.wait(1, 0));
    const tel::Array envelopes = collector.accepted();
    const tel::Object* event = find_event(envelopes, "Cpp.Escaping");
    CHECK(event != nullptr);
    if (event) {
        const tel::Object* data = object_of(event->find("data"));
        CHECK(data != nullptr);
        if (data) {
            CHECK_EQ(*data, tricky);
            // Field by field too, so that a failure names the field.
            for (const auto& [key, value] : tricky) {
                const tel::Value* got = data->find(key);
                report(got && *got == value, "round trip of " + key, __LINE__);
            }
        }
    }
    // Non-ASCII travels as UTF-8 bytes (the collector writes JSON without \u escapes for it).
    const std::string raw = collector.get("/_emulator/accepted");
    CHECK(raw.find("\xf0\x9f\x98\x80\xf0\x9f\x91\x8d") != std::string::npos);
    CHECK(raw.find("caf\xc3\xa9") != std::string::npos);
}

void case_errors() {
    Collector collector;
    // Configuration errors name the problem.
    CHECK_THROWS(tel::Session(tel::Config("nodash")), tel::Status::invalid_config);
    CHECK_THROWS(tel::Session(tel::Config().endpoint(collector.endpoint())),
                 tel::Status::invalid_config);
    try {
        tel::Session session(fast_config(collector).set("bogus", 1));
        report(false, "an unknown key was accepted", __LINE__);
    } catch (const std::exception& e) {  // tel::Error is a std::runtime_error
        CHECK(std::string(e.what()).find("bogus") != std::string::npos);
        const auto* error = dynamic_cast<const tel::Error*>(&e);
        CHECK(error && error->status() == tel::Status::invalid_config);
        CHECK(error && std::string(error->message()) == e.what());
    }
    CHECK_THROWS(tel::Session(fast_config(collector).endpoint("http://example.com/")),
                 tel::Status::invalid_config);
    CHECK_THROWS(tel::Session(fast_config(collector).ext("os", "release", "1")),
                 tel::Status::invalid_config);

    tel::Session failed;
    tel::Result result = tel::Session::try_start(tel::Config("nodash"), failed);
    CHECK(!result && result.status == tel::Status::invalid_config && !result.message.empty());
    CHECK(!failed.active());
    CHECK_EQ(tel::last_error(), result.message);

    // One session at a time.
    tel::Session session(fast_config(collector)
                             .event_max_bytes(1024)
                             .queue_max_events(1)
                             .flush_interval_ms(std::chrono::minutes(1)));
    CHECK_THROWS(tel::Session(fast_config(collector)), tel::Status::already_initialized);
    tel::Session second;
    result = tel::Session::try_start(fast_config(collector), second);
    CHECK(result.status == tel::Status::already_initialized && !second.active());

    // Event errors, thrown and returned.
    CHECK_THROWS(session.log("ab"), tel::Status::invalid_event);
    result = session.try_log("ab");
    CHECK(result.status == tel::Status::invalid_event && !result.message.empty());
    CHECK_THROWS(session.log("Cpp.TooLarge", {{"s", std::string(4000, 'x')}}),
                 tel::Status::invalid_event);
    CHECK_THROWS(session.log(std::string_view("Cpp.N\0ul", 8)), tel::Status::invalid_argument);
    CHECK_THROWS(session.log("Cpp.NotUtf8\xff"), tel::Status::invalid_argument);

    // Memory holds one event: while it is in flight (the collector hangs), the next one is
    // refused. (A full queue is sent at once, so without the hang the first event could be
    // delivered before the second call.)
    CHECK(collector.post("/_emulator/default", R"({"fault":"hang"})"));
    CHECK(session.try_log("Cpp.First").ok());
    CHECK(collector.wait(0, 1));
    CHECK_THROWS(session.log("Cpp.Second"), tel::Status::queue_full);
    result = session.try_log("Cpp.Third");
    CHECK(result.status == tel::Status::queue_full);
    CHECK_EQ(session.stats().dropped_queue_full, 2u);
    // The hang ends without an answer: the event is retried, and delivered (below).
    CHECK(collector.post("/_emulator/default", "null"));
    CHECK(collector.post("/_emulator/release", "{}"));

    // A moved-from session is inactive and does not reach the library.
    tel::Session moved = std::move(session);
    CHECK(moved.active() && !session.active());  // NOLINT(bugprone-use-after-move)
    CHECK_THROWS(session.log("Cpp.MovedFrom"), tel::Status::not_initialized);
    CHECK_THROWS(session.flush(1s), tel::Status::not_initialized);
    CHECK(session.try_shutdown().status == tel::Status::not_initialized);

    moved.flush(20s);  // past the backoff of the failed attempt
    moved.shutdown();
    CHECK(!moved.active());
    CHECK_THROWS(moved.shutdown(), tel::Status::not_initialized);
    CHECK_EQ(tel::stats().sent, 1u);  // the first event, after its retry

    // Levels outside 0-5 are the library's to clamp.
    CHECK(tel::try_set_logger([](tel::Level, std::string_view) {}, static_cast<tel::Level>(9)).ok());
    CHECK(tel::try_set_logger(nullptr, static_cast<tel::Level>(-1)).ok());
    CHECK_EQ(tel::to_string(static_cast<tel::Status>(99)), std::string_view("TEL_ERR_UNKNOWN"));
}

void case_deadline_hang() {
    Collector collector;
    const auto elapsed_ms = [](std::chrono::steady_clock::time_point since) {
        return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since)
            .count();
    };
    // Every upload hangs before the collector answers.
    CHECK(collector.post("/_emulator/default", R"({"fault":"hang"})"));
    const auto config = fast_config(collector).http_timeout_ms(std::chrono::minutes(1));
    constexpr double margin_ms = 200;  // the library's, abi.md
    constexpr double slack_ms = 400;   // a loaded machine, sanitizers

    double flush_ms = 0, destructor_ms = 0;
    {
        tel::Session session(config, 500ms);
        CHECK_EQ(session.shutdown_deadline(), 500ms);
        session.log("Cpp.Hung", {{"n", 1}});
        CHECK(collector.wait(0, 1));  // the upload is in flight and hanging

        auto start = std::chrono::steady_clock::now();
        const tel::Result flushed = session.try_flush(300ms);
        flush_ms = elapsed_ms(start);
        CHECK(flushed.status == tel::Status::timeout);
        CHECK_THROWS(session.flush(100ms), tel::Status::timeout);

        start = std::chrono::steady_clock::now();
        {
            tel::Session ending = std::move(session);
            start = std::chrono::steady_clock::now();
        }  // ~Session: tel_shutdown(500 ms) while the request hangs
        destructor_ms = elapsed_ms(start);
    }
    std::cout << "flush(300ms) returned after " << flush_ms << " ms; ~Session(500ms deadline) after "
              << destructor_ms << " ms" << std::endl;
    CHECK(flush_ms >= 250 && flush_ms < 300 + margin_ms + slack_ms);
    CHECK(destructor_ms < 500 + margin_ms + slack_ms);
    const tel::Stats after = tel::stats();
    CHECK(after.conserved());
    CHECK_EQ(after.sent, 0u);
    CHECK_EQ(after.dropped_shutdown, 1u);  // nothing persists with the cache disabled

    // An explicit shutdown reports the timeout, and the session ends all the same.
    {
        tel::Session session(config, 300ms);
        session.log("Cpp.HungAgain");
        CHECK(collector.wait(0, 2));
        const auto start = std::chrono::steady_clock::now();
        const tel::Result ended = session.try_shutdown();
        const double shutdown_ms = elapsed_ms(start);
        std::cout << "try_shutdown(300ms deadline) returned after " << shutdown_ms << " ms"
                  << std::endl;
        CHECK(ended.status == tel::Status::timeout && !ended.message.empty());
        CHECK(!session.active());
        CHECK(shutdown_ms < 300 + margin_ms + slack_ms);
    }

    // The collector recovers; the next session delivers.
    CHECK(collector.post("/_emulator/default", "null"));
    CHECK(collector.post("/_emulator/release", "{}"));
    {
        tel::Session session(config);
        session.log("Cpp.AfterHang");
        session.flush(20s);
        CHECK_EQ(session.stats().sent, 1u);
    }
    CHECK(collector.wait(1, 0));
}

void case_stats_logger() {
    Collector collector;
    struct Line {
        tel::Level level;
        std::string text;
    };
    std::mutex mutex;
    std::vector<Line> lines;
    tel::set_logger(
        [&](tel::Level level, std::string_view message) {
            std::lock_guard<std::mutex> lock(mutex);
            lines.push_back({level, std::string(message)});
        },
        tel::Level::debug);

    CHECK(collector.post("/_emulator/script",
                         R"({"status":503,"headers":{"Collector-Error":"test outage"},"times":1})"));
    {
        tel::Session session(fast_config(collector));
        session.log("Cpp.Retried", {{"n", 1}});
        session.flush(20s);
        const tel::Stats s = session.stats();
        CHECK_EQ(s.logged, 1u);
        CHECK_EQ(s.sent, 1u);
        CHECK_EQ(s.pending, 0u);
        CHECK(s.retries >= 1);
        CHECK(s.http_requests >= 2);
        CHECK(s.http_failures >= 1);
        CHECK(s.enabled && s.conserved());
        CHECK_EQ(tel::Stats::from_json(tel::stats_json()).sent, 1u);

        // A callback may call back into the library, and may replace itself.
        std::atomic<int> reentrant_calls{0};
        tel::set_logger(
            [&](tel::Level, std::string_view) {
                if (tel::stats().logged >= 1) ++reentrant_calls;
                tel::clear_logger();
            },
            tel::Level::debug);
        CHECK(collector.post("/_emulator/script", R"({"status":503,"times":1})"));
        session.log("Cpp.Reentrant");
        session.flush(20s);
        CHECK(reentrant_calls.load() >= 1);

        // An exception thrown by a callback stays out of the library.
        std::atomic<int> thrown{0};
        tel::set_logger(
            [&](tel::Level, std::string_view) {
                ++thrown;
                throw std::runtime_error("from the callback");
            },
            tel::Level::debug);
        CHECK(collector.post("/_emulator/script", R"({"status":503,"times":1})"));
        session.log("Cpp.Throwing");
        session.flush(20s);
        CHECK(thrown.load() >= 1);
        CHECK_EQ(session.stats().sent, 3u);

        // After clear_logger returns, the old callback is never called again.
        std::atomic<bool> cleared{false};
        std::atomic<int> late_calls{0};
        tel::set_logger([&](tel::Level, std::string_view) { late_calls += cleared ? 1 : 0; },
                        tel::Level::trace);
        session.log("Cpp.Traced");
        tel::clear_logger();
        cleared = true;
        CHECK(collector.post("/_emulator/script", R"({"status":503,"times":1})"));
        session.log("Cpp.Quiet");
        session.flush(20s);
        CHECK_EQ(late_calls.load(), 0);
    }
    // The last session's figures stay readable after it ended.
    const tel::Stats after = tel::stats();
    CHECK_EQ(after.sent, 5u);
    CHECK(after.conserved());

    std::lock_guard<std::mutex> lock(mutex);
    bool saw_503 = false, saw_reason = false, saw_key = false;
    for (const auto& line : lines) {
        saw_503 = saw_503 || (line.level == tel::Level::debug && line.text.find("503") != std::string::npos);
        saw_reason = saw_reason || line.text.find("test outage") != std::string::npos;
        saw_key = saw_key || line.text.find(kIkey) != std::string::npos;
    }
    CHECK(saw_503);
    CHECK(saw_reason);
    CHECK(!saw_key);  // the full instrumentation key appears in no line
}

void case_lifecycle() {
    Collector collector;
    static_assert(!std::is_copy_constructible_v<tel::Session>);
    static_assert(!std::is_copy_assignable_v<tel::Session>);
    static_assert(std::is_nothrow_move_constructible_v<tel::Session>);
    static_assert(std::is_nothrow_move_assignable_v<tel::Session>);

    CHECK_EQ(tel::version(), std::string_view(TEL_TEST_EXPECTED_VERSION));
    CHECK_EQ(tel::header_version, std::string_view(TEL_TEST_EXPECTED_VERSION));

    tel::Session idle;
    CHECK(!idle.active());
    CHECK_THROWS(idle.log("Cpp.Idle"), tel::Status::not_initialized);
    CHECK_EQ(idle.shutdown_deadline(), tel::default_shutdown_deadline);

    // Sessions one after another.
    for (int k = 0; k < 3; ++k) {
        tel::Session session(fast_config(collector));
        session.log("Cpp.Sequential", {{"k", k}});
    }
    CHECK(collector.wait(3, 0));

    // Move assignment hands the session over; assigning an inactive one ends it.
    {
        tel::Session a(fast_config(collector));
        tel::Session b;
        b = std::move(a);
        CHECK(b.active() && !a.active());  // NOLINT(bugprone-use-after-move)
        b.log("Cpp.Moved");
        b = tel::Session();
        CHECK(!b.active());
        tel::Session c(fast_config(collector));  // the previous one ended
        CHECK(c.active());
        c.set_shutdown_deadline(3s);
        CHECK_EQ(c.shutdown_deadline(), 3s);
        tel::Session d;
        CHECK(tel::Session::try_start(fast_config(collector), d).status ==
              tel::Status::already_initialized);
    }
    {
        tel::Session started;
        const tel::Result result = tel::Session::try_start(fast_config(collector), started, 1s);
        CHECK(result.ok() && static_cast<bool>(result) && started.active());
        CHECK_EQ(started.shutdown_deadline(), 1s);
        CHECK(started.try_log("Cpp.TryStarted", {{"ok", true}}).ok());
        CHECK(started.try_flush(20s).ok());
    }
    CHECK(collector.wait(5, 0));

    // Opt-out: the session starts and does nothing.
    {
        tel::Session off(fast_config(collector).enabled(false));
        off.log("Cpp.OptedOut");
        CHECK(!off.stats().enabled);
        CHECK_EQ(off.stats().logged, 0u);
    }
    CHECK_EQ(collector.accepted().size(), 5u);
}

// The ABI 1.2 configuration keys as JSON, and the stats' new fields and conservation law; needs
// no library call.
void case_privacy_config() {
    const tel::Config config = tel::Config("cpptenant-0123456789abcdef")
                                   .consent(tel::ConsentDefault::required)
                                   .consent_version(2)
                                   .property("channel", "beta")
                                   .property("build", tel::Object{{"id", 42}})
                                   .property("channel", "stable")
                                   .sample_rate(0.5)
                                   .sample_event("Cpp.Rare", 1.0)
                                   .scrub({"email", "ipv4"})
                                   .audit_path("/var/tmp/audit.ndjson")
                                   .audit_max_bytes(4096)
                                   .max_inflight_requests(8);
    CHECK_EQ(config.to_json(),
             std::string(R"({"ikey":"cpptenant-0123456789abcdef","consent":"required",)"
                         R"("consent_version":2,"properties":{"channel":"stable","build":{"id":42}},)"
                         R"("sample":{"rate":0.5,"events":{"Cpp.Rare":1.0}},"scrub":["email","ipv4"],)"
                         R"("audit_path":"/var/tmp/audit.ndjson","audit_max_bytes":4096,)"
                         R"("max_inflight_requests":8})"));
    CHECK_EQ(tel::Config().consent(tel::ConsentDefault::granted).scrub({}).to_json(),
             std::string(R"({"consent":"granted","scrub":[]})"));
    // properties() replaces what property() added.
    CHECK_EQ(tel::Config().property("a", 1).properties({{"b", 2}}).to_json(),
             std::string(R"({"properties":{"b":2}})"));

    const tel::Stats s = tel::Stats::from_json(
        R"({"enabled":true,"logged":7,"sent":2,"rejected":0,"dropped_killed":0,"dropped_shutdown":0,)"
        R"("dropped_evicted":0,"dropped_consent":3,"dropped_sampled":1,"persisted":0,"pending":1,)"
        R"("replayed":0,"scrubbed":5,"consent":"denied","paused":true})");
    CHECK_EQ(s.dropped_consent, 3u);
    CHECK_EQ(s.dropped_sampled, 1u);
    CHECK_EQ(s.scrubbed, 5u);
    CHECK(s.consent == tel::Consent::denied);
    CHECK(s.paused);
    CHECK(s.conserved());
    tel::Stats missing = s;
    missing.dropped_consent = 0;
    CHECK(!missing.conserved());
    missing = s;
    missing.dropped_sampled = 0;
    CHECK(!missing.conserved());
    CHECK(tel::Stats::from_json(R"({"consent":"unknown"})").consent == tel::Consent::unknown);
    CHECK(tel::Stats::from_json(R"({})").consent == tel::Consent::granted);
    CHECK(!tel::Stats::from_json(R"({})").paused);
    CHECK_EQ(tel::to_string(tel::Consent::granted), std::string_view("granted"));
}

#if defined(TEL_HAS_ABI_1_2)
std::size_t request_count(const Collector& collector) {
    const tel::Value all = tel::detail::JsonReader(collector.get("/_emulator/requests")).read_document();
    const auto* array = all.get_if<tel::Array>();
    return array ? array->size() : 0;
}
#endif

// tel::Session's consent, common properties, pause and resume (ABI 1.2).
void case_session_controls() {
#if defined(TEL_HAS_ABI_1_2)
    static_assert(static_cast<int>(tel::Consent::granted) == TEL_CONSENT_GRANTED);
    static_assert(static_cast<int>(tel::Consent::denied) == TEL_CONSENT_DENIED);
    static_assert(static_cast<int>(tel::Consent::unknown) == TEL_CONSENT_UNKNOWN);
    Collector collector;
    {
        tel::Session inactive;
        CHECK(!inactive.try_consent().has_value());
        CHECK_THROWS(inactive.consent(), tel::Status::not_initialized);
        CHECK_THROWS(inactive.set_consent(tel::Consent::granted), tel::Status::not_initialized);
        CHECK_THROWS(inactive.pause(), tel::Status::not_initialized);
        CHECK(inactive.try_resume().status == tel::Status::not_initialized);
        CHECK(inactive.try_set_property("build", "abc").status == tel::Status::not_initialized);
    }
    {
        tel::Session session(fast_config(collector)
                                 .consent(tel::ConsentDefault::required)
                                 .property("channel", "beta"));
        CHECK(session.consent() == tel::Consent::unknown);
        CHECK(session.stats().consent == tel::Consent::unknown);
        session.set_property("build", tel::Object{{"id", 42}});
        session.log("Cpp.Consent.Waits", {{"n", 1}});
        session.log("Cpp.Consent.OwnKey", {{"channel", "stable"}});
        session.remove_property("build");
        session.log("Cpp.Consent.Removed");
        session.flush(20s);  // at once: nothing can be sent
        CHECK_EQ(session.stats().pending, 3u);
        CHECK_EQ(request_count(collector), 0u);
        CHECK_THROWS(session.set_consent(tel::Consent::unknown), tel::Status::invalid_argument);
        CHECK_THROWS(session.set_property("", 1), tel::Status::invalid_event);
        CHECK(session.try_set_property(std::string_view("a\0b", 3), 1).status ==
              tel::Status::invalid_argument);

        session.pause();
        session.pause();  // idempotent
        CHECK(session.stats().paused);
        session.set_consent(tel::Consent::granted);
        CHECK(session.consent() == tel::Consent::granted);
        session.flush(20s);
        CHECK_EQ(request_count(collector), 0u);  // paused, and no cache: they wait
        session.resume();
        CHECK(!session.stats().paused);
        session.flush(20s);
        CHECK(collector.wait(3, 0));
        const tel::Array accepted = collector.accepted();
        const tel::Object* waits = find_event(accepted, "Cpp.Consent.Waits");
        const tel::Object* own = find_event(accepted, "Cpp.Consent.OwnKey");
        const tel::Object* removed = find_event(accepted, "Cpp.Consent.Removed");
        CHECK(waits && own && removed);
        if (waits && own && removed) {
            CHECK_EQ(*waits->find("data"),
                     tel::Value(tel::Object{{"channel", "beta"}, {"build", tel::Object{{"id", 42}}}, {"n", 1}}));
            CHECK_EQ(*own->find("data"),
                     tel::Value(tel::Object{{"channel", "stable"}, {"build", tel::Object{{"id", 42}}}}));
            CHECK_EQ(*removed->find("data"), tel::Value(tel::Object{{"channel", "beta"}}));
        }
        const tel::Stats s = session.stats();
        CHECK_EQ(s.sent, 3u);
        CHECK(s.conserved());

        session.set_consent(tel::Consent::denied);
        session.log("Cpp.Consent.Denied");
        session.flush(20s);
        const tel::Stats denied = session.stats();
        CHECK(denied.consent == tel::Consent::denied);
        CHECK_EQ(denied.dropped_consent, 1u);
        CHECK(denied.conserved());
    }
    CHECK_EQ(collector.accepted().size(), 3u);
#else
    std::cout << "cpp.session_controls: the library's header predates ABI 1.2" << std::endl;
#endif
}

const std::map<std::string, std::function<void()>> cases = {
    {"json_writer", case_json_writer},   {"events_arrive", case_events_arrive},
    {"escaping", case_escaping},         {"errors", case_errors},
    {"deadline_hang", case_deadline_hang}, {"stats_logger", case_stats_logger},
    {"lifecycle", case_lifecycle},       {"privacy_config", case_privacy_config},
    {"session_controls", case_session_controls},
};

}  // namespace

int main(int argc, char** argv) { return run_case(argc, argv, "cpp", cases); }
