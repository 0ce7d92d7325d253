// The SOCP stream codec on the original cohort implementation's capture
// (socp.pcap: two servers linked with SERVER_HELLO_LINK, a user on each,
// a direct message each way across the link and a public-channel message,
// permessage-deflate throughout), read in place through msglab's pcap reader
// and TCP reassembly; and on connections built here with the fixture keys.
#include <map>
#include <sstream>
#include <tuple>

#include "core/keylog.hpp"
#include "core/registry.hpp"
#include "csmp/stream.hpp"
#include "csmp/wire.hpp"
#include "replay/extract.hpp"
#include "replay/tcp_reassembly.hpp"
#include "socp/stream.hpp"
#include "socp/wire.hpp"
#include "socp_support.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::socp;
using namespace msglab::test;

namespace {

// The fixture keys (socp_support.hpp's files), parsed once and never freed:
// a static map destroyed at exit would free Botan memory after Botan's own
// secure allocator is gone.
const crypto::RsaPrivateKey& fixture(const std::string& name) {
    static auto& keys = *new std::map<std::string, crypto::RsaPrivateKey>();
    auto it = keys.find(name);
    if (it == keys.end()) {
        auto k = crypto::RsaPrivateKey::from_pem(msglab::socp::test::read_text(msglab::socp::test::key_path(name)));
        REQUIRE(k);
        it = keys.emplace(name, std::move(*k)).first;
    }
    return it->second;
}

constexpr const char* kServerA = "dd1db956-ee6d-4706-9cdc-35053314ff94";  // on 8765
constexpr const char* kServerB = "e4aa4292-3f9b-42df-a052-a4958d3fc46e";  // on 8767
constexpr const char* kUser1 = "11111111-1111-4111-8111-111111111111";    // on server A
constexpr const char* kUser2 = "22222222-2222-4222-8222-222222222222";    // on server B

struct Chunk {
    Peer from;
    Bytes data;
};

struct CapturedStream {
    std::vector<Chunk> chunks;  // in capture order, both directions
    std::uint16_t server_port = 0;
    int gaps = 0;
};

class Collector final : public replay::ReassemblyHandler {
public:
    void on_stream_open(std::uint64_t stream, const replay::Address&, const replay::Address& server,
                        const replay::FrameInfo&) override {
        streams[stream].server_port = server.port;
    }
    void on_data(std::uint64_t stream, replay::Direction dir, ByteView data, const replay::FrameInfo&) override {
        Peer from = dir == replay::Direction::client_to_server ? Peer::client : Peer::server;
        streams[stream].chunks.push_back({from, Bytes(data.begin(), data.end())});
    }
    void on_gap(std::uint64_t stream, replay::Direction, std::uint64_t, const replay::FrameInfo&) override {
        ++streams[stream].gaps;
    }
    std::map<std::uint64_t, CapturedStream> streams;
};

std::optional<std::string> capture(const char* name) {
    auto dir = captures_dir();
    if (!dir) return std::nullopt;
    auto p = *dir / "originals" / name;
    if (!fs::is_regular_file(p)) return std::nullopt;
    return p.string();
}

struct Message {
    Peer from;
    Bytes bytes;
    DecodedMessage decoded;

