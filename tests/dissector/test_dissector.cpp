// msglab.so, the Wireshark plugin, through tshark: every capture here is a
// real SecMsg session (or one with a crafted anomaly) written as a pcap with
// synthetic TCP framing, and every check names exact frames and values.
#include <pcap/pcap.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <sstream>
#include <string_view>
#include <vector>

#include "core/crypto.hpp"
#include "core/keylog.hpp"
#include "replay/pcap_io.hpp"
#include "replay/synth.hpp"
#include "secmsg/codec.hpp"
#include "secmsg/session.hpp"
#include "support.hpp"
#include "tshark_support.hpp"

using namespace msglab;
using namespace msglab::test;

namespace {

constexpr std::uint32_t kClientIp = 0x0a000001;  // 10.0.0.1
constexpr std::uint32_t kServerIp = 0x0a000002;  // 10.0.0.2
constexpr std::uint16_t kClientPort = 40000;
constexpr std::uint64_t kStaleTimestamp = 1700000000;

// Every SecMsg expert info the plugin registers for an anomaly.
const std::vector<std::string> kExperts = {
    "secmsg.hmac_mismatch", "secmsg.zero_hmac",  "secmsg.weak_dh",           "secmsg.keystream_reuse",
    "secmsg.timestamp_skew", "secmsg.duplicate", "secmsg.reflected",         "secmsg.hash_mismatch",
    "secmsg.late_handshake", "secmsg.length_over_bound",
};

// The option that gives the dissector a key log.
std::vector<std::string> keylog_args(const fs::path& keylog) {
    return {"-o", "secmsg.keylog_file:" + keylog.string()};
}

// A TCP connection written as a pcap: the three-way handshake (frames 1 to 3)
// at construction, then one frame per segment, each 1 ms after the last.
class CaptureWriter {
public:
    CaptureWriter(const fs::path& path, std::uint64_t start_sec, std::uint16_t server_port = 5000)
        : m_path(path),
          m_tcp(kClientIp, kClientPort, kServerIp, server_port),
          m_writer(path.string(), DLT_EN10MB),
          m_sec(start_sec) {
        tick();
        put(m_tcp.handshake_syn());
        tick();
        put(m_tcp.handshake_syn_ack());
        tick();
        put(m_tcp.handshake_ack());
    }

    // One TCP segment carrying `data`; returns its frame number.
    std::uint64_t send(bool to_server, ByteView data) {
        tick();
        return put(m_tcp.data(to_server, data));
    }

    // `data` in segments of the given sizes; returns their frame numbers.
    Frames send_split(bool to_server, ByteView data, const std::vector<std::size_t>& sizes) {
        Frames out;
        std::size_t at = 0;
        for (std::size_t n : sizes) {
            out.push_back(send(to_server, data.subspan(at, n)));
            at += n;
        }
        REQUIRE(at == data.size());
        return out;
    }

    // FIN both ways; flushes and makes the file readable by tshark.
    void finish() {
        tick();
        put(m_tcp.fin(true));
        tick();
        put(m_tcp.fin(false));
        m_writer.flush();
        make_world_readable(m_path);
    }

    const fs::path& path() const { return m_path; }

private:
    void tick() {
        m_usec += 1000;
        if (m_usec >= 1000000) {
            m_usec -= 1000000;
            ++m_sec;
        }
        m_tcp.set_time(m_sec, m_usec);
    }
    std::uint64_t put(const replay::SynthFrame& f) {
        m_writer.write(f.frame, f.ts_sec, f.ts_usec);
        return m_writer.frames();
    }

    fs::path m_path;
    replay::SynthTcp m_tcp;
    replay::PcapWriter m_writer;
    std::uint64_t m_sec;
    std::uint32_t m_usec = 0;
};

// Two real sans-I/O sessions that have done their handshake (real DH), with
// the key log written; REGULAR packets come from them or are crafted with
// their keys.
class LiveSession {
public:
    LiveSession(const fs::path& keylog, std::uint64_t now, std::uint64_t seed)
        : m_clock(now),
          m_rng(seed),
          m_log(keylog.string()),
          m_a(secmsg::Role::initiator, {}, m_clock, m_rng, &m_log),
          m_b(secmsg::Role::responder, {}, m_clock, m_rng, &m_log) {
        m_b.start();
        request = m_a.start().packets.at(0);
        response = m_b.feed(request).packets.at(0);
        m_a.feed(response);
        REQUIRE(m_a.established());
        REQUIRE(m_b.established());
        make_world_readable(keylog);
    }

