// Writes the seed corpora in fuzzers/corpus/ from real captures and sessions:
// run by regenerate-corpus.sh. Usage: make_corpus OUT_DIR CAPTURE.pcap...
#include <pcap/pcap.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "core/crypto.hpp"
#include "core/fernet.hpp"
#include "core/keylog.hpp"
#include "core/registry.hpp"
#include "replay/extract.hpp"
#include "replay/pcap_io.hpp"
#include "replay/synth.hpp"
#include "secmsg/session.hpp"
#include "slmp/codec.hpp"
#include "slmp_fixture.hpp"
#include "socp/wire.hpp"
#include "spchat/wire.hpp"

using namespace msglab;
namespace fs = std::filesystem;

namespace {

void put(const fs::path& dir, const std::string& name, ByteView data) {
    fs::create_directories(dir);
    std::ofstream(dir / name, std::ios::binary).write(reinterpret_cast<const char*>(data.data()),
                                                      static_cast<std::streamsize>(data.size()));
}

std::string name_of(ByteView data) { return hex(ByteView(crypto::sha256(data)).first(8)); }

Bytes cat(std::initializer_list<ByteView> parts) {
    Bytes out;
    for (ByteView p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}
Bytes u8(std::uint8_t v) { return Bytes{v}; }
// socp_payload_fuzzer.cc's group key.
constexpr std::uint8_t kSocpGroupKey[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                           17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
Bytes be16(std::uint16_t v) { return Bytes{static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)}; }

// slmp_codec_fuzzer.cc, stream mode: one record of raw bytes from `from`.
Bytes raw_record(Peer from, ByteView bytes) {
    return cat({u8(from == Peer::server ? 1 : 0), be16(static_cast<std::uint16_t>(bytes.size())), bytes});
}
// ... and one naming unit k of the fixed session.
Bytes fixture_record(Peer from, int k) {
    return u8(static_cast<std::uint8_t>((k << 2) | 2 | (from == Peer::server ? 1 : 0)));
}

// slmp_session_fuzzer.cc ops.
Bytes key_op(std::uint8_t variant, std::uint8_t how) { return {0, variant, how}; }
Bytes token_op(std::uint8_t flags, std::uint16_t len, std::uint8_t fill, std::int8_t dt, std::uint8_t how,
               ByteView more = {}) {
    return cat({u8(1), u8(flags), be16(len), u8(fill), u8(static_cast<std::uint8_t>(dt)), u8(how), more});
}
Bytes raw_op(std::uint8_t op, ByteView bytes) {
    return cat({u8(op), u8(static_cast<std::uint8_t>(bytes.size())), bytes});
}
Bytes idle_op(std::uint8_t which) { return {4, which}; }
Bytes end_op() { return {5}; }
Bytes clock_op(std::uint8_t arg) { return {6, arg}; }
Bytes deliver_op(std::uint8_t how) { return {7, how}; }

void slmp_seeds(const fs::path& out) {
    using fuzzing::SlmpFixture;
    const auto& fx = fuzzing::slmp_fixture();
    // Codec: every unit of the fixed session alone, and the session as a
    // connection, keyed and not.
    for (const auto& u : fx.units) put(out / "slmp_codec", name_of(cat({u8(0), u})), cat({u8(0), u}));
    Bytes session = cat({fixture_record(Peer::client, SlmpFixture::client_key),
                         fixture_record(Peer::server, SlmpFixture::server_key),
                         fixture_record(Peer::client, SlmpFixture::request),
                         fixture_record(Peer::server, SlmpFixture::reply)});
    for (std::uint8_t mode : {2, 3}) put(out / "slmp_codec", name_of(cat({u8(mode), session})), cat({u8(mode), session}));
    // A connection in odd pieces: the key and the request in one read, the
    // reply in two, then a new exchange with a token that is not the session's.
    const Bytes& ck = fx.units[SlmpFixture::client_key];
    const Bytes& rq = fx.units[SlmpFixture::request];
    const Bytes& rp = fx.units[SlmpFixture::reply];
    Bytes pieces = cat({u8(2), raw_record(Peer::client, cat({ck, rq})),
                        fixture_record(Peer::server, SlmpFixture::server_key),
                        raw_record(Peer::server, ByteView(rp).first(50)), raw_record(Peer::server, ByteView(rp).subspan(50)),
                        fixture_record(Peer::client, SlmpFixture::other_client_key),
                        fixture_record(Peer::client, SlmpFixture::wrong_key_token),
                        fixture_record(Peer::client, SlmpFixture::bad_auth_request)});
    put(out / "slmp_codec", name_of(pieces), pieces);
    // Sealed plaintexts: the original's request and reply, a request near the
    // original's 1024-byte read, and ones that do not parse.
    std::string demo = slmp::auth_token("amir", slmp::kDefaultSecret) + ";amir;Hello SLMP!";
    std::string near = slmp::auth_token("amir", slmp::kDefaultSecret) + ";amir;" + std::string(620, 'x');
    for (const std::string& p : {demo, std::string("Message received: Hello SLMP!"), near, std::string("a;b;c;d"),
                                 std::string("tok;us\xc3\x28" "er;msg")}) {
        Bytes seed = cat({u8(1), as_bytes(p)});
        put(out / "slmp_codec", name_of(seed), seed);
    }

    // Sessions (see slmp_session_fuzzer.cc). Plants byte 0: none; 0x0f: every
    // plant but slmp.unit-overflow, which campaigns must find.
    const std::vector<Bytes> sessions = {
        // The usual exchange, and the reply to the client.
        cat({u8(0), key_op(0, 0), token_op(0, 11, 'a', 0, 0), deliver_op(0)}),
        // The same in pieces: the key in 16-byte writes, the token cut in two,
        // the server's units in 7-byte writes.
        cat({u8(0), key_op(0, 16), token_op(0, 40, 'b', 0, 0x80 + 64), deliver_op(7)}),
        // The longest message whose token fits the original's 1024-byte read
        // (703 bytes of plaintext, a 1016-byte token).
        cat({u8(0), key_op(0, 0), token_op(0, 631, 'c', 0, 0), deliver_op(0)}),
        // A user and message of the fuzzer's own bytes: UTF-8, then a ';' in the message.
        cat({u8(0), key_op(0, 0), token_op(3, 12, 5, 0, 0, as_bytes("\xc3\xa9mile" "hello there!")), deliver_op(0)}),
        cat({u8(0), key_op(0, 0), token_op(3, 12, 5, 0, 0, as_bytes("\xc3\xa9mile" "hello;there!"))}),
        // Wrong authentication token; wrong key; a stale and a future token.
        cat({u8(0), key_op(0, 0), token_op(1, 5, 'd', 0, 0)}),
        cat({u8(0), key_op(0, 0), token_op(4, 5, 'e', 0, 0)}),
        cat({u8(0), key_op(0, 0), token_op(0, 5, 'f', -100, 0)}),
        cat({u8(0), key_op(0, 0), clock_op(0x7f), token_op(0, 5, 'g', 100, 0)}),
        // A plaintext that is no request; a token without its padding, judged
        // at a quiet gap, then the end of input.
        cat({u8(0), key_op(0, 0), token_op(2, 9, 0, 0, 0, as_bytes("no fields"))}),
        cat({u8(0), key_op(0, 0), token_op(8, 1, 'h', 0, 0), idle_op(3), end_op()}),
        // Key variants: CRLF, no final newline (the token ends it), another
        // client's key (the client cannot open the reply).
        cat({u8(0), key_op(1, 0), token_op(0, 3, 'i', 0, 0), deliver_op(0)}),
        cat({u8(0), key_op(2, 0), token_op(0, 3, 'j', 0, 0), deliver_op(0)}),
        cat({u8(0), key_op(3, 0), token_op(0, 3, 'k', 0, 0), deliver_op(0), idle_op(2)}),
        // Junk: bytes before the key, a token-looking run after it, a key to the client.
        cat({u8(0), raw_op(2, as_bytes("-----BEGIN PUBLIC KEY-----\nAAAA")), key_op(0, 0), end_op()}),
        cat({u8(0), key_op(0, 0), raw_op(2, as_bytes("gAAAAABl" + std::string(92, 'A'))), idle_op(1), end_op()}),
        cat({u8(0), key_op(0, 0), deliver_op(3), raw_op(3, as_bytes("gAAAAA==")), idle_op(2)}),
        // A token held back and sent with the next bytes; the end before any key.
        cat({u8(0), key_op(0, 0), token_op(16, 20, 'l', 0, 0), raw_op(2, {}), deliver_op(0)}),
        cat({u8(0), end_op(), key_op(0, 0)}),
        // Every plant but slmp.unit-overflow: the static key, an old token
        // taken without a TTL, a bad token that kills the server.
        cat({u8(0x0f), key_op(0, 0), token_op(0, 8, 'm', -120, 0), deliver_op(0)}),
        cat({u8(0x0f), key_op(0, 0), token_op(1, 8, 'n', 0, 0)}),
    };
    for (const auto& s : sessions) put(out / "slmp_session", name_of(s), s);
}

// ---- SP-SimpleChat ----

std::string_view text_of(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// A frame of an SP-SimpleChat capture: its connection and side.
struct SpchatFrame {
    std::uint64_t stream;
    Peer from;
    Bytes bytes;  // BE32 length and body
};
// One capture's frames, in the order they arrived.
using SpchatCapture = std::vector<SpchatFrame>;

std::map<std::uint64_t, std::vector<SpchatFrame>> by_stream(const SpchatCapture& capture) {
    std::map<std::uint64_t, std::vector<SpchatFrame>> out;
    for (const auto& f : capture) out[f.stream].push_back(f);
    return out;
}
// Frames over this stay out of the seeds (the capture's FILE_CHUNKs are
// 10 KB and 44 KB of JSON): libFuzzer's -max_len follows the largest seed,
// and every run would pay for it. The targets seal chunks of their own.
constexpr std::size_t kSpchatSeedFrame = 4096;

// spchat_frame_fuzzer.cc: a stream cut at `cuts` (mode 0), records of a
// connection (mode 2).
Bytes spchat_stream_seed(std::uint8_t selector, std::initializer_list<std::uint16_t> cuts, ByteView stream) {
    Bytes out = cat({u8(selector), u8(static_cast<std::uint8_t>(cuts.size()))});
    for (auto c : cuts) out = cat({out, be16(c)});
    return cat({out, stream});
}
Bytes spchat_record(Peer from, ByteView bytes) {
    return cat({u8(from == Peer::server ? 1 : 0), be16(static_cast<std::uint16_t>(bytes.size())), bytes});
}

void spchat_capture_seeds(const fs::path& out, const SpchatCapture& capture) {
    // Seeds stay short (a few frames each, under kSpchatSeedWindow bytes):
    // libFuzzer's mutations start as long as the longest seed, and every run
    // of a long input costs more.
    constexpr std::size_t kSpchatSeedWindow = 512;
    for (const auto& [stream, frames] : by_stream(capture)) {
        Bytes dir[2], connection = u8(2);
        auto flush = [&] {
            if (connection.size() > 1) put(out / "spchat_frame", name_of(connection), connection);
            for (int side = 0; side < 2; ++side) {
                if (dir[side].empty()) continue;
                // Cut inside the first length prefix and inside the first
                // body; then the same with the 256-byte bound.
                for (std::uint8_t bound : {0, 4}) {
                    Bytes seed =
                        spchat_stream_seed(static_cast<std::uint8_t>(bound | (side ? 0x20 : 0)), {3, 40}, dir[side]);
                    put(out / "spchat_frame", name_of(seed), seed);
                }
                dir[side].clear();
            }
            connection = u8(2);
        };
        for (const auto& f : frames) {
            if (f.bytes.size() > kSpchatSeedFrame) continue;
            // The body alone (mode 1).
            Bytes body = cat({u8(1), ByteView(f.bytes).subspan(4)});
            put(out / "spchat_frame", name_of(body), body);
            if (connection.size() + f.bytes.size() + 3 > kSpchatSeedWindow) flush();
            Bytes& d = dir[f.from == Peer::server ? 1 : 0];
            d = cat({d, f.bytes});
            connection = cat({connection, spchat_record(f.from, f.bytes)});
        }
        flush();
    }
}

// spchat_app_fuzzer.cc ops. Connections are picked by their place among the
// open ones; nicks, rooms, passwords and texts by their place in its tables.
namespace app {
Bytes open_conn() { return {0}; }
Bytes close_conn(std::uint8_t c) { return {1, c}; }
Bytes hello(std::uint8_t c, std::uint8_t nick) { return {2, c, nick}; }
Bytes join(std::uint8_t c, std::uint8_t room, std::uint8_t password) { return {3, c, room, password}; }
Bytes msg(std::uint8_t c, std::uint8_t room, std::uint8_t text) { return {4, c, room, text}; }
Bytes who(std::uint8_t c, std::uint8_t room) { return {5, c, room}; }
Bytes other(std::uint8_t c, std::uint8_t which) { return {6, c, which}; }  // 0 LEAVE, 1 QUIT, 2 PING, 3 NOPE
Bytes file(std::uint8_t c, std::uint8_t type, std::uint8_t from, std::uint8_t to, std::uint8_t id) {
    return {7, c, type, from, to, id};
}
Bytes frame(std::uint8_t c, std::string_view body) {
    return cat({Bytes{8, c}, be16(static_cast<std::uint16_t>(body.size())), as_bytes(body)});
}
Bytes stream(std::uint8_t c, ByteView bytes) {
    return cat({Bytes{9, c}, be16(static_cast<std::uint16_t>(bytes.size())), bytes});
}
Bytes prefix(std::uint8_t c, std::uint16_t x) { return cat({Bytes{10, c}, be16(x)}); }
Bytes flush() { return {11}; }
constexpr std::uint8_t alice = 0, bob = 1, carol = 2, Alice = 3;                          // nicks
constexpr std::uint8_t lobby = 0, room1 = 1, vault = 2, staff = 3, secret = 7, none = 0x80;  // rooms
constexpr std::uint8_t hunter2 = 0, pw1 = 1, no_password = 0x80, not_a_string = 0x40;        // passwords
constexpr std::uint8_t hi = 0, backdoor = 1;                                                // texts
}  // namespace app

// spchat_files_fuzzer.cc ops.
namespace files {
Bytes start(std::uint8_t slot, std::uint8_t id, std::uint8_t name, std::uint16_t len, std::uint8_t flags) {
    return cat({Bytes{0, slot, id, name}, be16(len), u8(flags)});
}
Bytes chunk(std::uint8_t slot, std::uint16_t len, std::uint8_t flags) {
    return cat({Bytes{1, slot}, be16(len), u8(flags)});
}
Bytes end(std::uint8_t slot, std::uint8_t flags) { return {2, slot, flags}; }
Bytes accept(std::uint8_t slot, std::uint8_t how) { return {3, slot, how}; }
Bytes raw(ByteView json) { return cat({u8(4), be16(static_cast<std::uint16_t>(json.size())), json}); }
Bytes safe(std::string_view name) { return cat({u8(5), u8(static_cast<std::uint8_t>(name.size())), as_bytes(name)}); }
Bytes b64(std::string_view text) { return cat({u8(6), u8(static_cast<std::uint8_t>(text.size())), as_bytes(text)}); }
Bytes sender(std::uint16_t len, std::uint8_t fill) { return cat({u8(7), be16(len), u8(fill)}); }
constexpr std::uint16_t big = 0xF000 + 0x0400;  // 32768 + 8192 bytes: two chunks, under 48 KiB
constexpr std::uint16_t too_big = 0xF000 + 0x0900;  // 51200 bytes: over 48 KiB
}  // namespace files

void spchat_seeds(const fs::path& out, const std::vector<SpchatCapture>& captures) {
    for (const auto& c : captures) spchat_capture_seeds(out, c);

    // Frames: bodies the capture does not have.
    const std::vector<std::string> bodies = {
        R"({"type": "HELLO", "nick": "alice"})",
        R"({"type":"JOIN","room":"room1","password":"hunter2"})",
        R"({"type": "MSG", "room": "room1", "text": "BACKDOOR"})",
        R"({"type": "MSG", "room": "room1", "nick": "server", "text": "You found the secret backdoor!"})",
        R"({"type": "MSG", "text": "caf\u00e9 \ud83d\ude00 \"quoted\" \\ \u0000"})",
        "{\"type\": \"MSG\", \"text\": \"caf\xc3\xa9 \xf0\x9f\x98\x80\"}",
        R"({"type": "FILE_END", "from": " Alice ", "to": "room1", "ts": 1e999, "payload": {"file_id": 12}, "sig": ""})",
        R"({"type": "X", "type": "PING", "n": [1, -0, 2.5, 18446744073709551615, -9223372036854775808, true, null]})",
        R"({"nick": "no type"})",
        R"({"type": 5})",
        R"({"type": "", "text": "an empty type"})",
        R"(["type", "HELLO"])",
        std::string(70, '[') + std::string(70, ']'),
        "{\"type\": \"MSG\", \"text\": \"\xc3\x28\"}",
        std::string("{\"type\": \"PING\"}\0\x92{\"type\": \"QUIT\"}", 34),  // more behind a NUL
    };
    for (const auto& b : bodies) {
        Bytes seed = cat({u8(1), as_bytes(b)});
        put(out / "spchat_frame", name_of(seed), seed);
    }
    // Streams: frames back to back in odd pieces; a length over the bound.
    {
        Bytes s = cat({spchat::frame(bodies[0]), spchat::frame(bodies[1]), spchat::frame(bodies[2])});
        Bytes seed = spchat_stream_seed(0, {1, 5, 36, 37, 90}, s);
        put(out / "spchat_frame", name_of(seed), seed);
        Bytes big = cat({spchat::frame(bodies[0]), Bytes{0x00, 0x10, 0x00, 0x00}, as_bytes("{\"type\": ")});
        for (std::uint8_t bound : {0, 4, 8}) {
            seed = spchat_stream_seed(bound, {2}, big);
            put(out / "spchat_frame", name_of(seed), seed);
        }
    }
    // A chunk the stream codec opens: a 16-byte nonce, then the plaintext;
    // as the server and as the client write it.
    for (std::uint8_t selector : {3, 3 | 4, 3 | 8 | 0x30}) {
        Bytes seed = cat({u8(selector), u8(15), Bytes(16, 0x42), as_bytes("the file's first chunk")});
        put(out / "spchat_frame", name_of(seed), seed);
    }

    // Files (first byte: 0 auto-accept, 1 by hand).
    using namespace files;
    std::vector<Bytes> file_runs = {
        // A small file, whole; two chunks; one over the bound.
        cat({u8(0), start(0, 0, 0, 100, 0), chunk(0, 100, 0), end(0, 0)}),
        cat({u8(0), start(1, 1, 8, big, 0), chunk(1, 0xF000, 0), chunk(1, 0xFFFF, 0), end(1, 0)}),
        cat({u8(0), start(2, 2, 0, too_big, 0), chunk(2, 10, 0), end(2, 0)}),
        // By hand: offered, accepted by a prefix, then whole.
        cat({u8(1), start(0, 0, 0, 50, 0), accept(0, 1 | (8 << 2)), chunk(0, 50, 0), end(0, 0)}),
        cat({u8(1), start(0, 0, 0, 50, 0), start(1, 1, 0, 50, 0), accept(1, 0), accept(0, 2), chunk(1, 50, 0),
             end(1, 0)}),
        // By hand, a whole id that begins two other offers' ids ("...-1"
        // before "...-10" and "...-11"): that very offer is taken.
        cat({u8(1), start(0, 6 | (10 << 3), 0, 5, 0), start(1, 6 | (11 << 3), 0, 5, 0), start(2, 6 | (1 << 3), 0, 5, 0),
             accept(2, 0), accept(0, 1 | (16 << 2))}),
        // Names that climb out or are nothing; a 254-byte name; raw bytes.
        cat({u8(0), start(0, 0, 1, 10, 0), start(1, 1, 2, 10, 0), start(2, 2, 3, 10, 0), start(3, 3, 4, 10, 0),
             chunk(0, 10, 0), end(0, 0), chunk(1, 10, 0), end(1, 0)}),
        cat({u8(0), start(0, 6 | (3 << 3), 0x80, 20, 0), chunk(0, 20, 0), end(0, 0)}),
        // Raw bytes: an id of 11 (95 % 8 == 7), a name of 5 (83 % 12 == 11, 83 >> 4 == 5).
        cat({u8(0), start(0, 7 | (11 << 3), 83, 20, 0x20), as_bytes("id/../..xyz"), as_bytes("..\\/\x01"),
             as_bytes("content of twenty by"), chunk(0, 20, 0), end(0, 0)}),
        // Two files of one name at once; a second FILE_START for one id.
        cat({u8(0), start(0, 0, 0, 10, 0), start(1, 1, 0, 10, 1 << 5), as_bytes("0123456789"), chunk(1, 10, 0),
             chunk(0, 10, 0), end(1, 0), end(0, 0)}),
        cat({u8(0), start(0, 0, 0, 10, 0), start(1, 4, 0, 10, 0), chunk(0, 10, 0), end(0, 0)}),
        // Bad chunks: tampered, out of order, not base64, short tag, no
        // nonce, index as text; more than announced; a wrong SHA-256.
        cat({u8(0), start(0, 0, 0, 30, 0), chunk(0, 10, 0x02), chunk(0, 10, 0x40), chunk(0, 10, 0x80),
             chunk(0, 10, 0x04)}),
        cat({u8(0), start(0, 0, 0, 30, 0), chunk(0, 10, 0x08), start(1, 1, 0, 30, 0), chunk(1, 10, 0x10),
             start(2, 2, 0, 30, 0), chunk(2, 10, 0x20)}),
        cat({u8(0), start(0, 0, 0, 30, 0), chunk(0, 40, 0x01), start(1, 1, 0, 30, 0x04), chunk(1, 30, 0), end(1, 0)}),
        cat({u8(0), start(0, 0, 0, 30, 0x01), chunk(0, 30, 0), end(0, 0), start(1, 1, 0, 30, 0x02),
             start(2, 2, 0, 30, 0x03), start(3, 3, 0, 30, 0x08 | 0x10)}),
        // The sender end to end: small, two chunks, too big, empty; by hand too.
        cat({u8(0), sender(1000, 7), sender(big, 8), sender(too_big, 9), sender(0, 10)}),
        cat({u8(1), sender(1000, 7), sender(big, 8)}),
        // Names, base64 and the cipher.
        cat({u8(0), safe("../../etc/passwd"), safe(".."), safe(" . "), safe("a\\b/c\x7f:d.txt"),
             safe(std::string(230, 'x') + ".tar.gz"), safe(std::string(199, 'x') + "\xc3\xa9" + ".x"), safe("...")}),
        cat({u8(0), b64("AAAA"), b64("AAA"), b64("AA=="), b64("A"), b64("-_-_"), b64("+/"),
             b64("0123456789abcdef0123456789abcdef\x05nonce and the plaintext")}),
    };
    // The capture's first offer and end, raw: a real FILE_START and FILE_END
    // (their chunks are too big for a seed: the harness seals its own).
    for (const auto& capture : captures) {
        Bytes run_auto = u8(0), run_hand = u8(1);
        int ends = 0;
        for (const auto& f : capture) {
            if (ends == 1) break;
            // What a receiving client got: the server's copy (one of each).
            if (f.from != Peer::server || f.stream != capture.front().stream) continue;
            auto m = spchat::parse(text_of(ByteView(f.bytes).subspan(4)));
            if (!m) continue;
            std::string type = (*m)["type"].get<std::string>();
            if (type != "FILE_START" && type != "FILE_END") continue;
            Bytes op = raw(ByteView(f.bytes).subspan(4));
            run_auto = cat({run_auto, op});
            run_hand = cat({run_hand, op});
            if (type == "FILE_START") run_hand = cat({run_hand, accept(0, 2)});
            if (type == "FILE_END") ++ends;
        }
        if (run_auto.size() > 1) {
            file_runs.push_back(run_auto);
            file_runs.push_back(run_hand);
        }
    }
    for (const auto& r : file_runs) put(out / "spchat_files", name_of(r), r);

    // Server logic (first byte: the plants; 0 none, 0x1f all five).
    using namespace app;
    const Bytes two = cat({open_conn(), open_conn(), hello(0, alice), hello(1, bob), join(0, room1, no_password),
                           join(1, room1, no_password)});
    std::vector<Bytes> app_runs = {
        // The capture's session in structured ops.
        cat({two, msg(1, room1, hi), who(1, room1), who(0, none), msg(0, none, hi), file(1, 0, 0, 0, 0),
             file(1, 1, 1, 0, 0), file(1, 2, 0, 1 | (room1 << 3), 0), msg(1, room1, backdoor), other(1, 0), other(0, 2),
             other(1, 1), flush(), other(0, 1), flush()}),
        // Protected rooms: created with a password, then joined without it,
        // with a wrong one, with it; the configured vault and staff.
        cat({two, join(0, secret, pw1), join(1, secret, no_password), join(1, secret, hunter2),
             join(1, secret, not_a_string), join(1, secret, pw1), join(0, vault, no_password), join(0, vault, hunter2),
             open_conn(), hello(2, carol), join(2, staff, no_password), join(0, staff, no_password), who(2, staff),
             close_conn(0), join(2, secret, no_password)}),
        // Nicks: renamed, taken, released, reserved, too long; the lobby.
        cat({open_conn(), open_conn(), hello(0, alice), hello(0, carol), hello(1, alice), hello(1, 5), hello(1, 7),
             hello(1, Alice), hello(1, 0x40), join(1, none, no_password), close_conn(0), flush(), open_conn(),
             hello(1, carol)}),
        // Files from a forged "from", to a room, to oneself, before HELLO.
        cat({two, file(0, 0, 2 | (bob << 3), 0 | (1 << 3), 0), file(0, 1, 5, 1 | (room1 << 3), 1), file(0, 2, 3, 0, 2),
             file(0, 0, 4, 2 | (alice << 3), 3), open_conn(), file(2, 0, 0, 0, 0), file(0, 0, 0, 0, 4),
             file(0, 0, 0, 1 << 3, 0)}),
        // Raw frames: a PING, not JSON; a length prefix over the bound; a
        // frame in pieces; a length prefix left waiting.
        cat({two, frame(0, "{\"type\": \"PING\"}"), frame(1, "not json"), prefix(0, 1), open_conn(),
             stream(2, Bytes{0, 0, 0, 16}), stream(2, as_bytes("{\"type\": \"PING\"}")), prefix(2, 2 * 15),
             stream(2, as_bytes("{\"type\": \"PI")), stream(2, as_bytes("NG\"}")), prefix(2, 3)}),
    };
    // A capture's client frames as they came, raw, each connection opened
    // before its first frame (and none closed: picks stay in order).
    for (const auto& capture : captures) {
        Bytes run;
        std::map<std::uint64_t, std::uint8_t> conn;
        for (const auto& f : capture) {
            if (f.from != Peer::client || conn.size() == 8) continue;
            if (!conn.count(f.stream)) {
                conn.emplace(f.stream, static_cast<std::uint8_t>(conn.size()));
                run = cat({run, open_conn()});
            }
            // Only the chat: a longer seed makes libFuzzer mutate longer
            // inputs from the start, and every run costs more. File frames
            // are in the files seeds and in structured ops above.
            if (f.bytes.size() <= 128) run = cat({run, frame(conn[f.stream], text_of(ByteView(f.bytes).subspan(4)))});
        }
        if (!run.empty()) app_runs.push_back(run);
    }
    for (const auto& r : app_runs) {
        for (std::uint8_t plants : {0x00, 0x1f}) {
            Bytes seed = cat({u8(plants), r});
            put(out / "spchat_app", name_of(seed), seed);
        }
    }
}


// ---- SOCP ----

// A WebSocket message of a SOCP capture: its connection, side, the frame as
// sent and, for an envelope, its (inflated) text.
struct SocpMessage {
    std::uint64_t stream;
    Peer from;
    Bytes frame;
    std::string envelope;  // empty for the handshake and control frames
};

// Seeds stay under this (libFuzzer's mutations start as long as the longest
// seed); a hello and the signed frame after it fit.
constexpr std::size_t kSocpSeedWindow = 6 * 1024;

const crypto::RsaPrivateKey& socp_key(const std::string& name) {
    // Never freed: Botan's secure allocator may be gone by the time a static map is destroyed.
    static auto& keys = *new std::map<std::string, crypto::RsaPrivateKey>();
    auto it = keys.find(name);
    if (it == keys.end()) {
        std::ifstream in(std::string(MSGLAB_SOCP_KEYS) + "/" + name + ".pem");
        std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        auto k = crypto::RsaPrivateKey::from_pem(pem);
        if (!k) throw std::runtime_error("no SOCP test key " + name + " in " MSGLAB_SOCP_KEYS);
        it = keys.emplace(name, std::move(*k)).first;
    }
    return it->second;
}

// socp_envelope_fuzzer.cc, mode 2: a message's text as one text frame
// (h & 2), compressed by the side's deflater (h & 4); or raw bytes.
Bytes socp_record(Peer from, ByteView bytes, bool text, bool compressed) {
    auto h = static_cast<std::uint8_t>((from == Peer::server ? 1 : 0) | (text ? 2 : 0) | (compressed ? 4 : 0));
    return cat({u8(h), be16(static_cast<std::uint16_t>(bytes.size())), bytes});
}
// ... mode 1: one direction cut at `cuts`.
Bytes socp_pieces(std::uint8_t selector, std::initializer_list<std::uint16_t> cuts, ByteView stream) {
    Bytes out = cat({u8(selector), u8(static_cast<std::uint8_t>(cuts.size()))});
    for (auto c : cuts) out = cat({out, be16(c)});
    return cat({out, stream});
}
// socp_payload_fuzzer.cc, mode 1: a payload and its sig.
Bytes socp_signed(std::string_view json, std::string_view sig) {
    return cat({u8(1), be16(static_cast<std::uint16_t>(json.size())), as_bytes(json), as_bytes(sig)});
}

socp::Envelope socp_envelope(std::string type, std::string from, std::string to, socp::Json payload,
                             std::int64_t ts = 1700000000000) {
    socp::Envelope e;
    e.type = std::move(type);
    e.from = std::move(from);
    e.to = std::move(to);
    e.ts = ts;
    e.payload = std::move(payload);
    return e;
}

void socp_seeds(const fs::path& out, const std::vector<SocpMessage>& capture) {
    const fs::path env = out / "socp_envelope", pay = out / "socp_payload";
    DeterministicRng rng(0x50c9);
    auto put_text = [&](const fs::path& dir, std::uint8_t selector, std::string_view t) {
        Bytes seed = cat({u8(selector), as_bytes(t)});
        put(dir, name_of(seed), seed);
    };

    // ---- From the capture ----
    std::map<std::uint64_t, std::vector<const SocpMessage*>> streams;
    std::set<std::string> keys;
    for (const auto& m : capture) {
        streams[m.stream].push_back(&m);
        if (m.envelope.empty()) continue;
        put_text(env, 0, m.envelope);  // every envelope (mode 0)
        auto e = socp::parse_envelope(m.envelope);
        if (!e) continue;
        for (const char* k : {"pubkey", "sender_pub"})
            if (auto v = socp::string_field(e->payload, k)) keys.insert(*v);
        // Its payload signed with the fixture key (payload mode 1), as
        // msglab signs (salt 32, sorted ASCII).
        std::string json = e->payload.dump();
        if (json.size() < 1500) {
            Bytes seed = socp_signed(json, socp::sign_payload(socp_key("user-1"), e->payload, rng));
            put(pay, name_of(seed), seed);
        }
        if (auto ct = socp::string_field(e->payload, "ciphertext")) {
            put_text(pay, 2, *ct);
            put_text(pay, 2 | 4, *ct);
        }
    }
    for (const auto& k : keys) put_text(pay, 0, k);
    for (const auto& [stream, msgs] : streams) {
        // Each direction from its first byte, cut inside the start line and
        // inside the first frame (mode 1), while it fits the window.
        for (Peer side : {Peer::client, Peer::server}) {
            Bytes dir;
            for (const auto* m : msgs) {
                if (m->from != side) continue;
                if (dir.size() + m->frame.size() > kSocpSeedWindow) break;
                dir = cat({dir, m->frame});
            }
            auto sel = static_cast<std::uint8_t>(1 | (side == Peer::server ? 4 : 0));
            put(env, name_of(socp_pieces(sel, {5, 300}, dir)), socp_pieces(sel, {5, 300}, dir));
        }
        // The connection after a canned upgrade: the envelopes' texts
        // compressed by the target's own deflaters (mode 2), in windows.
        Bytes conn = u8(2);
        for (const auto* m : msgs) {
            if (m->envelope.empty()) continue;
            Bytes r = socp_record(m->from, as_bytes(m->envelope), true, true);
            if (conn.size() + r.size() > kSocpSeedWindow) {
                put(env, name_of(conn), conn);
                conn = u8(2);
            }
            conn = cat({conn, r});
        }
        if (conn.size() > 1) put(env, name_of(conn), conn);
        // The handshake alone, for detect() (mode 3).
        if (!msgs.empty() && msgs[0]->from == Peer::client) put(env, name_of(cat({u8(3), msgs[0]->frame})), cat({u8(3), msgs[0]->frame}));
    }

    // ---- Made here with the fixture keys ----
    const std::string u1 = "aaaaaaaa-0000-4000-8000-000000000001", u2 = "aaaaaaaa-0000-4000-8000-000000000002",
                      srv = "bbbbbbbb-0000-4000-8000-00000000000a";
    auto pub = [&](const char* name, socp::KeyEncoding enc = socp::KeyEncoding::der) {
        return socp::encode_key(socp_key(name).public_key(), enc);
    };
    auto hello = socp::encode(socp_envelope("USER_HELLO", u1, srv, {{"client", "cli-v1"}, {"pubkey", pub("user-1")}}));
    std::int64_t ts = 1700000001000;
    auto ct = *socp::encrypt_for(socp_key("user-2").public_key(), as_bytes("hello"), rng);
    auto dm = socp_envelope("MSG_DIRECT", u1, u2,
                            {{"ciphertext", ct},
                             {"sender_pub", pub("user-1")},
                             {"content_sig", socp::sign_content(socp_key("user-1"), socp::dm_content(ct, u1, u2, ts), rng)}},
                            ts);
    dm.sig = socp::sign_payload(socp_key("user-1"), dm.payload, rng);
    auto weak = socp::encode(socp_envelope("USER_HELLO", u2, srv, {{"client", "cli-v1"}, {"pubkey", pub("weak-1")}}));
    auto unsigned_adv =
        socp::encode(socp_envelope("USER_ADVERTISE", srv, "*", {{"user_id", u1}, {"server_id", srv}, {"meta", {{"pubkey", pub("user-1")}}}}));
    const std::string dm_text = socp::encode(dm);
    // A hello, its signed DM, and an unsigned advertisement sent twice.
    for (bool compressed : {false, true}) {
        Bytes conn = cat({u8(compressed ? 2 | 4 | 8 : 2), socp_record(Peer::client, as_bytes(hello), true, compressed),
                          socp_record(Peer::client, as_bytes(dm_text), true, compressed),
                          socp_record(Peer::server, as_bytes(unsigned_adv), true, compressed),
                          socp_record(Peer::server, as_bytes(unsigned_adv), true, compressed)});
        put(env, name_of(conn), conn);
    }
    Bytes spoof = cat({u8(2), socp_record(Peer::client, as_bytes(weak), true, false),
                       socp_record(Peer::client, as_bytes(dm_text), true, false),
                       socp_record(Peer::client, as_bytes(std::string("{\"type\":\"USER_SHOUT\"}")), true, false)});
    put(env, name_of(spoof), spoof);
    for (const std::string& t : {
             hello, dm_text, weak, unsigned_adv,
             std::string(R"({"type":"MSG_DIRECT","from":"caf\u00e9","to":"b","ts":-5,"payload":{"z":1,"a":[1.5,1e999,"\ud83d\ude00",-0,18446744073709551615],"\u00e9":null,"a":2},"sig":"","extra":true})"),
             std::string("{\"type\":\"X\",\"from\":\"caf\xc3\xa9\",\"to\":\"*\",\"ts\":9223372036854775807,\"payload\":{\"k\":\"\\u0000\"},\"sig\":null}"),
             std::string(R"({"type":"X","from":"a","to":"b","ts":1.5,"payload":{}})"),
             std::string(R"({"type":"X","from":"a","to":"b","ts":-9223372036854775808,"payload":{"d":)") + std::string(20, '[') + std::string(20, ']') + "}}",
             std::string(R"({"type":"X","from":"a","to":"b","ts":1,"payload":{}})") + std::string(1, '\0') + "{}",
         }) {
        put_text(env, 0, t);
        put_text(env, 3, t);
    }
    // The upgrade in pieces, then frames, with and without the canned handshake.
    {
        std::string req = "GET /?x=1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        put_text(env, 3, req);
        put_text(env, 3, "GET /ws/chat?session_id=s HTTP/1.1\r\nUpgrade: websocket\r\n\r\n");
        Bytes frame = {0x81, 0x05, 'h', 'e', 'l', 'l', 'o', 0x88, 0x02, 0x03, 0xe8};
        for (std::uint8_t sel : {1 | 4 | 8, 1 | 8}) put(env, name_of(socp_pieces(sel, {1, 2, 8}, frame)), socp_pieces(sel, {1, 2, 8}, frame));
        std::string refused = "HTTP/1.1 426 Upgrade Required\r\nConnection: close\r\n\r\nupgrade, please";
        put(env, name_of(socp_pieces(1 | 4, {3, 20}, as_bytes(refused))), socp_pieces(1 | 4, {3, 20}, as_bytes(refused)));
    }

    // ---- socp_payload by hand ----
    for (const std::string& k : {pub("user-1"), pub("user-1", socp::KeyEncoding::pem), socp_key("user-1").public_key().pem(),
                                 pub("weak-2"), socp::b64url(socp_key("weak-2").public_key().spki_der()) + "==",
                                 std::string("QUJD"), std::string("QUI="), std::string("+/+/"), std::string("LS0tLS1")})
        put_text(pay, 0, k);
    {
        // Sorted ASCII with salt 32 and the largest salt; raw UTF-8; the
        // received order; a content sig over the JSON's own bytes.
        std::string json = R"({"z":"caf\u00e9","a":[1,{"y":2,"b":3}],"m":{}})";
        auto payload = socp::Json::parse(json);
        auto sign = [&](socp::Canon c, std::size_t salt) {
            return socp::b64url(socp_key("user-1").pss_sign(as_bytes(socp::canonical(payload, c)), rng, salt));
        };
        for (auto [c, salt] : {std::pair{socp::Canon::sorted_ascii, std::size_t{32}}, std::pair{socp::Canon::sorted_ascii, std::size_t{478}},
                               std::pair{socp::Canon::sorted_utf8, std::size_t{32}}, std::pair{socp::Canon::received_order, std::size_t{16}}})
            put(pay, name_of(socp_signed(json, sign(c, salt))), socp_signed(json, sign(c, salt)));
        std::string content_sig = socp::sign_content(socp_key("user-1"), json, rng);
        put(pay, name_of(socp_signed(json, content_sig)), socp_signed(json, content_sig));
        put(pay, name_of(socp_signed("{}", "AAAA")), socp_signed("{}", "AAAA"));
    }
    for (const char* t : {"hello", "", "caf\xc3\xa9"}) {
        put_text(pay, 2 | 4, *socp::encrypt_for(socp_key("weak-1").public_key(), as_bytes(t), rng));
        put_text(pay, 2, socp::group_encrypt(ByteView(kSocpGroupKey, 32), t, rng));
    }
    for (auto [max, t] : std::initializer_list<std::pair<std::uint16_t, std::string>>{
             {5, "caf\xc3\xa9 \xf0\x9f\x98\x80 au lait"}, {2, "hello"}, {4, "\x80\x80\x80\x80\x80" "abc"},
             {446, std::string(500, 'x') + "\xe2\x82\xac"}, {0, ""}, {7, "\xf0\x9f\x98\x80\xf0\x9f\x98\x80"}}) {
        Bytes seed = cat({u8(3), be16(max), as_bytes(t)});
        put(pay, name_of(seed), seed);
    }
}

// signal_eio_fuzzer.cc: the first byte is the mode (0 Engine.IO packet, 1
// polling payload with a take_payload bound byte, 2 Socket.IO packet, 3 open
// packet data), the texts are frames of the original's capture (signal.pcap)
// and the packet kinds it does not show.
void signal_eio_seeds(const fs::path& out) {
    const fs::path dir = out / "signal_eio";
    const std::string open =
        R"({"sid":"jGgU-pDc6jF4ctTbAAAA","upgrades":["websocket"],"pingTimeout":20000,"pingInterval":25000})";
    const std::string reg =
        R"(21["register_user",{"username":"bob","ik":"H2M806LIxVRd8GAH9fXtHjOO7GgH2rw20OOkzwb/+Ag=","sik":"wXQGtfskRcO1LdFoo0SQPTC98LNwvn7Xv8CeqwVG2nc=","spk":"5JvGIpPY3+oCoaVHkPE5uvu63YlLT7aN+qpXVY7znkg=","spk_sig":"I1H5+A03FiFaxXgwoeWvkv4Bdy+pzKkBKULLmV6zs57bhSpHtk35h1LuWuTDN2Cegj7np242yDCEJXjTf2MbCw=="}])";
    const std::string bundle =
        R"(33[true,{"ik":"H2M806LIxVRd8GAH9fXtHjOO7GgH2rw20OOkzwb/+Ag=","sik":"wXQGtfskRcO1LdFoo0SQPTC98LNwvn7Xv8CeqwVG2nc=","spk":"5JvGIpPY3+oCoaVHkPE5uvu63YlLT7aN+qpXVY7znkg=","spk_sign":"I1H5+A03FiFaxXgwoeWvkv4Bdy+pzKkBKULLmV6zs57bhSpHtk35h1LuWuTDN2Cegj7np242yDCEJXjTf2MbCw=="}])";
    const std::string x3dh =
        R"(24["x3dh_message",{"username":"bob","from":"alice","ik":"d5ifmohgTLZFJBCKLrClvpIApOLp+OzFU/DqtocQ3no=","epk":"ue3m/PEDfvvloaF2XskicYctEAbrg4iNZLFG5YrmBVA=","cipher":"xKkbe7TKseFXqyrhCEfdHlkwEnC6qHIInSgeR56TW3k=","hmac":"f4NLgN77iCLP1AduOec9ogOCaASd+zCS5Zleoe4otmA="}])";
    const std::string ratchet =
        R"(25["ratchet_msg",{"username":"bob","cipher":"fP4RIhb/Re2hrKgXprfd8kw42SibgXrjB+QNY4x562k=","header":{"dh":"Mv+W8cmmCnpllV/R6B2P5TDdI0Z4QIX1Zphf5RFfc3M=","pn":"","n":""},"hmac":"iyqHOr1d9GNB+6NJLhDq+5TegdY+Way2VavkeqSFkug=","from":"alice"}])";
    const std::string rs = "\x1e";
    const std::vector<std::string> seeds = {
        std::string(1, '\0') + "0" + open,
        std::string(1, '\0') + "2probe",
        std::string(1, '\0') + "3probe",
        std::string(1, '\0') + "5",
        std::string(1, '\0') + "6",
        std::string(1, '\0') + "40{}",
        std::string(1, '\0') + R"(40{"sid":"pYRGy8yjgHxtU0yLAAAB"})",
        std::string(1, '\0') + "4" + reg,
        std::string(1, '\0') + "431[true]",
        std::string(1, '\0') + R"(432[["bob","alice"]])",
        std::string(1, '\0') + "4" + x3dh,
        std::string(1, '\0') + "41",
        std::string(1, '\0') + "bAQIDBA==",
        std::string("\x01\x10", 2) + "0" + open,
        std::string("\x01\x08", 2) + "40" + rs + "4" + reg + rs + "3",
        std::string("\x05\x02", 2) + "2" + rs + "6" + rs + R"(42["pingi","sankalp"])" + rs + "4" + ratchet,
        std::string("\x01\x20", 2) + R"(40{"sid":"pYRGy8yjgHxtU0yLAAAB"})" + rs + R"(44/x,"Unable to connect")",
        std::string(1, '\x02') + "4" + bundle.substr(1),
        std::string(1, '\x02') + ratchet,
        std::string(1, '\x02') + R"(0/admin,{"token":"t-1"})",
        std::string(1, '\x02') + R"(4/admin,{"message":"Unable to connect"})",
        std::string(1, '\x02') + R"(2/chat,12["x",1,2.5,-0,null,{"a":[true,false]},"caf\u00e9 \ud83d\udd12"])",
        std::string(1, '\x02') + bundle,
        std::string(1, '\x02') + "1/admin,",
        std::string(1, '\x02') + R"(51-["x",{"_placeholder":true,"num":0}])",
        std::string(1, '\x03') + open,
        std::string(1, '\x03') +
            R"({"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000})",
    };
    for (const auto& seed : seeds) put(dir, name_of(as_bytes(seed)), as_bytes(seed));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: make_corpus OUT_DIR [CAPTURE.pcap...]\n";
        return 2;
    }
    fs::path out = argv[1];
    // A real session between two msglab peers, written as a capture too.
    ManualClock clock(1700000000);
    DeterministicRng rng(7);
    secmsg::Session a(secmsg::Role::initiator, {}, clock, rng), b(secmsg::Role::responder, {}, clock, rng);
    b.start();
    std::vector<Bytes> packets;
    packets.push_back(a.start().packets.at(0));
    packets.push_back(b.feed(packets[0]).packets.at(0));
    a.feed(packets[1]);
    for (const char* t : {"hello", "a longer message with some words in it", ""}) {
        packets.push_back(a.send(as_bytes(t)));
        b.feed(packets.back());
        packets.push_back(b.send(as_bytes(t)));
        a.feed(packets.back());
    }
    fs::path gen = out / "generated-session.pcap";
    {
        fs::create_directories(out);
        replay::PcapWriter w(gen.string(), DLT_EN10MB);
        replay::SynthTcp tcp(0x7f000001, 40000, 0x7f000001, 5000);
        w.write(tcp.handshake_syn().frame, 1700000000, 0);
        w.write(tcp.handshake_syn_ack().frame, 1700000000, 0);
        for (std::size_t i = 0; i < packets.size(); ++i) w.write(tcp.data(i % 2 == 0, packets[i]).frame, 1700000000, 0);
    }
    for (const auto& p : packets) put(out / "secmsg_codec", name_of(p), p);

    std::vector<std::string> captures(argv + 2, argv + argc);
    captures.push_back(gen.string());
    std::vector<SpchatCapture> spchat_captures;
    std::vector<SocpMessage> socp_messages;
    for (const auto& c : captures) {
        auto bytes = [&] {
            std::ifstream in(c, std::ios::binary);
            return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        }();
        std::map<std::uint64_t, Bytes> slmp_streams;  // per connection, as slmp_codec stream-mode records
        SpchatCapture spchat;
        std::vector<SocpMessage> socp;
        bool other = false;
        for (const auto& m : replay::extract_file(c, Registry::builtin(), {}, nullptr)) {
            if (m.protocol == "spchat") {
                spchat.push_back({m.stream, m.from, m.bytes});
                continue;
            }
            if (m.protocol == "socp") {
                const auto& f = m.decoded.fields;
                bool envelope = !f.empty() && f[0].name == "socp.type" && m.decoded.plaintext;
                socp.push_back({m.stream, m.from, m.bytes, envelope ? to_string(*m.decoded.plaintext) : std::string()});
                continue;
            }
            if (m.protocol == "slmp") {
                // One unit, and the unit as its connection's next bytes.
                Bytes unit = cat({u8(0), m.bytes});
                put(out / "slmp_codec", name_of(unit), unit);
                Bytes& stream = slmp_streams[m.stream];
                stream = cat({stream.empty() ? u8(3) : Bytes{}, stream, raw_record(m.from, m.bytes)});
                continue;
            }
            other = true;
            if (m.protocol == "secmsg") put(out / "secmsg_codec", name_of(m.bytes), m.bytes);
        }
        for (const auto& [stream, seed] : slmp_streams) put(out / "slmp_codec", name_of(seed), seed);
        // A capture of SLMP alone stays out of the pcap seeds: each of its
        // units costs the pcap target an X.509 key load or a Fernet check,
        // which takes it below its throughput goal. Its units seed slmp_codec.
        // So does one of SP-SimpleChat alone (about 200 KB of JSON, most of it
        // two file transfers): its frames seed the spchat targets.
        // And one of SOCP alone (RSA keys and signatures in every message):
        // its envelopes seed the socp targets.
        if (other || (slmp_streams.empty() && spchat.empty() && socp.empty())) put(out / "pcap", name_of(bytes), bytes);
        if (!spchat.empty()) spchat_captures.push_back(std::move(spchat));
        // Streams are numbered per capture.
        for (auto& m : socp) m.stream |= static_cast<std::uint64_t>(&c - captures.data()) << 40;
        socp_messages.insert(socp_messages.end(), socp.begin(), socp.end());
    }
    fs::remove(gen);
    slmp_seeds(out);
    spchat_seeds(out, spchat_captures);
    socp_seeds(out, socp_messages);
    signal_eio_seeds(out);

    auto key = *fernet::Key::from_base64("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=");
    for (const char* t : {"hello", "", "0123456789abcdef0123456789abcdef"}) {
        std::string token = fernet::encrypt(key, as_bytes(t), 499162800, Bytes(16, 1));
        put(out / "fernet", name_of(as_bytes(token)), as_bytes(token));
    }
    std::string log = "# msglab key log\n" + format_keylog_line("SECMSG_MASTER_SECRET", Bytes(8, 1), Bytes(32, 2)) +
                      format_keylog_line("SECMSG_SHARED_SECRET", Bytes(8, 3), Bytes(256, 4)) + "junk line\n";
    put(out / "keylog", name_of(as_bytes(log)), as_bytes(log));

    // Session op sequences (see secmsg_session_fuzzer.cc): clean and planted.
    const std::vector<Bytes> sessions = {
        unhex("00" "00000510" "01000441" "04" "00" "05" "01" "0600010001"),
        unhex("02" "0000104f" "04" "00"),
        unhex("3e" "000010" "41" "0710" "0400"),  // every plant but recv-overflow, which campaigns must find
        unhex("00" "0780" "0781" "0783" "0710" "000003" "42"),
    };
    for (const auto& s : sessions) put(out / "secmsg_session", name_of(s), s);
    std::cout << "corpora written to " << out << "\n";
    return 0;
}
