// The CSMP stream codec on the original backend's capture (csmp.pcap: 11
// connections to port 8000; handshakes, two chat sockets with
// permessage-deflate, history, /chat/send), read in place through msglab's
// pcap reader and TCP reassembly, and on hand-made connections.
#include <map>

#include "csmp/stream.hpp"
#include "csmp/wire.hpp"
#include "replay/tcp_reassembly.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::csmp;
using namespace msglab::test;

namespace {

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

std::map<std::uint64_t, CapturedStream> read_streams(const std::string& path) {
    Collector c;
    replay::TcpReassembler r(c);
    replay::reassemble_file(path, r);
    return std::move(c.streams);
}

Bytes first_client_bytes(const CapturedStream& s) {
    for (const auto& c : s.chunks)
        if (c.from == Peer::client) return c.data;
    return {};
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
    bool anomaly(std::string_view text) const {
        return std::any_of(decoded.anomalies.begin(), decoded.anomalies.end(),
                           [&](const std::string& a) { return a.find(text) != std::string::npos; });
    }
    std::string plaintext() const { return decoded.plaintext ? to_string(*decoded.plaintext) : std::string(); }
};

struct Run {
    std::vector<Message> messages;
    std::vector<std::string> errors;
    std::size_t left[2] = {0, 0};  // bytes never framed, per direction
};

// Feeds a connection through one codec as the extractor does: each chunk
// appended to its direction's buffer, then every whole message cut and
// decoded. `piece` > 0 splits every chunk into pieces of that many bytes.
Run run_codec(const std::vector<Chunk>& chunks, std::size_t piece = 0) {
    Run run;
    auto codec = make_stream_codec(nullptr);
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
    for (const auto& m : r.messages) out += (out.empty() ? "" : " ") + std::string(m.from == Peer::client ? ">" : "<") + m.decoded.type;
    return out;
}

struct Original {
    std::map<std::uint64_t, CapturedStream> streams;
    std::map<std::uint64_t, Run> runs;
};

const Original* original() {
    static std::optional<Original> o;
    static bool tried = false;
    if (!tried) {
        tried = true;
        if (auto path = capture("csmp.pcap")) {
            Original x;
            x.streams = read_streams(*path);
            for (const auto& [id, s] : x.streams) x.runs[id] = run_codec(s.chunks);
            o = std::move(x);
        }
    }
    return o ? &*o : nullptr;
}

#define NEED_CAPTURE()                                                                           \
    const Original* orig = original();                                                           \
    if (!orig) MSGLAB_SKIP("captures/originals/csmp.pcap not found (set MSGLAB_CAPTURES_DIR)")

constexpr const char* kAliceSid = "0c1009c5-e696-473d-9f1d-3d774a255628";
constexpr const char* kBobSid = "04a394f3-e36d-49ff-afa3-86d32ba2bb2c";
constexpr const char* kCarolSid = "1f345051-1421-4235-ab84-8c1372927716";
constexpr std::uint64_t kCaptureSecond = 1795272094;  // 2026-11-21T14:41:34Z

std::string span_text(const Bytes& m, std::optional<FieldSpan> s) {
    if (!s) return "<none>";
    REQUIRE(s->offset + s->length <= m.size());
    return to_string(ByteView(m).subspan(s->offset, s->length));
}

// A hand-made connection: an upgrade to /ws/chat agreeing on
// permessage-deflate with `response_extensions`, then the given frames.
std::vector<Chunk> ws_connection(const std::string& response_extensions, const std::vector<Chunk>& frames) {
    std::string req =
        "GET /ws/chat?session_id=s-1&room_id=room_a_b HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
    std::string resp =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
    if (!response_extensions.empty()) resp += "Sec-WebSocket-Extensions: " + response_extensions + "\r\n";
    resp += "\r\n";
    std::vector<Chunk> out = {{Peer::client, to_bytes(req)}, {Peer::server, to_bytes(resp)}};
    out.insert(out.end(), frames.begin(), frames.end());
    return out;
}

Bytes ws(std::uint8_t opcode, ByteView payload, bool masked, bool rsv1 = false, bool fin = true) {
    WsFrame f;
    f.opcode = opcode;
    f.fin = fin;
    f.rsv1 = rsv1;
    f.masked = masked;
    f.mask = {0x11, 0x22, 0x33, 0x44};
    f.payload.assign(payload.begin(), payload.end());
    return build_ws_frame(f);
}

}  // namespace