    // A REGULAR the client sends (and the server accepts).
    Bytes client(std::string_view text) { return deliver(m_a, m_b, text); }
    Bytes server(std::string_view text) { return deliver(m_b, m_a, text); }

    const secmsg::Keys& keys() const { return *m_a.keys(); }
    std::string session_id() const { return hex(m_a.session_id()); }
    std::uint64_t now() const { return m_clock.unix_seconds(); }
    Rng& rng() { return m_rng; }

    Bytes request, response;

private:
    static Bytes deliver(secmsg::Session& from, secmsg::Session& to, std::string_view text) {
        Bytes p = from.send(as_bytes(text));
        secmsg::Output out = to.feed(p);
        REQUIRE(out.events.size() == 1);
        REQUIRE(out.events[0].kind == secmsg::Event::Kind::message);
        REQUIRE(to_string(out.events[0].plaintext) == text);
        return p;
    }

    ManualClock m_clock;
    DeterministicRng m_rng;
    KeyLogWriter m_log;
    secmsg::Session m_a, m_b;
};

// A REGULAR sealed with the session's keys at `timestamp`, as wire bytes.
Bytes sealed(const secmsg::Keys& keys, std::string_view text, std::uint64_t timestamp) {
    return secmsg::serialize(secmsg::seal_regular(keys, as_bytes(text), timestamp));
}

// Recomputes the HMAC over everything before it, as a sender with the key would.
void re_mac(const secmsg::Keys& keys, secmsg::Packet& p) {
    p.hmac.fill(0);
    Bytes wire = secmsg::serialize(p);
    p.hmac = crypto::hmac_sha256(keys.hmac_key, secmsg::signed_part(wire));
}

// A LiveSession and its capture on port 5000, in a folder of its own, with
// the handshake already written as frames 4 and 5; REGULARs follow.
struct SessionCapture {
    ReadableTempDir dir;
    fs::path keylog = dir / "keys.log";
    std::uint64_t now = now_seconds();
    LiveSession session;
    CaptureWriter cap;

    explicit SessionCapture(std::uint64_t seed) : session(keylog, now, seed), cap(dir / "secmsg.pcap", now) {
        REQUIRE(cap.send(true, session.request) == 4);
        REQUIRE(cap.send(false, session.response) == 5);
    }
};

// The `-z expert` section (Errors, Warns, ...) of the first line containing `needle`.
std::string expert_line_section(const std::vector<std::string>& lines, const std::string& needle) {
    std::string section;
    for (const auto& l : lines) {
        for (const char* s : {"Errors", "Warns", "Notes", "Chats", "Comments"})
            if (l.rfind(s, 0) == 0) section = s;
        if (l.find(needle) != std::string::npos) return section;
    }
    return "";
}

}  // namespace

// ---------------------------------------------------------------------------
// 1. A normal session: fields, links, keys, plaintexts.

