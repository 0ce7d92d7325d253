// The Signal-style chat stream codec on the original capture (signal.pcap:
// bob and alice each open an Engine.IO polling session, upgrade it to a
// WebSocket on a second connection, register, and alice runs X3DH then 8
// ratchet_msg with two DH-ratchet turns), read in place through msglab's pcap
// reader and TCP reassembly; and on connections built here, with real X3DH
// and Double Ratchet messages (ratchet.hpp) and their key log.
#include <zlib.h>

#include <map>
#include <set>

#include "core/crypto.hpp"
#include "core/keylog.hpp"
#include "csmp/wire.hpp"
#include "replay/tcp_reassembly.hpp"
#include "signal/eio.hpp"
#include "signal/events.hpp"
#include "signal/ratchet.hpp"
#include "signal/stream.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::signal;
using namespace msglab::test;

namespace {

struct Chunk {
    Peer from;
    Bytes data;
};

struct CapturedStream {
    std::vector<Chunk> chunks;  // in capture order, both directions
    int gaps = 0;
};

class Collector final : public replay::ReassemblyHandler {
public:
    void on_stream_open(std::uint64_t, const replay::Address&, const replay::Address&,
                        const replay::FrameInfo&) override {}
    void on_data(std::uint64_t stream, replay::Direction dir, ByteView data, const replay::FrameInfo&) override {
        Peer from = dir == replay::Direction::client_to_server ? Peer::client : Peer::server;
        streams[stream].chunks.push_back({from, Bytes(data.begin(), data.end())});
    }
    void on_gap(std::uint64_t stream, replay::Direction, std::uint64_t, const replay::FrameInfo&) override {
        ++streams[stream].gaps;
    }
    std::map<std::uint64_t, CapturedStream> streams;
};

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
    std::vector<std::string> values(std::string_view name) const {
        std::vector<std::string> out;
        for (const auto& f : decoded.fields)
            if (f.name == name) out.push_back(f.value);
        return out;
    }
    bool anomaly(std::string_view text) const {
        return std::any_of(decoded.anomalies.begin(), decoded.anomalies.end(),
                           [&](const std::string& a) { return a.find(text) != std::string::npos; });
    }
};

struct Run {
    std::vector<Message> messages;
    std::vector<std::string> errors;
    std::size_t left[2] = {0, 0};  // bytes never framed, per direction