TEST_CASE("CSMP codec: every stream of the original capture frames to its end", "[stream][originals]") {
    NEED_CAPTURE();
    REQUIRE(orig->streams.size() == 11);
    const std::map<std::uint64_t, std::string> expected = {
        {0, ">HTTP_REQUEST <HTTP_RESPONSE"},
        {1, ">HTTP_REQUEST <HTTP_RESPONSE"},
        {2, ">HTTP_REQUEST <HTTP_RESPONSE"},
        {3, ">HTTP_REQUEST <HTTP_RESPONSE >chat <chat <chat >WS_CLOSE <WS_CLOSE"},
        {4, ">HTTP_REQUEST <HTTP_RESPONSE <chat >chat <chat >WS_CLOSE <WS_CLOSE"},
        {5, ">HTTP_REQUEST <HTTP_RESPONSE"},
        {6, ">HTTP_REQUEST <HTTP_RESPONSE"},
        {7, ">HTTP_REQUEST <HTTP_RESPONSE"},
        {8, ">HTTP_REQUEST <HTTP_RESPONSE >chat <chat >WS_CLOSE <WS_CLOSE"},
        {9, ">HTTP_REQUEST <HTTP_RESPONSE"},
        {10, ">HTTP_REQUEST <HTTP_RESPONSE"},
    };
    for (const auto& [id, s] : orig->streams) {
        INFO("stream " << id);
        const Run& r = orig->runs.at(id);
        CHECK(s.server_port == 8000);
        CHECK(s.gaps == 0);
        CHECK(r.errors.empty());
        CHECK(r.left[0] == 0);
        CHECK(r.left[1] == 0);
        CHECK(types(r) == expected.at(id));
        for (const auto& m : r.messages) {
            INFO(m.decoded.type);
            CHECK(m.decoded.type != "MALFORMED");
            // Only the raw-text frame is anomalous.
            if (!(id == 4 && m.from == Peer::client && m.decoded.type == "chat")) CHECK(m.decoded.anomalies.empty());
        }
    }
}

TEST_CASE("CSMP codec: the handshakes' requests and responses, with their session ids", "[stream][originals]") {
    NEED_CAPTURE();
    const std::vector<std::tuple<std::uint64_t, const char*, const char*>> handshakes = {
        {1, "alice", kAliceSid}, {2, "bob", kBobSid}, {7, "carol", kCarolSid}};
    for (const auto& [id, client, sid] : handshakes) {
        INFO("stream " << id);
        const auto& msgs = orig->runs.at(id).messages;
        REQUIRE(msgs.size() == 2);
        const Message& req = msgs[0];
        CHECK(req.field("csmp.method") == "POST");
        CHECK(req.field("csmp.path") == "/handshake/");
        CHECK(req.field("csmp.client_id") == client);
        CHECK_FALSE(req.field("csmp.session_id"));
        CHECK(req.plaintext() == std::string("{\"client_id\": \"") + client + "\"}");
        const Message& resp = msgs[1];
        CHECK(resp.field("csmp.status") == "200");
        CHECK(resp.field("csmp.session_id") == sid);
        CHECK(resp.field("csmp.client_id") == client);
        CHECK(resp.decoded.session_id == sid);
        CHECK(resp.plaintext() == std::string("{\"session_id\":\"") + sid + "\",\"client_id\":\"" + client +
                                      "\",\"protocol_version\":\"1.0.0\",\"expires_in\":1800}");
        // The session id's bytes, where a mutation would change them.
        auto codec = make_stream_codec(nullptr);
        CHECK(span_text(resp.bytes, codec->locate(resp.bytes, "csmp.session_id")) == sid);
        CHECK_FALSE(codec->locate(req.bytes, "csmp.session_id"));
    }
    // GET /health/ is the first connection.
    const auto& health = orig->runs.at(0).messages;
    CHECK(health[0].field("csmp.path") == "/health/");
    CHECK(health[1].field("csmp.status") == "200");
    CHECK(health[1].plaintext() == "{\"status\":\"ok\",\"app_name\":\"CSMP Backend\",\"version\":\"1.0.0\",\"debug\":true}");
}