TEST_CASE("A normal session: types, one session id, request/response links, HMAC status, plaintexts",
          "[dissector]") {
    REQUIRE_TSHARK();
    SessionCapture sc(101);
    const std::vector<std::string> texts = {"hello from A", "hello from B", "second from A", "second from B"};
    REQUIRE(sc.cap.send(true, sc.session.client(texts[0])) == 6);
    REQUIRE(sc.cap.send(false, sc.session.server(texts[1])) == 7);
    REQUIRE(sc.cap.send(true, sc.session.client(texts[2])) == 8);
    REQUIRE(sc.cap.send(false, sc.session.server(texts[3])) == 9);
    sc.cap.finish();  // frames 10 and 11
    const std::string sid = sc.session.session_id();

    const std::vector<std::string> names = {"frame.number",      "secmsg.type",         "secmsg.session_id",
                                            "secmsg.response_in", "secmsg.request_in",   "secmsg.handshake_complete",
                                            "secmsg.hmac_status", "secmsg.plaintext",    "secmsg.original_hash"};

    SECTION("with the key log") {
        auto rows = fields(sc.cap.path(), names, keylog_args(sc.keylog));
        REQUIRE(rows.size() == 11);
        // A handshake's original_hash is SHA-256 of its DH value; the request's
        // first 8 bytes name the session.
        const std::string request_hash = hex(crypto::sha256(ByteView(sc.session.request).subspan(51, 256)));
        const std::string response_hash = hex(crypto::sha256(ByteView(sc.session.response).subspan(51, 256)));
        REQUIRE(request_hash.substr(0, 16) == sid);
        const std::vector<Row> want = {
            {"1", "", "", "", "", "", "", "", ""},
            {"2", "", "", "", "", "", "", "", ""},
            {"3", "", "", "", "", "", "", "", ""},
            {"4", "2", sid, "5", "", "1", "3", "", request_hash},
            {"5", "3", sid, "", "4", "1", "3", "", response_hash},
            {"6", "1", sid, "", "", "1", "1", texts[0], hex(crypto::sha256(as_bytes(texts[0])))},
            {"7", "1", sid, "", "", "1", "1", texts[1], hex(crypto::sha256(as_bytes(texts[1])))},
            {"8", "1", sid, "", "", "1", "1", texts[2], hex(crypto::sha256(as_bytes(texts[2])))},
            {"9", "1", sid, "", "", "1", "1", texts[3], hex(crypto::sha256(as_bytes(texts[3])))},
            {"10", "", "", "", "", "", "", "", ""},
            {"11", "", "", "", "", "", "", "", ""},
        };
        CHECK(rows == want);
    }

    SECTION("without the key log: HMAC not checked, no plaintext") {
        auto rows = fields(sc.cap.path(), {"frame.number", "secmsg.session_id", "secmsg.hmac_status",
                                           "secmsg.plaintext", "secmsg.handshake_complete"});
        REQUIRE(rows.size() == 11);
        const std::vector<Row> want = {
            {"1", "", "", "", ""},        {"2", "", "", "", ""},        {"3", "", "", "", ""},
            {"4", sid, "3", "", "1"},     {"5", sid, "3", "", "1"},     {"6", sid, "0", "", "1"},
            {"7", sid, "0", "", "1"},     {"8", sid, "0", "", "1"},     {"9", sid, "0", "", "1"},
            {"10", "", "", "", ""},       {"11", "", "", "", ""},
        };
        CHECK(rows == want);
    }

    SECTION("keystream reuse flagged once per session, marked on every later REGULAR, and no other expert info") {
        CHECK(frames_where(sc.cap.path(), "secmsg.keystream_reuse", keylog_args(sc.keylog)) == Frames{7});
        auto rows = fields(sc.cap.path(), {"frame.number", "secmsg.keystream_first"}, keylog_args(sc.keylog));
        REQUIRE(rows.size() == 11);
        for (std::size_t i = 0; i < rows.size(); ++i)
            CHECK(rows[i][1] == (i >= 6 && i <= 8 ? "6" : ""));
        for (const auto& e : kExperts) {
            if (e == "secmsg.keystream_reuse") continue;
            INFO(e);
            CHECK(frames_where(sc.cap.path(), e, keylog_args(sc.keylog)).empty());
        }
        // The clean session decodes with every frame accounted for.
        CHECK(frames_where(sc.cap.path(), "secmsg", keylog_args(sc.keylog)) == Frames{4, 5, 6, 7, 8, 9});
    }
}

// ---------------------------------------------------------------------------
// 2. Reassembly.

