// msglab.so's CSMP dissector through tshark: the original programs' capture
// decoded in place (HTTP, and WebSocket frames tshark inflates itself), and
// synthetic captures written here, with HTTP and masked/unmasked WebSocket
// frames over synthetic TCP, for each expert info and its clean counterpart.
// Every check names exact frames and values.
#include <pcap/pcap.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "replay/pcap_io.hpp"
#include "replay/synth.hpp"
#include "support.hpp"
#include "tshark_support.hpp"

using namespace msglab;
using namespace msglab::test;

namespace {

constexpr std::uint32_t kClientIp = 0x0a000001;  // 10.0.0.1
constexpr std::uint32_t kServerIp = 0x0a000002;  // 10.0.0.2
constexpr std::uint16_t kCsmpPort = 8000;
constexpr std::uint64_t kStart = 1769447130;  // 2026-01-26 17:05:30 UTC
// A dissector exception or bug in a frame.
constexpr const char* kException = "_ws.malformed.expert || _ws.malformed.dissector_bug || _ws.short";

// Every CSMP expert info the plugin registers.
const std::vector<std::string> kExperts = {
    "csmp.session_two_identities", "csmp.session_never_issued", "csmp.call_non_party",
    "csmp.room_non_member",        "csmp.malformed_json",
};

// The CSMP frames' rows (the filter "csmp"), keyed by frame number.
std::map<std::uint64_t, Row> csmp_rows(const fs::path& pcap, const std::vector<std::string>& names,
                                       const std::vector<std::string>& extra = {}) {
    return rows_by_frame(pcap, names, extra, "csmp");
}

// Every CSMP expert info, from one tshark run: name -> the frames that carry it.
std::map<std::string, Frames> experts(const fs::path& pcap, const std::vector<std::string>& extra = {}) {
    return experts_by_name(pcap, kExperts, extra);
}

// ---- HTTP and WebSocket as CSMP's server and clients write them.

std::string http_request(std::string_view method, std::string_view target, std::string_view body = "",
                         const std::vector<std::string>& headers = {}) {
    std::string r = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nhost: 127.0.0.1:8000\r\n";
    for (const auto& h : headers) r += h + "\r\n";
    if (!body.empty()) r += "content-type: application/json\r\ncontent-length: " + std::to_string(body.size()) + "\r\n";
    return r + "\r\n" + std::string(body);
}

std::string http_response(int status, std::string_view reason, std::string_view body) {
    return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
           "\r\ndate: Mon, 26 Jan 2026 17:05:30 GMT\r\nserver: uvicorn\r\ncontent-length: " +
           std::to_string(body.size()) + "\r\ncontent-type: application/json\r\n\r\n" + std::string(body);
}

std::string upgrade_request(std::string_view target) {
    return "GET " + std::string(target) +
           " HTTP/1.1\r\nhost: 127.0.0.1:8000\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
           "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n";
}

const std::string kSwitching =
    "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
    "sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
const std::string kForbidden = "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n";

// One FIN text frame, uncompressed; clients mask theirs (RFC 6455 5.3).
Bytes ws_text(std::string_view payload, bool masked) {
    Bytes f = {0x81};
    const std::uint8_t mask_bit = masked ? 0x80 : 0x00;
    const std::size_t n = payload.size();
    if (n < 126) {
        f.push_back(static_cast<std::uint8_t>(mask_bit | n));
    } else {
        REQUIRE(n < 65536);
        f.push_back(mask_bit | 126);
        f.push_back(static_cast<std::uint8_t>(n >> 8));
        f.push_back(static_cast<std::uint8_t>(n & 0xff));
    }
    const std::uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    if (masked) f.insert(f.end(), key, key + 4);
    for (std::size_t i = 0; i < n; ++i) f.push_back(static_cast<std::uint8_t>(payload[i]) ^ (masked ? key[i % 4] : 0));
    return f;
}

// Captures start at kStart unless told otherwise.
struct Capture : SynthCapture {
    explicit Capture(const fs::path& path, std::uint64_t start_sec = kStart) : SynthCapture(path, start_sec) {}
};

// A request and its response on a connection of their own.
struct Exchange {
    std::uint64_t request = 0, response = 0;
};

// An upgraded (or refused) WebSocket connection.
struct Socket {
    std::size_t conn = 0;
    std::uint64_t upgrade = 0, answer = 0;
};

// CSMP traffic, one connection per REST call, as the original's clients do.
class Csmp {
public:
    explicit Csmp(const fs::path& path, std::uint16_t server_port = kCsmpPort)
        : cap(path), m_server_port(server_port) {}