    std::vector<const Message*> of_type(std::string_view type) const {
        std::vector<const Message*> out;
        for (const auto& m : messages)
            if (m.decoded.type == type) out.push_back(&m);
        return out;
    }
    std::size_t anomalies() const {
        std::size_t n = 0;
        for (const auto& m : messages) n += m.decoded.anomalies.size();
        return n;
    }
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

// Everything decode says about a run, to compare runs.
std::string summary(const Run& r) {
    std::string out;
    for (const auto& m : r.messages) {
        out += std::string(m.from == Peer::client ? ">" : "<") + m.decoded.type + " |";
        for (const auto& f : m.decoded.fields) out += " " + f.name + "=" + f.value;
        for (const auto& a : m.decoded.anomalies) out += " !" + a;
        if (m.decoded.plaintext) out += " plain=" + hex(*m.decoded.plaintext);
        out += m.decoded.authenticated ? " auth" : "";
        out += " sid=" + m.decoded.session_id + "\n";
    }
    return out;
}

// The capture's four connections, told apart by what their clients said.
struct Original {
    std::map<std::uint64_t, CapturedStream> streams;
    std::map<std::uint64_t, Run> runs;
    std::vector<const Run*> polls;   // the two polling handshakes
    const Run* bob = nullptr;        // bob's WebSocket connection
    const Run* alice = nullptr;      // alice's
    std::vector<const CapturedStream*> bob_chunks, alice_chunks;
};

const Original* original() {
    static std::optional<Original> o;
    static bool tried = false;
    if (!tried) {
        tried = true;
        auto dir = captures_dir();
        if (dir && fs::is_regular_file(*dir / "originals" / "signal.pcap")) {
            Original x;
            Collector c;
            replay::TcpReassembler r(c);
            replay::reassemble_file((*dir / "originals" / "signal.pcap").string(), r);
            x.streams = std::move(c.streams);
            for (const auto& [id, s] : x.streams)
                if (!s.chunks.empty()) x.runs[id] = run_codec(s.chunks);
            for (const auto& [id, run] : x.runs) {
                if (run.messages.empty()) continue;
                if (run.messages[0].decoded.type == "HTTP_POLL") x.polls.push_back(&run);
                for (const auto& m : run.messages) {
                    if (m.decoded.type != "register_user") continue;
                    if (m.value("signal.username") == "bob") x.bob = &run;
                    if (m.value("signal.username") == "alice") x.alice = &run;
                }
            }
            o = std::move(x);
        }
    }
    return o ? &*o : nullptr;
}

#define NEED_CAPTURE()                                                                             \
    const Original* orig = original();                                                             \
    if (!orig) MSGLAB_SKIP("captures/originals/signal.pcap not found (set MSGLAB_CAPTURES_DIR)"); \
    REQUIRE(orig->polls.size() == 2);                                                              \
    REQUIRE(orig->bob);                                                                            \
    REQUIRE(orig->alice)

// ---- Connections built here ----------------------------------------------------------

const std::string kUpgrade =
    "GET /socket.io/?transport=websocket&EIO=4&sid=jGgU-pDc6jF4ctTbAAAA&t=1795272083.7429502 HTTP/1.1\r\n"
    "Host: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
const std::string kSwitching =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

Bytes ws_text(std::string_view text, Peer from, csmp::WsMask mask = {0x37, 0xfa, 0x21, 0x3d}) {
    csmp::WsFrame f;
    f.opcode = csmp::ws_opcode::text;
    f.masked = from == Peer::client;
    f.mask = mask;
    f.payload = to_bytes(text);
    return csmp::build_ws_frame(f);
}

// A WebSocket connection carrying these Engine.IO packets, one per frame.
std::vector<Chunk> connection(const std::vector<std::pair<Peer, std::string>>& packets) {
    std::vector<Chunk> out = {{Peer::client, to_bytes(kUpgrade)}, {Peer::server, to_bytes(kSwitching)}};
    for (const auto& [from, text] : packets) out.push_back({from, ws_text(text, from)});
    return out;
}

std::string http_response(std::string_view body, std::string_view extra_headers = {}) {
    return "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=UTF-8\r\n" + std::string(extra_headers) +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

std::string poll_request(std::string_view sid = "jGgU-pDc6jF4ctTbAAAA") {
    return "GET /socket.io/?transport=polling&EIO=4&sid=" + std::string(sid) +
           "&t=1795272083.8 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: */*\r\n\r\n";
}

std::string post_request(std::string_view body) {
    return "POST /socket.io/?transport=polling&EIO=4&sid=jGgU-pDc6jF4ctTbAAAA&t=1795272083.9 HTTP/1.1\r\n"
           "Host: 127.0.0.1:8080\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

// An Engine.IO message with a Socket.IO EVENT or ACK.
std::string event(std::string_view name, const Json& arg, std::optional<std::uint64_t> id) {
    return eio_message(sio_event(name, arg.is_null() ? Json::array() : Json::array({arg}), id));
}
std::string ack(std::uint64_t id, const Json& args) { return eio_message(sio_ack(id, args)); }

// Two users with real keys, X3DH and ratchets between them, and the key log
// that opens their messages.
struct Pair {
    DeterministicRng rng{7};
    Identity alice = Identity::generate(rng);
    Identity bob = Identity::generate(rng);
    X3dhInitiation init;
    std::optional<Ratchet> a, b;
    KeyLog log;

    Pair() {
        auto i = x3dh_initiate(alice, bob.bundle(), rng);
        REQUIRE(i);
        init = std::move(*i);
        log.add({kKeylogX3dhSk, keylog_x3dh_id(init.ek.public_key), Bytes(init.sk.begin(), init.sk.end())});
        a = Ratchet::initiator(init.sk, bob.spk.public_key, init.ad, rng);
        REQUIRE(a);
        b = Ratchet::responder(init.sk, bob.spk, init.ad, rng);
    }
    Json register_json(const std::string& name) const {
        return register_user_json(register_user(name, name == "alice" ? alice : bob));
    }
    Json x3dh_json() const { return x3dh_message_json(x3dh_message("bob", "alice", alice.ik.public_key, init)); }
    // A message from `who`'s ratchet; the other side's decrypts it so that it may answer.
    Json send(bool from_alice, std::string_view text, bool log_key = true) {
        Ratchet& r = from_alice ? *a : *b;
        auto s = r.encrypt(as_bytes(text));
        REQUIRE(s);
        if (log_key) log.add({kKeylogMessageKey, keylog_id(s->message.header.dh, s->message.header.n),
                              Bytes(s->mk.begin(), s->mk.end())});
        auto got = (from_alice ? *b : *a).decrypt(s->message);
        REQUIRE(got.ok());
        return ratchet_msg_json(ratchet_msg(from_alice ? "bob" : "alice", from_alice ? "alice" : "bob", s->message));
    }
};

std::string b64s(ByteView b) { return crypto::base64_encode(b); }

const Message* first_of(const Run& r, std::string_view type) {
    for (const auto& m : r.messages)
        if (m.decoded.type == type) return &m;
    return nullptr;
}

}  // namespace

// ---- The original capture ------------------------------------------------------------

TEST_CASE("signal codec: the original capture decodes completely, every packet named", "[stream][originals]") {
    NEED_CAPTURE();
    for (const auto& [id, s] : orig->streams) {
        INFO("stream " << id);
        CHECK(s.gaps == 0);
    }
    for (const auto& [id, run] : orig->runs) {
        INFO("stream " << id << "\n" << summary(run));
        CHECK(run.errors.empty());
        CHECK(run.left[0] == 0);
        CHECK(run.left[1] == 0);
        for (const auto& m : run.messages) {
            CHECK(m.decoded.type != "MALFORMED");
            CHECK(m.decoded.type.find("MALFORMED") == std::string::npos);
            CHECK(m.decoded.type != "ACK");  // every ack matched to its event
        }
    }
    for (const Run* poll : orig->polls) {
        INFO(summary(*poll));
        CHECK(types(*poll) == ">HTTP_POLL <EIO_OPEN");
        CHECK(poll->anomalies() == 0);
        const Message& get = poll->messages[0];
        CHECK(get.value("signal.method") == "GET");
        CHECK(get.value("signal.path") == "/socket.io/");
        CHECK(get.value("signal.transport") == "polling");
        const Message& open = poll->messages[1];
        CHECK(open.value("signal.status") == "200");
        CHECK(open.value("signal.eio.type") == "OPEN");
        CHECK(open.value("signal.eio.upgrades") == "websocket");
        CHECK(open.value("signal.eio.ping_interval") == "25000");
        CHECK(open.value("signal.eio.ping_timeout") == "20000");
        CHECK_FALSE(open.field("signal.eio.max_payload"));  // python-engineio 4.9 leaves it out
    }
    // The polling session bob's WebSocket upgrades.
    std::set<std::string> sids;
    for (const Run* poll : orig->polls) sids.insert(poll->messages[1].value("signal.eio.sid"));
    CHECK(sids == std::set<std::string>{"jGgU-pDc6jF4ctTbAAAA", "modw93PDhSzvKFitAAAC"});
    CHECK(orig->bob->messages[0].value("signal.eio.sid") == "jGgU-pDc6jF4ctTbAAAA");
    CHECK(orig->bob->messages[0].decoded.timestamp == std::uint64_t{1795272083});
    CHECK(orig->polls[0]->messages[0].decoded.timestamp);

    const std::string opening = ">WS_UPGRADE <WS_ACCEPT >EIO_PING <EIO_PONG >EIO_UPGRADE <EIO_NOOP >SIO_CONNECT <SIO_CONNECT";
    const std::string turn_a = " >ratchet_msg <ACK ratchet_msg";  // alice sends, the server acks
    const std::string turn_b = " <ratchet_msg >ACK ratchet_msg";  // bob's relayed, alice acks
    // Each client closes twice: before and after the server's close.
    const std::string closing = " >WS_CLOSE <WS_CLOSE >WS_CLOSE";
    CHECK(types(*orig->alice) == opening +
                                     " >register_user <ACK register_user >request_users <ACK request_users"
                                     " >request_prekey <ACK request_prekey >x3dh_message <ACK x3dh_message" +
                                     turn_a + turn_a + turn_b + turn_b + turn_a + turn_a + turn_b + turn_b + closing);
    // Bob's side: his client sent close, then a Socket.IO and an Engine.IO
    // disconnect, then close again after the server's.
    CHECK(types(*orig->bob) == opening + " >register_user <ACK register_user <x3dh_message >ACK x3dh_message" +
                                   turn_b + turn_b + turn_a + turn_a + turn_b + turn_b + turn_a + turn_a +
                                   " >WS_CLOSE >SIO_DISCONNECT >EIO_CLOSE <WS_CLOSE >WS_CLOSE");

    const Run& alice = *orig->alice;
    CHECK(alice.messages[2].value("signal.eio.data") == "probe");
    CHECK(alice.messages[3].value("signal.eio.data") == "probe");
    CHECK(alice.messages[7].value("signal.sio.sid") == "8NpJbyskOTm9zh1WAAAD");
    const Message* reg = first_of(alice, "register_user");
    REQUIRE(reg);
    CHECK(reg->value("signal.sio.type") == "EVENT");
    CHECK(reg->value("signal.sio.ack_id") == "1");
    CHECK(reg->value("signal.ik") == "d5ifmohgTLZFJBCKLrClvpIApOLp+OzFU/DqtocQ3no=");
    CHECK(first_of(alice, "ACK register_user")->value("signal.ok") == "true");
    CHECK(first_of(alice, "ACK request_users")->value("signal.users") == "bob, alice");
    const Message* bundle = first_of(alice, "ACK request_prekey");
    REQUIRE(bundle);
    CHECK(bundle->value("signal.ok") == "true");
    CHECK(bundle->value("signal.bundle.ik") == "H2M806LIxVRd8GAH9fXtHjOO7GgH2rw20OOkzwb/+Ag=");
    CHECK(bundle->value("signal.bundle.spk") == "5JvGIpPY3+oCoaVHkPE5uvu63YlLT7aN+qpXVY7znkg=");
    const Message* x3dh = first_of(alice, "x3dh_message");
    REQUIRE(x3dh);
    CHECK(x3dh->decoded.authenticated);
    CHECK(x3dh->value("signal.from") == "alice");
    CHECK(x3dh->value("signal.username") == "bob");
    CHECK(x3dh->value("signal.epk") == "ue3m/PEDfvvloaF2XskicYctEAbrg4iNZLFG5YrmBVA=");
    CHECK(x3dh->value("signal.mac_check") == "no key");
    CHECK(x3dh->decoded.session_id == hex(*crypto::base64_decode("ue3m/PEDfvvloaF2XskicYctEAbrg4iNZLFG5YrmBVA=")));
    CHECK_FALSE(x3dh->decoded.plaintext);
    // Bob's connection received the same x3dh_message from the server.
    const Message* relayed = first_of(*orig->bob, "x3dh_message");
    REQUIRE(relayed);
    CHECK(relayed->from == Peer::server);
    CHECK(relayed->value("signal.epk") == x3dh->value("signal.epk"));

    for (const Run* run : {orig->alice, orig->bob}) {
        auto ratchets = run->of_type("ratchet_msg");
        REQUIRE(ratchets.size() == 8);
        std::vector<std::string> counters;
        for (const Message* m : ratchets) {
            CHECK(m->decoded.authenticated);
            CHECK(m->values("signal.header.pn").size() == 1);
            counters.push_back(m->value("signal.from") + " " + m->value("signal.header.pn") + "/" +
                               m->value("signal.header.n"));
            Bytes dh = *crypto::base64_decode(m->value("signal.header.dh"));
            REQUIRE(dh.size() == 32);
            Key32 k{};
            std::copy(dh.begin(), dh.end(), k.begin());
            CHECK(m->decoded.session_id == hex(keylog_id(k, std::stoull(m->value("signal.header.n")))));
        }
        // Two DH-ratchet turns each way: pn "" -> 0, "AAI=" -> 2; n "" -> 0, "AQ==" -> 1.
        CHECK(counters == std::vector<std::string>{"alice 0/0", "alice 0/1", "bob 0/0", "bob 0/1", "alice 2/0",
                                                   "alice 2/1", "bob 2/0", "bob 2/1"});
        for (const auto* a : run->of_type("ACK ratchet_msg")) CHECK(a->value("signal.ok") == "true");
    }
    CHECK(alice.messages.size() == 8 + 8 + 16 + 3);
}

TEST_CASE("signal codec: the capture's only anomalies are the clients' frames after their close",
          "[stream][originals]") {
    NEED_CAPTURE();
    for (const Run* run : {orig->polls[0], orig->polls[1]}) {
        INFO(summary(*run));
        CHECK(run->anomalies() == 0);
    }
    std::vector<std::string> alice;
    for (const auto& m : orig->alice->messages)
        for (const auto& a : m.decoded.anomalies) alice.push_back(m.decoded.type + ": " + a);
    CHECK(alice == std::vector<std::string>{"WS_CLOSE: a second close frame from this side"});
    // python-socketio's client sent "41" and "1" after its own close frame,
    // then a second close: RFC 6455 forbids both.
    std::vector<std::string> found;
    for (const auto& m : orig->bob->messages)
        for (const auto& a : m.decoded.anomalies) found.push_back(m.decoded.type + ": " + a);
    INFO(summary(*orig->bob));
    CHECK(found == std::vector<std::string>{
                       "SIO_DISCONNECT: a data message after this side's close frame (RFC 6455 5.5.1: none may follow)",
                       "EIO_CLOSE: a data message after this side's close frame (RFC 6455 5.5.1: none may follow)",
                       "WS_CLOSE: a second close frame from this side"});
}

TEST_CASE("signal codec: the capture cut at every byte boundary frames and decodes identically",
          "[stream][originals]") {
    NEED_CAPTURE();
    for (const auto& [id, s] : orig->streams) {
        if (s.chunks.empty()) continue;
        INFO("stream " << id);
        const Run& whole = orig->runs.at(id);
        for (std::size_t piece : {1, 2, 7, 50}) {
            INFO("pieces of " << piece);
            Run cut = run_codec(s.chunks, nullptr, piece);
            CHECK(cut.errors.empty());
            CHECK(summary(cut) == summary(whole));
        }
    }
}

TEST_CASE("signal detection: Socket.IO requests with EIO=4 only", "[stream][originals]") {
    NEED_CAPTURE();
    for (const auto& [id, s] : orig->streams) {
        Bytes first;
        for (const auto& c : s.chunks)
            if (c.from == Peer::client) {
                first = c.data;
                break;
            }
        INFO("stream " << id);
        CHECK(detect(first));
    }
    CHECK(detect(as_bytes("POST /socket.io/?transport=polling&EIO=4&sid=x HTTP/1.1\r\n")));
    CHECK(detect(as_bytes("GET /socket.io?EIO=4&transport=polling HTTP/1.1\r\n")));
    CHECK_FALSE(detect(as_bytes("GET /socket.io/?transport=polling&EIO=3 HTTP/1.1\r\n")));
    CHECK_FALSE(detect(as_bytes("GET /socket.io/?transport=polling HTTP/1.1\r\n")));
    CHECK_FALSE(detect(as_bytes("GET /socket.io/?EIO=4")));  // the target still arriving
    CHECK_FALSE(detect(as_bytes("GET /ws/chat?session_id=1&EIO=4 HTTP/1.1\r\n")));
    CHECK_FALSE(detect(as_bytes("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n")));
    CHECK_FALSE(detect(as_bytes("GET /socket.iox/?EIO=4 HTTP/1.1\r\n")));
    CHECK_FALSE(detect(as_bytes("\x82\x85socket.io/?EIO=4")));
    CHECK_FALSE(detect({}));
}

TEST_CASE("signal codec: located fields are the bytes of the server's frames", "[stream][originals]") {
    NEED_CAPTURE();
    auto codec = make_stream_codec(nullptr);
    std::size_t located = 0;
    for (const Run* run : {orig->alice, orig->bob}) {
        for (const auto& m : run->messages) {
            for (const char* path : kFieldPaths) {
                auto span = codec->locate(m.bytes, path);
                if (m.from == Peer::client && m.decoded.type != "WS_UPGRADE") {
                    // Masked with a random key: the bytes as sent are not the text.
                    CHECK_FALSE(span);
                    continue;
                }
                auto value = m.field(path);
                if (!span) {
                    // A field decode shows that is not on the wire as its value.
                    if (value && std::string(path) != "signal.event" && std::string(path) != "signal.header.pn" &&
                        std::string(path) != "signal.header.n")
                        FAIL_CHECK(m.decoded.type << " has " << path << " = " << *value << " but it is not located");
                    continue;
                }
                REQUIRE(span->offset + span->length <= m.bytes.size());
                std::string at(m.bytes.begin() + static_cast<std::ptrdiff_t>(span->offset),
                               m.bytes.begin() + static_cast<std::ptrdiff_t>(span->offset + span->length));
                ++located;
                INFO(m.decoded.type << " " << path);
                if (std::string(path) == "signal.header.pn" || std::string(path) == "signal.header.n") {
                    auto raw = crypto::base64_decode(at);
                    REQUIRE(raw);
                    CHECK(std::to_string(*decode_counter(*raw)) == *value);
                } else if (std::string(path) == "signal.event" && m.decoded.type.rfind("ACK ", 0) == 0) {
                    FAIL_CHECK("an ACK has no event name on the wire");
                } else {
                    REQUIRE(value);
                    CHECK(at == *value);
                }
            }
        }
    }
    CHECK(located > 50);
    // In the server's x3dh_message to bob: flip a bit of the hmac in place.
    const Message* relayed = first_of(*orig->bob, "x3dh_message");
    REQUIRE(relayed);
    auto span = codec->locate(relayed->bytes, "signal.hmac");
    REQUIRE(span);
    CHECK(span->length == 44);
    Bytes changed = relayed->bytes;
    changed[span->offset] = changed[span->offset] == 'A' ? 'B' : 'A';
    std::vector<Chunk> chunks = {{Peer::client, to_bytes(kUpgrade)}, {Peer::server, to_bytes(kSwitching)},
                                 {Peer::server, changed}};
    Run r = run_codec(chunks);
    REQUIRE(r.messages.size() == 3);
    CHECK(r.messages[2].decoded.type == "x3dh_message");
    CHECK(r.messages[2].value("signal.hmac") != relayed->value("signal.hmac"));
    CHECK(r.messages[2].value("signal.hmac").size() == 44);
}

// ---- Polling ---------------------------------------------------------------------------

TEST_CASE("signal codec: polling bodies with several packets joined by 0x1e", "[stream]") {
    Pair p;
    const std::string open_data = "0{\"sid\":\"jGgU-pDc6jF4ctTbAAAA\",\"upgrades\":[\"websocket\"],\"pingTimeout\":20000,"
                                  "\"pingInterval\":25000,\"maxPayload\":1000000}";
    const std::string client_batch = "40\x1e" + event("register_user", p.register_json("alice"), 1) + "\x1e" +
                                     event("request_users", nullptr, 2);
    const std::string server_batch = "40{\"sid\":\"pYRGy8yjgHxtU0yLAAAB\"}\x1e" + ack(1, Json::array({true})) +
                                     "\x1e" + ack(2, Json::array({Json::array({"alice", "bob"})})) + "\x1e" + "2";
    std::vector<Chunk> chunks = {
        {Peer::client, to_bytes("GET /socket.io/?transport=polling&EIO=4&t=1795272083.7369206 HTTP/1.1\r\n"
                                "Host: 127.0.0.1:8080\r\n\r\n")},
        {Peer::server, to_bytes(http_response(open_data))},
        {Peer::client, to_bytes(post_request(client_batch))},
        {Peer::server, to_bytes("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nok")},
        {Peer::client, to_bytes(poll_request())},
        {Peer::server, to_bytes(http_response(server_batch))},
        {Peer::client, to_bytes(post_request("3"))},
        {Peer::server, to_bytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")},
    };
    Run r = run_codec(chunks);
    INFO(summary(r));
    CHECK(r.errors.empty());
    CHECK(types(r) ==
          ">HTTP_POLL <EIO_OPEN >SIO_CONNECT, register_user, request_users <HTTP_OK >HTTP_POLL "
          "<SIO_CONNECT, ACK register_user, ACK request_users, EIO_PING >EIO_PONG <HTTP_OK");
    CHECK(r.anomalies() == 0);
    CHECK(r.messages[1].value("signal.eio.max_payload") == "1000000");
    const Message& post = r.messages[2];
    CHECK(post.values("signal.eio.type") == std::vector<std::string>{"MESSAGE", "MESSAGE", "MESSAGE"});
    CHECK(post.values("signal.sio.ack_id") == std::vector<std::string>{"1", "2"});
    CHECK(post.value("signal.username") == "alice");
    CHECK(post.value("signal.transport") == "polling");
    const Message& answer = r.messages[5];
    CHECK(answer.value("signal.sio.sid") == "pYRGy8yjgHxtU0yLAAAB");
    CHECK(answer.values("signal.event") == std::vector<std::string>{"register_user", "request_users"});
    CHECK(answer.value("signal.users") == "alice, bob");

    // locate() finds a field in a later packet of the body.
    auto codec = make_stream_codec(nullptr);
    auto span = codec->locate(post.bytes, "signal.username");
    REQUIRE(span);
    CHECK(to_string(ByteView(post.bytes).subspan(span->offset, span->length)) == "alice");
    span = codec->locate(post.bytes, "signal.ik");
    REQUIRE(span);
    CHECK(to_string(ByteView(post.bytes).subspan(span->offset, span->length)) == b64s(p.alice.ik.public_key));
    span = codec->locate(post.bytes, "signal.sio.ack_id");
    REQUIRE(span);
    CHECK(to_string(ByteView(post.bytes).subspan(span->offset, span->length)) == "1");
    span = codec->locate(r.messages[1].bytes, "signal.eio.sid");
    REQUIRE(span);
    CHECK(to_string(ByteView(r.messages[1].bytes).subspan(span->offset, span->length)) == "jGgU-pDc6jF4ctTbAAAA");
    span = codec->locate(r.messages[4].bytes, "signal.eio.sid");  // the poll's query
    REQUIRE(span);
    CHECK(to_string(ByteView(r.messages[4].bytes).subspan(span->offset, span->length)) == "jGgU-pDc6jF4ctTbAAAA");
    CHECK_FALSE(codec->locate(r.messages[3].bytes, "signal.username"));

    // Every cut of the same bytes gives the same messages.
    for (std::size_t piece : {1, 3, 16}) {
        Run cut = run_codec(chunks, nullptr, piece);
        CHECK(summary(cut) == summary(r));
    }
}

TEST_CASE("signal codec: compressed polling bodies are inflated", "[stream]") {
    const std::string body = "40{\"sid\":\"x\"}\x1e" + ack(3, Json::array({Json::array({"alice", "bob", "carol"})}));
    for (int window : {15 + 16, 15}) {  // gzip, then zlib ("deflate" as Python's zlib.compress writes it)
        z_stream z{};
        REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, window, 8, Z_DEFAULT_STRATEGY) == Z_OK);
        Bytes out(1024);
        z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(body.data()));
        z.avail_in = static_cast<uInt>(body.size());
        z.next_out = out.data();
        z.avail_out = static_cast<uInt>(out.size());
        REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
        out.resize(out.size() - z.avail_out);
        deflateEnd(&z);
        std::string coding = window > 15 ? "gzip" : "deflate";
        std::string response = "HTTP/1.1 200 OK\r\nContent-Encoding: " + coding +
                               "\r\nContent-Length: " + std::to_string(out.size()) + "\r\n\r\n" + to_string(out);
        Run r = run_codec({{Peer::client, to_bytes(poll_request())}, {Peer::server, to_bytes(response)}});
        INFO(summary(r));
        REQUIRE(r.messages.size() == 2);
        CHECK(r.messages[1].decoded.type == "SIO_CONNECT, ACK");
        CHECK(r.messages[1].value("signal.content_encoding") == coding);
        CHECK(r.messages[1].anomaly("answers no event"));
        // Compressed text is not located.
        CHECK_FALSE(make_stream_codec(nullptr)->locate(to_bytes(response), "signal.sio.ack_id"));
        // Cut short, it is an anomaly.
        std::string cut = "HTTP/1.1 200 OK\r\nContent-Encoding: " + coding + "\r\nContent-Length: 10\r\n\r\n" +
                          to_string(ByteView(out).first(10));
        Run c = run_codec({{Peer::client, to_bytes(poll_request())}, {Peer::server, to_bytes(cut)}});
        REQUIRE(c.messages.size() == 2);
        CHECK(c.messages[1].anomaly("does not inflate"));
    }
}