TEST_CASE("Reassembly: two SecMsg packets in one segment, one packet over three segments", "[dissector]") {
    REQUIRE_TSHARK();
    SessionCapture sc(202);
    Bytes both = sc.session.client("first of two");
    Bytes second = sc.session.client("second of two");
    both.insert(both.end(), second.begin(), second.end());
    REQUIRE(sc.cap.send(true, both) == 6);
    const std::string split_text = "split over three segments";
    Bytes split_packet = sc.session.client(split_text);
    // 5 bytes (not even the length field), 60 (header not complete), the rest.
    REQUIRE(sc.cap.send_split(true, split_packet, {5, 60, split_packet.size() - 65}) == Frames{7, 8, 9});
    REQUIRE(sc.cap.send(false, sc.session.server("after the split")) == 10);
    sc.cap.finish();

    auto rows = fields(sc.cap.path(), {"frame.number", "secmsg.type", "secmsg.plaintext", "secmsg.hmac_status",
                                       "secmsg.length"},
                       keylog_args(sc.keylog));
    REQUIRE(rows.size() == 12);
    CHECK(rows[5] == Row{"6", "1,1", "first of two,second of two", "1,1", "12,13"});
    CHECK(rows[6] == Row{"7", "", "", "", ""});
    CHECK(rows[7] == Row{"8", "", "", "", ""});
    CHECK(rows[8] == Row{"9", "1", split_text, "1", std::to_string(split_text.size())});
    CHECK(rows[9] == Row{"10", "1", "after the split", "1", "15"});
    // The second packet of frame 6 reuses the first one's keystream: the
    // session's first reuse, so the expert info is there.
    CHECK(frames_where(sc.cap.path(), "secmsg.keystream_reuse") == Frames{6});
    auto reuse = fields(sc.cap.path(), {"frame.number", "secmsg.keystream_first"});
    REQUIRE(reuse.size() == 12);
    CHECK(reuse[5] == Row{"6", "6"});
    CHECK(reuse[8] == Row{"9", "6"});
    CHECK(reuse[9] == Row{"10", "6"});
    // Decoded once, on the last segment's frame.
    CHECK(frames_where(sc.cap.path(), "secmsg.plaintext == \"" + split_text + "\"", keylog_args(sc.keylog)) ==
          Frames{9});
    CHECK(frames_where(sc.cap.path(), "secmsg", keylog_args(sc.keylog)) == Frames{4, 5, 6, 9, 10});
}

// ---------------------------------------------------------------------------
// 3. Port 5000, the heuristic elsewhere, Decode As.

TEST_CASE("Port 5000 and the heuristic on port 7777, and Decode As when the heuristic is off", "[dissector]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    LiveSession s(dir / "keys.log", now_seconds(), 303);
    std::vector<std::pair<bool, Bytes>> packets = {{true, s.request},
                                                   {false, s.response},
                                                   {true, s.client("over the heuristic")},
                                                   {false, s.server("and back")}};
    auto write = [&](std::uint16_t port) {
        CaptureWriter cap(dir / ("port" + std::to_string(port) + ".pcap"), s.now(), port);
        for (const auto& [to_server, bytes] : packets) cap.send(to_server, bytes);
        cap.finish();
        return cap.path();
    };
    const fs::path on5000 = write(5000), on7777 = write(7777);
    const std::vector<std::string> off = {"--disable-heuristic", "secmsg_tcp"};
    std::vector<std::string> off_decode_as = off;
    off_decode_as.insert(off_decode_as.end(), {"-d", "tcp.port==7777,secmsg"});

    CHECK(frames_where(on5000, "secmsg") == Frames{4, 5, 6, 7});
    CHECK(frames_where(on7777, "secmsg") == Frames{4, 5, 6, 7});
    CHECK(frames_where(on5000, "secmsg", off) == Frames{4, 5, 6, 7});
    CHECK(frames_where(on7777, "secmsg", off).empty());
    CHECK(frames_where(on7777, "secmsg", off_decode_as) == Frames{4, 5, 6, 7});

    // The heuristic's decode is a full one: types, directions, plaintexts.
    std::vector<std::string> with_keys = keylog_args(dir / "keys.log");
    auto rows = fields(on7777, {"frame.number", "secmsg.type", "tcp.dstport", "secmsg.plaintext"}, with_keys);
    REQUIRE(rows.size() == 9);
    CHECK(rows[3] == Row{"4", "2", "7777", ""});
    CHECK(rows[4] == Row{"5", "3", "40000", ""});
    CHECK(rows[5] == Row{"6", "1", "7777", "over the heuristic"});
    CHECK(rows[6] == Row{"7", "1", "40000", "and back"});
    with_keys.insert(with_keys.end(), off_decode_as.begin(), off_decode_as.end());
    CHECK(fields(on7777, {"frame.number", "secmsg.type", "tcp.dstport", "secmsg.plaintext"}, with_keys) == rows);
}

// ---------------------------------------------------------------------------
// 4. One capture per expert info.