TEST_CASE("CSMP codec: the chat sockets inflate to JSON chat messages in room1", "[stream][originals]") {
    NEED_CAPTURE();
    const auto& a = orig->runs.at(3).messages;
    REQUIRE(a.size() == 7);
    // The upgrade: session and room from the query.
    CHECK(a[0].field("csmp.path") == "/ws/chat");
    CHECK(a[0].field("csmp.upgrade") == "websocket");
    CHECK(a[0].field("csmp.session_id") == kAliceSid);
    CHECK(a[0].field("csmp.room") == "room1");
    CHECK(a[1].field("csmp.status") == "101");
    CHECK(a[1].field("csmp.extensions") == "permessage-deflate");
    // Alice's message, compressed and masked.
    CHECK(a[2].from == Peer::client);
    CHECK(a[2].bytes.size() == 57);
    CHECK((a[2].bytes[0] & 0x40) != 0);
    CHECK(a[2].plaintext() == "{\"type\": \"chat\", \"message\": \"hello bob, from alice\"}");
    CHECK(a[2].field("csmp.type") == "chat");
    CHECK(a[2].field("csmp.message") == "hello bob, from alice");
    CHECK(a[2].field("csmp.room") == "room1");  // the socket's room: the client does not repeat it
    CHECK(a[2].decoded.session_id == kAliceSid);
    // The server's broadcasts; the second is compressed against the first one's window.
    CHECK(a[3].plaintext() ==
          "{\"type\": \"chat\", \"from\": \"alice\", \"room_id\": \"room1\", \"message\": \"hello bob, from alice\", "
          "\"timestamp\": \"2026-11-21T14:41:34.154067\"}");
    CHECK(a[3].field("csmp.from") == "alice");
    CHECK(a[3].field("csmp.room") == "room1");
    CHECK(a[3].field("csmp.timestamp") == "2026-11-21T14:41:34.154067");
    CHECK(a[3].decoded.timestamp == kCaptureSecond);
    CHECK(a[4].bytes.size() == 42);
    CHECK(a[4].field("csmp.from") == "bob");
    CHECK(a[4].field("csmp.message") == "hi alice (raw text frame)");
    CHECK(a[4].field("csmp.room") == "room1");
    std::vector<std::string> fields;
    for (const auto& f : a[4].decoded.fields) fields.push_back(f.name);
    CHECK(fields == std::vector<std::string>{"csmp.type", "csmp.from", "csmp.room", "csmp.message", "csmp.timestamp",
                                             "csmp.compressed"});
    // Both ends close with 1000.
    CHECK(a[5].field("csmp.close_code") == "1000");
    CHECK(a[6].field("csmp.close_code") == "1000");
    // Bob's socket: the same two broadcasts, byte for byte.
    const auto& b = orig->runs.at(4).messages;
    REQUIRE(b.size() == 7);
    CHECK(b[0].field("csmp.session_id") == kBobSid);
    CHECK(b[2].bytes == a[3].bytes);
    CHECK(b[4].bytes == a[4].bytes);
    CHECK(b[4].plaintext() == a[4].plaintext());
    // Carol's solo room.
    const auto& c = orig->runs.at(8).messages;
    REQUIRE(c.size() == 6);
    CHECK(c[2].plaintext() == "{\"type\": \"chat\", \"message\": \"note to self\"}");
    CHECK(c[2].field("csmp.room") == "room1-solo");
    CHECK(c[3].field("csmp.room") == "room1-solo");
    CHECK(c[3].field("csmp.from") == "carol");
}

TEST_CASE("CSMP codec: the raw-text frame is a chat message with an anomaly", "[stream][originals]") {
    NEED_CAPTURE();
    const Message& raw = orig->runs.at(4).messages.at(3);
    CHECK(raw.from == Peer::client);
    CHECK(raw.decoded.type == "chat");
    CHECK(raw.plaintext() == "hi alice (raw text frame)");
    CHECK(raw.field("csmp.message") == "hi alice (raw text frame)");
    CHECK(raw.field("csmp.room") == "room1");
    REQUIRE(raw.decoded.anomalies.size() == 1);
    CHECK(raw.decoded.anomalies[0] == "raw text frame (treated as a chat message)");
}