    std::optional<std::string> field(std::string_view name) const {
        for (const auto& f : decoded.fields)
            if (f.name == name) return f.value;
        return std::nullopt;
    }
    std::string value(std::string_view name) const { return field(name).value_or("<none>"); }
    bool anomaly(std::string_view text) const {
        return std::any_of(decoded.anomalies.begin(), decoded.anomalies.end(),
                           [&](const std::string& a) { return a.find(text) != std::string::npos; });
    }
};

struct Run {
    std::vector<Message> messages;
    std::vector<std::string> errors;
    std::size_t left[2] = {0, 0};  // bytes never framed, per direction
};

// A connection through one codec as the extractor feeds it: each chunk
// appended to its direction's buffer, then every whole message cut and
// decoded. `piece` > 0 splits every chunk into pieces of that many bytes.
Run run_codec(const std::vector<Chunk>& chunks, const KeyLog* keys = nullptr, std::size_t piece = 0) {
    Run run;
    auto codec = make_stream_codec(keys);
    Bytes buffer[2];
    bool dead[2] = {false, false};
    auto push = [&](Peer from, ByteView data) {
        int i = from == Peer::client ? 0 : 1;
        if (dead[i]) return;
        buffer[i].insert(buffer[i].end(), data.begin(), data.end());
        for (;;) {
            auto len = codec->frame(from, buffer[i]);
            if (!len) {
                run.errors.push_back(len.error().to_string());
                dead[i] = true;
                return;
            }
            if (*len == 0) return;
            REQUIRE(*len <= buffer[i].size());
            ByteView m(buffer[i].data(), *len);
            run.messages.push_back({from, Bytes(m.begin(), m.end()), codec->decode(from, m)});
            buffer[i].erase(buffer[i].begin(), buffer[i].begin() + static_cast<std::ptrdiff_t>(*len));
        }
    };
    for (const auto& c : chunks) {
        if (piece == 0) {
            push(c.from, c.data);
            continue;
        }
        for (std::size_t at = 0; at < c.data.size(); at += piece)
            push(c.from, ByteView(c.data).subspan(at, std::min(piece, c.data.size() - at)));
    }
    run.left[0] = buffer[0].size();
    run.left[1] = buffer[1].size();
    return run;
}

std::string types(const Run& r) {
    std::string out;
    for (const auto& m : r.messages)
        out += (out.empty() ? "" : " ") + std::string(m.from == Peer::client ? ">" : "<") + m.decoded.type;
    return out;
}

// The capture's three connections, told apart by what their clients said.
struct Original {
    std::map<std::uint64_t, CapturedStream> streams;
    std::map<std::uint64_t, Run> runs;
    const Run* link = nullptr;   // server A's link to server B (8767)
    const Run* user1 = nullptr;  // user 1 on server A (8765)
    const Run* user2 = nullptr;  // user 2 on server B (8767)
};

const Original* original() {
    static std::optional<Original> o;
    static bool tried = false;
    if (!tried) {
        tried = true;
        if (auto path = capture("socp.pcap")) {
            Original x;
            Collector c;
            replay::TcpReassembler r(c);
            replay::reassemble_file(*path, r);
            x.streams = std::move(c.streams);
            for (const auto& [id, s] : x.streams)
                if (!s.chunks.empty()) x.runs[id] = run_codec(s.chunks);
            for (const auto& [id, run] : x.runs) {
                if (run.messages.size() < 3) continue;
                const Message& hello = run.messages[2];
                if (hello.decoded.type == "SERVER_HELLO_LINK") x.link = &run;
                if (hello.decoded.type == "USER_HELLO" && hello.field("socp.from") == std::string(kUser1)) x.user1 = &run;
                if (hello.decoded.type == "USER_HELLO" && hello.field("socp.from") == std::string(kUser2)) x.user2 = &run;
            }
            o = std::move(x);
        }
    }
    return o ? &*o : nullptr;
}

#define NEED_CAPTURE()                                                                           \
    const Original* orig = original();                                                           \
    if (!orig) MSGLAB_SKIP("captures/originals/socp.pcap not found (set MSGLAB_CAPTURES_DIR)"); \
    REQUIRE(orig->link);                                                                         \
    REQUIRE(orig->user1);                                                                        \
    REQUIRE(orig->user2)

bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

// ---- Connections built here ----------------------------------------------------------

const std::string kUpgrade =
    "GET / HTTP/1.1\r\nHost: 127.0.0.1:8765\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

std::string switching(const std::string& extensions) {
    std::string r =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
    if (!extensions.empty()) r += "Sec-WebSocket-Extensions: " + extensions + "\r\n";
    return r + "\r\n";
}

Bytes ws_text(std::string_view text, Peer from, bool rsv1 = false) {
    csmp::WsFrame f;
    f.opcode = csmp::ws_opcode::text;
    f.rsv1 = rsv1;
    f.masked = from == Peer::client;
    f.mask = {0x37, 0xfa, 0x21, 0x3d};
    f.payload = to_bytes(text);
    return csmp::build_ws_frame(f);
}

// A connection without compression carrying these envelopes as text frames.
std::vector<Chunk> connection(const std::vector<std::pair<Peer, std::string>>& envelopes) {
    std::vector<Chunk> out = {{Peer::client, to_bytes(kUpgrade)}, {Peer::server, to_bytes(switching(""))}};
    for (const auto& [from, text] : envelopes) out.push_back({from, ws_text(text, from)});
    return out;
}

Envelope envelope(std::string type, std::string from, std::string to, Json payload, std::int64_t ts = 1700000000000) {
    Envelope e;
    e.type = std::move(type);
    e.from = std::move(from);
    e.to = std::move(to);
    e.ts = ts;
    e.payload = std::move(payload);
    return e;
}

std::string signed_by(Envelope e, const crypto::RsaPrivateKey& key) {
    e.sig = sign_payload(key, e.payload, SystemRng::instance());
    return encode(e);
}

std::string pub(const std::string& name, KeyEncoding enc = KeyEncoding::der) {
    return encode_key(fixture(name).public_key(), enc);
}

std::string user_hello(const std::string& id, const std::string& key_name) {
    return encode(envelope("USER_HELLO", id, "server-a-id",
                           Json{{"client", "cli-v1"}, {"pubkey", pub(key_name)}, {"enc_pubkey", pub(key_name)}}));
}

// A MSG_DIRECT as the cohort's client writes it: encrypted for `to`'s key,
// content-signed and link-signed with `from`'s.
Envelope direct(const std::string& from, const std::string& from_key, const std::string& to, const std::string& to_key,
                std::string_view text, std::int64_t ts = 1700000001000) {
    auto& rng = SystemRng::instance();
    auto ct = encrypt_for(fixture(to_key).public_key(), as_bytes(text), rng);
    REQUIRE(ct);
    Json p = {{"ciphertext", *ct},
              {"sender_pub", pub(from_key)},
              {"content_sig", sign_content(fixture(from_key), dm_content(*ct, from, to, ts), rng)}};
    return envelope("MSG_DIRECT", from, to, std::move(p), ts);
}

KeyLog keylog_for(const std::string& user, const std::string& key_name) {
    KeyLog log;
    log.add({kKeyLogLabel, to_bytes(user), fixture(key_name).pkcs8_der()});
    return log;
}

}  // namespace