TEST_CASE("Expert secmsg.hmac_mismatch on a flipped HMAC byte (key log needed)", "[dissector][expert]") {
    REQUIRE_TSHARK();
    SessionCapture sc(401);
    REQUIRE(sc.cap.send(true, sc.session.client("good mac")) == 6);
    Bytes bad = sc.session.client("flipped mac");
    bad[bad.size() - 7] ^= 0x20;
    REQUIRE(sc.cap.send(true, bad) == 7);
    REQUIRE(sc.cap.send(false, sc.session.server("good again")) == 8);
    sc.cap.finish();

    CHECK(frames_where(sc.cap.path(), "secmsg.hmac_mismatch", keylog_args(sc.keylog)) == Frames{7});
    CHECK(frames_where(sc.cap.path(), "secmsg.hmac_status == 2", keylog_args(sc.keylog)) == Frames{7});
    CHECK(frames_where(sc.cap.path(), "secmsg.hmac_status == 1", keylog_args(sc.keylog)) == Frames{6, 8});
    // Without keys nothing can be checked, so nothing is claimed.
    CHECK(frames_where(sc.cap.path(), "secmsg.hmac_mismatch").empty());
    CHECK(frames_where(sc.cap.path(), "secmsg.hmac_status == 0") == Frames{6, 7, 8});
}

TEST_CASE("Expert secmsg.zero_hmac on a REGULAR with an all-zero HMAC", "[dissector][expert]") {
    REQUIRE_TSHARK();
    SessionCapture sc(402);
    REQUIRE(sc.cap.send(true, sc.session.client("good mac")) == 6);
    Bytes zero = sealed(sc.session.keys(), "zero mac", sc.now);
    std::fill(zero.end() - 32, zero.end(), std::uint8_t{0});
    REQUIRE(sc.cap.send(true, zero) == 7);
    REQUIRE(sc.cap.send(false, sc.session.server("good again")) == 8);
    sc.cap.finish();

    // The handshakes' zero HMACs are what the format says: not flagged.
    CHECK(frames_where(sc.cap.path(), "secmsg.zero_hmac") == Frames{7});
    CHECK(frames_where(sc.cap.path(), "secmsg.zero_hmac", keylog_args(sc.keylog)) == Frames{7});
    CHECK(frames_where(sc.cap.path(), "secmsg.hmac_mismatch", keylog_args(sc.keylog)) == Frames{7});
}

TEST_CASE("Expert secmsg.weak_dh on a HANDSHAKE_REQUEST carrying 0, 1, p-1 or p", "[dissector][expert]") {
    REQUIRE_TSHARK();
    const Bytes& p = crypto::dh14::prime();
    REQUIRE(p.size() == 256);
    Bytes zero(256, 0), one(256, 0), p_minus_1 = p;
    one.back() = 1;
    REQUIRE(p_minus_1.back() != 0);  // p is odd
    p_minus_1.back() -= 1;
    const std::vector<std::pair<std::string, Bytes>> weak = {{"0", zero}, {"1", one}, {"p-1", p_minus_1}, {"p", p}};
    for (const auto& [name, y] : weak) {
        DYNAMIC_SECTION("y = " << name) {
            ReadableTempDir dir;
            DeterministicRng rng(404);
            const std::uint64_t now = now_seconds();
            CaptureWriter cap(dir / "weak.pcap", now);
            Bytes request = secmsg::serialize(secmsg::make_handshake(secmsg::MessageType::handshake_request, y, now));
            Bytes response = secmsg::serialize(secmsg::make_handshake(
                secmsg::MessageType::handshake_response, crypto::dh14::generate(rng).public_value, now));
            REQUIRE(cap.send(true, request) == 4);
            REQUIRE(cap.send(false, response) == 5);
            cap.finish();

            CHECK(frames_where(cap.path(), "secmsg.weak_dh") == Frames{4});
            auto rows = fields(cap.path(), {"frame.number", "secmsg.type", "secmsg.dh_public"});
            REQUIRE(rows.size() == 7);
            CHECK(rows[3] == Row{"4", "2", hex(y)});
            CHECK(rows[4] == Row{"5", "3", hex(response).substr(2 * 51, 2 * 256)});
        }
    }
    SECTION("the responder's value is checked too: p-1 in the HANDSHAKE_RESPONSE") {
        ReadableTempDir dir;
        DeterministicRng rng(404);
        const std::uint64_t now = now_seconds();
        CaptureWriter cap(dir / "weak.pcap", now);
        REQUIRE(cap.send(true, secmsg::serialize(secmsg::make_handshake(
                                   secmsg::MessageType::handshake_request,
                                   crypto::dh14::generate(rng).public_value, now))) == 4);
        REQUIRE(cap.send(false, secmsg::serialize(secmsg::make_handshake(secmsg::MessageType::handshake_response,
                                                                          p_minus_1, now))) == 5);
        cap.finish();
        CHECK(frames_where(cap.path(), "secmsg.weak_dh") == Frames{5});
    }
}