TEST_CASE("CSMP codec: history and /chat/send, with their status codes", "[stream][originals]") {
    NEED_CAPTURE();
    const auto& send = orig->runs.at(10).messages;
    CHECK(send[0].field("csmp.method") == "POST");
    CHECK(send[0].field("csmp.path") == "/chat/send");
    CHECK(send[0].field("csmp.session_id") == kAliceSid);
    CHECK(send[0].field("csmp.message") == "via http");
    CHECK(send[1].field("csmp.status") == "500");
    CHECK(send[1].field("csmp.detail") == "Internal server error while saving message");
    CHECK(send[1].decoded.session_id == kAliceSid);

    const auto& hist = orig->runs.at(5).messages;
    CHECK(hist[0].field("csmp.room") == "room1");
    CHECK(hist[0].field("csmp.session_id") == kAliceSid);
    CHECK(hist[1].field("csmp.status") == "500");
    CHECK(hist[1].field("csmp.detail") == "History load failed");
    const auto& anon = orig->runs.at(6).messages;
    CHECK_FALSE(anon[0].field("csmp.session_id"));
    CHECK(anon[1].field("csmp.status") == "401");
    CHECK(anon[1].field("csmp.detail") == "Identity verification required. Please login.");
    const auto& solo = orig->runs.at(9).messages;
    CHECK(solo[0].field("csmp.room") == "room1-solo");
    CHECK(solo[1].field("csmp.status") == "200");
    CHECK(solo[1].plaintext().rfind("[{\"id\":3,\"from\":\"carol\",\"message\":\"note to self\"", 0) == 0);
}

TEST_CASE("CSMP codec: locate() on the capture, in HTTP text only", "[stream][originals]") {
    NEED_CAPTURE();
    auto codec = make_stream_codec(nullptr);
    const Bytes& upgrade = orig->runs.at(3).messages[0].bytes;
    CHECK(span_text(upgrade, codec->locate(upgrade, "csmp.session_id")) == kAliceSid);
    CHECK(span_text(upgrade, codec->locate(upgrade, "csmp.room")) == "room1");
    const Bytes& hist = orig->runs.at(9).messages[0].bytes;
    CHECK(span_text(hist, codec->locate(hist, "csmp.session_id")) == kCarolSid);
    CHECK(span_text(hist, codec->locate(hist, "csmp.room")) == "room1-solo");
    const Bytes& send = orig->runs.at(10).messages[0].bytes;
    CHECK(span_text(send, codec->locate(send, "csmp.message")) == "via http");
    CHECK(span_text(send, codec->locate(send, "csmp.session_id")) == kAliceSid);
    CHECK_FALSE(codec->locate(send, "csmp.to"));
    CHECK_FALSE(codec->locate(send, "csmp.nothing"));
    // Compressed frames, and masked ones, show no field as sent.
    for (std::size_t i = 2; i < 5; ++i)
        for (const char* f : kLocatableFields) CHECK_FALSE(codec->locate(orig->runs.at(3).messages[i].bytes, f));
}

TEST_CASE("CSMP codec: the capture split byte by byte gives the same messages", "[stream][originals]") {
    NEED_CAPTURE();
    for (std::uint64_t id : {1u, 3u, 4u, 10u}) {
        INFO("stream " << id);
        Run bytewise = run_codec(orig->streams.at(id).chunks, 1);
        const Run& whole = orig->runs.at(id);
        CHECK(bytewise.errors.empty());
        REQUIRE(bytewise.messages.size() == whole.messages.size());
        for (std::size_t i = 0; i < whole.messages.size(); ++i) {
            CHECK(bytewise.messages[i].bytes == whole.messages[i].bytes);
            CHECK(bytewise.messages[i].decoded.type == whole.messages[i].decoded.type);
            CHECK(bytewise.messages[i].decoded.plaintext == whole.messages[i].decoded.plaintext);
        }
    }
}

