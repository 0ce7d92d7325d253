// msglab.so's Signal-style chat dissector through tshark: the original
// capture decoded in place (the Engine.IO handshake, the WebSocket upgrade,
// every event and ack, the ratchet headers), and synthetic captures written
// here (Engine.IO over HTTP long-polling with 0x1e-batched bodies and over
// WebSocket frames after a 101, as python-socketio sends them) for each
// expert info against its clean counterpart, and for decryption with a key
// log whose ciphertexts are made here with reference/core/crypto.hpp. Every
// check names exact frames and values.
#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "core/keylog.hpp"
#include "csmp/wire.hpp"
#include "support.hpp"
#include "tshark_support.hpp"

using namespace msglab;
using namespace msglab::test;

namespace {

using Json = nlohmann::ordered_json;

// A dissector exception or bug in a frame.
constexpr const char* kException = "_ws.malformed.expert || _ws.malformed.dissector_bug || _ws.short";

// Every Signal expert info the plugin registers.
const std::vector<std::string> kExperts = {
    "signal.x3dh_replay",  "signal.ratchet_replay",   "signal.counter_jump", "signal.key_substitution",
    "signal.spoofed_from", "signal.malformed",        "signal.bad_encoding", "signal.debug_broadcast",
    "signal.bad_mac",      "signal.ack_true_bad_mac",
};

std::map<std::string, Frames> experts(const fs::path& pcap, const std::vector<std::string>& extra = {}) {
    return experts_by_name(pcap, kExperts, extra);
}

// The Signal frames' rows (the filter "signal"), keyed by frame number.
std::map<std::uint64_t, Row> signal_rows(const fs::path& pcap, const std::vector<std::string>& names,
                                         const std::vector<std::string>& extra = {}) {
    return rows_by_frame(pcap, names, extra, "signal");
}

std::string b64(ByteView b) {
    return crypto::base64_encode(b);
}

// PROTOCOLS.md 5.6: big-endian, as many bytes as the value's bit length.
Bytes counter_bytes(std::uint64_t v) {
    std::size_t bits = 0;
    for (std::uint64_t x = v; x; x >>= 1) ++bits;
    Bytes out(bits, 0);
    for (std::size_t i = 0; i < bits && i < 8; ++i) out[bits - 1 - i] = static_cast<std::uint8_t>(v >> (8 * i));
    return out;
}

Bytes pkcs7_32(ByteView data) {
    Bytes out(data.begin(), data.end());
    std::size_t pad = 32 - data.size() % 32;
    out.insert(out.end(), pad, static_cast<std::uint8_t>(pad));
    return out;
}

struct Sealed {
    Bytes ct, mac;
};

// PROTOCOLS.md 5.5 and 5.6: HKDF(key, 80 zero bytes, info) -> enc, auth, iv;
// AES-256-CBC over PKCS7_32; HMAC over PKCS7_32(mac_input) || ct.
Sealed seal(ByteView key, std::string_view info, std::string_view plaintext, ByteView mac_input) {
    Bytes okm = crypto::hkdf_sha256(key, Bytes(80, 0), as_bytes(info), 80);
    ByteView enc(okm.data(), 32), auth(okm.data() + 32, 32), iv(okm.data() + 64, 16);
    Sealed s;
    s.ct = crypto::aes_cbc_encrypt_raw(enc, iv, pkcs7_32(as_bytes(plaintext)));
    Bytes signed_part = pkcs7_32(mac_input);
    signed_part.insert(signed_part.end(), s.ct.begin(), s.ct.end());
    auto d = crypto::hmac_sha256(auth, signed_part);
    s.mac.assign(d.begin(), d.end());
    return s;
}

// A user's keys: raw bytes, random (the dissector checks lengths, not curves).
struct Keys {
    Bytes ik, sik, spk, sig;
};

constexpr std::uint64_t kStart = 1795272083;
constexpr std::uint16_t kPort = 8080;

const std::string kSwitching =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

// Signal-style chat traffic between 10.0.0.1 (the clients) and 10.0.0.2:8080
// (the server): WebSocket messages one per segment (clients mask theirs),
// HTTP polling requests and responses.
class Chat {
public:
    explicit Chat(const fs::path& path, std::uint64_t seed = 5150) : cap(path, kStart), rng(seed) {}

    Keys keys() { return {rng.bytes(32), rng.bytes(32), rng.bytes(32), rng.bytes(64)}; }

    // A WebSocket connection of the Engine.IO session `sid`: the upgrade and
    // the probe, as python-socketio opens it.
    std::size_t ws(const std::string& sid, std::uint16_t server_port = kPort, const std::string& path = "/socket.io/") {
        std::size_t c = cap.connect(m_next_port++, server_port);
        cap.send(c, true,
                 "GET " + path + "?transport=websocket&EIO=4&sid=" + sid +
                     "&t=1795272083.74 HTTP/1.1\r\nHost: 10.0.0.2:" + std::to_string(server_port) +
                     "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n");
        cap.send(c, false, kSwitching);
        return c;
    }
    std::uint64_t text(std::size_t conn, bool from_client, std::string_view message) {
        csmp::WsFrame f;
        f.opcode = csmp::ws_opcode::text;
        f.masked = from_client;
        f.mask = {0x11, 0x22, 0x33, 0x44};
        f.payload = Bytes(message.begin(), message.end());
        return cap.send(conn, from_client, csmp::build_ws_frame(f));
    }
    static std::string event_text(int ack, const std::string& name, const std::vector<Json>& args) {
        Json a = Json::array({name});
        for (const auto& x : args) a.push_back(x);
        return "42" + (ack >= 0 ? std::to_string(ack) : std::string()) + a.dump();
    }
    static std::string ack_text(int ack, const Json& args) { return "43" + std::to_string(ack) + args.dump(); }
    std::uint64_t event(std::size_t conn, bool from_client, int ack, const std::string& name,
                        const std::vector<Json>& args = {}) {
        return text(conn, from_client, event_text(ack, name, args));
    }
    std::uint64_t ack(std::size_t conn, bool from_client, int ack, const Json& args) {
        return text(conn, from_client, ack_text(ack, args));
    }

    static Json register_arg(const std::string& name, const Keys& k) {
        return {
            {"username", name}, {"ik", b64(k.ik)}, {"sik", b64(k.sik)}, {"spk", b64(k.spk)}, {"spk_sig", b64(k.sig)}};
    }
    static Json bundle_arg(const Keys& k) {
        return {{"ik", b64(k.ik)}, {"sik", b64(k.sik)}, {"spk", b64(k.spk)}, {"spk_sign", b64(k.sig)}};
    }