// ---- Anomalies ---------------------------------------------------------------------------

TEST_CASE("signal codec: each anomaly on a crafted stream", "[stream]") {
    Pair p;
    const Json alice_reg = p.register_json("alice");
    const Json bob_bundle = bundle_json(p.bob.bundle());

    SECTION("an x3dh_message replayed with the same epk") {
        Run r = run_codec(connection({{Peer::client, event("register_user", alice_reg, 1)},
                                      {Peer::client, event("x3dh_message", p.x3dh_json(), 2)},
                                      {Peer::client, event("x3dh_message", p.x3dh_json(), 3)}}));
        INFO(summary(r));
        REQUIRE(r.messages.size() == 5);
        CHECK_FALSE(r.messages[3].anomaly("replays an epk"));
        CHECK(r.messages[4].anomaly("replays an epk"));
        // The other direction has its own memory: the relay to bob is no replay.
        Run b = run_codec(connection({{Peer::server, event("x3dh_message", p.x3dh_json(), 1)},
                                      {Peer::client, event("x3dh_message", p.x3dh_json(), 1)}}));
        CHECK(b.anomalies() == 0);
    }
    SECTION("a ratchet_msg repeated, a counter beyond MAX_SKIP") {
        Json m0 = p.send(true, "one");
        std::vector<Json> more;
        for (int i = 0; i < 12; ++i) more.push_back(p.send(true, "skip"));
        Run r = run_codec(connection({{Peer::client, event("register_user", alice_reg, 1)},
                                      {Peer::client, event("x3dh_message", p.x3dh_json(), 2)},
                                      {Peer::client, event("ratchet_msg", m0, 3)},
                                      {Peer::client, event("ratchet_msg", m0, 4)},
                                      {Peer::client, event("ratchet_msg", more[10], 5)},
                                      {Peer::client, event("ratchet_msg", more[11], 6)}}));
        INFO(summary(r));
        REQUIRE(r.messages.size() == 8);
        CHECK(r.messages[4].decoded.anomalies.empty());
        CHECK(r.messages[5].anomaly("repeats the (header.dh, header.n = 0)"));
        CHECK(r.messages[6].decoded.anomalies.empty());  // n = 11: ten skipped after n = 0
        CHECK(r.messages[7].decoded.anomalies.empty());
        // n = 12 straight after n = 0: eleven keys skipped.
        Run j = run_codec(connection({{Peer::client, event("x3dh_message", p.x3dh_json(), 1)},
                                      {Peer::client, event("ratchet_msg", m0, 2)},
                                      {Peer::client, event("ratchet_msg", more[11], 3)}}));
        INFO(summary(j));
        CHECK(j.messages[4].anomaly("header.n 12 is more than MAX_SKIP (10) beyond the chain's next message 1"));
        // The first message of a session with n = 11.
        Run f = run_codec(connection({{Peer::client, event("x3dh_message", p.x3dh_json(), 1)},
                                      {Peer::client, event("ratchet_msg", more[10], 2)}}));
        CHECK(f.messages[3].anomaly("header.n 11 on a new chain is more than MAX_SKIP"));
        // Without the session's start in the stream, nothing is assumed.
        Run mid = run_codec(connection({{Peer::client, event("ratchet_msg", more[10], 2)}}));
        CHECK(mid.anomalies() == 0);
    }
    SECTION("header.pn beyond MAX_SKIP after a DH-ratchet turn") {
        Json m0 = p.send(true, "a0");
        Json b0 = p.send(false, "b0");   // bob turns
        Json a1 = p.send(true, "a1");    // alice turns: pn 1
        Json step = a1;
        step["header"]["pn"] = b64s(encode_counter(13));
        Run r = run_codec(connection({{Peer::client, event("x3dh_message", p.x3dh_json(), 1)},
                                      {Peer::client, event("ratchet_msg", m0, 2)},
                                      {Peer::client, event("ratchet_msg", step, 3)}}));
        INFO(summary(r));
        CHECK(r.messages[4].value("signal.header.pn") == "13");
        CHECK(r.messages[4].anomaly("header.pn 13 is more than MAX_SKIP (10) beyond the previous chain's next message 1"));
        Run ok = run_codec(connection({{Peer::client, event("x3dh_message", p.x3dh_json(), 1)},
                                       {Peer::client, event("ratchet_msg", m0, 2)},
                                       {Peer::server, event("ratchet_msg", b0, 1)},
                                       {Peer::client, event("ratchet_msg", a1, 3)}}));
        CHECK(ok.anomalies() == 0);
    }
    SECTION("a from that is not the connection's user") {
        Json m0 = p.send(true, "hi");
        Json spoofed = p.x3dh_json();
        spoofed["from"] = "mallory";
        m0["from"] = "carol";
        Run r = run_codec(connection({{Peer::client, event("register_user", p.register_json("mallory"), 1)},
                                      {Peer::client, event("x3dh_message", p.x3dh_json(), 2)},
                                      {Peer::client, event("x3dh_message", spoofed, 3)},
                                      {Peer::client, event("ratchet_msg", m0, 4)}}));
        INFO(summary(r));
        CHECK(r.messages[3].anomaly("x3dh_message: \"from\" is alice but this connection registered as mallory"));
        CHECK_FALSE(r.messages[4].anomaly("\"from\""));
        CHECK(r.messages[5].anomaly("ratchet_msg: \"from\" is carol but this connection registered as mallory"));
        // A relayed message for someone else.
        Run s = run_codec(connection({{Peer::client, event("register_user", p.register_json("carol"), 1)},
                                      {Peer::server, event("x3dh_message", p.x3dh_json(), 1)}}));
        CHECK(s.messages[3].anomaly("x3dh_message for bob delivered to this connection, which registered as carol"));
    }
    SECTION("a bundle that changed for a name, an identity key that changed") {
        Bundle other = p.alice.bundle();  // alice's keys served as bob's
        Run r = run_codec(connection({{Peer::client, event("request_prekey", Json{{"username", "bob"}}, 1)},
                                      {Peer::server, ack(1, Json::array({true, bob_bundle}))},
                                      {Peer::client, event("request_prekey", Json{{"username", "bob"}}, 2)},
                                      {Peer::server, ack(2, Json::array({true, bundle_json(other)}))}}));
        INFO(summary(r));
        CHECK(r.messages[3].decoded.anomalies.empty());
        CHECK(r.messages[5].anomaly("carries another bundle for bob than the bundle for bob did (ik, sik, spk, spk_sig changed)"));
        // The x3dh_message's ik for alice differs from what alice registered.
        Json x = p.x3dh_json();
        x["ik"] = b64s(p.bob.ik.public_key);
        Run i = run_codec(connection({{Peer::client, event("register_user", alice_reg, 1)},
                                      {Peer::client, event("x3dh_message", x, 2)}}));
        CHECK(i.messages[3].anomaly("x3dh_message from alice gives alice another identity key than register_user did"));
        // A second registration of the same name with other keys.
        Run two = run_codec(connection({{Peer::client, event("register_user", alice_reg, 1)},
                                        {Peer::client, event("register_user", register_user_json(register_user("alice", p.bob)), 2)}}));
        CHECK(two.messages[3].anomaly("register_user carries another bundle for alice"));
        // A prekey signature that does not verify.
        Json bad = bob_bundle;
        Bundle broken = p.bob.bundle();
        broken.spk_sig[0] ^= 1;
        bad["spk_sign"] = b64s(broken.spk_sig);
        Run sig = run_codec(connection({{Peer::client, event("request_prekey", Json{{"username", "bob"}}, 1)},
                                        {Peer::server, ack(1, Json::array({true, bad}))}}));
        CHECK(sig.messages[3].anomaly("spk_sign does not verify under its sik"));
    }
    SECTION("pongi and pingi, unknown events, events from the wrong side") {
        Run r = run_codec(connection({{Peer::client, event("pongi", "x", 1)},
                                      {Peer::server, ack(1, Json::array({true}))},
                                      {Peer::server, event("pingi", "sankalp", std::nullopt)},
                                      {Peer::client, event("chat", "hi", std::nullopt)},
                                      {Peer::server, event("register_user", alice_reg, std::nullopt)}}));
        INFO(summary(r));
        CHECK(types(r) == ">WS_UPGRADE <WS_ACCEPT >pongi <ACK pongi <pingi >chat <register_user");
        CHECK(r.messages[2].anomaly("pongi: the original's debug event"));
        CHECK(r.messages[2].value("signal.args") == "[\"x\"]");
        CHECK(r.messages[4].anomaly("pingi: the original's debug broadcast"));
        CHECK(r.messages[5].anomaly("an unknown event \"chat\""));
        CHECK(r.messages[6].anomaly("a register_user event from the server (only the client sends it)"));
    }
    SECTION("acks that answer nothing, ack ids reused") {
        Run r = run_codec(connection({{Peer::server, ack(5, Json::array({true}))},
                                      {Peer::client, event("request_users", nullptr, 1)},
                                      {Peer::client, event("request_users", nullptr, 1)},
                                      {Peer::client, ack(1, Json::array({true}))},  // answers no server event
                                      {Peer::server, ack(1, Json::array({Json::array()}))}}));
        INFO(summary(r));
        CHECK(types(r) == ">WS_UPGRADE <WS_ACCEPT <ACK >request_users >request_users >ACK <ACK request_users");
        CHECK(r.messages[2].anomaly("an ACK with id 5 that answers no event the client sent"));
        CHECK(r.messages[4].anomaly("ack id 1 reused"));
        CHECK(r.messages[5].anomaly("answers no event the server sent"));
    }
    SECTION("malformed packets and bad base64 or key lengths") {
        Json short_key = alice_reg;
        short_key["ik"] = b64s(Bytes(31, 1));
        Json not_b64 = p.x3dh_json();
        not_b64["epk"] = "not base64!";
        Json bad_n = p.send(true, "x");
        bad_n["header"]["n"] = "AQ";  // no padding
        Run r = run_codec(connection({{Peer::client, "9"},
                                      {Peer::client, "4x"},
                                      {Peer::client, "42[\"x\""},
                                      {Peer::client, event("register_user", short_key, 1)},
                                      {Peer::client, event("x3dh_message", not_b64, 2)},
                                      {Peer::client, event("ratchet_msg", bad_n, 3)},
                                      {Peer::client, event("register_user", "alice", 4)},
                                      {Peer::client, "b4AAAA"},
                                      {Peer::client, ""}}));
        INFO(summary(r));
        CHECK(types(r) == ">WS_UPGRADE <WS_ACCEPT >EIO_MALFORMED >SIO_MALFORMED >SIO_MALFORMED >register_user "
                          ">x3dh_message >ratchet_msg >register_user >EIO_MALFORMED >EIO_MALFORMED");
        CHECK(r.messages[2].anomaly("a malformed Engine.IO packet"));
        CHECK(r.messages[3].anomaly("a malformed Socket.IO packet"));
        CHECK(r.messages[5].anomaly("register_user: ik: must be base64 of 32 bytes, not 31"));
        CHECK(r.messages[6].anomaly("x3dh_message: epk: not canonical standard base64 with padding"));
        CHECK(r.messages[6].decoded.authenticated);
        CHECK(r.messages[7].anomaly("ratchet_msg: header.n"));
        CHECK(r.messages[7].value("signal.header.n") == "AQ");  // shown as sent when it does not decode
        CHECK(r.messages[8].anomaly("register_user: the argument is not a JSON object"));
        CHECK(r.messages[9].anomaly("binary Engine.IO packet"));
    }
    SECTION("WebSocket framing problems") {
        csmp::WsFrame bin;
        bin.opcode = csmp::ws_opcode::binary;
        bin.masked = true;
        bin.payload = to_bytes("421[\"x\"]");
        csmp::WsFrame part;
        part.fin = false;
        part.masked = true;
        part.payload = to_bytes("421[\"request_");
        csmp::WsFrame rest;
        rest.opcode = csmp::ws_opcode::continuation;
        rest.masked = true;
        rest.payload = to_bytes("users\"]");
        std::vector<Chunk> chunks = {{Peer::client, to_bytes(kUpgrade)},
                                     {Peer::server, to_bytes(kSwitching)},
                                     {Peer::client, csmp::build_ws_frame(bin)},
                                     {Peer::client, csmp::build_ws_frame(part)},
                                     {Peer::client, csmp::build_ws_frame(rest)},
                                     {Peer::server, ws_text("431[[]]", Peer::client)},  // masked by the server
                                     {Peer::client, csmp::build_ws_frame(rest)}};
        Run r = run_codec(chunks);
        INFO(summary(r));
        CHECK(types(r) == ">WS_UPGRADE <WS_ACCEPT >WS_BINARY >WS_FRAGMENT >request_users <ACK request_users >MALFORMED");
        CHECK(r.messages[2].anomaly("a binary message"));
        CHECK(r.messages[4].value("signal.fragments") == "2");
        CHECK(r.messages[5].anomaly("a masked server frame"));
        CHECK(r.messages[6].decoded.anomalies.size() == 1);
    }
}