// ---- The original capture ------------------------------------------------------------

TEST_CASE("socp codec: every envelope of the original capture decodes, in order, none left over",
          "[stream][originals]") {
    NEED_CAPTURE();
    for (const auto& [id, s] : orig->streams) {
        INFO("stream " << id);
        CHECK(s.gaps == 0);
    }
    std::size_t envelopes = 0;
    for (const auto& [id, run] : orig->runs) {
        INFO("stream " << id);
        CHECK(run.errors.empty());
        CHECK(run.left[0] == 0);
        CHECK(run.left[1] == 0);
        for (const auto& m : run.messages) {
            INFO(m.decoded.type);
            CHECK(m.decoded.type != "MALFORMED");
            if (m.field("socp.from")) {
                ++envelopes;
                // Inflated with context takeover (client and server windows
                // of 12 bits agreed in the 101).
                CHECK(m.field("socp.compressed"));
                REQUIRE(m.decoded.plaintext);
                CHECK(parse_envelope(to_string(*m.decoded.plaintext)));
            }
        }
    }
    CHECK(envelopes == 33);
    CHECK(types(*orig->link) ==
          ">HTTP_REQUEST <HTTP_RESPONSE >SERVER_HELLO_LINK <PUBLIC_CHANNEL_ADD <PUBLIC_CHANNEL_UPDATED "
          "<USER_ADVERTISE >PUBLIC_CHANNEL_ADD >PUBLIC_CHANNEL_UPDATED >USER_ADVERTISE <HEARTBEAT <WS_PING "
          ">HEARTBEAT >WS_PONG >SERVER_DELIVER >MSG_PUBLIC_CHANNEL >WS_PING <WS_PONG <SERVER_DELIVER >USER_REMOVE "
          "<USER_REMOVE");
    CHECK(types(*orig->user2) ==
          ">HTTP_REQUEST <HTTP_RESPONSE >USER_HELLO <PUBLIC_CHANNEL_ADD <PUBLIC_CHANNEL_UPDATED <USER_ADVERTISE "
          "<PUBLIC_CHANNEL_ADD <PUBLIC_CHANNEL_UPDATED <USER_ADVERTISE <USER_DELIVER <MSG_PUBLIC_CHANNEL <WS_PING "
          ">WS_PONG >WS_PING <WS_PONG >MSG_DIRECT <USER_REMOVE >WS_CLOSE <WS_CLOSE");
    CHECK(types(*orig->user1) ==
          ">HTTP_REQUEST <HTTP_RESPONSE >USER_HELLO <PUBLIC_CHANNEL_ADD <PUBLIC_CHANNEL_UPDATED <USER_ADVERTISE "
          "<USER_ADVERTISE >MSG_DIRECT >MSG_PUBLIC_CHANNEL >WS_PING <USER_DELIVER <WS_PONG <WS_PING >WS_PONG "
          ">WS_CLOSE <WS_CLOSE");

    const Message& hello = orig->user1->messages[2];
    CHECK(hello.value("socp.to") == kUser1);  // the cohort's client addresses its hello to itself
    CHECK(hello.value("socp.ts") == "1795272141163");
    CHECK(hello.value("socp.payload.client") == "cli-v1");
    CHECK(hello.value("socp.payload.meta") == "{}");
    CHECK(hello.value("socp.key_bits") == "4096 (pubkey), 4096 (enc_pubkey)");
    CHECK(hello.decoded.timestamp == std::uint64_t{1795272141});
    CHECK_FALSE(hello.field("socp.sig"));
    // Long values are shortened.
    CHECK(starts_with(hello.value("socp.payload.pubkey"), "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0t... ("));
    CHECK(orig->link->messages[1].value("socp.extensions") ==
          "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12");
    CHECK(orig->link->messages[0].value("socp.path") == "/");
    CHECK(orig->link->messages[0].value("socp.upgrade") == "websocket");
}