    Exchange exchange(const std::string& request, const std::string& response) {
        std::size_t c = cap.connect(m_next_port++, m_server_port);
        Exchange e;
        e.request = cap.send(c, true, request);
        e.response = cap.send(c, false, response);
        cap.close(c);
        return e;
    }
    // POST /handshake/ for `client`, answered with session id `sid`.
    Exchange handshake(const std::string& client, const std::string& sid) {
        return exchange(http_request("POST", "/handshake/", R"({"client_id": ")" + client + R"("})"),
                        http_response(200, "OK",
                                      R"({"session_id":")" + sid + R"(","client_id":")" + client +
                                          R"(","protocol_version":"1.0.0","expires_in":1800})"));
    }
    Socket socket(const std::string& target, bool accepted = true) {
        Socket s;
        s.conn = cap.connect(m_next_port++, m_server_port);
        s.upgrade = cap.send(s.conn, true, upgrade_request(target));
        s.answer = cap.send(s.conn, false, accepted ? kSwitching : kForbidden);
        return s;
    }
    std::uint64_t client(const Socket& s, std::string_view text) { return cap.send(s.conn, true, ws_text(text, true)); }
    std::uint64_t server(const Socket& s, std::string_view text) {
        return cap.send(s.conn, false, ws_text(text, false));
    }
    void finish() { cap.finish(); }
    const fs::path& path() const { return cap.path(); }

    Capture cap;

private:
    std::uint16_t m_server_port;
    std::uint16_t m_next_port = 41000;
};

const std::string kSidAlice = "6f0c1a2e-3b4d-4c5e-8f60-718293a4b5c6";
const std::string kSidBob = "0b8e7d6c-5a4f-4e3d-9c2b-1a0f9e8d7c6b";
const std::string kSidMallory = "9d1e2f3a-4b5c-4d6e-8f7a-8b9c0d1e2f3a";

std::string chat_relay(const std::string& from, const std::string& room, const std::string& message) {
    return R"({"type":"chat","from":")" + from + R"(","room_id":")" + room + R"(","message":")" + message +
           R"(","timestamp":"2026-01-26T17:05:31.123456"})";
}

}  // namespace

// ---------------------------------------------------------------------------
// 1. The original programs' capture.