TEST_CASE("signal codec: malformed input gives parse errors or anomalies, never a crash", "[stream]") {
    Pair p;
    // Bytes that are not a request at all.
    {
        auto codec = make_stream_codec(nullptr);
        auto r = codec->frame(Peer::client, as_bytes("\x16\x03\x01\x02\x00 hello"));
        CHECK_FALSE(r);
        DecodedMessage d = codec->decode(Peer::client, as_bytes("\x16\x03\x01"));
        CHECK(d.type == "MALFORMED");
        CHECK_FALSE(d.anomalies.empty());
    }
    // A WebSocket frame with a reserved opcode.
    {
        Run r = run_codec({{Peer::client, to_bytes(kUpgrade)}, {Peer::server, to_bytes(kSwitching)},
                           {Peer::server, Bytes{0x83, 0x01, 0x34}}});
        CHECK(r.errors.size() == 1);
    }
    // Every byte of real messages changed, and every prefix, through fresh
    // codecs: whatever comes back, nothing escapes.
    std::vector<Chunk> base = connection({{Peer::client, event("register_user", p.register_json("alice"), 1)},
                                          {Peer::server, ack(1, Json::array({true}))},
                                          {Peer::client, event("x3dh_message", p.x3dh_json(), 2)},
                                          {Peer::client, event("ratchet_msg", p.send(true, "hello"), 3)},
                                          {Peer::server, event("ratchet_msg", p.send(false, "hi"), 7)}});
    base.insert(base.begin() + 2, {Peer::server, to_bytes(http_response("0{\"sid\":\"a\"}\x1e" "40"))});
    std::size_t decoded = 0;
    for (std::size_t c = 2; c < base.size(); ++c) {
        for (std::size_t at = 0; at < base[c].data.size(); ++at) {
            for (std::uint8_t x : {std::uint8_t{0x01}, std::uint8_t{0x80}, std::uint8_t{0xff}}) {
                std::vector<Chunk> v = base;
                v[c].data[at] ^= x;
                Run r = run_codec(v, &p.log);
                decoded += r.messages.size();
            }
            std::vector<Chunk> t(base.begin(), base.begin() + static_cast<std::ptrdiff_t>(c) + 1);
            t.back().data.resize(at);
            Run r = run_codec(t, &p.log);
            auto codec = make_stream_codec(&p.log);
            for (const char* path : kFieldPaths)
                if (auto s = codec->locate(t.back().data, path)) CHECK(s->offset + s->length <= t.back().data.size());
        }
    }
    CHECK(decoded > 1000);
}

