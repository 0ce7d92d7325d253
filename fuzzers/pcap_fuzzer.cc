// A capture file from memory through libpcap, TCP reassembly and message
// extraction with every registered protocol's codec.
#include <cstdio>

#include "core/registry.hpp"
#include "fuzz_common.hpp"
#include "replay/extract.hpp"

using namespace msglab;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::FILE* f = fmemopen(const_cast<std::uint8_t*>(data), size, "rb");
    if (!f) return 0;
    std::uint64_t messages = 0;
    replay::MessageExtractor ex(Registry::builtin(), {}, [&](const replay::ExtractedMessage& m) {
        FUZZ_CHECK(!m.bytes.empty());
        FUZZ_CHECK(m.first_frame <= m.last_frame);
        ++messages;
    });
    // Small bounds so the fuzzer reaches the gap and eviction paths.
    replay::ReassemblyLimits limits;
    limits.max_held_bytes = 4096;
    limits.max_streams = 8;
    replay::TcpReassembler r(ex, limits);
    try {
        replay::PcapReader reader(f, "fuzz input");
        ByteView frame;
        replay::FrameInfo info;
        while (reader.next(frame, info)) r.add_frame(reader.linktype(), frame, info);
        r.finish(info);
    } catch (const std::runtime_error&) {
        // A damaged file is an expected outcome, reported to the user.
    }
    FUZZ_CHECK(ex.messages() == messages);
    return 0;
}
