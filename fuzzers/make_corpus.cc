// Writes the seed corpora in fuzzers/corpus/ from real captures and sessions:
// run by regenerate-corpus.sh. Usage: make_corpus OUT_DIR CAPTURE.pcap...
#include <pcap/pcap.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

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
    for (const auto& c : captures) {
        auto bytes = [&] {
            std::ifstream in(c, std::ios::binary);
            return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        }();
        std::map<std::uint64_t, Bytes> slmp_streams;  // per connection, as slmp_codec stream-mode records
        bool other = false;
        for (const auto& m : replay::extract_file(c, Registry::builtin(), {}, nullptr)) {
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
        if (other || slmp_streams.empty()) put(out / "pcap", name_of(bytes), bytes);
    }
    fs::remove(gen);
    slmp_seeds(out);

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