// ---- Decryption ----------------------------------------------------------------------------

TEST_CASE("signal codec: a key log opens the x3dh_message and ratchet messages, MACs checked", "[stream]") {
    Pair p;
    Json a0 = p.send(true, "hello bob");
    Json a1 = p.send(true, "second");
    Json b0 = p.send(false, "hi alice");
    Json a2 = p.send(true, "after a turn");
    // Alice's connection: she registers, fetches bob's bundle (so AD is
    // known), starts the session and talks; bob's answers come relayed.
    std::vector<Chunk> alice = connection({{Peer::client, event("register_user", p.register_json("alice"), 1)},
                                           {Peer::server, ack(1, Json::array({true}))},
                                           {Peer::client, event("request_prekey", Json{{"username", "bob"}}, 2)},
                                           {Peer::server, ack(2, Json::array({true, bundle_json(p.bob.bundle())}))},
                                           {Peer::client, event("x3dh_message", p.x3dh_json(), 3)},
                                           {Peer::server, ack(3, Json::array({true}))},
                                           {Peer::client, event("ratchet_msg", a0, 4)},
                                           {Peer::client, event("ratchet_msg", a1, 5)},
                                           {Peer::server, event("ratchet_msg", b0, 1)},
                                           {Peer::client, ack(1, Json::array({true}))},
                                           {Peer::client, event("ratchet_msg", a2, 6)}});
    Run r = run_codec(alice, &p.log);
    INFO(summary(r));
    CHECK(r.anomalies() == 0);
    auto plain = [](const Message* m) { return m && m->decoded.plaintext ? to_string(*m->decoded.plaintext) : "<none>"; };
    const Message* x = first_of(r, "x3dh_message");
    REQUIRE(x);
    CHECK(x->value("signal.mac_check") == "verified");
    CHECK(plain(x) == "##CHAT_START##");
    CHECK(x->value("signal.plaintext") == "##CHAT_START##");
    auto ratchets = r.of_type("ratchet_msg");
    REQUIRE(ratchets.size() == 4);
    std::vector<std::string> texts;
    for (const Message* m : ratchets) {
        CHECK(m->value("signal.mac_check") == "verified");
        CHECK(m->decoded.authenticated);
        texts.push_back(plain(m));
    }
    CHECK(texts == std::vector<std::string>{"hello bob", "second", "hi alice", "after a turn"});
    CHECK(ratchets[3]->value("signal.header.pn") == "2");

    // Without the key log: no plaintext, "no key".
    Run none = run_codec(alice, nullptr);
    for (const auto* m : none.of_type("ratchet_msg")) {
        CHECK(m->value("signal.mac_check") == "no key");
        CHECK_FALSE(m->decoded.plaintext);
    }

    // Bob's connection: his registration gives his IK, the relayed
    // x3dh_message alice's.
    std::vector<Chunk> bob = connection({{Peer::client, event("register_user", p.register_json("bob"), 1)},
                                         {Peer::server, ack(1, Json::array({true}))},
                                         {Peer::server, event("x3dh_message", p.x3dh_json(), 1)},
                                         {Peer::client, ack(1, Json::array({true}))},
                                         {Peer::server, event("ratchet_msg", a0, 2)},
                                         {Peer::client, ack(2, Json::array({true}))},
                                         {Peer::client, event("ratchet_msg", b0, 2)}});
    Run rb = run_codec(bob, &p.log);
    INFO(summary(rb));
    CHECK(rb.anomalies() == 0);
    CHECK(first_of(rb, "x3dh_message")->value("signal.mac_check") == "verified");
    auto rbr = rb.of_type("ratchet_msg");
    REQUIRE(rbr.size() == 2);
    CHECK(plain(rbr[0]) == "hello bob");
    CHECK(plain(rbr[1]) == "hi alice");
    CHECK(rbr[1]->value("signal.mac_check") == "verified");

    // Without the responder's IK in the stream, AD is unknown: opened, MAC not checked.
    Run partial = run_codec(connection({{Peer::client, event("x3dh_message", p.x3dh_json(), 1)},
                                        {Peer::client, event("ratchet_msg", a0, 2)}}),
                            &p.log);
    INFO(summary(partial));
    CHECK(partial.messages[2].value("signal.mac_check").rfind("MAC not checked", 0) == 0);
    CHECK(plain(&partial.messages[2]) == "##CHAT_START##");
    CHECK(partial.messages[3].value("signal.mac_check").rfind("MAC not checked", 0) == 0);
    CHECK(plain(&partial.messages[3]) == "hello bob");
    CHECK(partial.anomalies() == 0);
    Run alone = run_codec(connection({{Peer::client, event("ratchet_msg", a0, 2)}}), &p.log);
    CHECK(alone.messages[2].value("signal.mac_check").rfind("MAC not checked: AD unknown (no x3dh_message", 0) == 0);
    CHECK(plain(&alone.messages[2]) == "hello bob");
}