TEST_CASE("socp codec: the capture's signatures verify with the keys each stream carried", "[stream][originals]") {
    NEED_CAPTURE();
    const std::string sorted_ascii = std::string("verified (") + canon_name(Canon::sorted_ascii) + ")";
    // The link: server A said SERVER_HELLO_LINK with its key, so everything
    // it signs verifies there; server B never sent its key on this stream.
    int a_frames = 0;
    for (const auto& m : orig->link->messages) {
        if (!m.field("socp.sig")) continue;
        INFO(m.decoded.type << " from " << m.value("socp.from"));
        if (m.from == Peer::client) {
            ++a_frames;
            if (m.value("socp.from") == kServerA)
                CHECK(m.value("socp.sig_check") == sorted_ascii);
            else  // user 1's public message, relayed and signed by server A
                CHECK(m.value("socp.sig_check") == sorted_ascii + " by " + kServerA + ", the sending peer");
        } else {
            CHECK(m.value("socp.from") == kServerB);
            CHECK(m.value("socp.sig_check") == "no key");
        }
        CHECK(m.decoded.authenticated);
    }
    CHECK(a_frames == 7);
    // On the users' connections server A's key never appears.
    for (const Run* run : {orig->user1, orig->user2})
        for (const auto& m : run->messages) {
            INFO(m.decoded.type << " from " << m.value("socp.from"));
            if (m.from == Peer::server && m.field("socp.sig")) CHECK(m.value("socp.sig_check") == "no key");
        }
    // Each user's MSG_DIRECT verifies with its USER_HELLO key, in the sorted
    // ASCII form with the largest salt (the Python teams' PSS.MAX_LENGTH).
    for (const auto& [run, user] : {std::pair{orig->user1, kUser1}, std::pair{orig->user2, kUser2}}) {
        auto dm = std::find_if(run->messages.begin(), run->messages.end(),
                               [](const Message& m) { return m.decoded.type == "MSG_DIRECT"; });
        REQUIRE(dm != run->messages.end());
        CHECK(dm->value("socp.from") == user);
        CHECK(dm->value("socp.sig_check") == sorted_ascii);
        CHECK(dm->value("socp.content_sig_check") == "verified");
        auto e = parse_envelope(to_string(*dm->decoded.plaintext));
        auto hello = parse_envelope(to_string(*run->messages[2].decoded.plaintext));
        REQUIRE(e);
        REQUIRE(hello);
        auto key = decode_key(*string_field(hello->payload, "pubkey"));
        REQUIRE(key);
        CHECK(key->encoding == KeyEncoding::pem);
        auto sig = b64url_decode(*e->sig);
        REQUIRE(sig);
        const std::string text = canonical(e->payload, Canon::sorted_ascii);
        CHECK(key->key.pss_verify(as_bytes(text), *sig, 512 - 32 - 2));
        CHECK_FALSE(key->key.pss_verify(as_bytes(text), *sig, 32));
    }
    // Content signatures of what was delivered and relayed verify too, with
    // the sender's key from a USER_ADVERTISE of the same stream.
    for (const Run* run : {orig->link, orig->user1, orig->user2})
        for (const auto& m : run->messages)
            if (m.field("socp.payload.content_sig")) {
                INFO(m.decoded.type);
                CHECK(m.value("socp.content_sig_check") == "verified");
            }
    // The capture is clean by the codec's standards.
    for (const Run* run : {orig->link, orig->user1, orig->user2})
        for (const auto& m : run->messages) {
            INFO(m.decoded.type);
            CHECK(m.decoded.anomalies.empty());
        }
}