TEST_CASE("CSMP: the original capture decodes in place: handshakes, inflated chat frames, raw text, sessions",
          "[dissector][csmp]") {
    REQUIRE_TSHARK();
    auto dir = captures_dir();
    if (!dir || !fs::is_regular_file(*dir / "originals/csmp.pcap")) MSGLAB_SKIP("no originals/csmp.pcap");
    const fs::path pcap = *dir / "originals/csmp.pcap";
    const std::string alice = "0c1009c5-e696-473d-9f1d-3d774a255628";
    const std::string bob = "04a394f3-e36d-49ff-afa3-86d32ba2bb2c";
    const std::string carol = "1f345051-1421-4235-ab84-8c1372927716";

    // Every HTTP message (all on port 8000) and every WebSocket data frame;
    // the close frames are not CSMP's.
    const Frames messages = {4,  8,  19, 23, 33, 37,  45,  47,  52,  54,  56,  57,  58,  61,  62,
                             64, 79, 83, 91, 93, 103, 107, 115, 117, 119, 120, 129, 133, 143, 147};
    REQUIRE(frames_where(pcap, "csmp") == messages);

    SECTION("the chat frames are compressed (permessage-deflate) and still decode") {
        CHECK(frames_where(pcap, "websocket.pmc == 1") == Frames{56, 57, 58, 61, 62, 64, 119, 120});
        auto rows = csmp_rows(
            pcap, {"csmp.type", "csmp.channel", "csmp.to_server", "csmp.room", "csmp.from", "csmp.message",
                   "csmp.raw_text", "csmp.session_id", "csmp.session_client", "csmp.issued_in", "csmp.timestamp"});
        const std::string ts1 = "2026-11-21T14:41:34.154067", ts2 = "2026-11-21T14:41:34.766979",
                          ts3 = "2026-11-21T14:41:34.793237";
        const std::map<std::uint64_t, Row> want = {
            // alice's socket (48568) sends; both sockets get the relay.
            {56, {"chat", "chat", "1", "room1", "", "hello bob, from alice", "", alice, "alice", "23", ""}},
            {57, {"chat", "chat", "0", "room1", "alice", "hello bob, from alice", "", alice, "alice", "23", ts1}},
            {58, {"chat", "chat", "0", "room1", "alice", "hello bob, from alice", "", bob, "bob", "37", ts1}},
            // bob's raw text frame is a chat message, as the original treats it.
            {61, {"chat", "chat", "1", "room1", "", "hi alice (raw text frame)", "1", bob, "bob", "37", ""}},
            {62, {"chat", "chat", "0", "room1", "bob", "hi alice (raw text frame)", "", alice, "alice", "23", ts2}},
            {64, {"chat", "chat", "0", "room1", "bob", "hi alice (raw text frame)", "", bob, "bob", "37", ts2}},
            {119, {"chat", "chat", "1", "room1-solo", "", "note to self", "", carol, "carol", "107", ""}},
            {120, {"chat", "chat", "0", "room1-solo", "carol", "note to self", "", carol, "carol", "107", ts3}},
        };
        std::map<std::uint64_t, Row> ws;
        for (const auto& [frame, row] : rows)
            if (want.count(frame)) ws[frame] = row;
        CHECK(ws == want);
        // Which socket each frame is on: the session follows its connection.
        auto ports = csmp_rows(pcap, {"tcp.srcport", "tcp.dstport"});
        CHECK(ports.at(56) == Row{"48568", "8000"});
        CHECK(ports.at(57) == Row{"8000", "48568"});
        CHECK(ports.at(58) == Row{"8000", "48580"});
        CHECK(ports.at(61) == Row{"48580", "8000"});
    }

    SECTION("the REST calls: routes, status codes, handshake ids, session ids tied to their client ids") {
        auto rows = csmp_rows(
            pcap, {"csmp.type", "csmp.path", "csmp.status", "csmp.session_id", "csmp.client_id", "csmp.session_client",
                   "csmp.issued_in", "csmp.room", "csmp.message", "csmp.request_in", "csmp.response_in"});
        const std::map<std::uint64_t, Row> want = {
            {4, {"health", "/health/", "", "", "", "", "", "", "", "", "8"}},
            {8, {"health_response", "/health/", "200", "", "", "", "", "", "", "4", ""}},
            {19, {"handshake", "/handshake/", "", "", "alice", "", "", "", "", "", "23"}},
            {23, {"handshake_response", "/handshake/", "200", alice, "alice", "alice", "23", "", "", "19", ""}},
            {33, {"handshake", "/handshake/", "", "", "bob", "", "", "", "", "", "37"}},
            {37, {"handshake_response", "/handshake/", "200", bob, "bob", "bob", "37", "", "", "33", ""}},
            {45, {"ws_chat", "/ws/chat", "", alice, "", "alice", "23", "room1", "", "", "47"}},
            {47, {"ws_chat_response", "/ws/chat", "101", alice, "", "alice", "23", "room1", "", "45", ""}},
            {52, {"ws_chat", "/ws/chat", "", bob, "", "bob", "37", "room1", "", "", "54"}},
            {54, {"ws_chat_response", "/ws/chat", "101", bob, "", "bob", "37", "room1", "", "52", ""}},
            // The history of room1 fails (rows under two sessions): 500.
            {79, {"history", "/history/room1", "", alice, "", "alice", "23", "room1", "", "", "83"}},
            {83, {"history_response", "/history/room1", "500", alice, "", "alice", "23", "room1", "", "79", ""}},
            // No session id at all: 401 SESSION_MISSING.
            {91, {"history", "/history/room1", "", "", "", "", "", "room1", "", "", "93"}},
            {93, {"history_response", "/history/room1", "401", "", "", "", "", "room1", "", "91", ""}},
            {103, {"handshake", "/handshake/", "", "", "carol", "", "", "", "", "", "107"}},
            {107, {"handshake_response", "/handshake/", "200", carol, "carol", "carol", "107", "", "", "103", ""}},
            {115, {"ws_chat", "/ws/chat", "", carol, "", "carol", "107", "room1-solo", "", "", "117"}},
            {117, {"ws_chat_response", "/ws/chat", "101", carol, "", "carol", "107", "room1-solo", "", "115", ""}},
            {129, {"history", "/history/room1-solo", "", carol, "", "carol", "107", "room1-solo", "", "", "133"}},
            {133,
             {"history_response", "/history/room1-solo", "200", carol, "", "carol", "107", "room1-solo,room1-solo",
              "note to self", "129", ""}},
            // POST /chat/send: always 500 in the original.
            {143, {"chat_send", "/chat/send", "", alice, "", "alice", "23", "", "via http", "", "147"}},
            {147, {"chat_send_response", "/chat/send", "500", alice, "", "alice", "23", "", "", "143", ""}},
        };
        std::map<std::uint64_t, Row> http;
        for (const auto& [frame, row] : rows)
            if (want.count(frame)) http[frame] = row;
        CHECK(http == want);
        auto more = csmp_rows(pcap, {"csmp.protocol_version", "csmp.expires_in", "csmp.detail", "csmp.code",
                                     "csmp.rows", "csmp.id", "csmp.from", "csmp.result"});
        CHECK(more.at(23) == Row{"1.0.0", "1800", "", "", "", "", "", ""});
        CHECK(more.at(83) == Row{"", "", "History load failed", "", "", "", "", ""});
        CHECK(more.at(93) ==
              Row{"", "", "Identity verification required. Please login.", "SESSION_MISSING", "", "", "", ""});
        CHECK(more.at(133) == Row{"", "", "", "", "1", "3", "carol", "sent"});
        CHECK(more.at(147) == Row{"", "", "Internal server error while saving message", "", "", "", "", ""});
        CHECK(more.at(8) == Row{"", "", "", "", "", "", "", "ok"});
    }

    SECTION("a clean capture: no expert info, no exception") {
        CHECK(experts(pcap).empty());
        CHECK(frames_where(pcap, kException).empty());
        CHECK(frames_where(pcap, "_ws.malformed").empty());
    }
}

// ---------------------------------------------------------------------------
// 2. Expert infos, each against its clean counterpart.