TEST_CASE("signal codec: tampered messages fail the MAC, the recipient's ack is flagged", "[stream]") {
    Pair p;
    Json a0 = p.send(true, "hello bob");
    Json bad_x = p.x3dh_json();
    Bundle b = p.bob.bundle();
    X3dhMessage xm = *parse_x3dh_message(bad_x);
    xm.hmac[5] ^= 0x10;
    Json tampered = a0;
    RatchetMsg rm = *parse_ratchet_msg(a0);
    rm.message.cipher[0] ^= 1;
    tampered = ratchet_msg_json(rm);
    Json zero = a0;
    zero["hmac"] = b64s(Bytes(32, 0));
    std::vector<Chunk> bob = connection({{Peer::client, event("register_user", p.register_json("bob"), 1)},
                                         {Peer::server, event("x3dh_message", x3dh_message_json(xm), 1)},
                                         {Peer::client, ack(1, Json::array({true}))},
                                         {Peer::server, event("x3dh_message", p.x3dh_json(), 2)},
                                         {Peer::server, event("ratchet_msg", tampered, 3)},
                                         {Peer::server, event("ratchet_msg", zero, 4)}});
    Run r = run_codec(bob, &p.log);
    INFO(summary(r));
    REQUIRE(r.messages.size() == 8);
    CHECK(r.messages[3].value("signal.mac_check") == "HMAC mismatch");
    CHECK(r.messages[3].anomaly("HMAC mismatch"));
    CHECK(r.messages[4].anomaly("the recipient acked [true] an x3dh_message whose HMAC does not verify"));
    CHECK(r.messages[5].anomaly("replays an epk"));  // the same epk relayed again
    CHECK(r.messages[5].value("signal.mac_check") == "verified");
    CHECK(r.messages[6].value("signal.mac_check") == "HMAC mismatch");
    CHECK(r.messages[7].anomaly("zero HMAC"));
    CHECK(r.messages[7].anomaly("HMAC mismatch"));
    CHECK(r.messages[7].anomaly("repeats the (header.dh, header.n = 0)"));
    (void)b;
}