TEST_CASE("socp detection: decode tells the SOCP and CSMP captures apart", "[stream][originals]") {
    for (const auto& [name, id, other] : {std::tuple{"socp.pcap", "socp", "csmp"}, std::tuple{"csmp.pcap", "csmp", "socp"}}) {
        auto path = capture(name);
        if (!path) MSGLAB_SKIP(std::string("captures/originals/") + name + " not found (set MSGLAB_CAPTURES_DIR)");
        INFO(name);
        std::map<std::string, std::size_t> by_protocol;
        std::size_t malformed = 0;
        replay::MessageExtractor ex(Registry::builtin(), {}, [&](const replay::ExtractedMessage& m) {
            ++by_protocol[m.protocol];
            if (m.decoded.type == "MALFORMED") ++malformed;
        });
        replay::TcpReassembler r(ex);
        replay::reassemble_file(*path, r);
        CHECK(by_protocol[id] > 0);
        CHECK(by_protocol.count(other) == 0);
        CHECK(by_protocol.size() == 1);
        if (std::string(id) == "socp") {
            CHECK(by_protocol[id] == 55);
            CHECK(malformed == 0);
        }
        // Each detect() alone agrees on every stream's first client bytes.
        Collector c;
        replay::TcpReassembler r2(c);
        replay::reassemble_file(*path, r2);
        for (const auto& [sid, s] : c.streams) {
            auto first = std::find_if(s.chunks.begin(), s.chunks.end(), [](const Chunk& ch) { return ch.from == Peer::client; });
            if (first == s.chunks.end()) continue;
            bool websocket_root = std::string(id) == "socp";
            CHECK(socp::detect(first->data) == websocket_root);
        }
    }
    CHECK(socp::detect(as_bytes(kUpgrade)));
    CHECK(socp::detect(as_bytes("GET /?room=x HTTP/1.1\r\nupgrade: WebSocket\r\n")));
    CHECK_FALSE(socp::detect(as_bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));      // no upgrade
    CHECK_FALSE(socp::detect(as_bytes("GET / HTTP/1.1\r\nHost: x\r\nUpgr")));      // not arrived yet
    CHECK_FALSE(socp::detect(as_bytes("GET /ws/chat HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")));
    CHECK_FALSE(socp::detect(as_bytes("POST / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")));
    CHECK(csmp::detect(as_bytes("GET /ws/chat HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")));
    // Registered ahead of CSMP, whose detect() also claims "/".
    const auto& protocols = Registry::builtin().protocols();
    auto at = [&](const char* pid) {
        return std::find_if(protocols.begin(), protocols.end(), [&](const ProtocolInfo& p) { return p.id == pid; });
    };
    CHECK(at("socp") < at("csmp"));
    const ProtocolInfo* p = Registry::builtin().protocol("socp");
    REQUIRE(p);
    CHECK(p->default_port == 8765);
    CHECK(p->transport == "ws");
    CHECK(p->keylog_labels == std::vector<std::string>{"SOCP_PRIVATE_KEY"});
}

// ---- Crafted connections -----------------------------------------------------------------