TEST_CASE("CSMP: csmp.session_two_identities on a session id issued twice and on a claimed 'from'",
          "[dissector][csmp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;

    Csmp dirty(dir / "dirty.pcap");
    Exchange alice = dirty.handshake("alice", kSidAlice);
    // The same session id handed out again, to another client.
    Exchange mallory = dirty.handshake("mallory", kSidAlice);
    Exchange bob = dirty.handshake("bob", kSidBob);
    Socket chat = dirty.socket("/ws/chat?session_id=" + kSidBob + "&room_id=room_alice_bob");
    std::uint64_t honest = dirty.client(chat, R"({"type":"chat","message":"hi","from":"bob"})");
    // bob's session claims to be carol.
    std::uint64_t claim = dirty.client(chat, R"({"type":"chat","message":"it is carol","from":"carol"})");
    Exchange history =
        dirty.exchange(http_request("GET", "/history/room_alice_bob", "", {"x-session-id: " + kSidAlice}),
                       http_response(200, "OK", "[]"));
    dirty.finish();

    auto e = experts(dirty.path());
    CHECK(e == std::map<std::string, Frames>{{"csmp.session_two_identities", {mallory.response, claim}}});
    auto rows = csmp_rows(dirty.path(), {"csmp.type", "csmp.session_id", "csmp.client_id", "csmp.from",
                                         "csmp.session_client", "csmp.issued_in", "csmp.identity"});
    const std::string a = std::to_string(alice.response), m = std::to_string(mallory.response),
                      b = std::to_string(bob.response);
    CHECK(rows.at(alice.response) == Row{"handshake_response", kSidAlice, "alice", "", "alice", a, "alice"});
    CHECK(rows.at(mallory.response) == Row{"handshake_response", kSidAlice, "mallory", "", "mallory", m, "mallory"});
    CHECK(rows.at(honest) == Row{"chat", kSidBob, "", "bob", "bob", b, "bob"});
    CHECK(rows.at(claim) == Row{"chat", kSidBob, "", "carol", "bob", b, "bob"});
    // Later uses see the session as its last handshake left it.
    CHECK(rows.at(history.request) == Row{"history", kSidAlice, "", "", "mallory", m, "mallory"});

    Csmp clean(dir / "clean.pcap");
    Exchange h1 = clean.handshake("alice", kSidAlice);
    Exchange h2 = clean.handshake("bob", kSidBob);
    Socket ok = clean.socket("/ws/chat?session_id=" + kSidBob + "&room_id=room_alice_bob");
    std::uint64_t c1 = clean.client(ok, R"({"type":"chat","message":"hi","from":"bob"})");
    std::uint64_t c2 = clean.client(ok, R"({"type":"chat","message":"no from"})");
    std::uint64_t c3 = clean.server(ok, chat_relay("alice", "room_alice_bob", "hello bob"));
    clean.finish();
    CHECK(experts(clean.path()).empty());
    CHECK(frames_where(clean.path(), "csmp") ==
          Frames{h1.request, h1.response, h2.request, h2.response, ok.upgrade, ok.answer, c1, c2, c3});
}

TEST_CASE("CSMP: csmp.session_never_issued on an accepted session no handshake in the capture issued",
          "[dissector][csmp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    const std::string ghost = "deadbeef-0000-4000-8000-000000000000";

    Csmp dirty(dir / "dirty.pcap");
    Exchange alice = dirty.handshake("alice", kSidAlice);
    // The original's fallback: "bob" as a session id is bob.
    Socket call = dirty.socket("/ws/call?session_id=bob");
    Exchange history = dirty.exchange(http_request("GET", "/history/room1", "", {"x-session-id: " + ghost}),
                                      http_response(200, "OK", "[]"));
    // Issued: fine. Refused: fine. A public path skips the guard: fine.
    Exchange issued = dirty.exchange(http_request("GET", "/history/room1", "", {"x-session-id: " + kSidAlice}),
                                     http_response(200, "OK", "[]"));
    Socket refused = dirty.socket("/ws/chat?session_id=nobody&room_id=room1", false);
    Exchange health = dirty.exchange(http_request("GET", "/health/?session_id=ghost2"),
                                     http_response(200, "OK", R"({"status":"ok"})"));
    // Query and header: the guard prefers the header.
    Exchange both = dirty.exchange(
        http_request("GET", "/call/call/history?session_id=" + ghost, "", {"X-Session-Id: " + kSidAlice}),
        http_response(200, "OK", R"({"count":0,"calls":[]})"));
    dirty.finish();

    auto e = experts(dirty.path());
    CHECK(e == std::map<std::string, Frames>{{"csmp.session_never_issued", {call.answer, history.response}}});
    auto rows = csmp_rows(dirty.path(), {"csmp.type", "csmp.status", "csmp.session_id", "csmp.session_client",
                                         "csmp.identity", "csmp.channel"});
    CHECK(rows.at(call.upgrade) == Row{"ws_call", "", "bob", "", "bob", ""});
    CHECK(rows.at(call.answer) == Row{"ws_call_response", "101", "bob", "", "bob", "call"});
    CHECK(rows.at(history.response) == Row{"history_response", "200", ghost, "", "deadbeef", ""});
    CHECK(rows.at(issued.response) == Row{"history_response", "200", kSidAlice, "alice", "alice", ""});
    CHECK(rows.at(refused.answer) == Row{"ws_chat_response", "403", "nobody", "", "nobody", ""});
    CHECK(rows.at(health.request) == Row{"health", "", "ghost2", "", "", ""});
    CHECK(rows.at(both.request) == Row{"call_history", "", kSidAlice, "alice", "alice", ""});
    CHECK(rows.at(alice.response)[2] == kSidAlice);

    // The same uses in a capture without any handshake: the dissector cannot
    // know they were never issued (they may predate the capture), nor after
    // a later handshake.
    Csmp clean(dir / "clean.pcap");
    Socket early = clean.socket("/ws/call?session_id=bob");
    Exchange early_history = clean.exchange(http_request("GET", "/history/room1", "", {"x-session-id: " + ghost}),
                                            http_response(200, "OK", "[]"));
    clean.handshake("alice", kSidAlice);
    Exchange again = clean.exchange(http_request("GET", "/history/room1", "", {"x-session-id: " + ghost}),
                                    http_response(200, "OK", "[]"));
    clean.finish();
    CHECK(experts(clean.path()).empty());
    auto clean_rows = csmp_rows(clean.path(), {"csmp.type", "csmp.status", "csmp.identity"});
    CHECK(clean_rows.at(early.answer) == Row{"ws_call_response", "101", ""});
    CHECK(clean_rows.at(early_history.response) == Row{"history_response", "200", ""});
    CHECK(clean_rows.at(again.response) == Row{"history_response", "200", ""});
}

