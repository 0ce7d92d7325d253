// Scenario files: the YAML checker on any input, and the canonical form of
// whatever it accepts parses back to the same canonical form.
#include <string>

#include "fuzz_common.hpp"
#include "scenario/scenario.hpp"

using namespace msglab::scenario;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string text(reinterpret_cast<const char*>(data), size);
    Scenario s;
    try {
        s = parse_scenario(text, "fuzz.yaml");
    } catch (const ScenarioError&) {
        return 0;  // refused with a reason: what a bad file should get
    }
    std::string once = to_yaml(s);
    std::string twice;
    try {
        twice = to_yaml(parse_scenario(once, "canonical.yaml"));
    } catch (const ScenarioError& e) {
        std::fprintf(stderr, "canonical form refused: %s\n%s\n", e.what(), once.c_str());
        FUZZ_CHECK(false);
    }
    FUZZ_CHECK(twice == once);
    return 0;
}
