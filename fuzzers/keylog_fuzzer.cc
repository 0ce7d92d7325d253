// Key log files and lines: junk is skipped, never a crash or unbounded memory.
#include <sstream>
#include <string>

#include "core/keylog.hpp"
#include "fuzz_common.hpp"

using namespace msglab;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    std::istringstream in(text);
    KeyLog log = KeyLog::parse(in);
    for (const auto& e : log.entries()) {
        FUZZ_CHECK(!e.secret.empty() && !e.session_id.empty());
        FUZZ_CHECK(log.find(e.label, e.session_id).has_value());
        // A parsed line formats back to a line that parses to the same entry.
        auto again = parse_keylog_line(format_keylog_line(e.label, e.session_id, e.secret));
        FUZZ_CHECK(again && again->label == e.label && again->secret == e.secret);
    }
    return 0;
}