TEST_CASE("CSMP detect: the capture's openings, and not SLMP's or SecMsg's", "[stream][detect]") {
    NEED_CAPTURE();
    for (const auto& [id, s] : orig->streams) {
        INFO("stream " << id);
        CHECK(detect(first_client_bytes(s)));
    }
    for (const char* other : {"slmp.pcap", "secmsg.pcap"}) {
        INFO(other);
        auto path = capture(other);
        if (!path) continue;
        auto streams = read_streams(*path);
        REQUIRE_FALSE(streams.empty());
        for (const auto& [id, s] : streams) CHECK_FALSE(detect(first_client_bytes(s)));
    }
    CHECK_FALSE(detect(as_bytes("-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE")));
    CHECK_FALSE(detect(as_bytes("SegMSG\x01\x00\x00\x01\x00")));
    CHECK_FALSE(detect(as_bytes("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")));
    CHECK_FALSE(detect(as_bytes("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n\r\n")));
    CHECK_FALSE(detect(as_bytes("GET /ws/ HTTP/1.1\r\n\r\n")));
    CHECK(detect(as_bytes("GET /index.html HTTP/1.1\r\nHost: x\r\nX-Session-ID: abc\r\n\r\n")));
    CHECK(detect(as_bytes("GET / HTTP/1.1\r\n")));
    CHECK(detect(as_bytes("GET /call/call/history HTTP/1.1\r\n")));
    CHECK(detect(as_bytes("GET /ws/call?session_id=bob HTTP/1.1\r\n")));
    CHECK(detect(as_bytes("POST /handsh")) == false);
    CHECK(detect(as_bytes("POST /handshake")));
    CHECK_FALSE(detect(as_bytes("GET /")));
    CHECK_FALSE(detect({}));
}

TEST_CASE("CSMP codec: call signalling, fragments and context takeover on a hand-made socket", "[stream]") {
    Deflater server(false), client(false);
    std::string init = R"({"type":"call:init","to":"bob","call_type":"voice"})";
    std::string ack = R"({"type":"call:ack","call_id":"c-1","to":"bob","call_type":"voice"})";
    std::string offer = R"({"type":"call:offer","to":"bob","call_id":"c-1","sdp":{"type":"offer","sdp":"v=0"}})";
    std::string ice = R"({"type":"call:ice","candidate":{"candidate":"x"}})";
    Bytes init_c = client.deflate(as_bytes(init));
    Bytes ack_c = server.deflate(as_bytes(ack));
    Bytes offer_c = client.deflate(as_bytes(offer));
    std::vector<Chunk> frames = {
        {Peer::client, ws(ws_opcode::text, init_c, true, true)},
        {Peer::server, ws(ws_opcode::text, ack_c, false, true)},
        // A compressed message in two fragments, a ping between them.
        {Peer::client, ws(ws_opcode::text, ByteView(offer_c).first(5), true, true, false)},
        {Peer::client, ws(ws_opcode::ping, as_bytes("p"), true)},
        {Peer::client, ws(ws_opcode::continuation, ByteView(offer_c).subspan(5), true, false, true)},
        // An uncompressed message from the server, and a pong.
        {Peer::server, ws(ws_opcode::text, as_bytes(ice), false)},
        {Peer::server, ws(ws_opcode::pong, as_bytes("p"), false)},
        {Peer::client, ws(ws_opcode::close, unhex("03e8"), true)},
    };
    Run r = run_codec(ws_connection("permessage-deflate", frames));
    CHECK(r.errors.empty());
    CHECK(types(r) == ">HTTP_REQUEST <HTTP_RESPONSE >call:init <call:ack >WS_FRAGMENT >WS_PING >call:offer <call:ice "
                      "<WS_PONG >WS_CLOSE");
    REQUIRE(r.messages.size() == 10);
    CHECK(r.messages[0].field("csmp.session_id") == "s-1");
    CHECK(r.messages[0].field("csmp.room") == "room_a_b");
    CHECK(r.messages[1].decoded.anomalies.empty());  // the accept value matches the key
    CHECK(r.messages[2].plaintext() == init);
    CHECK(r.messages[2].field("csmp.to") == "bob");
    CHECK(r.messages[2].decoded.session_id == "s-1");
    CHECK(r.messages[3].field("csmp.call_id") == "c-1");
    CHECK(r.messages[3].field("csmp.to") == "bob");
    CHECK_FALSE(r.messages[3].field("csmp.room"));  // only chat messages belong to the socket's room
    CHECK(r.messages[4].field("csmp.fragment") == "1");
    CHECK(r.messages[5].plaintext() == "p");
    CHECK(r.messages[6].plaintext() == offer);
    CHECK(r.messages[6].field("csmp.fragments") == "2");
    CHECK(r.messages[6].field("csmp.call_id") == "c-1");
    CHECK(r.messages[7].plaintext() == ice);
    CHECK(r.messages[9].field("csmp.close_code") == "1000");
    for (const auto& m : r.messages) CHECK(m.decoded.anomalies.empty());

    // An uncompressed, unmasked frame shows its fields as sent.
    auto codec = make_stream_codec(nullptr);
    Bytes end = ws(ws_opcode::text, as_bytes(R"({"type":"call:end","to":"alice","call_id":"c-1","room_id":"r"})"), false);
    CHECK(span_text(end, codec->locate(end, "csmp.to")) == "alice");
    CHECK(span_text(end, codec->locate(end, "csmp.call_id")) == "c-1");
    CHECK(span_text(end, codec->locate(end, "csmp.room")) == "r");
    CHECK_FALSE(codec->locate(end, "csmp.message"));
    CHECK_FALSE(codec->locate(end, "csmp.session_id"));
    Bytes raw = ws(ws_opcode::text, as_bytes("plain words"), false);
    CHECK(span_text(raw, codec->locate(raw, "csmp.message")) == "plain words");
    Bytes esc = ws(ws_opcode::text, as_bytes(R"({"message" : "a\"b", "to":[1,{"x":"]"}], "call_id":7})"), false);
    CHECK(span_text(esc, codec->locate(esc, "csmp.message")) == "a\\\"b");
    CHECK(span_text(esc, codec->locate(esc, "csmp.to")) == R"([1,{"x":"]"}])");
    CHECK(span_text(esc, codec->locate(esc, "csmp.call_id")) == "7");
    Bytes masked = ws(ws_opcode::text, as_bytes(R"({"to":"alice"})"), true);
    CHECK_FALSE(codec->locate(masked, "csmp.to"));
    Bytes frag = ws(ws_opcode::text, as_bytes(R"({"to":"alice"})"), false, false, false);
    CHECK_FALSE(codec->locate(frag, "csmp.to"));
}