TEST_CASE("signal codec: locate() in zero-masked client frames and not in masked ones", "[stream]") {
    Pair p;
    Json a0 = p.send(true, "hello bob");
    std::string packet = event("ratchet_msg", a0, 12);
    auto codec = make_stream_codec(nullptr);
    Bytes zero = ws_text(packet, Peer::client, {0, 0, 0, 0});
    Bytes masked = ws_text(packet, Peer::client);
    Bytes server = ws_text(packet, Peer::server);
    RatchetMsg rm = *parse_ratchet_msg(a0);
    for (const Bytes* frame : {&zero, &server}) {
        auto at = [&](const char* path) {
            auto s = codec->locate(*frame, path);
            REQUIRE(s);
            return to_string(ByteView(*frame).subspan(s->offset, s->length));
        };
        CHECK(at("signal.cipher") == b64s(rm.message.cipher));
        CHECK(at("signal.hmac") == b64s(rm.message.hmac));
        CHECK(at("signal.header.dh") == b64s(rm.message.header.dh));
        CHECK(at("signal.header.n") == "");
        CHECK(at("signal.from") == "alice");
        CHECK(at("signal.username") == "bob");
        CHECK(at("signal.event") == "ratchet_msg");
        CHECK(at("signal.sio.ack_id") == "12");
        CHECK_FALSE(codec->locate(*frame, "signal.epk"));
        CHECK_FALSE(codec->locate(*frame, "signal.bundle.ik"));
        CHECK_FALSE(codec->locate(*frame, "signal.nonsense"));
    }
    CHECK_FALSE(codec->locate(masked, "signal.cipher"));
    // A fragment is not located either.
    csmp::WsFrame part;
    part.fin = false;
    part.payload = to_bytes(packet);
    CHECK_FALSE(codec->locate(csmp::build_ws_frame(part), "signal.cipher"));
}