    // A user online over WebSocket: probe, connect, register_user and its ack.
    struct User {
        std::size_t conn = 0;
        std::uint64_t reg = 0, reg_ack = 0;
        int next_ack = 2;    // the client's
        int server_ack = 1;  // the server's, for what it relays to this user
    };
    User online(const std::string& name, const Keys& k) {
        User u;
        u.conn = ws("sid-" + name + "-" + std::to_string(m_sessions++));
        text(u.conn, true, "2probe");
        text(u.conn, false, "3probe");
        text(u.conn, true, "5");
        text(u.conn, true, "40{}");
        text(u.conn, false, "40{\"sid\":\"sio-" + name + "\"}");
        u.reg = event(u.conn, true, 1, "register_user", {register_arg(name, k)});
        u.reg_ack = ack(u.conn, false, 1, Json::array({true}));
        return u;
    }

    // An HTTP request on `conn`, with a text/plain body unless empty.
    std::uint64_t request(std::size_t conn, const std::string& method, const std::string& uri,
                          const std::string& body = "") {
        std::string r = method + " " + uri + " HTTP/1.1\r\nHost: 10.0.0.2:8080\r\n";
        if (method == "POST")
            r += "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
        return cap.send(conn, true, r + "\r\n" + body);
    }
    std::uint64_t response(std::size_t conn, const std::string& body,
                           const std::string& type = "text/plain; charset=UTF-8") {
        return cap.send(conn, false,
                        "HTTP/1.1 200 OK\r\nContent-Type: " + type +
                            "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    }

    void finish() { cap.finish(); }
    const fs::path& path() const { return cap.path(); }

    SynthCapture cap;
    DeterministicRng rng;

private:
    std::uint16_t m_next_port = 42000;
    int m_sessions = 0;
};

Json x3dh_arg(const std::string& to, const std::string& from, ByteView ik, ByteView epk, ByteView ct, ByteView mac) {
    return {{"username", to},  {"from", from},      {"ik", b64(ik)},
            {"epk", b64(epk)}, {"cipher", b64(ct)}, {"hmac", b64(mac)}};
}
Json ratchet_arg(const std::string& to, const std::string& from, ByteView dh, std::uint64_t pn, std::uint64_t n,
                 ByteView ct, ByteView mac) {
    return {{"username", to},
            {"cipher", b64(ct)},
            {"header", {{"dh", b64(dh)}, {"pn", b64(counter_bytes(pn))}, {"n", b64(counter_bytes(n))}}},
            {"hmac", b64(mac)},
            {"from", from}};
}

std::vector<std::string> keylog_args(const fs::path& keylog) {
    return {"-o", "signal.keylog_file:" + keylog.string()};
}

}  // namespace

// ---------------------------------------------------------------------------
// 1. The original capture.

TEST_CASE("Signal: the original capture decodes in place: handshake, events, acks, users and ratchet headers",
          "[dissector][signal]") {
    REQUIRE_TSHARK();
    auto dir = captures_dir();
    if (!dir || !fs::is_regular_file(*dir / "originals/signal.pcap")) MSGLAB_SKIP("no originals/signal.pcap");
    const fs::path pcap = *dir / "originals/signal.pcap";

    // Streams: 0 bob's polling handshake, 1 bob's WebSocket, 2 alice's
    // polling handshake, 3 alice's WebSocket.
    const std::map<std::uint64_t, std::string> events = {
        {23, "register_user"}, {48, "register_user"}, {50, "request_users"}, {52, "request_prekey"},
        {54, "x3dh_message"},  {55, "x3dh_message"},  {59, "ratchet_msg"},   {60, "ratchet_msg"},
        {63, "ratchet_msg"},   {64, "ratchet_msg"},   {67, "ratchet_msg"},   {69, "ratchet_msg"},
        {73, "ratchet_msg"},   {74, "ratchet_msg"},   {77, "ratchet_msg"},   {79, "ratchet_msg"},
        {83, "ratchet_msg"},   {84, "ratchet_msg"},   {87, "ratchet_msg"},   {89, "ratchet_msg"},
        {93, "ratchet_msg"},   {94, "ratchet_msg"},
    };

    SECTION("Engine.IO: the polling open packet, the probe, the upgrade; every WebSocket message is Signal's") {
        auto rows = signal_rows(
            pcap, {"signal.transport", "signal.eio.type", "signal.eio.sid", "signal.eio.upgrades",
                   "signal.eio.ping_interval", "signal.eio.ping_timeout", "signal.eio.data", "signal.eio.query_sid"});
        CHECK(rows.at(8) == Row{"polling", "0", "jGgU-pDc6jF4ctTbAAAA", "websocket", "25000", "20000", "", ""});
        CHECK(rows.at(33) == Row{"polling", "0", "modw93PDhSzvKFitAAAC", "websocket", "25000", "20000", "", ""});
        const std::string bob = "jGgU-pDc6jF4ctTbAAAA";
        CHECK(rows.at(17) == Row{"websocket", "2", "", "", "", "", "probe", bob});
        CHECK(rows.at(18) == Row{"websocket", "3", "", "", "", "", "probe", bob});
        CHECK(rows.at(19) == Row{"websocket", "5", "", "", "", "", "", bob});
        CHECK(rows.at(20) == Row{"websocket", "6", "", "", "", "", "", bob});
        CHECK(rows.at(105) == Row{"websocket", "1", "", "", "", "", "", bob});
        Frames ws_text = frames_where(pcap, "websocket.opcode == 1");
        CHECK(ws_text.size() == 58);
        CHECK(frames_where(pcap, "signal && websocket") == ws_text);
        // Nothing is left to line-based text, nothing to CSMP or SOCP.
        CHECK(frames_where(pcap, "data-text-lines").empty());
        CHECK(frames_where(pcap, "csmp || socp").empty());
        // One Engine.IO packet per message; the bundle and header subtrees.
        CHECK(frames_where(pcap, "count(signal.eio) == 1").size() == 60);
        CHECK(frames_where(pcap, "signal.bundle") == Frames{53});
        CHECK(frames_where(pcap, "signal.header").size() == 16);
    }

    SECTION("Socket.IO: connect and its sid, events with their ack ids, acks matched to their events") {
        auto rows = signal_rows(pcap, {"signal.sio.type", "signal.sio.namespace", "signal.sio.ack_id", "signal.sio.sid",
                                       "signal.event", "signal.ack_to", "signal.ack_event", "signal.ack_in"});
        CHECK(rows.at(21) == Row{"0", "/", "", "", "", "", "", ""});
        CHECK(rows.at(22) == Row{"0", "/", "", "pYRGy8yjgHxtU0yLAAAB", "", "", "", ""});
        CHECK(rows.at(47) == Row{"0", "/", "", "8NpJbyskOTm9zh1WAAAD", "", "", "", ""});
        CHECK(rows.at(104) == Row{"1", "/", "", "", "", "", "", ""});
        std::map<std::uint64_t, std::string> got;
        for (const auto& [f, r] : rows)
            if (!r[4].empty()) got[f] = r[4];
        CHECK(got == events);
        CHECK(rows.at(52) == Row{"2", "/", "3", "", "request_prekey", "", "", "53"});
        CHECK(rows.at(53) == Row{"3", "/", "3", "", "", "52", "request_prekey", ""});
        // The server relays alice's X3DH message to bob with its own ack id;
        // bob's ack answers the relay, the server's ack answers alice.
        CHECK(rows.at(55) == Row{"2", "/", "1", "", "x3dh_message", "", "", "57"});
        CHECK(rows.at(57) == Row{"3", "/", "1", "", "", "55", "x3dh_message", ""});
        CHECK(rows.at(58) == Row{"3", "/", "4", "", "", "54", "x3dh_message", ""});
        CHECK(rows.at(24)[5] == "23");
        CHECK(rows.at(96)[5] == "93");
        auto info = signal_rows(pcap, {"_ws.col.Info"});
        CHECK(info.at(53)[0].find("ack to request_prekey in frame 52") != std::string::npos);
    }

    SECTION("who is who: the connection's user from its register_user, on both sides of each connection") {
        auto rows = signal_rows(pcap, {"signal.conn_user", "signal.conn_user.frame", "signal.direction", "tcp.stream"});
        CHECK(rows.at(23) == Row{"bob", "23", "to server", "1"});
        CHECK(rows.at(55) == Row{"bob", "23", "to client", "1"});
        CHECK(rows.at(54) == Row{"alice", "48", "to server", "3"});
        CHECK(rows.at(69) == Row{"alice", "48", "to client", "3"});
        CHECK(rows.at(22) == Row{"", "", "to client", "1"});  // before register_user
    }

    SECTION("register_user, request_users, request_prekey and their acks") {
        auto rows = signal_rows(pcap, {"signal.username", "signal.ik", "signal.sik", "signal.spk", "signal.spk_sig",
                                       "signal.users", "signal.users.count", "signal.target", "signal.ack.success"});
        const std::string bob_ik = "1f633cd3a2c8c5545df06007f5f5ed1e338eec6807dabc36d0e3a4cf06fff808";
        CHECK(rows.at(23)[0] == "bob");
        CHECK(rows.at(23)[1] == bob_ik);
        CHECK(rows.at(23)[2] == "c17406b5fb2445c3b52dd168a344903d30bdf0b370be7ed7bfc09eab0546da77");
        CHECK(rows.at(23)[3] == "e49bc62293d8dfea02a1a54790f139bafbbadd894b4fb68dfaaa57558ef39e48");
        CHECK(rows.at(23)[4].size() == 128);
        CHECK(rows.at(48)[0] == "alice");
        CHECK(rows.at(24)[8] == "1");
        CHECK(rows.at(51) == Row{"", "", "", "", "", "bob,alice", "2", "", ""});
        CHECK(rows.at(52)[7] == "bob");
        auto bundle = signal_rows(pcap, {"signal.bundle.found", "signal.bundle.user", "signal.bundle.ik",
                                         "signal.bundle.sik", "signal.bundle.spk", "signal.bundle.spk_sign"});
        CHECK(bundle.at(53)[0] == "1");
        CHECK(bundle.at(53)[1] == "bob");
        CHECK(bundle.at(53)[2] == bob_ik);
        CHECK(bundle.at(53)[3] == rows.at(23)[2]);
        CHECK(bundle.at(53)[4] == rows.at(23)[3]);
        CHECK(bundle.at(53)[5] == rows.at(23)[4]);
    }

    SECTION("x3dh_message and the 8 ratchet messages: keys, headers, pn and n decoded, two DH turns") {
        auto x = signal_rows(pcap, {"signal.username", "signal.from", "signal.ik", "signal.epk", "signal.cipher",
                                    "signal.hmac", "signal.mac_status"});
        CHECK(x.at(54)[0] == "bob");
        CHECK(x.at(54)[1] == "alice");
        CHECK(x.at(54)[2] == "77989f9a88604cb64524108a2eb0a5be9200a4e2e9f8ecc553f0eab68710de7a");
        CHECK(x.at(54)[3].size() == 64);
        CHECK(x.at(54)[4].size() == 64);  // ##CHAT_START## in one 32-byte block
        CHECK(x.at(54)[5].size() == 64);
        CHECK(x.at(54)[6] == "unknown");  // no key log
        CHECK(x.at(55) == x.at(54));

        auto rows = signal_rows(
            pcap, {"signal.from", "signal.username", "signal.header.dh", "signal.header.pn", "signal.header.pn_value",
                   "signal.header.n", "signal.header.n_value", "signal.direction"});
        std::vector<Row> sent;  // by the clients
        std::set<std::string> dhs;
        for (const auto& [f, r] : rows) {
            if (r[2].empty()) continue;
            dhs.insert(r[2]);
            if (r[7] == "to server") sent.push_back({std::to_string(f), r[0], r[1], r[4], r[6]});
        }
        CHECK(sent == std::vector<Row>{{"59", "alice", "bob", "0", "0"},
                                       {"63", "alice", "bob", "0", "1"},
                                       {"67", "bob", "alice", "0", "0"},
                                       {"73", "bob", "alice", "0", "1"},
                                       {"77", "alice", "bob", "2", "0"},
                                       {"83", "alice", "bob", "2", "1"},
                                       {"87", "bob", "alice", "2", "0"},
                                       {"93", "bob", "alice", "2", "1"}});
        // Four ratchet keys: alice's first, bob's first, then a turn each.
        CHECK(dhs.size() == 4);
        CHECK(rows.at(59)[2] != rows.at(77)[2]);
        CHECK(rows.at(67)[2] != rows.at(87)[2]);
        CHECK(rows.at(59)[2] == rows.at(63)[2]);
        // pn "AAI=" is 00 02 = 2; n "AQ==" is 01 = 1; "" is 0.
        CHECK(rows.at(83)[3] == "0002");
        CHECK(rows.at(83)[5] == "01");
        CHECK(rows.at(60) == Row{"alice", "bob", rows.at(59)[2], "<MISSING>", "0", "<MISSING>", "0", "to client"});
    }

    SECTION("expert infos: none (no replay, no jump, no spoofing, no substitution); no exception") {
        CHECK(experts(pcap).empty());
        CHECK(frames_where(pcap, kException).empty());
    }

    SECTION("one pass and two passes agree") {
        std::vector<std::string> names = {"frame.number",     "signal.event",          "signal.ack_to",
                                          "signal.conn_user", "signal.header.n_value", "signal.mac_status",
                                          "_ws.col.Info"};
        names.insert(names.end(), kExperts.begin(), kExperts.end());
        std::vector<std::string> args = {"-r", pcap.string(), "-T", "fields", "-Y", "signal"};
        for (const auto& n : names) args.insert(args.end(), {"-e", n});
        TsharkResult one = run_tshark(args);
        args.insert(args.begin() + 2, "-2");
        TsharkResult two = run_tshark(args);
        INFO("stderr: " << one.errors << two.errors);
        REQUIRE(one.exit_code == 0);
        REQUIRE(two.exit_code == 0);
        CHECK(one.lines.size() == 60);
        CHECK(one.lines == two.lines);
    }
}

// ---------------------------------------------------------------------------
// 2. HTTP long-polling.

TEST_CASE("Signal: HTTP long-polling with 0x1e-batched bodies, tied to the WebSocket by the Engine.IO sid",
          "[dissector][signal]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Chat s(dir / "polling.pcap");
    const Keys carol = s.keys();
    const std::string sid = "Zq8-polling-sid-AAAA";
    const std::string base = "/socket.io/?transport=polling&EIO=4";
    // The GET long-poll and the POSTs on two connections, as requests' pool does.
    std::size_t get = s.cap.connect(43000, kPort);
    std::size_t post = s.cap.connect(43001, kPort);
    std::uint64_t handshake = s.request(get, "GET", base + "&t=1");
    std::uint64_t open = s.response(
        get,
        "0{\"sid\":\"" + sid +
            "\",\"upgrades\":[\"websocket\"],\"pingTimeout\":20000,\"pingInterval\":25000,\"maxPayload\":1000000}");
    std::uint64_t connect = s.request(post, "POST", base + "&sid=" + sid + "&t=2", "40");
    std::uint64_t ok = s.response(post, "ok", "text/html; charset=UTF-8");
    s.request(get, "GET", base + "&sid=" + sid + "&t=3");
    std::uint64_t batch1 = s.response(get,
                                      "40{\"sid\":\"sio-carol\"}\x1e"
                                      "2");
    std::uint64_t batch2 =
        s.request(post, "POST", base + "&sid=" + sid + "&t=4",
                  "3\x1e" + Chat::event_text(1, "register_user", {Chat::register_arg("carol", carol)}) + "\x1e" +
                      Chat::event_text(2, "request_users", {}));
    s.response(post, "ok", "text/html; charset=UTF-8");
    s.request(get, "GET", base + "&sid=" + sid + "&t=5");
    std::uint64_t acks = s.response(get, Chat::ack_text(1, Json::array({true})) + "\x1e" +
                                             Chat::ack_text(2, Json::array({Json::array({"carol"})})) + "\x1e" + "6");
    // A text/plain body elsewhere stays line-based text.
    s.request(get, "GET", "/notes.txt");
    std::uint64_t other = s.response(get, "2 lines\nof text\n");
    // The WebSocket of the same session: carol's, sending as someone else.
    std::size_t w = s.ws(sid);
    std::uint64_t probe = s.text(w, true, "2probe");
    std::uint64_t spoof =
        s.event(w, true, 3, "ratchet_msg",
                {ratchet_arg("dave", "eve", s.rng.bytes(32), 0, 0, s.rng.bytes(32), s.rng.bytes(32))});
    s.finish();

    auto rows = signal_rows(s.path(), {"signal.transport", "signal.direction", "signal.eio.type", "signal.sio.type",
                                       "signal.event", "signal.ack_to", "signal.conn_user", "signal.eio.query_sid"});
    CHECK(rows.count(handshake) == 0);  // a request without a body
    CHECK(rows.count(ok) == 0);         // text/html
    CHECK(rows.count(other) == 0);
    CHECK(rows.at(open) == Row{"polling", "to client", "0", "", "", "", "", ""});
    CHECK(rows.at(connect) == Row{"polling", "to server", "4", "0", "", "", "", sid});
    CHECK(rows.at(batch1) == Row{"polling", "to client", "4,2", "0", "", "", "", sid});
    CHECK(rows.at(batch2) ==
          Row{"polling", "to server", "3,4,4", "2,2", "register_user,request_users", "", "carol", sid});
    CHECK(rows.at(acks) == Row{"polling", "to client", "4,4,6", "3,3", "",
                               std::to_string(batch2) + "," + std::to_string(batch2), "carol", sid});
    CHECK(rows.at(probe) == Row{"websocket", "to server", "2", "", "", "", "carol", sid});
    CHECK(rows.at(spoof)[6] == "carol");

    auto open_fields = signal_rows(s.path(), {"signal.eio.sid", "signal.eio.max_payload", "signal.sio.sid",
                                              "signal.users", "signal.ack.success", "signal.ack_event"});
    CHECK(open_fields.at(open) == Row{sid, "1000000", "", "", "", ""});
    CHECK(open_fields.at(batch1) == Row{"", "", "sio-carol", "", "", ""});
    CHECK(open_fields.at(acks) == Row{"", "", "", "carol", "1", "register_user,request_users"});
    Frames text = frames_where(s.path(), "data-text-lines");
    CHECK(std::find(text.begin(), text.end(), other) != text.end());
    CHECK(frames_where(s.path(), "data-text-lines && signal").empty());
    CHECK(experts(s.path()) == std::map<std::string, Frames>{{"signal.spoofed_from", {spoof}}});
    CHECK(frames_where(s.path(), kException).empty());
}

// ---------------------------------------------------------------------------
// 3. Expert infos, each against its clean counterpart.

TEST_CASE("Signal: signal.x3dh_replay on the same ephemeral key twice, not on the server's relay",
          "[dissector][signal][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Chat s(dir / "x3dh.pcap");
    const Keys ka = s.keys(), kb = s.keys();
    auto a = s.online("alice", ka);
    auto b = s.online("bob", kb);
    const Bytes epk = s.rng.bytes(32), ct = s.rng.bytes(32), mac = s.rng.bytes(32);
    const Json msg = x3dh_arg("bob", "alice", ka.ik, epk, ct, mac);
    std::uint64_t sent = s.event(a.conn, true, 2, "x3dh_message", {msg});
    std::uint64_t relay = s.event(b.conn, false, 1, "x3dh_message", {msg});
    s.ack(b.conn, true, 1, Json::array({true}));
    s.ack(a.conn, false, 2, Json::array({true}));
    std::uint64_t again = s.event(a.conn, true, 3, "x3dh_message", {msg});
    std::uint64_t relay_again = s.event(b.conn, false, 2, "x3dh_message", {msg});
    std::uint64_t fresh =
        s.event(a.conn, true, 4, "x3dh_message", {x3dh_arg("bob", "alice", ka.ik, s.rng.bytes(32), ct, mac)});
    s.finish();
    CHECK(experts(s.path()) == std::map<std::string, Frames>{{"signal.x3dh_replay", {again, relay_again}}});
    auto rows = signal_rows(s.path(), {"signal.replay_of"});
    CHECK(rows.at(again)[0] == std::to_string(sent));
    CHECK(rows.at(relay_again)[0] == std::to_string(relay));
    CHECK(rows.at(fresh)[0].empty());
}

TEST_CASE("Signal: signal.ratchet_replay on a repeated (dh, n) from one sender to one recipient",
          "[dissector][signal][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Chat s(dir / "ratchet.pcap");
    auto a = s.online("alice", s.keys());
    s.online("bob", s.keys());
    const Bytes dh = s.rng.bytes(32);
    const Json m0 = ratchet_arg("bob", "alice", dh, 0, 0, s.rng.bytes(32), s.rng.bytes(32));
    std::uint64_t first = s.event(a.conn, true, 2, "ratchet_msg", {m0});
    std::uint64_t next = s.event(a.conn, true, 3, "ratchet_msg",
                                 {ratchet_arg("bob", "alice", dh, 0, 1, s.rng.bytes(32), s.rng.bytes(32))});
    std::uint64_t replay = s.event(a.conn, true, 4, "ratchet_msg", {m0});
    // The same (dh, n) to someone else is no replay.
    std::uint64_t other = s.event(a.conn, true, 5, "ratchet_msg",
                                  {ratchet_arg("carol", "alice", dh, 0, 0, s.rng.bytes(32), s.rng.bytes(32))});
    s.finish();
    CHECK(experts(s.path()) == std::map<std::string, Frames>{{"signal.ratchet_replay", {replay}}});
    auto rows = signal_rows(s.path(), {"signal.replay_of"});
    CHECK(rows.at(replay)[0] == std::to_string(first));
    CHECK(rows.at(next)[0].empty());
    CHECK(rows.at(other)[0].empty());
}

TEST_CASE("Signal: signal.counter_jump on n or pn more than MAX_SKIP beyond the expected counter",
          "[dissector][signal][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Chat s(dir / "jump.pcap");
    auto a = s.online("alice", s.keys());
    const Bytes dh1 = s.rng.bytes(32), dh2 = s.rng.bytes(32), dh3 = s.rng.bytes(32), dh4 = s.rng.bytes(32);
    int id = 2;
    auto send = [&](ByteView dh, std::uint64_t pn, std::uint64_t n) {
        return s.event(a.conn, true, id++, "ratchet_msg",
                       {ratchet_arg("bob", "alice", dh, pn, n, s.rng.bytes(32), s.rng.bytes(32))});
    };
    send(dh1, 0, 0);
    send(dh1, 0, 1);
    std::uint64_t skip10 = send(dh1, 0, 12);   // 10 keys skipped: allowed
    std::uint64_t skip11 = send(dh1, 0, 24);   // 11 skipped
    std::uint64_t late = send(dh1, 0, 5);      // a skipped one arrives
    std::uint64_t turn = send(dh2, 25, 0);     // pn 25: the chain reached 25
    std::uint64_t pn_jump = send(dh3, 12, 0);  // the chain of dh2 reached 1
    std::uint64_t n_jump = send(dh4, 1, 11);   // a new chain starting at 11
    s.finish();
    CHECK(experts(s.path()) == std::map<std::string, Frames>{{"signal.counter_jump", {skip11, pn_jump, n_jump}}});
    auto rows = signal_rows(s.path(), {"signal.header.n_value", "signal.header.pn_value"});
    CHECK(rows.at(skip10) == Row{"12", "0"});
    CHECK(rows.at(skip11) == Row{"24", "0"});
    CHECK(rows.at(late) == Row{"5", "0"});
    CHECK(rows.at(turn) == Row{"0", "25"});
    CHECK(rows.at(pn_jump) == Row{"0", "12"});
    auto bytes = signal_rows(s.path(), {"signal.header.n", "signal.header.pn"});
    CHECK(bytes.at(skip11) == Row{"0000000018", "<MISSING>"});  // 24: five bits, five bytes
    CHECK(bytes.at(turn)[1] == "0000000019");
}

TEST_CASE("Signal: signal.key_substitution on a register_user or bundle with other keys for a name",
          "[dissector][signal][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Chat s(dir / "keys.pcap");
    const Keys kb = s.keys(), evil = s.keys();
    auto a = s.online("alice", s.keys());
    auto b = s.online("bob", kb);
    // alice fetches bob's bundle: the same keys.
    std::uint64_t req1 = s.event(a.conn, true, 2, "request_prekey", {Json{{"username", "bob"}}});
    std::uint64_t same = s.ack(a.conn, false, 2, Json::array({true, Chat::bundle_arg(kb)}));
    // bob registers again with the same keys: nothing changes.
    std::uint64_t again = s.event(b.conn, true, 2, "register_user", {Chat::register_arg("bob", kb)});
    // Someone registers as bob with other keys.
    auto m = s.online("bob", evil);
    // A malicious server answers with a third bundle.
    Keys third = s.keys();
    s.event(a.conn, true, 3, "request_prekey", {Json{{"username", "bob"}}});
    std::uint64_t swapped = s.ack(a.conn, false, 3, Json::array({true, Chat::bundle_arg(third)}));
    std::uint64_t unknown_req = s.event(a.conn, true, 4, "request_prekey", {Json{{"username", "zed"}}});
    std::uint64_t unknown = s.ack(a.conn, false, 4, Json::array({false, Json::object()}));
    s.finish();
    CHECK(experts(s.path()) == std::map<std::string, Frames>{{"signal.key_substitution", {m.reg, swapped}}});
    auto rows =
        signal_rows(s.path(), {"signal.bundle.was", "signal.bundle.found", "signal.bundle.user", "signal.ack_to"});
    CHECK(rows.at(same) == Row{"", "1", "bob", std::to_string(req1)});
    CHECK(rows.at(m.reg)[0] == std::to_string(b.reg));
    CHECK(rows.at(swapped)[0] == std::to_string(m.reg));
    CHECK(rows.at(unknown) == Row{"", "0", "zed", std::to_string(unknown_req)});
    CHECK(rows.at(again)[0].empty());
}

TEST_CASE("Signal: signal.spoofed_from on a from that is not the connection's registered user",
          "[dissector][signal][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Chat s(dir / "spoof.pcap");
    const Keys ka = s.keys();
    auto a = s.online("alice", ka);
    auto b = s.online("bob", s.keys());
    std::uint64_t own = s.event(a.conn, true, 2, "ratchet_msg",
                                {ratchet_arg("bob", "alice", s.rng.bytes(32), 0, 0, s.rng.bytes(32), s.rng.bytes(32))});
    std::uint64_t spoofed =
        s.event(a.conn, true, 3, "x3dh_message",
                {x3dh_arg("bob", "carol", ka.ik, s.rng.bytes(32), s.rng.bytes(32), s.rng.bytes(32))});
    std::uint64_t spoofed_ratchet =
        s.event(a.conn, true, 4, "ratchet_msg",
                {ratchet_arg("bob", "bob", s.rng.bytes(32), 0, 0, s.rng.bytes(32), s.rng.bytes(32))});
    // The server relaying it to bob keeps the claimed from: not bob's doing.
    std::uint64_t relay = s.event(b.conn, false, 1, "x3dh_message",
                                  {x3dh_arg("bob", "carol", ka.ik, s.rng.bytes(32), s.rng.bytes(32), s.rng.bytes(32))});
    // Before register_user the connection's user is unknown.
    std::size_t anon = s.ws("sid-anonymous-00000");
    std::uint64_t early =
        s.event(anon, true, 1, "ratchet_msg",
                {ratchet_arg("bob", "mallory", s.rng.bytes(32), 0, 0, s.rng.bytes(32), s.rng.bytes(32))});
    s.finish();
    CHECK(experts(s.path()) == std::map<std::string, Frames>{{"signal.spoofed_from", {spoofed, spoofed_ratchet}}});
    auto rows = signal_rows(s.path(), {"signal.from", "signal.conn_user"});
    CHECK(rows.at(own) == Row{"alice", "alice"});
    CHECK(rows.at(spoofed) == Row{"carol", "alice"});
    CHECK(rows.at(relay) == Row{"carol", "bob"});
    CHECK(rows.at(early) == Row{"mallory", ""});
}

TEST_CASE("Signal: signal.malformed on broken Engine.IO and Socket.IO packets, others are not claimed",
          "[dissector][signal][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Chat s(dir / "malformed.pcap");
    auto a = s.online("alice", s.keys());
    std::map<std::string, std::uint64_t> bad;
    for (const std::string t : {"7", "49", "0not json", "0{\"upgrades\":[]}", "42[1,2]", "42{\"a\":1}", "43[true]",
                                "431{\"x\":1}", "42[\"ratchet_msg\"", "41{}", "4212345678901234567890[\"e\"]"})
        bad[t] = s.text(a.conn, true, t);
    std::uint64_t missing = s.event(a.conn, true, 9, "x3dh_message", {Json{{"username", "bob"}, {"from", "alice"}}});
    std::uint64_t no_arg = s.event(a.conn, true, 10, "register_user", {});
    std::uint64_t binary = s.text(a.conn, true, "451-[\"upload\",{\"_placeholder\":true,\"num\":0}]");
    std::uint64_t ns = s.text(a.conn, true, "42/chat,7[\"hello\",\"x\"]");
    // Members no field describes are shown as written, and are no error.
    Json extra = ratchet_arg("bob", "alice", s.rng.bytes(32), 0, 0, s.rng.bytes(32), s.rng.bytes(32));
    extra["header"]["v"] = 2;
    std::uint64_t members = s.event(a.conn, true, 11, "ratchet_msg", {extra});
    std::uint64_t note = s.event(a.conn, true, 12, "request_prekey", {Json{{"username", "bob"}, {"note", "x"}}});
    // Not Socket.IO: a JSON message and a digit on a connection elsewhere.
    std::size_t other = s.ws("none", 9100, "/other/");
    std::uint64_t json = s.text(other, true, "{\"type\":\"x\"}");
    std::uint64_t digit = s.text(other, true, "42");
    s.finish();
    Frames want;
    for (const auto& [t, f] : bad) want.push_back(f);
    want.push_back(missing);
    want.push_back(no_arg);
    std::sort(want.begin(), want.end());
    CHECK(experts(s.path()) == std::map<std::string, Frames>{{"signal.malformed", want}});
    auto rows = signal_rows(s.path(), {"signal.sio.type", "signal.sio.attachments", "signal.sio.namespace",
                                       "signal.sio.ack_id", "signal.event", "signal.sio.arg"});
    CHECK(rows.at(binary) == Row{"5", "1", "/", "", "upload", "{\"_placeholder\":true,\"num\":0}"});
    CHECK(rows.at(ns) == Row{"2", "", "/chat", "7", "hello", "x"});
    auto unnamed = signal_rows(s.path(), {"signal.other", "signal.target"});
    CHECK(unnamed.at(members) == Row{"2", ""});
    CHECK(unnamed.at(note) == Row{"\"x\"", "bob"});
    CHECK(rows.count(json) == 0);
    CHECK(rows.count(digit) == 0);
    CHECK(frames_where(s.path(), kException).empty());
}

TEST_CASE("Signal: signal.bad_encoding on bad base64 and keys of the wrong length", "[dissector][signal][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Chat s(dir / "encoding.pcap");
    const Keys ka = s.keys();
    auto a = s.online("alice", ka);
    Json reg = Chat::register_arg("alice", ka);
    reg["ik"] = "not base64!";
    std::uint64_t bad_b64 = s.event(a.conn, true, 2, "register_user", {reg});
    reg = Chat::register_arg("alice", ka);
    reg["spk"] = b64(s.rng.bytes(31));
    std::uint64_t short_key = s.event(a.conn, true, 3, "register_user", {reg});
    reg = Chat::register_arg("alice", ka);
    reg["spk_sig"] = crypto::base64_encode(s.rng.bytes(64), crypto::Base64Alphabet::standard, false).substr(0, 86);
    std::uint64_t unpadded = s.event(a.conn, true, 4, "register_user", {reg});
    std::uint64_t bad_ct =
        s.event(a.conn, true, 5, "ratchet_msg",
                {ratchet_arg("bob", "alice", s.rng.bytes(32), 0, 0, s.rng.bytes(20), s.rng.bytes(32))});
    std::uint64_t bad_dh =
        s.event(a.conn, true, 6, "ratchet_msg",
                {ratchet_arg("bob", "alice", s.rng.bytes(33), 0, 0, s.rng.bytes(32), s.rng.bytes(32))});
    Json x = x3dh_arg("bob", "alice", ka.ik, s.rng.bytes(32), s.rng.bytes(32), s.rng.bytes(16));
    std::uint64_t bad_hmac = s.event(a.conn, true, 7, "x3dh_message", {x});
    x["epk"] = 7;
    std::uint64_t number = s.event(a.conn, true, 8, "x3dh_message", {x});
    std::uint64_t good = s.event(a.conn, true, 9, "register_user", {Chat::register_arg("alice", ka)});
    s.finish();
    CHECK(experts(s.path()) ==
          std::map<std::string, Frames>{
              {"signal.bad_encoding", {bad_b64, short_key, unpadded, bad_ct, bad_dh, bad_hmac, number}}});
    auto rows = signal_rows(s.path(), {"signal.undecodable", "signal.spk"});
    CHECK(rows.at(bad_b64)[0] == "not base64!");
    CHECK(rows.at(short_key)[1].size() == 62);
    CHECK(rows.at(good)[0].empty());
    // Bundles that do not decode are not learnt: the good one again is no substitution.
}

TEST_CASE("Signal: signal.debug_broadcast on pongi and the pingi broadcast it triggers",
          "[dissector][signal][expert]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Chat s(dir / "pongi.pcap");
    auto a = s.online("alice", s.keys());
    auto b = s.online("bob", s.keys());
    std::uint64_t pongi = s.event(a.conn, true, 2, "pongi", {Json("hi")});
    std::uint64_t pingi_a = s.event(a.conn, false, -1, "pingi", {Json("sankalp")});
    std::uint64_t pingi_b = s.event(b.conn, false, -1, "pingi", {Json("sankalp")});
    std::uint64_t ack = s.ack(a.conn, false, 2, Json::array({true}));
    std::uint64_t users = s.event(a.conn, true, 3, "request_users");
    s.finish();
    CHECK(experts(s.path()) == std::map<std::string, Frames>{{"signal.debug_broadcast", {pongi, pingi_a, pingi_b}}});
    auto rows = signal_rows(s.path(), {"signal.event", "signal.sio.arg", "signal.ack_event", "signal.sio.ack_id"});
    CHECK(rows.at(pongi) == Row{"pongi", "hi", "", "2"});
    CHECK(rows.at(pingi_b) == Row{"pingi", "sankalp", "", ""});
    CHECK(rows.at(ack) == Row{"", "", "pongi", "2"});
    CHECK(rows.at(users) == Row{"request_users", "", "", "3"});
}

// ---------------------------------------------------------------------------
// 4. Decryption with a key log.

namespace {

struct Session {
    fs::path keylog;
    std::uint64_t x3dh = 0, x3dh_relay = 0, bob_ack = 0, server_ack = 0;
    std::uint64_t forged = 0, forged_relay = 0, forged_bob_ack = 0, forged_server_ack = 0;
    std::uint64_t m0 = 0, m1 = 0, reply = 0, m0_relay = 0, tampered = 0, stranger = 0;
};

// alice and bob: an X3DH message and a ratchet session, the keys in a key
// log; a forged X3DH message whose MAC does not verify, acked true.
Session write_session(Chat& s, const fs::path& dir) {
    Session out;
    const Keys ka = s.keys(), kb = s.keys();
    auto a = s.online("alice", ka);
    auto b = s.online("bob", kb);
    s.event(a.conn, true, 2, "request_prekey", {Json{{"username", "bob"}}});
    s.ack(a.conn, false, 2, Json::array({true, Chat::bundle_arg(kb)}));
    std::string log;
    const std::string ad = b64(ka.ik) + b64(kb.ik);

    const Bytes sk = s.rng.bytes(32), epk = s.rng.bytes(32);
    Sealed x = seal(sk, "X3DH", "##CHAT_START##", as_bytes(ad));
    log += format_keylog_line("SIGNAL_X3DH_SK", epk, sk) + "\n";
    const Json xm = x3dh_arg("bob", "alice", ka.ik, epk, x.ct, x.mac);
    out.x3dh = s.event(a.conn, true, 3, "x3dh_message", {xm});
    out.x3dh_relay = s.event(b.conn, false, 1, "x3dh_message", {xm});
    out.bob_ack = s.ack(b.conn, true, 1, Json::array({true}));
    out.server_ack = s.ack(a.conn, false, 3, Json::array({true}));

    // Ratchet messages: a message key each, MAC over AD || dh || pn || n.
    auto ratchet = [&](const std::string& from, const std::string& to, ByteView dh, std::uint64_t pn, std::uint64_t n,
                       std::string_view text, bool tamper) {
        const Bytes mk = s.rng.bytes(32);
        Bytes input(ad.begin(), ad.end());
        input.insert(input.end(), dh.begin(), dh.end());
        Bytes pnb = counter_bytes(pn), nb = counter_bytes(n);
        input.insert(input.end(), pnb.begin(), pnb.end());
        input.insert(input.end(), nb.begin(), nb.end());
        Sealed m = seal(mk, "encrypt_info_kdf", text, input);
        if (tamper) m.mac[0] ^= 1;
        Bytes id(dh.begin(), dh.end());
        for (int i = 7; i >= 0; --i) id.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
        log += format_keylog_line("SIGNAL_MESSAGE_KEY", id, mk) + "\n";
        return ratchet_arg(to, from, dh, pn, n, m.ct, m.mac);
    };
    const Bytes dha = s.rng.bytes(32), dhb = s.rng.bytes(32);
    const Json r0 = ratchet("alice", "bob", dha, 0, 0, "hi", false);
    out.m0 = s.event(a.conn, true, 4, "ratchet_msg", {r0});
    out.m0_relay = s.event(b.conn, false, 2, "ratchet_msg", {r0});
    out.m1 = s.event(a.conn, true, 5, "ratchet_msg",
                     {ratchet("alice", "bob", dha, 0, 1, "a longer message, over one 32-byte block", false)});
    out.reply = s.event(b.conn, true, 2, "ratchet_msg", {ratchet("bob", "alice", dhb, 2, 0, "hello alice", false)});
    out.tampered = s.event(b.conn, true, 3, "ratchet_msg", {ratchet("bob", "alice", dhb, 2, 1, "changed", true)});

    // Someone else's X3DH message to bob, under an SK the key log has, with a
    // MAC over another AD: bob still acks true.
    const Bytes sk2 = s.rng.bytes(32), epk2 = s.rng.bytes(32), ik_c = s.rng.bytes(32);
    Sealed f = seal(sk2, "X3DH", "##CHAT_START##", as_bytes(b64(ik_c) + b64(ka.ik)));
    log += format_keylog_line("SIGNAL_X3DH_SK", epk2, sk2) + "\n";
    const Json fm = x3dh_arg("bob", "alice", ik_c, epk2, f.ct, f.mac);
    out.forged = s.event(a.conn, true, 6, "x3dh_message", {fm});
    out.forged_relay = s.event(b.conn, false, 3, "x3dh_message", {fm});
    out.forged_bob_ack = s.ack(b.conn, true, 3, Json::array({true}));
    out.forged_server_ack = s.ack(a.conn, false, 6, Json::array({true}));

    // Two users whose X3DH the capture does not show: decrypted, MAC unknown.
    auto c = s.online("carol", s.keys());
    out.stranger =
        s.event(c.conn, true, 2, "ratchet_msg", {ratchet("carol", "dave", s.rng.bytes(32), 0, 0, "psst", false)});

    out.keylog = dir / "signal-keys.log";
    write_file(out.keylog, "# Signal-style chat\n" + log + "JUNK line\n");
    make_world_readable(out.keylog);
    return out;
}

}  // namespace

TEST_CASE("Signal: X3DH and ratchet messages decrypted with a key log, MACs checked", "[dissector][signal]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Chat s(dir / "session.pcap");
    Session w = write_session(s, dir.path());
    s.finish();

    auto rows =
        signal_rows(s.path(), {"signal.plaintext", "signal.mac_status", "signal.key_source"}, keylog_args(w.keylog));
    const Row x3dh = {"##CHAT_START##", "good", "SIGNAL_X3DH_SK"};
    CHECK(rows.at(w.x3dh) == x3dh);
    CHECK(rows.at(w.x3dh_relay) == x3dh);
    CHECK(rows.at(w.m0) == Row{"hi", "good", "SIGNAL_MESSAGE_KEY"});
    CHECK(rows.at(w.m0_relay) == Row{"hi", "good", "SIGNAL_MESSAGE_KEY"});
    CHECK(rows.at(w.m1) == Row{"a longer message, over one 32-byte block", "good", "SIGNAL_MESSAGE_KEY"});
    CHECK(rows.at(w.reply) == Row{"hello alice", "good", "SIGNAL_MESSAGE_KEY"});
    CHECK(rows.at(w.tampered) == Row{"changed", "bad", "SIGNAL_MESSAGE_KEY"});
    CHECK(rows.at(w.forged) == Row{"##CHAT_START##", "bad", "SIGNAL_X3DH_SK"});
    CHECK(rows.at(w.stranger) == Row{"psst", "unknown", "SIGNAL_MESSAGE_KEY"});

    SECTION("expert infos: the bad MACs, and the true acks to the forged X3DH message") {
        CHECK(experts(s.path(), keylog_args(w.keylog)) ==
              std::map<std::string, Frames>{{"signal.bad_mac", {w.tampered, w.forged, w.forged_relay}},
                                            {"signal.ack_true_bad_mac", {w.forged_bob_ack, w.forged_server_ack}}});
        auto acks = signal_rows(s.path(), {"signal.ack_to", "signal.ack.success"}, keylog_args(w.keylog));
        CHECK(acks.at(w.forged_bob_ack) == Row{std::to_string(w.forged_relay), "1"});
        CHECK(acks.at(w.bob_ack) == Row{std::to_string(w.x3dh_relay), "1"});
    }
    SECTION("the plaintext in the Info column") {
        auto info = signal_rows(s.path(), {"_ws.col.Info"}, keylog_args(w.keylog));
        CHECK(info.at(w.reply)[0].find("\"hello alice\"") != std::string::npos);
    }
    SECTION("SecMsg's key log preference serves too") {
        auto shared = signal_rows(s.path(), {"signal.plaintext"}, {"-o", "secmsg.keylog_file:" + w.keylog.string()});
        CHECK(shared.at(w.m0)[0] == "hi");
    }
    SECTION("without the key log: MACs unknown, no plaintext, no expert info") {
        auto none = signal_rows(s.path(), {"signal.plaintext", "signal.mac_status", "signal.key_source"});
        CHECK(none.at(w.x3dh) == Row{"", "unknown", ""});
        CHECK(none.at(w.tampered) == Row{"", "unknown", ""});
        CHECK(experts(s.path()).empty());
    }
}

// ---------------------------------------------------------------------------
// 5. Where Signal is recognised, and robustness.

TEST_CASE("Signal: Socket.IO, SOCP and CSMP share the ws heuristics without taking each other's messages",
          "[dissector][signal]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Chat s(dir / "shared.pcap");
    auto a = s.online("alice", s.keys());
    // A CSMP chat socket on 8000.
    std::size_t chat = s.cap.connect(40500, 8000);
    s.cap.send(chat, true,
               "GET /ws/chat?session_id=6f0c1a2e-3b4d-4c5e-8f60-718293a4b5c6&room_id=room1 HTTP/1.1\r\n"
               "host: 127.0.0.1:8000\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
               "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n");
    s.cap.send(chat, false, kSwitching);
    std::uint64_t csmp_chat = s.text(chat, true, R"({"type":"chat","message":"hi"})");
    std::uint64_t csmp_digit = s.text(chat, true, "42");
    // A SOCP link on 8765.
    std::size_t link = s.ws("x", 8765, "/");
    std::uint64_t socp = s.text(link, true, R"({"type":"HEARTBEAT","from":"a","to":"b","ts":1,"payload":{}})");
    // Text that is no Engine.IO packet on the Socket.IO connection: Signal's, malformed.
    std::uint64_t words = s.text(a.conn, true, "hello");
    std::uint64_t sio = s.text(a.conn, true, "2");
    s.finish();
    CHECK(frames_where(s.path(), "csmp && websocket") == Frames{csmp_chat, csmp_digit});
    CHECK(frames_where(s.path(), "socp") == Frames{socp});
    Frames signal = frames_where(s.path(), "signal");
    CHECK(std::find(signal.begin(), signal.end(), sio) != signal.end());
    for (std::uint64_t f : {csmp_chat, csmp_digit, socp})
        CHECK(std::find(signal.begin(), signal.end(), f) == signal.end());
    CHECK(experts(s.path()) == std::map<std::string, Frames>{{"signal.malformed", {words}}});
}

TEST_CASE("Signal: random and mutated packets: tshark exits cleanly, no exception in any frame",
          "[dissector][signal]") {
    REQUIRE_TSHARK();
    ReadableTempDir dir;
    Chat s(dir / "fuzz.pcap", 99);
    Session w = write_session(s, dir.path());
    DeterministicRng rng(7303);
    const Keys k = s.keys();
    const std::vector<std::string> seeds = {
        Chat::event_text(5, "register_user", {Chat::register_arg("x", k)}),
        Chat::event_text(6, "ratchet_msg", {ratchet_arg("a", "b", k.ik, 300, 70000, k.spk, k.sik)}),
        Chat::event_text(7, "x3dh_message", {x3dh_arg("a", "b", k.ik, k.spk, k.sig, k.sik)}),
        Chat::ack_text(2, Json::array({true, Chat::bundle_arg(k)})),
        "0{\"sid\":\"s\",\"upgrades\":[\"websocket\"],\"pingTimeout\":1,\"pingInterval\":2}",
        "451-/ns,9[\"e\",{\"_placeholder\":true,\"num\":0}]",
    };
    const std::vector<std::string> pieces = {"{",          "}",       "[",    "]",    "\"",
                                             "\\",         "\\ud83d", ":",    ",",    "-",
                                             "/",          "\x1e",    "null", "true", "99999999999999999999",
                                             "\"header\"", "\"pn\"",  "=",    "\xff", " "};
    auto mutate = [&](std::string t) {
        const std::size_t edits = 1 + rng.below(4);
        for (std::size_t i = 0; i < edits && !t.empty(); ++i) {
            const std::size_t at = rng.below(t.size());
            switch (rng.below(4)) {
                case 0: t.erase(at, 1 + rng.below(40)); break;
                case 1: t.insert(at, pieces[rng.below(pieces.size())]); break;
                case 2: t[at] = static_cast<char>(rng.below(256)); break;
                default: t.resize(at); break;
            }
        }
        return t;
    };
    std::size_t c = s.ws("sid-fuzz-0000000000");
    std::size_t poll = s.cap.connect(43100, kPort);
    for (int i = 0; i < 120; ++i) {
        std::string text = mutate(seeds[rng.below(seeds.size())]);
        if (text.empty() || text[0] < '0' || text[0] > '9') text = "4" + text;
        if (i % 4 == 3)
            s.request(poll, "POST", "/socket.io/?transport=polling&EIO=4&sid=sid-fuzz-0000000000",
                      text + "\x1e" + text);
        else
            s.text(c, i % 2 == 0, text);
    }
    s.finish();
    TsharkResult r = run_tshark({"-r", s.path().string(), "-2", "-V", "-o", "signal.keylog_file:" + w.keylog.string()});
    INFO("tshark stderr: " << r.errors);
    CHECK(r.exit_code == 0);
    CHECK(r.errors.find("Dissector bug") == std::string::npos);
    CHECK(frames_where(s.path(), kException, keylog_args(w.keylog)).empty());
    CHECK(frames_where(s.path(), "signal").size() >= 120);
}