TEST_CASE("CSMP: csmp.call_non_party on call events from an identity that is neither caller nor callee",
          "[dissector][csmp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    const std::string call_id = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d";
    const std::string sdp = R"("sdp":{"type":"offer","sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"})";

    auto setup = [&](Csmp& w, bool with_mallory) {
        w.handshake("alice", kSidAlice);
        w.handshake("bob", kSidBob);
        if (with_mallory) w.handshake("mallory", kSidMallory);
    };
    Csmp dirty(dir / "dirty.pcap");
    setup(dirty, true);
    Socket a = dirty.socket("/ws/call?session_id=" + kSidAlice);
    Socket b = dirty.socket("/ws/call?session_id=" + kSidBob);
    Socket m = dirty.socket("/ws/call?session_id=" + kSidMallory);
    std::uint64_t init = dirty.client(a, R"({"type":"call:init","to":"bob","call_type":"voice"})");
    std::uint64_t incoming = dirty.server(
        b, R"({"type":"call:incoming","call_id":")" + call_id + R"(","from":"alice","call_type":"voice"})");
    std::uint64_t ack =
        dirty.server(a, R"({"type":"call:ack","call_id":")" + call_id + R"(","to":"bob","call_type":"voice"})");
    std::uint64_t answer =
        dirty.client(b, R"({"type":"call:answer","to":"alice","call_id":")" + call_id + R"(",)" + sdp + "}");
    // mallory ends alice's call and injects an offer; the server relays both.
    std::uint64_t end = dirty.client(m, R"({"type":"call:end","to":"alice","call_id":")" + call_id + R"("})");
    std::uint64_t end_relay = dirty.server(a, R"({"type":"call:end","call_id":")" + call_id + R"("})");
    std::uint64_t offer =
        dirty.client(m, R"({"type":"call:offer","to":"bob","call_id":")" + call_id + R"(",)" + sdp + "}");
    std::uint64_t offer_relay =
        dirty.server(b, R"({"type":"call:offer","call_id":")" + call_id + R"(",)" + sdp + R"(,"from":"mallory"})");
    // An unknown call id: nothing to compare with.
    std::uint64_t unknown =
        dirty.client(m, R"({"type":"call:end","to":"bob","call_id":"00000000-0000-4000-8000-00000000dead"})");
    dirty.finish();

    auto e = experts(dirty.path());
    CHECK(e == std::map<std::string, Frames>{{"csmp.call_non_party", {end, offer, offer_relay}}});
    auto rows = csmp_rows(dirty.path(), {"csmp.type", "csmp.channel", "csmp.to_server", "csmp.call_id", "csmp.from",
                                         "csmp.to", "csmp.caller", "csmp.callee", "csmp.identity"});
    CHECK(rows.at(init) == Row{"call:init", "call", "1", "", "", "bob", "", "", "alice"});
    CHECK(rows.at(incoming) == Row{"call:incoming", "call", "0", call_id, "alice", "", "alice", "bob", "bob"});
    CHECK(rows.at(ack) == Row{"call:ack", "call", "0", call_id, "", "bob", "alice", "bob", "alice"});
    CHECK(rows.at(answer) == Row{"call:answer", "call", "1", call_id, "", "alice", "alice", "bob", "bob"});
    CHECK(rows.at(end) == Row{"call:end", "call", "1", call_id, "", "alice", "alice", "bob", "mallory"});
    CHECK(rows.at(end_relay) == Row{"call:end", "call", "0", call_id, "", "", "alice", "bob", "alice"});
    CHECK(rows.at(offer) == Row{"call:offer", "call", "1", call_id, "", "bob", "alice", "bob", "mallory"});
    CHECK(rows.at(offer_relay) == Row{"call:offer", "call", "0", call_id, "mallory", "", "alice", "bob", "bob"});
    CHECK(rows.at(unknown)[6] == "");

    Csmp clean(dir / "clean.pcap");
    setup(clean, false);
    Socket ca = clean.socket("/ws/call?session_id=" + kSidAlice);
    Socket cb = clean.socket("/ws/call?session_id=" + kSidBob);
    clean.client(ca, R"({"type":"call:init","to":"bob","call_type":"video"})");
    Frames with_call = {
        clean.server(cb,
                     R"({"type":"call:incoming","call_id":")" + call_id + R"(","from":"alice","call_type":"video"})"),
        clean.server(ca, R"({"type":"call:ack","call_id":")" + call_id + R"(","to":"bob","call_type":"video"})"),
        clean.client(ca, R"({"type":"call:offer","to":"bob","call_id":")" + call_id + R"(",)" + sdp + "}"),
        clean.server(cb, R"({"type":"call:offer","call_id":")" + call_id + R"(",)" + sdp + R"(,"from":"alice"})"),
        clean.client(cb, R"({"type":"call:answer","to":"alice","call_id":")" + call_id + R"(",)" + sdp + "}")};
    // call:ice carries no call id.
    std::uint64_t ice = clean.client(
        cb, R"({"type":"call:ice","to":"alice","candidate":{"candidate":"candidate:1 1 udp 1 10.0.0.2 9 typ host"}})");
    with_call.push_back(clean.client(ca, R"({"type":"call:end","to":"bob","call_id":")" + call_id + R"("})"));
    clean.finish();
    CHECK(experts(clean.path()).empty());
    CHECK(frames_where(clean.path(), "csmp.caller == \"alice\" && csmp.callee == \"bob\"") == with_call);
    CHECK(frames_where(clean.path(), "csmp.type == \"call:ice\" && csmp.identity == \"bob\"") == Frames{ice});
}