TEST_CASE("Expert secmsg.keystream_reuse once per session and secmsg.keystream_first after it",
          "[dissector][expert]") {
    REQUIRE_TSHARK();
    SessionCapture sc(405);
    const std::string p1 = "first keystream use", p3 = "same keystream again";
    const Bytes c1 = sc.session.client(p1);
    REQUIRE(sc.cap.send(true, c1) == 6);
    REQUIRE(sc.cap.send(false, sc.session.server("same keystream, other way")) == 7);
    const Bytes c3 = sc.session.client(p3);
    REQUIRE(sc.cap.send(true, c3) == 8);
    sc.cap.finish();

    CHECK(frames_where(sc.cap.path(), "secmsg.keystream_reuse") == Frames{7});
    CHECK(frames_where(sc.cap.path(), "secmsg.keystream_first == 6") == Frames{7, 8});
    // C1 xor C2 = P1 xor P2: the claim the expert info makes, on the packets sent.
    for (std::size_t i = 0; i < p1.size(); ++i)
        REQUIRE((c1[51 + i] ^ c3[51 + i]) == (static_cast<std::uint8_t>(p1[i]) ^ static_cast<std::uint8_t>(p3[i])));
}

TEST_CASE("Expert secmsg.timestamp_skew on a packet stamped far from the capture time",
          "[dissector][expert]") {
    REQUIRE_TSHARK();
    SessionCapture sc(406);  // frame times and the sessions' clock are now
    REQUIRE(sc.now > kStaleTimestamp + 86400);
    REQUIRE(sc.cap.send(true, sc.session.client("fresh")) == 6);
    REQUIRE(sc.cap.send(true, sealed(sc.session.keys(), "stamped in 2023", kStaleTimestamp)) == 7);
    REQUIRE(sc.cap.send(false, sc.session.server("fresh again")) == 8);
    sc.cap.finish();

    CHECK(frames_where(sc.cap.path(), "secmsg.timestamp_skew") == Frames{7});
    CHECK(frames_where(sc.cap.path(), "secmsg.timestamp_skew", {"-o", "secmsg.max_skew:999999999"}).empty());
    CHECK(frames_where(sc.cap.path(), "secmsg.timestamp == \"2023-11-14 22:13:20Z\"") == Frames{7});
    CHECK(frames_where(sc.cap.path(), "secmsg.plaintext == \"stamped in 2023\"", keylog_args(sc.keylog)) ==
          Frames{7});
}

TEST_CASE("Expert secmsg.duplicate on the second copy of a client REGULAR", "[dissector][expert]") {
    REQUIRE_TSHARK();
    SessionCapture sc(407);
    Bytes once = sc.session.client("sent twice");
    REQUIRE(sc.cap.send(true, once) == 6);
    REQUIRE(sc.cap.send(true, once) == 7);
    REQUIRE(sc.cap.send(false, sc.session.server("reply")) == 8);
    sc.cap.finish();

    CHECK(frames_where(sc.cap.path(), "secmsg.duplicate") == Frames{7});
    CHECK(frames_where(sc.cap.path(), "secmsg.duplicate_of == 6") == Frames{7});
    CHECK(frames_where(sc.cap.path(), "secmsg.reflected").empty());
}

TEST_CASE("Expert secmsg.reflected on a client REGULAR sent back to the client", "[dissector][expert]") {
    REQUIRE_TSHARK();
    SessionCapture sc(408);
    Bytes once = sc.session.client("sent back");
    REQUIRE(sc.cap.send(true, once) == 6);
    REQUIRE(sc.cap.send(false, once) == 7);
    REQUIRE(sc.cap.send(false, sc.session.server("reply")) == 8);
    sc.cap.finish();

    CHECK(frames_where(sc.cap.path(), "secmsg.reflected") == Frames{7});
    CHECK(frames_where(sc.cap.path(), "secmsg.reflection_of == 6") == Frames{7});
    CHECK(frames_where(sc.cap.path(), "secmsg.duplicate").empty());
}

