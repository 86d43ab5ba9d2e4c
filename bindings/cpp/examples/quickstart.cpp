// The C++ quick start: a session for the program's lifetime, events with typed properties,
// errors as exceptions.
//
//   TEL_IKEY=<tenant>-<rest> [TEL_ENDPOINT=http://127.0.0.1:PORT/OneCollector/1.0/] ./tel_quickstart_cpp

#include <tel/tel.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>

int main() {
    const char* ikey = std::getenv("TEL_IKEY");
    if (ikey == nullptr) {
        std::cerr << "set TEL_IKEY to your instrumentation key\n";
        return 2;
    }
    tel::Config config(ikey);
    config.ext("app", "ver", "1.0.0");
    if (const char* endpoint = std::getenv("TEL_ENDPOINT")) config.endpoint(endpoint);

    // The library's warnings and errors, on stderr.
    tel::set_logger(
        [](tel::Level, std::string_view line) { std::cerr << "tel: " << line << '\n'; },
        tel::Level::warn);

    try {
        // ~Session ends the session, waiting at most 2 s for pending events.
        tel::Session session(config, std::chrono::seconds(2));

        session.log("Quickstart.Started", {{"language", "C++"},
                                           {"answer", 42},
                                           {"ratio", 0.5},
                                           {"ok", true},
                                           {"tags", tel::Array{"quick", "start"}},
                                           {"build", tel::Object{{"type", "release"}}}});

        // In hot paths, the non-throwing variant.
        if (tel::Result r = session.try_log("Quickstart.Hot"); !r)
            std::cerr << "dropped: " << r.message << '\n';

        session.flush(std::chrono::seconds(5));
        const tel::Stats stats = session.stats();
        std::cout << "onecollector-tel " << tel::version() << ": sent " << stats.sent << " of "
                  << stats.logged << " events\n";
    } catch (const tel::Error& e) {
        std::cerr << "telemetry: " << tel::to_string(e.status()) << ": " << e.what() << '\n';
        return 1;
    }
    tel::clear_logger();
    return 0;
}
