// The SecMsg codec: framing, parsing, and byte-exact round trips.
#include "fuzz_common.hpp"
#include "secmsg/codec.hpp"

using namespace msglab;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    ByteView in(data, size);
    secmsg::Limits limits;
    limits.max_payload = 1 << 16;
    auto len = secmsg::frame_length(in, limits);
    auto parsed = secmsg::parse_packet(in, limits);
    if (parsed) {
        // Whatever parses re-serialises to exactly the input, and framing agrees.
        FUZZ_CHECK(secmsg::serialize(*parsed) == Bytes(in.begin(), in.end()));
        FUZZ_CHECK(len && *len == size);
        secmsg::Keys keys = secmsg::Keys::from_master(ByteView(data, size < 32 ? size : 32));
        auto opened = secmsg::open_regular(keys, *parsed);
        FUZZ_CHECK(opened.plaintext.size() == parsed->payload.size());
    } else if (len && *len != 0 && *len <= size) {
        // Framing found a whole packet at the front: parsing that much must work.
        FUZZ_CHECK(secmsg::parse_packet(in.first(*len), limits).ok());
    }
    return 0;
}