TEST_CASE("Expert secmsg.hash_mismatch on a changed plaintext hash under a valid HMAC (key log needed)",
          "[dissector][expert]") {
    REQUIRE_TSHARK();
    SessionCapture sc(409);
    REQUIRE(sc.cap.send(true, sc.session.client("honest hash")) == 6);
    secmsg::Packet lying = secmsg::seal_regular(sc.session.keys(), as_bytes("lying hash"), sc.now);
    lying.original_hash[5] ^= 0x01;
    re_mac(sc.session.keys(), lying);
    secmsg::Opened opened = secmsg::open_regular(sc.session.keys(), lying);
    REQUIRE(opened.hmac_ok);
    REQUIRE_FALSE(opened.hash_ok);
    REQUIRE(sc.cap.send(true, secmsg::serialize(lying)) == 7);
    REQUIRE(sc.cap.send(false, sc.session.server("reply")) == 8);
    sc.cap.finish();

    CHECK(frames_where(sc.cap.path(), "secmsg.hash_mismatch", keylog_args(sc.keylog)) == Frames{7});
    // Only the hash is wrong: the HMAC over the changed header is good.
    CHECK(frames_where(sc.cap.path(), "secmsg.hmac_mismatch", keylog_args(sc.keylog)).empty());
    CHECK(frames_where(sc.cap.path(), "secmsg.hmac_status == 1", keylog_args(sc.keylog)) == Frames{6, 7, 8});
    CHECK(frames_where(sc.cap.path(), "secmsg.plaintext == \"lying hash\"", keylog_args(sc.keylog)) == Frames{7});
    CHECK(frames_where(sc.cap.path(), "secmsg.hash_mismatch").empty());
}

TEST_CASE("Expert secmsg.length_over_bound on a 70000-byte REGULAR reassembled over many segments",
          "[dissector][expert]") {
    REQUIRE_TSHARK();
    SessionCapture sc(410);
    REQUIRE(sc.cap.send(true, sc.session.client("small")) == 6);
    std::string big(70000, ' ');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    Bytes wire = sealed(sc.session.keys(), big, sc.now);
    REQUIRE(wire.size() == 70083);
    std::vector<std::size_t> sizes;
    for (std::size_t left = wire.size(); left > 0; left -= std::min<std::size_t>(left, 1448))
        sizes.push_back(std::min<std::size_t>(left, 1448));
    Frames segments = sc.cap.send_split(true, wire, sizes);
    REQUIRE(segments.size() == 49);
    const std::uint64_t last = segments.back();
    REQUIRE(last == 55);
    REQUIRE(sc.cap.send(false, sc.session.server("reply")) == 56);
    sc.cap.finish();

    CHECK(frames_where(sc.cap.path(), "secmsg.length_over_bound") == Frames{last});
    CHECK(frames_where(sc.cap.path(), "secmsg.length_over_bound", {"-o", "secmsg.max_payload:100000"}).empty());
    CHECK(frames_where(sc.cap.path(), "secmsg") == Frames{4, 5, 6, last, 56});
    auto rows = fields(sc.cap.path(), {"frame.number", "secmsg.length", "secmsg.hmac_status", "secmsg.plaintext"},
                       keylog_args(sc.keylog));
    REQUIRE(rows.size() == 58);
    CHECK(rows[last - 1] == Row{std::to_string(last), "70000", "1", big});
}