TEST_CASE("socp codec: anomalies on crafted streams", "[stream]") {
    const std::string u1 = "aaaaaaaa-0000-4000-8000-000000000001", u2 = "aaaaaaaa-0000-4000-8000-000000000002";
    const std::string srv = "bbbbbbbb-0000-4000-8000-00000000000a";

    SECTION("a server frame of a server-signed type without a sig") {
        Json adv = {{"user_id", u1}, {"server_id", srv}, {"meta", Json::object()}};
        auto run = run_codec(connection({{Peer::server, encode(envelope("USER_ADVERTISE", srv, "*", adv))},
                                         {Peer::server, signed_by(envelope("HEARTBEAT", srv, u1, Json::object(), 2),
                                                                  fixture("server-a"))}}));
        REQUIRE(run.messages.size() == 4);
        CHECK(run.messages[2].anomaly("a USER_ADVERTISE from a server without a sig"));
        CHECK_FALSE(run.messages[3].anomaly("without a sig"));
        CHECK(run.messages[3].value("socp.sig_check") == "no key");
        // From a user's side the same frame is not a server's.
        auto user = run_codec(connection({{Peer::client, user_hello(u1, "user-1")},
                                          {Peer::client, encode(envelope("USER_ADVERTISE", u1, "*", adv))}}));
        CHECK_FALSE(user.messages[3].anomaly("without a sig"));
        // A client side that linked as a server is one.
        Json link = {{"host", "127.0.0.1"}, {"port", 8766}, {"pubkey", pub("server-b")}};
        auto linked = run_codec(connection({{Peer::client, encode(envelope("SERVER_HELLO_LINK", srv, "x", link))},
                                            {Peer::client, encode(envelope("USER_REMOVE", srv, "*", adv))}}));
        CHECK(linked.messages[3].anomaly("a USER_REMOVE from a server without a sig"));
    }

    SECTION("an RSA key under 4096 bits, and a key that is none") {
        auto run = run_codec(connection({{Peer::client, user_hello(u1, "weak-1")}}));
        REQUIRE(run.messages.size() == 3);
        CHECK(run.messages[2].value("socp.key_bits") == "1024 (pubkey), 1024 (enc_pubkey)");
        CHECK(run.messages[2].anomaly("RSA-1024 key in pubkey (SOCP requires 4096 bits)"));
        CHECK(run.messages[2].anomaly("RSA-1024 key in enc_pubkey"));
        Json adv = {{"user_id", u2}, {"server_id", srv}, {"meta", {{"pubkey", "bm90IGEga2V5"}}}};
        auto bad = run_codec(connection({{Peer::server, signed_by(envelope("USER_ADVERTISE", srv, "*", adv), fixture("server-a"))}}));
        CHECK(bad.messages[2].anomaly("meta.pubkey is not an RSA public key"));
        auto good = run_codec(connection({{Peer::client, user_hello(u1, "user-1")}}));
        CHECK(good.messages[2].value("socp.key_bits") == "4096 (pubkey), 4096 (enc_pubkey)");
        CHECK(good.messages[2].decoded.anomalies.empty());
    }

    SECTION("the same message id twice in one direction") {
        std::string hb = signed_by(envelope("HEARTBEAT", srv, u1, Json::object()), fixture("server-a"));
        auto run = run_codec(connection({{Peer::server, hb}, {Peer::client, hb}, {Peer::server, hb}}));
        REQUIRE(run.messages.size() == 5);
        CHECK_FALSE(run.messages[2].anomaly("same message id"));
        CHECK_FALSE(run.messages[3].anomaly("same message id"));  // the other direction
        CHECK(run.messages[4].anomaly("the same message id (ts, from, to, payload)"));
        // A different payload, or ts, is another message.
        std::string hb2 = encode(envelope("HEARTBEAT", srv, u1, Json{{"n", 1}}));
        std::string hb3 = encode(envelope("HEARTBEAT", srv, u1, Json::object(), 1700000000001));
        auto other = run_codec(connection({{Peer::server, hb}, {Peer::server, hb2}, {Peer::server, hb3}}));
        for (const auto& m : other.messages) CHECK_FALSE(m.anomaly("same message id"));
    }

    SECTION("a user frame whose from is not its USER_HELLO's") {
        auto run = run_codec(connection({{Peer::client, user_hello(u1, "user-1")},
                                         {Peer::client, encode(direct(u1, "user-1", u2, "user-2", "mine"))},
                                         {Peer::client, encode(direct(u2, "user-2", u1, "user-1", "spoofed"))}}));
        REQUIRE(run.messages.size() == 5);
        CHECK_FALSE(run.messages[3].anomaly("this connection said USER_HELLO"));
        CHECK(run.messages[4].anomaly("\"from\" is " + u2 + " but this connection said USER_HELLO as " + u1));
        // Server frames on the same connection name other senders freely.
        auto deliver = run_codec(connection({{Peer::client, user_hello(u1, "user-1")},
                                             {Peer::server, encode(envelope("USER_DELIVER", srv, u1, Json{{"sender", u2}}))}}));
        CHECK_FALSE(deliver.messages[3].anomaly("said USER_HELLO"));
    }

    SECTION("a malformed envelope and an unknown type") {
        auto run = run_codec(connection({{Peer::client, "{\"type\":\"USER_HELLO\",\"from\":\"x\"}"},
                                         {Peer::client, "not json"},
                                         {Peer::client, encode(envelope("USER_SHOUT", u1, "*", Json::object()))}}));
        REQUIRE(run.messages.size() == 5);
        CHECK(run.messages[2].decoded.type == "MALFORMED");
        CHECK(run.messages[2].anomaly("not a SOCP envelope: no \"to\""));
        CHECK(run.messages[3].decoded.type == "MALFORMED");
        CHECK(run.messages[3].anomaly("not a SOCP envelope: not JSON"));
        CHECK(run.messages[4].decoded.type == "USER_SHOUT");
        CHECK(run.messages[4].anomaly("unknown type \"USER_SHOUT\""));
    }

    SECTION("a key for an id that differs from the one the stream carried") {
        Json adv = {{"user_id", u1}, {"server_id", srv}, {"meta", {{"pubkey", pub("user-3")}}}};
        auto run = run_codec(connection({{Peer::client, user_hello(u1, "user-1")},
                                         {Peer::server, encode(envelope("USER_ADVERTISE", srv, "*", adv))}}));
        CHECK(run.messages[3].anomaly("meta.pubkey for " + u1 + " is not the key this stream carried for it before"));
    }

    SECTION("WebSocket framing problems stay CSMP's words") {
        std::vector<Chunk> c = connection({});
        c.push_back({Peer::client, ws_text("{}", Peer::server)});  // unmasked
        auto run = run_codec(c);
        REQUIRE(run.messages.size() == 3);
        CHECK(run.messages[2].anomaly("an unmasked client frame"));
    }
}