TEST_CASE("CSMP: csmp.room_non_member on chat in room_<a>_<b> from anyone but a and b", "[dissector][csmp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;

    Csmp dirty(dir / "dirty.pcap");
    dirty.handshake("alice", kSidAlice);
    dirty.handshake("mallory", kSidMallory);
    Socket a = dirty.socket("/ws/chat?session_id=" + kSidAlice + "&room_id=room_alice_bob");
    Socket m = dirty.socket("/ws/chat?session_id=" + kSidMallory + "&room_id=room_alice_bob");
    Socket open = dirty.socket("/ws/chat?session_id=" + kSidMallory + "&room_id=room1");
    std::uint64_t member = dirty.client(a, R"({"type":"chat","message":"hi bob"})");
    std::uint64_t member_relay = dirty.server(m, chat_relay("alice", "room_alice_bob", "hi bob"));
    std::uint64_t intruder = dirty.client(m, R"({"type":"chat","message":"listening in"})");
    std::uint64_t relay_a = dirty.server(a, chat_relay("mallory", "room_alice_bob", "listening in"));
    std::uint64_t raw = dirty.client(m, "plain text from mallory");
    std::uint64_t elsewhere = dirty.client(open, R"({"type":"chat","message":"room1 is open"})");
    // msglab's server takes a room on /chat/send.
    Exchange send = dirty.exchange(
        http_request("POST", "/chat/send", R"({"message":"via http","room_id":"room_alice_bob"})",
                     {"x-session-id: " + kSidMallory}),
        http_response(200, "OK", R"({"status":"sent","client_id":"mallory","message":"via http","id":7})"));
    dirty.finish();

    auto e = experts(dirty.path());
    CHECK(e == std::map<std::string, Frames>{{"csmp.room_non_member", {intruder, relay_a, raw, send.request}}});
    auto rows = csmp_rows(dirty.path(),
                          {"csmp.type", "csmp.room", "csmp.from", "csmp.identity", "csmp.message", "csmp.raw_text"});
    CHECK(rows.at(member) == Row{"chat", "room_alice_bob", "", "alice", "hi bob", ""});
    CHECK(rows.at(member_relay) == Row{"chat", "room_alice_bob", "alice", "mallory", "hi bob", ""});
    CHECK(rows.at(intruder) == Row{"chat", "room_alice_bob", "", "mallory", "listening in", ""});
    CHECK(rows.at(relay_a) == Row{"chat", "room_alice_bob", "mallory", "alice", "listening in", ""});
    CHECK(rows.at(raw) == Row{"chat", "room_alice_bob", "", "mallory", "plain text from mallory", "1"});
    CHECK(rows.at(elsewhere) == Row{"chat", "room1", "", "mallory", "room1 is open", ""});
    CHECK(rows.at(send.request) == Row{"chat_send", "room_alice_bob", "", "mallory", "via http", ""});
    CHECK(frames_where(dirty.path(), "csmp.id == 7 && csmp.result == \"sent\"") == Frames{send.response});

    Csmp clean(dir / "clean.pcap");
    clean.handshake("alice", kSidAlice);
    clean.handshake("bob", kSidBob);
    clean.handshake("mallory", kSidMallory);
    Socket ca = clean.socket("/ws/chat?session_id=" + kSidAlice + "&room_id=room_alice_bob");
    Socket cb = clean.socket("/ws/chat?session_id=" + kSidBob + "&room_id=room_alice_bob");
    Socket cm = clean.socket("/ws/chat?session_id=" + kSidMallory + "&room_id=room1");
    clean.client(ca, R"({"type":"chat","message":"hi bob"})");
    clean.server(ca, chat_relay("alice", "room_alice_bob", "hi bob"));
    clean.server(cb, chat_relay("alice", "room_alice_bob", "hi bob"));
    clean.client(cb, "raw hello from bob");
    clean.server(cb, chat_relay("bob", "room_alice_bob", "raw hello from bob"));
    clean.client(cm, R"({"type":"chat","message":"room1 is open"})");
    clean.server(cm, chat_relay("mallory", "room1", "room1 is open"));
    clean.finish();
    CHECK(experts(clean.path()).empty());
}

