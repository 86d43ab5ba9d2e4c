// What the C++ test programs share: CHECK macros that count and report failures (a test goes on
// after a failed check, so that one run shows every failure), the collector of one test
// (`telctl serve`, see collector.h), a fast configuration, and envelope lookups.

#ifndef TEL_TEST_CHECK_HPP
#define TEL_TEST_CHECK_HPP

#include <tel/tel.hpp>

#include "collector.h"

#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <type_traits>

using namespace std::chrono_literals;

namespace {

int checks = 0;
int failures = 0;

inline void report(bool ok, const std::string& what, int line) {
    ++checks;
    if (!ok) {
        ++failures;
        std::cerr << "FAIL line " << line << ": " << what << std::endl;
    }
}

#define CHECK(cond) report(static_cast<bool>(cond), #cond, __LINE__)

#define CHECK_EQ(a, b)                                                                 \
    do {                                                                               \
        const auto& check_a_ = (a);                                                    \
        const auto& check_b_ = (b);                                                    \
        std::ostringstream check_text_;                                                \
        check_text_ << #a << " == " << #b << " (" << printable(check_a_) << " vs "     \
                    << printable(check_b_) << ")";                                     \
        report(check_a_ == check_b_, check_text_.str(), __LINE__);                     \
    } while (0)

// Runs `expr`, which must throw tel::Error with `want`.
#define CHECK_THROWS(expr, want)                                                       \
    do {                                                                               \
        bool check_thrown_ = false;                                                    \
        try {                                                                          \
            (void)(expr);                                                              \
        } catch (const tel::Error& check_e_) {                                         \
            check_thrown_ = true;                                                      \
            report(check_e_.status() == (want) && std::strlen(check_e_.what()) > 0,    \
                   std::string(#expr) + " threw " +                                    \
                       std::string(tel::to_string(check_e_.status())) + ": " +         \
                       check_e_.what(),                                                \
                   __LINE__);                                                          \
        }                                                                              \
        if (!check_thrown_) report(false, std::string(#expr) + " did not throw", __LINE__); \
    } while (0)

template <typename T>
std::string printable(const T& v) {
    if constexpr (std::is_same_v<T, tel::Value> || std::is_same_v<T, tel::Object>) {
        return v.to_json();
    } else if constexpr (std::is_same_v<T, tel::Status>) {
        return std::string(tel::to_string(v));
    } else if constexpr (std::is_same_v<T, std::string_view>) {
        return std::string(v);
    } else if constexpr (std::is_arithmetic_v<T> || std::is_same_v<T, std::string>) {
        std::ostringstream s;
        s << v;
        return s.str();
    } else {
        return "?";
    }
}

constexpr const char* kIkey = "cpptenant-0123456789abcdef";

// A collector for this process, stopped at the end of the scope.
class Collector {
public:
    Collector() {
        if (tel_test_collector_start(&c_, nullptr) != 0) {
            std::cerr << "cannot start the collector (set TELCTL)" << std::endl;
            std::exit(2);
        }
    }
    ~Collector() { tel_test_collector_stop(&c_); }
    Collector(const Collector&) = delete;
    Collector& operator=(const Collector&) = delete;

    std::string endpoint() const { return c_.endpoint; }

    bool post(const char* path, const std::string& body) const {
        return tel_test_post(&c_, path, body.c_str()) == 0;
    }

    std::string get(const char* path) const {
        char* text = nullptr;
        const int status = tel_test_http(&c_, "GET", path, nullptr, &text);
        std::string out = text ? text : "";
        std::free(text);
        if (status != 200) std::cerr << "GET " << path << " answered " << status << std::endl;
        return out;
    }

    bool wait(unsigned accepted, unsigned requests, unsigned timeout_ms = 15000) const {
        return tel_test_wait(&c_, accepted, requests, timeout_ms) == 0;
    }

    // The accepted envelopes, parsed.
    tel::Array accepted() const {
        const tel::Value all = tel::detail::JsonReader(get("/_emulator/accepted")).read_document();
        const auto* array = all.get_if<tel::Array>();
        return array ? *array : tel::Array{};
    }

private:
    tel_test_collector c_{};
};

// A configuration that keeps tests fast and writes nothing to disk.
inline tel::Config fast_config(const Collector& collector, const char* ikey = kIkey) {
    return tel::Config(ikey)
        .endpoint(collector.endpoint())
        .disable_cache()
        .flush_interval_ms(20ms)
        .retry_initial_ms(20ms)
        .retry_max_ms(200ms)
        .http_timeout_ms(5s);
}

inline const tel::Object* object_of(const tel::Value* v) { return v ? v->get_if<tel::Object>() : nullptr; }

inline const tel::Object* find_event(const tel::Array& envelopes, std::string_view name) {
    for (const auto& envelope : envelopes) {
        const auto* object = envelope.get_if<tel::Object>();
        if (!object) continue;
        const tel::Value* n = object->find("name");
        if (n && n->get_if<std::string>() && *n->get_if<std::string>() == name) return object;
    }
    return nullptr;
}

// Runs the case named by argv[1] and prints the tally; the exit status says whether it passed.
inline int run_case(int argc, char** argv, const char* program,
             const std::map<std::string, std::function<void()>>& cases) {
    if (argc != 2 || cases.count(argv[1]) == 0) {
        std::cerr << "usage: " << program << " <case>; cases:";
        for (const auto& entry : cases) std::cerr << ' ' << entry.first;
        std::cerr << std::endl;
        return 2;
    }
    try {
        cases.at(argv[1])();
    } catch (const std::exception& e) {
        report(false, std::string("uncaught exception: ") + e.what(), 0);
    }
    std::cout << program << "." << argv[1] << ": " << checks << " checks, " << failures
              << " failed" << std::endl;
    return failures == 0 ? 0 : 1;
}

}  // namespace

#endif  // TEL_TEST_CHECK_HPP