TEST_CASE("CSMP codec: bad frames and bad compressed data are anomalies, never exceptions", "[stream]") {
    Deflater d(false);
    Bytes good = d.deflate(as_bytes(R"({"type":"chat","message":"x"})"));
    Bytes bomb = Deflater(true).deflate(Bytes(kMaxInflated + 1, ' '));
    std::vector<Chunk> frames = {
        {Peer::client, ws(ws_opcode::text, unhex("ff"), true, true)},      // not DEFLATE
        {Peer::client, ws(ws_opcode::text, good, true, true)},             // the window is lost now
        {Peer::client, ws(ws_opcode::text, as_bytes("{\"type\":"), true)},  // malformed JSON
        {Peer::client, ws(ws_opcode::text, as_bytes(R"({"message":"no type"})"), true)},
        {Peer::client, ws(ws_opcode::text, as_bytes(R"({"type":"chat","type":"call:end"})"), true)},
        {Peer::client, ws(ws_opcode::text, as_bytes("[1,2]"), true)},
        {Peer::client, ws(ws_opcode::binary, as_bytes("\x01\x02"), true)},
        {Peer::client, ws(ws_opcode::text, as_bytes("{\"type\":\"chat\"}"), false)},  // unmasked
        {Peer::client, ws(ws_opcode::text, as_bytes("\xc3\x28"), true)},               // not UTF-8
        {Peer::client, ws(ws_opcode::continuation, as_bytes("x"), true)},
        {Peer::server, ws(ws_opcode::text, bomb, false, true)},
        {Peer::server, ws(ws_opcode::close, unhex("03ed"), false)},  // 1005 may not be sent
        {Peer::server, ws(ws_opcode::text, as_bytes("{}"), true)},   // masked by the server
        {Peer::server, Bytes{0x83, 0x00}},                           // a reserved opcode ends the direction
        {Peer::server, ws(ws_opcode::text, as_bytes("{}"), false)},
    };
    Run r = run_codec(ws_connection("permessage-deflate", frames));
    CHECK(types(r) == ">HTTP_REQUEST <HTTP_RESPONSE >MALFORMED >MALFORMED >MALFORMED >WS_JSON >call:end >chat "
                      ">WS_BINARY >chat >chat >MALFORMED <MALFORMED <WS_CLOSE <WS_JSON");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].find("unknown_type") == 0);
    REQUIRE(r.messages.size() == 15);
    CHECK(r.messages[2].anomaly("does not inflate"));
    CHECK(r.messages[3].anomaly("context was lost"));
    CHECK(r.messages[4].anomaly("malformed JSON"));
    CHECK(r.messages[5].anomaly("without a string \"type\""));
    CHECK(r.messages[6].anomaly("\"type\" repeated"));
    CHECK(r.messages[7].anomaly("raw text frame"));  // only '{' starts JSON for the original
    CHECK(r.messages[8].anomaly("binary message"));
    CHECK(r.messages[9].anomaly("unmasked client frame"));
    CHECK(r.messages[10].anomaly("not UTF-8"));
    CHECK(r.messages[11].anomaly("continuation frame with no message open"));
    CHECK(r.messages[12].anomaly("inflates to over"));
    CHECK(r.messages[13].anomaly("close code 1005"));
    CHECK(r.messages[14].anomaly("masked server frame"));

    // Without context takeover a bad message costs only itself.
    std::vector<Chunk> nct = {
        {Peer::client, ws(ws_opcode::text, unhex("ff"), true, true)},
        {Peer::client, ws(ws_opcode::text, Deflater(true).deflate(as_bytes(R"({"type":"chat"})")), true, true)},
    };
    Run n = run_codec(ws_connection("permessage-deflate; client_no_context_takeover", nct));
    CHECK(types(n) == ">HTTP_REQUEST <HTTP_RESPONSE >MALFORMED >chat");

    // RSV1 when nothing was agreed, and an agreement the codec cannot read.
    std::vector<Chunk> one = {{Peer::client, ws(ws_opcode::text, good, true, true)}};
    Run none = run_codec(ws_connection("", one));
    CHECK(types(none) == ">HTTP_REQUEST <HTTP_RESPONSE >MALFORMED");
    CHECK(none.messages[2].anomaly("permessage-deflate was not agreed"));
    Run odd = run_codec(ws_connection("permessage-deflate; server_max_window_bits=99", one));
    CHECK(types(odd) == ">HTTP_REQUEST <HTTP_RESPONSE >MALFORMED");
    CHECK(odd.messages[1].anomaly("Sec-WebSocket-Extensions not understood"));

    // A 101 whose accept value is not the key's.
    std::vector<Chunk> wrong = {
        {Peer::client, to_bytes("GET /ws/call?session_id=bob HTTP/1.1\r\nUpgrade: websocket\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")},
        {Peer::server, to_bytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n")},
        {Peer::client, ws(ws_opcode::text, as_bytes("not json"), true)},
    };
    Run w = run_codec(wrong);
    CHECK(w.messages[1].anomaly("does not match"));
    CHECK(w.messages[2].anomaly("raw text frame"));
    CHECK(w.messages[2].anomaly("on /ws/call"));
}