TEST_CASE("Expert secmsg.late_handshake on a HANDSHAKE_REQUEST after the response", "[dissector][expert]") {
    REQUIRE_TSHARK();
    SessionCapture sc(411);
    REQUIRE(sc.cap.send(true, sc.session.client("keyed")) == 6);
    Bytes again = secmsg::serialize(secmsg::make_handshake(
        secmsg::MessageType::handshake_request, crypto::dh14::generate(sc.session.rng()).public_value, sc.now));
    REQUIRE(sc.cap.send(true, again) == 7);
    REQUIRE(sc.cap.send(false, sc.session.server("still keyed")) == 8);
    sc.cap.finish();

    CHECK(frames_where(sc.cap.path(), "secmsg.late_handshake") == Frames{7});
    auto rows = fields(sc.cap.path(), {"frame.number", "secmsg.type", "secmsg.session_id", "secmsg.response_in",
                                       "secmsg.hmac_status", "secmsg.plaintext"},
                       keylog_args(sc.keylog));
    REQUIRE(rows.size() == 10);
    const std::string sid = sc.session.session_id();
    CHECK(rows[3] == Row{"4", "2", sid, "5", "3", ""});
    CHECK(rows[6] == Row{"7", "2", sid, "", "3", ""});
    CHECK(rows[7] == Row{"8", "1", sid, "", "1", "still keyed"});
}

// ---------------------------------------------------------------------------
// 5. The expert statistics.

TEST_CASE("tshark -z expert lists the duplicate under Warns", "[dissector][expert]") {
    REQUIRE_TSHARK();
    SessionCapture sc(501);
    Bytes once = sc.session.client("sent twice");
    REQUIRE(sc.cap.send(true, once) == 6);
    REQUIRE(sc.cap.send(true, once) == 7);
    sc.cap.finish();

    TsharkResult r = run_tshark({"-r", sc.cap.path().string(), "-q", "-z", "expert"});
    INFO("tshark stderr: " << r.errors);
    REQUIRE(r.exit_code == 0);
    std::ostringstream all;
    for (const auto& l : r.lines) all << l << '\n';
    INFO("output:\n" << all.str());
    CHECK(expert_line_section(r.lines, "Duplicate of frame 6: a replay") == "Warns");
    // Its row: once, in the Sequence group, from SecMsg.
    std::size_t rows = 0;
    for (const auto& l : r.lines) {
        if (l.find("Duplicate of frame 6: a replay") == std::string::npos) continue;
        ++rows;
        std::istringstream in(l);
        std::string frequency, group, protocol;
        in >> frequency >> group >> protocol;
        CHECK(frequency == "1");
        CHECK(group == "Sequence");
        CHECK(protocol == "SecMsg");
    }
    CHECK(rows == 1);
}

// ---------------------------------------------------------------------------
// 6. The plugin on its own, against the installed SDK.

TEST_CASE("The plugin builds from a clean folder against the installed SDK alone, and tshark loads it",
          "[dissector][build]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    const fs::path build = dir / "b", log = dir / "build.log";
    const auto start = std::chrono::steady_clock::now();
    CommandResult r = run_command("cmake -S " + msglab::test::shell_quote(MSGLAB_DISSECTOR_SOURCE_DIR) + " -B " +
                                  msglab::test::shell_quote(build.string()) + " -G Ninja >" + msglab::test::shell_quote(log.string()) +
                                  " 2>&1 && cmake --build " + msglab::test::shell_quote(build.string()) + " -j2 >>" +
                                  msglab::test::shell_quote(log.string()) + " 2>&1");
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "clean-folder plugin build: " << seconds << " s" << std::endl;
    std::string out = read_file(log);
    INFO("build log (end):\n" << out.substr(out.size() > 4000 ? out.size() - 4000 : 0));
    REQUIRE(r.exit_code == 0);
    REQUIRE(fs::is_regular_file(build / "plugins/4.0/epan/msglab.so"));

    auto secmsg_lines = [](const TsharkResult& t) {
        std::size_t n = 0;
        for (const auto& l : t.lines) {
            auto cols = split(l, '\t');
            if (cols.size() >= 3 && cols[2] == "secmsg") ++n;
        }
        return n;
    };
    TsharkResult with = run_tshark({"-G", "protocols"}, build / "plugins");
    INFO("tshark stderr: " << with.errors);
    REQUIRE(with.exit_code == 0);
    CHECK(secmsg_lines(with) == 1);
    // Not from anywhere else: with an empty plugin folder there is no secmsg.
    ReadableTempDir empty;
    TsharkResult without = run_tshark({"-G", "protocols"}, empty.path());
    REQUIRE(without.exit_code == 0);
    REQUIRE(without.lines.size() > 1000);
    CHECK(secmsg_lines(without) == 0);
}