TEST_CASE("CSMP: malformed JSON is a note, and no input makes an exception", "[dissector][csmp][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Csmp w(dir / "bad.pcap");
    w.handshake("alice", kSidAlice);
    Socket chat = w.socket("/ws/chat?session_id=" + kSidAlice + "&room_id=room1");
    Socket call = w.socket("/ws/call?session_id=" + kSidAlice);
    std::uint64_t cut = w.client(chat, R"({"type": "chat", "message": )");
    std::uint64_t not_json = w.client(call, "hello");
    std::uint64_t array = w.server(call, "[1,2]");
    std::uint64_t trailing = w.client(call, R"({"type":"call:init","to":"bob"} x)");
    std::uint64_t escape = w.client(call, R"({"type":"call:init","to":"b\qob"})");
    // Escapes and surrogate pairs decode; a second "type" wins, as in Python.
    std::uint64_t good = w.client(chat, R"({"type":"x","type":"chat","message":"caf\u00e9 \ud83d\ude00 \"q\""})");
    Exchange body =
        w.exchange(http_request("POST", "/handshake/", R"({"client_id": alice})"),
                   http_response(422, "Unprocessable Entity", R"({"detail":"Data validation failed","errors":[]})"));
    w.finish();

    auto e = experts(w.path());
    CHECK(e == std::map<std::string, Frames>{
                   {"csmp.malformed_json", {cut, not_json, array, trailing, escape, body.request}}});
    auto rows = csmp_rows(w.path(), {"csmp.type", "csmp.message", "csmp.status", "csmp.detail"});
    CHECK(rows.at(good) == Row{"chat", "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\"", "", ""});
    CHECK(rows.at(cut) == Row{"", "", "", ""});
    CHECK(rows.at(body.response) == Row{"handshake_response", "", "422", "Data validation failed"});
    // A note, in the Malformed group, not an exception.
    CHECK(frames_where(w.path(), kException).empty());
    CHECK(frames_where(w.path(), "_ws.malformed") == Frames{cut, not_json, array, trailing, escape, body.request});
    TsharkResult z = run_tshark({"-r", w.path().string(), "-q", "-z", "expert,note"});
    INFO("tshark stderr: " << z.errors);
    REQUIRE(z.exit_code == 0);
    std::size_t notes = 0;
    for (const auto& l : z.lines)
        if (l.find("Malformed JSON: ") != std::string::npos && l.find("CSMP") != std::string::npos) notes++;
    // Six distinct summaries (each names its problem), under Notes.
    CHECK(notes == 6);

    SECTION("random messages and bodies: tshark exits cleanly, no exception in any frame") {
        DeterministicRng rng(7300);
        Csmp f(dir / "fuzz.pcap");
        f.handshake("alice", kSidAlice);
        const std::vector<std::string> pieces = {
            "{",        "}",           "[",        "]",        "\"",       "\\",           "\\u",
            "\\ud83d",  ":",           ",",        "\"type\"", "\"chat\"", "\"call:end\"", "\"call_id\"",
            "\"from\"", "\"room_id\"", "room_a_b", "null",     "-1.5e3",   "NaN",          " ",
            "\xff"};
        auto random_text = [&]() {
            std::string s;
            const std::size_t size = 1 + rng.below(300);
            while (s.size() < size) {
                if (rng.below(4) == 0) {
                    Bytes r = rng.bytes(1 + rng.below(8));
                    s.append(r.begin(), r.end());
                } else {
                    s += pieces[rng.below(pieces.size())];
                }
            }
            return s;
        };
        Socket fc = f.socket("/ws/chat?session_id=" + kSidAlice + "&room_id=room_alice_b");
        Socket fk = f.socket("/ws/call?session_id=%ff%00x");
        for (int i = 0; i < 60; ++i) {
            f.client(i % 2 ? fc : fk, random_text());
            f.server(i % 3 ? fc : fk, random_text());
        }
        for (int i = 0; i < 20; ++i)
            f.exchange(http_request("POST", i % 2 ? "/chat/send" : "/handshake/", random_text(),
                                    {"x-session-id: " + random_text().substr(0, 20)}),
                       http_response(200, "OK", random_text()));
        f.finish();
        TsharkResult r = run_tshark({"-r", f.path().string(), "-2", "-V"});
        INFO("tshark stderr: " << r.errors);
        CHECK(r.exit_code == 0);
        CHECK(r.errors.find("Dissector bug") == std::string::npos);
        CHECK(frames_where(f.path(), kException).empty());
        CHECK(frames_where(f.path(), "csmp").size() >= 100);
    }
}

// ---------------------------------------------------------------------------
// 3. Where CSMP is recognised, and stability across passes.

