// Shared by every fuzz target: the libFuzzer entry point's signature, and a
// check that stops the run (a crash the fuzzer records) when an invariant
// fails.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

#define FUZZ_CHECK(cond)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            std::fprintf(stderr, "fuzz invariant failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
            std::abort();                                                             \
        }                                                                             \
    } while (0)

// The plants MSGLAB_FUZZ_PLANTS names ("all", or ids separated by commas) as
// a mask over `plants` (bit i: plants[i]); none when it is unset. An id not
// in `plants` stops the run with status 2, naming `protocol`.
inline std::uint8_t plants_from_env(const char* const* plants, int count, const char* protocol) {
    const char* env = std::getenv("MSGLAB_FUZZ_PLANTS");
    if (!env) return 0;
    std::string list(env);
    if (list == "all") return static_cast<std::uint8_t>((1u << count) - 1);
    std::uint8_t mask = 0;
    std::size_t pos = 0;
    while (pos <= list.size()) {
        std::size_t comma = list.find(',', pos);
        if (comma == std::string::npos) comma = list.size();
        std::string id = list.substr(pos, comma - pos);
        pos = comma + 1;
        if (id.empty()) continue;
        bool known = false;
        for (int i = 0; i < count; ++i)
            if (id == plants[i]) mask |= static_cast<std::uint8_t>(1u << i), known = true;
        if (!known) {
            std::fprintf(stderr, "MSGLAB_FUZZ_PLANTS: '%s' is not one of the %s plants\n", id.c_str(), protocol);
            std::exit(2);
        }
    }
    return mask;
}