TEST_CASE("CSMP codec: HTTP keep-alive, HEAD, chunked and close-delimited responses", "[stream]") {
    std::string body = R"({"session_id":"s-2","client_id":"dave"})";
    std::vector<Chunk> chunks = {
        {Peer::client, to_bytes("HEAD /health/ HTTP/1.1\r\n\r\nPOST /handshake/ HTTP/1.1\r\nContent-Length: 20\r\n\r\n"
                                "{\"client_id\":\"dave\"}GET /history/room%5Fx?limit=5 HTTP/1.1\r\n"
                                "x-session-id: s-2\r\n\r\n")},
        {Peer::server, to_bytes("HTTP/1.1 200 OK\r\ncontent-length: 72\r\n\r\n"
                                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n10\r\n" +
                                body.substr(0, 16) + "\r\n" + [&] {
                                    std::string rest = body.substr(16);
                                    char n[8];
                                    std::snprintf(n, sizeof n, "%zx", rest.size());
                                    return std::string(n) + "\r\n" + rest + "\r\n0\r\n\r\n";
                                }() +
                                "HTTP/1.0 200 OK\r\n\r\n[1,2")},
        {Peer::server, to_bytes(",3]")},
    };
    Run r = run_codec(chunks);
    CHECK(r.errors.empty());
    CHECK(types(r) ==
          ">HTTP_REQUEST >HTTP_REQUEST >HTTP_REQUEST <HTTP_RESPONSE <HTTP_RESPONSE <HTTP_RESPONSE <HTTP_BODY <HTTP_BODY");
    REQUIRE(r.messages.size() == 8);
    CHECK(r.messages[1].field("csmp.client_id") == "dave");
    CHECK(r.messages[2].field("csmp.room") == "room_x");
    CHECK(r.messages[2].field("csmp.session_id") == "s-2");
    CHECK(to_string(r.messages[3].bytes) == "HTTP/1.1 200 OK\r\ncontent-length: 72\r\n\r\n");  // the answer to HEAD: no body
    CHECK(r.messages[4].plaintext() == body);
    CHECK(r.messages[4].field("csmp.session_id") == "s-2");
    CHECK(r.messages[5].anomaly("runs to the close"));
    CHECK(r.messages[6].plaintext() == "[1,2");
    CHECK(r.messages[7].plaintext() == ",3]");
    auto codec = make_stream_codec(nullptr);
    CHECK(span_text(r.messages[2].bytes, codec->locate(r.messages[2].bytes, "csmp.room")) == "room%5Fx");
    CHECK(span_text(r.messages[2].bytes, codec->locate(r.messages[2].bytes, "csmp.session_id")) == "s-2");
    CHECK_FALSE(codec->locate(r.messages[4].bytes, "csmp.session_id"));  // split across chunks
    // Garbage where a request should be ends that direction with a ParseError.
    Run bad = run_codec({{Peer::client, to_bytes("\x16\x03\x01\x02\x00")}});
    REQUIRE(bad.errors.size() == 1);
    CHECK(bad.errors[0].find("bad_magic") == 0);
}

