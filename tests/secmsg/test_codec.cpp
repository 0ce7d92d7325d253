#include "secmsg/codec.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::secmsg;

static const char* kExamplePacket =
    "5365674d534701000000052cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824000000006553f100e6379c2ab0"
    "ebb9a11013d5c997e5c59a7e1adac4a121524636758c2646832733c5502b3c99";

static Keys keys_for_z1() {
    Bytes z(256, 0);
    z.back() = 1;
    return Keys::from_shared_secret(z);
}

TEST_CASE("SecMsg key derivation matches PROTOCOLS.md 4.4 and the original's secmsg.pcap keys", "[codec]") {
    Keys k = keys_for_z1();
    CHECK(hex(k.master) == "408a9e14b19f44ef1a763548b07eae4fd4dd3525b1595c9d103bca15310baa29");
    CHECK(hex(k.hmac_key) == "20243d83b83081ed194aec2664342dc3d294e0682957f686e46b856f50add7be");
    // From captures/originals/README.md: Z, master and HMAC key as the original printed them.
    Bytes z = unhex(
        "fca98b60236d5e1c634c426a6770ddc777268cb42c640d4d347692f721affcf53f6056bd8841f30d8e4edd80603d0b45145d9d2136a750"
        "663532aff6773fee8d44649b7f98da54d6b6992be6e5a81e9f84bec2ca14de4d6ad6629e44570c52f7f51f3fd7404aa48cb9b8adf59bb6"
        "e577ff55172caadc4d849f38df5756d45b3b445cbd34f54c21a87888b8c1751aec75a50bbad28329c6ae0d35a8660efea4840e2d22be6a"
        "05ed9b85d8ac70e7dca0b1c78b73388ddc9fb1a9147abc367253f617f62f3c2e8d28c592039f85e871f1148b9befc7f1c6e7b9c268c5a4"
        "a68b4355ab79e482e2b9f8a8903a9cea7e11412caa28bcf706d5b232c70e81a5fed2505f");
    Keys orig = Keys::from_shared_secret(z);
    CHECK(hex(orig.master) == "791fd47e1612499aa44671e8dbc365976c27f21692326568a7903965b822d656");
    CHECK(hex(orig.hmac_key) == "6a1272a573ce76d1263c52e5fd899c1b31c91c53dd64ae8913a00177a05ade42");
}

TEST_CASE("SecMsg REGULAR packet: the 88-byte example, byte for byte", "[codec]") {
    Packet p = seal_regular(keys_for_z1(), as_bytes("hello"), 1700000000);
    Bytes wire = serialize(p);
    CHECK(hex(wire) == kExamplePacket);
    CHECK(wire.size() == 88);
    auto parsed = parse_packet(wire);
    REQUIRE(parsed);
    CHECK(parsed->type == MessageType::regular);
    CHECK(parsed->timestamp == 1700000000);
    CHECK(hex(parsed->payload) == "e6379c2ab0");
    CHECK(serialize(*parsed) == wire);  // round trip
    Opened o = open_regular(keys_for_z1(), *parsed);
    CHECK(o.hmac_ok);
    CHECK(o.hash_ok);
    CHECK(to_string(o.plaintext) == "hello");
    auto len = frame_length(wire);
    REQUIRE(len);
    CHECK(*len == 88);
}

TEST_CASE("SecMsg handshake packets are exactly 339 bytes with a zero HMAC", "[codec]") {
    Bytes y(256, 0x42);
    Packet p = make_handshake(MessageType::handshake_request, y, 1);
    Bytes wire = serialize(p);
    CHECK(wire.size() == kHandshakePacketBytes);
    CHECK(hex(ByteView(wire).last(32)) == std::string(64, '0'));
    CHECK(p.original_hash == crypto::sha256(y));
    auto parsed = parse_packet(wire);
    REQUIRE(parsed);
    CHECK(parsed->type == MessageType::handshake_request);
    CHECK(serialize(*parsed) == wire);
}

TEST_CASE("SecMsg codec: every error kind, with its offset", "[codec]") {
    Bytes good = unhex(kExamplePacket);
    auto expect = [](const Bytes& b, ParseErrc code, std::size_t offset, Limits lim = {}) {
        auto r = parse_packet(b, lim);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == code);
        CHECK(r.error().offset == offset);
    };
    Bytes bad_magic = good;
    bad_magic[3] = 'X';
    expect(bad_magic, ParseErrc::bad_magic, 0);
    Bytes bad_type = good;
    bad_type[6] = 9;
    expect(bad_type, ParseErrc::unknown_type, 6);
    Bytes zero_type = good;
    zero_type[6] = 0;
    expect(zero_type, ParseErrc::unknown_type, 6);
    expect(Bytes(good.begin(), good.end() - 1), ParseErrc::truncated, 56);  // in the HMAC
    expect(Bytes(good.begin(), good.begin() + 20), ParseErrc::truncated, 11);
    Bytes trailing = good;
    trailing.push_back(0);
    expect(trailing, ParseErrc::trailing_bytes, 88);
    Limits tiny;
    tiny.max_payload = 4;
    expect(good, ParseErrc::length_over_limit, 7, tiny);
    Bytes hs = serialize(make_handshake(MessageType::handshake_response, Bytes(256, 1), 0));
    hs[9] = 0;  // length 0x00000000 + ... not 256
    expect(hs, ParseErrc::bad_length, 7);
    expect(Bytes{}, ParseErrc::truncated, 0);
}

TEST_CASE("SecMsg frame_length decides early and never over-reads", "[codec]") {
    Bytes good = unhex(kExamplePacket);
    for (std::size_t n = 0; n < 11; ++n) {
        auto r = frame_length(ByteView(good).first(n));
        REQUIRE(r);
        CHECK(*r == 0);  // need more
    }
    for (std::size_t n = 11; n <= good.size(); ++n) {
        auto r = frame_length(ByteView(good).first(n));
        REQUIRE(r);
        CHECK(*r == 88);
    }
    CHECK_FALSE(frame_length(as_bytes("X")));          // wrong magic from the first byte
    CHECK_FALSE(frame_length(as_bytes("SegMSG\x07")));  // unknown type from byte 7
    Bytes huge = unhex("5365674d534701ffffffff");
    auto r = frame_length(huge);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ParseErrc::length_over_limit);
}

TEST_CASE("SecMsg codec survives every truncation and single-byte corruption", "[codec]") {
    Bytes good = unhex(kExamplePacket);
    for (std::size_t n = 0; n < good.size(); ++n) CHECK_FALSE(parse_packet(ByteView(good).first(n)));
    for (std::size_t i = 0; i < good.size(); ++i) {
        for (std::uint8_t x : {0x01, 0x80, 0xff}) {
            Bytes b = good;
            b[i] ^= x;
            auto r = parse_packet(b);
            if (r) CHECK(serialize(*r) == b);  // whatever parses re-serialises to the same bytes
        }
    }
}