TEST_CASE("socp codec: sigs verified, bad or without a key, with the stream's own keys", "[stream]") {
    const std::string u1 = "aaaaaaaa-0000-4000-8000-000000000001", u2 = "aaaaaaaa-0000-4000-8000-000000000002";
    const std::string srv = "bbbbbbbb-0000-4000-8000-00000000000a";
    Envelope good = direct(u1, "user-1", u2, "user-2", "hi");
    Envelope forged = direct(u1, "user-1", u2, "user-2", "hi");
    Envelope other = direct(u2, "user-2", u1, "user-1", "yo");
    auto run = run_codec(connection({
        {Peer::client, signed_by(good, fixture("user-2"))},   // before any key: none to check with
        {Peer::client, user_hello(u1, "user-1")},
        {Peer::client, signed_by(good, fixture("user-1"))},
        {Peer::client, signed_by(forged, fixture("user-2"))},
        {Peer::server, signed_by(other, fixture("user-2"))},  // relayed by the server: u2's key is not known
    }));
    REQUIRE(run.messages.size() == 7);
    CHECK(run.messages[2].value("socp.sig_check") == "no key");
    CHECK(run.messages[2].value("socp.content_sig_check") == "verified with the key it carries");
    CHECK(run.messages[4].value("socp.sig_check") == "verified (sorted keys, ASCII-escaped)");
    CHECK(run.messages[4].value("socp.content_sig_check") == "verified");
    CHECK(run.messages[5].value("socp.sig_check") == "bad");
    CHECK(run.messages[6].value("socp.sig_check") == "no key");
    CHECK(run.messages[6].value("socp.content_sig_check") == "verified with the key it carries");
    // A content_sig over other fields than the ones sent is bad.
    Envelope moved = good;
    moved.ts += 1;
    auto tampered = run_codec(connection({{Peer::client, user_hello(u1, "user-1")}, {Peer::client, encode(moved)}}));
    CHECK(tampered.messages[3].value("socp.content_sig_check") == "bad");
    CHECK_FALSE(tampered.messages[3].field("socp.sig_check"));  // no sig at all
    // A server's key from its hello, in PEM text as the cohort sends it.
    Json link = {{"host", "127.0.0.1"}, {"port", 8766}, {"pubkey", pub("server-b", KeyEncoding::pem)}};
    auto linked = run_codec(connection({
        {Peer::client, encode(envelope("SERVER_HELLO_LINK", srv, "peer", link))},
        {Peer::client, signed_by(envelope("HEARTBEAT", srv, "peer", Json::object()), fixture("server-b"))},
        {Peer::client, signed_by(envelope("HEARTBEAT", srv, "peer", Json::object(), 5), fixture("server-a"))},
    }));
    CHECK(linked.messages[3].value("socp.sig_check") == "verified (sorted keys, ASCII-escaped)");
    CHECK(linked.messages[4].value("socp.sig_check") == "bad");
}

TEST_CASE("socp codec: a key log opens direct messages to its users", "[stream]") {
    const std::string u1 = "aaaaaaaa-0000-4000-8000-000000000001", u2 = "aaaaaaaa-0000-4000-8000-000000000002";
    const std::string srv = "bbbbbbbb-0000-4000-8000-00000000000a";
    Envelope dm = direct(u1, "user-1", u2, "user-2", "caf\xc3\xa9 at noon");
    const std::string u3 = "aaaaaaaa-0000-4000-8000-000000000003";
    Envelope other = direct(u1, "user-1", u3, "user-3", "ok");
    auto ct = *string_field(dm.payload, "ciphertext");
    Json deliver = {{"ciphertext", ct}, {"sender", u1}, {"sender_pub", pub("user-1")},
                    {"content_sig", *string_field(dm.payload, "content_sig")}};
    Json forward = deliver;
    forward["user_id"] = u2;
    auto chunks = connection({
        {Peer::client, user_hello(u1, "user-1")},
        {Peer::client, signed_by(dm, fixture("user-1"))},
        {Peer::client, encode(other)},
        {Peer::server, signed_by(envelope("USER_DELIVER", srv, u2, deliver, dm.ts), fixture("server-a"))},
        {Peer::server, signed_by(envelope("SERVER_DELIVER", srv, "srv-b", forward, dm.ts), fixture("server-a"))},
    });
    KeyLog keys = keylog_for(u2, "user-2");
    auto run = run_codec(chunks, &keys);
    REQUIRE(run.messages.size() == 7);
    CHECK(run.messages[3].value("socp.plaintext") == "caf\xc3\xa9 at noon");
    CHECK_FALSE(run.messages[4].field("socp.plaintext"));  // to u3: not in the key log
    CHECK(run.messages[5].value("socp.plaintext") == "caf\xc3\xa9 at noon");
    CHECK(run.messages[5].value("socp.content_sig_check") == "verified");
    CHECK(run.messages[6].value("socp.plaintext") == "caf\xc3\xa9 at noon");
    for (const auto& m : run.messages) CHECK(m.decoded.anomalies.empty());
    // Without the key log nothing opens; with the wrong key it is said.
    auto plain = run_codec(chunks);
    for (const auto& m : plain.messages) CHECK_FALSE(m.field("socp.plaintext"));
    KeyLog wrong = keylog_for(u2, "user-3");
    auto mismatched = run_codec(chunks, &wrong);
    CHECK(mismatched.messages[3].anomaly("the ciphertext does not open with the key log's key for " + u2));
    // The key log as a file reads the same (hex of the id's bytes, of the PKCS#8 DER).
    std::istringstream text(format_keylog_line(kKeyLogLabel, as_bytes(u2), fixture("user-2").pkcs8_der()) + "\n");
    KeyLog parsed = KeyLog::parse(text);
    auto again = run_codec(chunks, &parsed);
    CHECK(again.messages[3].value("socp.plaintext") == "caf\xc3\xa9 at noon");
}