TEST_CASE("CSMP: the ws heuristic and the HTTP routes off port 8000, the heuristic can be disabled",
          "[dissector][csmp]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Csmp w(dir / "elsewhere.pcap", 8900);
    Exchange root = w.exchange(http_request("GET", "/"), http_response(200, "OK", R"({"message":"hi"})"));
    Exchange hs = w.handshake("alice", kSidAlice);
    Exchange other = w.exchange(http_request("GET", "/anything", "", {"x-session-id: " + kSidAlice}),
                                http_response(404, "Not Found", R"({"detail":"Not Found"})"));
    // An upgrade to a path CSMP does not use: only CSMP's JSON is taken.
    Socket s = w.socket("/socket");
    std::uint64_t chat = w.server(s, chat_relay("alice", "room9", std::string(200, 'z')));
    std::uint64_t other_json = w.server(s, R"({"type":"USER_HELLO","from":"x"})");
    std::uint64_t text = w.client(s, "just text");
    std::uint64_t error = w.server(s, R"({"type":"error","code":"bad_json","detail":"not JSON"})");
    std::uint64_t call = w.client(s, R"({"type":"call:init","to":"bob"})");
    w.finish();

    CHECK(frames_where(w.path(), "csmp") ==
          Frames{hs.request, hs.response, other.request, other.response, chat, error, call});
    auto rows = csmp_rows(w.path(), {"csmp.type", "csmp.channel", "csmp.room", "csmp.code", "csmp.to_server",
                                     "csmp.session_id", "csmp.path"});
    CHECK(rows.at(other.request) == Row{"other", "", "", "", "", kSidAlice, "/anything"});
    // The channel from the type; the direction from the upgrade request.
    CHECK(rows.at(chat) == Row{"chat", "chat", "room9", "", "0", "", ""});
    CHECK(rows.at(error) == Row{"error", "", "", "bad_json", "0", "", ""});
    CHECK(rows.at(call) == Row{"call:init", "call", "", "", "1", "", ""});
    // A 200-character message: a frame with a 16-bit length.
    CHECK(frames_where(w.path(), "csmp.message == \"" + std::string(200, 'z') + "\"") == Frames{chat});
    CHECK(frames_where(w.path(), "http.request.uri == \"/\"") == Frames{root.request});
    // What the heuristic declined, WebSocket shows as text.
    CHECK(frames_where(w.path(), "websocket.payload.text") == Frames{other_json, text});

    // Without the heuristic the WebSocket messages are not CSMP; HTTP still is.
    CHECK(frames_where(w.path(), "csmp", {"--disable-heuristic", "csmp_ws"}) ==
          Frames{hs.request, hs.response, other.request, other.response});
    // The port preference: port 8900 as CSMP's makes "/" CSMP.
    CHECK(frames_where(w.path(), "csmp.type == \"root\"", {"-o", "csmp.tcp.port:8900"}) == Frames{root.request});
}

TEST_CASE("CSMP: one pass and two passes agree on every field and expert info", "[dissector][csmp]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Csmp w(dir / "mixed.pcap");
    w.handshake("alice", kSidAlice);
    Exchange second = w.handshake("mallory", kSidAlice);
    w.handshake("bob", kSidBob);
    Socket a = w.socket("/ws/call?session_id=" + kSidBob);
    Socket g = w.socket("/ws/chat?session_id=ghost&room_id=room_alice_bob");
    w.client(a, R"({"type":"call:init","to":"alice"})");
    w.server(a, R"({"type":"call:ack","call_id":"c1","to":"alice"})");
    // "ghost" is never issued: its identity is "ghost", and it claims "casper".
    std::uint64_t casper = w.client(g, R"({"type":"chat","message":"boo","from":"casper"})");
    std::uint64_t relay = w.server(g, chat_relay("ghost", "room_alice_bob", "boo"));
    std::uint64_t broken = w.client(g, "{broken");
    Exchange h = w.exchange(
        http_request("GET", "/history/room_alice_bob", "", {"x-session-id: " + kSidBob}),
        http_response(200, "OK",
                      R"([{"id":1,"from":"bob","message":"x","status":"sent","timestamp":"2026-01-26T17:05:31",)"
                      R"("room_id":"room_alice_bob"}])"));
    w.finish();

    std::vector<std::string> names = {"frame.number",   "csmp.type",     "csmp.session_id", "csmp.session_client",
                                      "csmp.issued_in", "csmp.identity", "csmp.room",       "csmp.from",
                                      "csmp.caller",    "csmp.callee",   "csmp.request_in"};
    names.insert(names.end(), kExperts.begin(), kExperts.end());
    std::vector<std::string> args = {"-r", w.path().string(), "-T", "fields", "-Y", "csmp"};
    for (const auto& n : names) args.insert(args.end(), {"-e", n});
    TsharkResult one = run_tshark(args);
    args.insert(args.begin() + 2, "-2");
    TsharkResult two = run_tshark(args);
    INFO("stderr: " << one.errors << two.errors);
    REQUIRE(one.exit_code == 0);
    REQUIRE(two.exit_code == 0);
    // Three handshakes, two upgrades, five messages, one exchange.
    CHECK(one.lines.size() == 17);
    CHECK(one.lines == two.lines);
    auto e = experts(w.path());
    const std::map<std::string, Frames> want = {
        {"csmp.session_two_identities", {second.response, casper}},
        {"csmp.session_never_issued", {g.answer}},
        {"csmp.room_non_member", {casper, relay}},
        {"csmp.malformed_json", {broken}},
    };
    CHECK(e == want);
    // Links to later frames appear on the second pass only.
    CHECK(frames_where(w.path(), "csmp.response_in == " + std::to_string(h.response)) == Frames{h.request});
}