TEST_CASE("CSMP codec: framing the same bytes twice, and decoding without framing", "[stream]") {
    Deflater d;
    Bytes server = to_bytes("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                            "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n");
    Bytes f1 = ws(ws_opcode::text, d.deflate(as_bytes(R"({"type":"chat","message":"one"})")), false, true);
    Bytes f2 = ws(ws_opcode::text, d.deflate(as_bytes(R"({"type":"chat","message":"two"})")), false, true);
    std::size_t head = server.size();
    server.insert(server.end(), f1.begin(), f1.end());
    server.insert(server.end(), f2.begin(), f2.end());
    auto codec = make_stream_codec(nullptr);
    // As the replayer counts replies, then looks for the last one in the same bytes.
    for (int pass = 0; pass < 2; ++pass) {
        INFO("pass " << pass);
        std::size_t pos = 0;
        std::vector<std::size_t> lengths;
        while (pos < server.size()) {
            auto len = codec->frame(Peer::server, ByteView(server).subspan(pos));
            REQUIRE(len);
            REQUIRE(*len > 0);
            lengths.push_back(*len);
            if (pass == 0) codec->decode(Peer::server, ByteView(server).subspan(pos, *len));
            pos += *len;
        }
        CHECK(lengths == std::vector<std::size_t>{head, f1.size(), f2.size()});
    }
    // As a scenario sends: the client's messages decoded, never framed.
    auto c = make_stream_codec(nullptr);
    auto up = c->decode(Peer::client, as_bytes("GET /ws/chat?session_id=z&room_id=r HTTP/1.1\r\nUpgrade: websocket\r\n"
                                              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"));
    CHECK(up.type == "HTTP_REQUEST");
    auto msg = c->decode(Peer::client, ws(ws_opcode::text, as_bytes(R"({"type":"chat","message":"hi"})"), true));
    CHECK(msg.type == "chat");
    CHECK(msg.session_id == "z");
    auto len = c->frame(Peer::client, ws(ws_opcode::ping, {}, true));
    REQUIRE(len);
    CHECK(*len == 6);
}