TEST_CASE("socp codec: compressed, fragmented and cut anywhere, the same messages", "[stream]") {
    const std::string u1 = "aaaaaaaa-0000-4000-8000-000000000001";
    std::vector<std::string> texts = {user_hello(u1, "user-1"),
                                      encode(envelope("MSG_PUBLIC_CHANNEL", u1, "public", Json{{"ciphertext", "aGk"}})),
                                      encode(envelope("MSG_PUBLIC_CHANNEL", u1, "public", Json{{"ciphertext", "aGk"}}, 9)),
                                      encode(envelope("MSG_PUBLIC_CHANNEL", u1, "public", Json{{"ciphertext", "aGk"}}, 10))};
    for (bool nct : {false, true}) {
        INFO("client_no_context_takeover " << nct);
        std::vector<Chunk> chunks = {
            {Peer::client, to_bytes(kUpgrade)},
            {Peer::server, to_bytes(switching(std::string("permessage-deflate; client_max_window_bits=12") +
                                              (nct ? "; client_no_context_takeover" : "")))}};
        csmp::Deflater deflater(nct, 12);
        for (std::size_t i = 0; i + 1 < texts.size(); ++i) {
            const auto& t = texts[i];
            chunks.push_back({Peer::client, ws_text(to_string(deflater.deflate(as_bytes(t))), Peer::client, true)});
        }
        // The last one in two fragments, with a ping between them.
        Bytes last = deflater.deflate(as_bytes(texts[3]));
        csmp::WsFrame a, ping, b;
        a.fin = false, a.rsv1 = true, a.masked = true, a.payload.assign(last.begin(), last.begin() + 5);
        ping.opcode = csmp::ws_opcode::ping, ping.masked = true, ping.payload = to_bytes("p");
        b.opcode = csmp::ws_opcode::continuation, b.masked = true, b.payload.assign(last.begin() + 5, last.end());
        for (const auto* f : {&a, &ping, &b}) chunks.push_back({Peer::client, csmp::build_ws_frame(*f)});
        auto whole = run_codec(chunks);
        CHECK(types(whole) ==
              ">HTTP_REQUEST <HTTP_RESPONSE >USER_HELLO >MSG_PUBLIC_CHANNEL >MSG_PUBLIC_CHANNEL >WS_FRAGMENT >WS_PING "
              ">MSG_PUBLIC_CHANNEL");
        CHECK(whole.messages[7].value("socp.fragments") == "2");
        CHECK(whole.messages[2].value("socp.extensions") == "<none>");
        CHECK(whole.messages[1].value("socp.extensions").find("client_max_window_bits=12") != std::string::npos);
        for (const auto& m : whole.messages) CHECK(m.decoded.anomalies.empty());
        for (std::size_t piece : {1, 3, 7}) {
            auto cut = run_codec(chunks, nullptr, piece);
            CHECK(types(cut) == types(whole));
            REQUIRE(cut.messages.size() == whole.messages.size());
            for (std::size_t i = 0; i < cut.messages.size(); ++i) CHECK(cut.messages[i].bytes == whole.messages[i].bytes);
        }
    }
}

TEST_CASE("socp codec: fields located in uncompressed unmasked frames only", "[stream]") {
    auto codec = make_stream_codec(nullptr);
    std::string t = "{\"from\":\"srv\",\"payload\":{\"ciphertext\":\"QUJD\",\"user_id\":\"u-9\"},\"sig\":\"c2ln\","
                    "\"to\":\"*\",\"ts\":1700000000000,\"type\":\"USER_DELIVER\"}";
    Bytes frame = ws_text(t, Peer::server);
    auto span = [&](const Bytes& m, const char* field) -> std::string {
        auto s = codec->locate(m, field);
        if (!s) return "<none>";
        REQUIRE(s->offset + s->length <= m.size());
        return to_string(ByteView(m).subspan(s->offset, s->length));
    };
    CHECK(span(frame, "socp.from") == "srv");
    CHECK(span(frame, "socp.type") == "USER_DELIVER");
    CHECK(span(frame, "socp.ts") == "1700000000000");
    CHECK(span(frame, "socp.sig") == "c2ln");
    CHECK(span(frame, "socp.payload.ciphertext") == "QUJD");
    CHECK(span(frame, "socp.payload.user_id") == "u-9");
    CHECK(span(frame, "socp.payload.sender_pub") == "<none>");
    CHECK(span(frame, "socp.nothing") == "<none>");
    CHECK(span(ws_text(t, Peer::client), "socp.from") == "<none>");     // masked
    CHECK(span(ws_text(t, Peer::server, true), "socp.from") == "<none>");  // compressed
    for (const char* f : kFieldPaths) CHECK(codec->locate(as_bytes(kUpgrade), f) == std::nullopt);
}
