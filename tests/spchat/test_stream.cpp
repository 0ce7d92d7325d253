// SP-SimpleChat on the original programs' capture (spchat.pcap: a server on
// 9000 and two original clients), read in place through msglab's pcap reader
// and TCP reassembly: the stream codec decodes every frame, the file chunks
// open with the all-zero key, and msglab's server logic, given the clients'
// frames in capture order with the original's two flaws switched on, answers
// every connection with exactly the bytes the original server sent.
#include <catch2/catch.hpp>

#include <map>

#include "core/crypto.hpp"
#include "replay/tcp_reassembly.hpp"
#include "spchat/app.hpp"
#include "spchat/stream.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::spchat;
using namespace msglab::test;

namespace {

struct Chunk {
    std::uint64_t stream;
    Peer from;
    Bytes data;
};

class Collector final : public replay::ReassemblyHandler {
public:
    void on_stream_open(std::uint64_t, const replay::Address&, const replay::Address&, const replay::FrameInfo&) override {}
    void on_data(std::uint64_t stream, replay::Direction dir, ByteView data, const replay::FrameInfo&) override {
        chunks.push_back({stream, dir == replay::Direction::client_to_server ? Peer::client : Peer::server,
                          Bytes(data.begin(), data.end())});
    }
    void on_gap(std::uint64_t, replay::Direction, std::uint64_t, const replay::FrameInfo&) override { ++gaps; }
    std::vector<Chunk> chunks;  // capture order
    int gaps = 0;
};

struct Message {
    std::uint64_t stream;
    Peer from;
    Bytes bytes;
    DecodedMessage decoded;
    std::optional<std::string> field(std::string_view name) const {
        for (const auto& f : decoded.fields)
            if (f.name == name) return f.value;
        return std::nullopt;
    }
    bool anomaly(std::string_view text) const {
        for (const auto& a : decoded.anomalies)
            if (a.find(text) != std::string::npos) return true;
        return false;
    }
};

struct Original {
    std::vector<Message> messages;  // whole frames, in the order they completed
    int gaps = 0;
    std::size_t leftover = 0;
};

const Original* original() {
    static std::optional<Original> o;
    static bool tried = false;
    if (tried) return o ? &*o : nullptr;
    tried = true;
    auto dir = captures_dir();
    if (!dir || !fs::is_regular_file(*dir / "originals" / "spchat.pcap")) return nullptr;
    Collector c;
    replay::TcpReassembler r(c);
    replay::reassemble_file((*dir / "originals" / "spchat.pcap").string(), r);
    Original x;
    x.gaps = c.gaps;
    std::map<std::uint64_t, std::unique_ptr<StreamCodec>> codecs;
    std::map<std::pair<std::uint64_t, int>, Bytes> buffers;
    for (const auto& ch : c.chunks) {
        auto& codec = codecs[ch.stream];
        if (!codec) codec = make_stream_codec(nullptr);
        Bytes& buf = buffers[{ch.stream, ch.from == Peer::client ? 0 : 1}];
        buf.insert(buf.end(), ch.data.begin(), ch.data.end());
        for (;;) {
            auto len = codec->frame(ch.from, buf);
            REQUIRE(len);
            if (*len == 0) break;
            ByteView m(buf.data(), *len);
            x.messages.push_back({ch.stream, ch.from, Bytes(m.begin(), m.end()), codec->decode(ch.from, m)});
            buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*len));
        }
    }
    for (const auto& [k, b] : buffers) x.leftover += b.size();
    o = std::move(x);
    return &*o;
}

#define NEED_CAPTURE()                                \
    const Original* orig = original();                \
    if (!orig) MSGLAB_SKIP("captures/originals/spchat.pcap not found (set MSGLAB_CAPTURES_DIR)")

}  // namespace

TEST_CASE("spchat codec: every frame of the original capture decodes, none left over", "[stream][originals]") {
    NEED_CAPTURE();
    CHECK(orig->gaps == 0);
    CHECK(orig->leftover == 0);
    std::map<std::string, int> types;
    for (const auto& m : orig->messages) {
        CHECK(m.decoded.type != "MALFORMED");
        ++types[(m.from == Peer::client ? ">" : "<") + m.decoded.type];
    }
    for (const char* t : {">HELLO", "<INFO", ">JOIN", "<MSG", ">MSG", ">WHO", "<WHO_LIST", ">FILE_START", ">FILE_CHUNK",
                          ">FILE_END", "<FILE_START", "<FILE_CHUNK", "<FILE_END", ">PING", "<PONG", ">QUIT", ">LEAVE"}) {
        INFO(t);
        CHECK(types[t] > 0);
    }
    // Two transfers of two chunks, sent once and relayed once each.
    CHECK(types[">FILE_CHUNK"] == 4);
    CHECK(types["<FILE_CHUNK"] == 4);
}

TEST_CASE("spchat codec: the capture's files open with the all-zero key, whole and hash-checked", "[stream][originals]") {
    NEED_CAPTURE();
    std::map<std::pair<std::uint64_t, std::string>, Bytes> files;  // (stream, file id) -> plaintext
    std::map<std::string, std::string> sha;
    for (const auto& m : orig->messages) {
        if (m.decoded.type == "FILE_START") {
            CHECK(m.anomaly("anyone who sees this frame reads the file"));
            sha[*m.field("spchat.file_id")] = *m.field("spchat.sha256");
            CHECK(m.field("spchat.size") == std::string("40000"));
        }
        if (m.decoded.type == "FILE_CHUNK") {
            REQUIRE(m.decoded.plaintext);
            Bytes& f = files[{m.stream, *m.field("spchat.file_id")}];
            f.insert(f.end(), m.decoded.plaintext->begin(), m.decoded.plaintext->end());
        }
    }
    REQUIRE(files.size() == 4);  // two files, each seen on the sender's and the receiver's connection
    for (const auto& [key, data] : files) {
        CHECK(data.size() == 40000);
        auto d = crypto::sha256(data);
        CHECK(hex(Bytes(d.begin(), d.end())) == sha[key.second]);
        CHECK(sha[key.second] == "545a6578cf5110b4332640acea6330c6e44d73bb6514be1d04f377034c47f780");
    }
}

TEST_CASE("spchat codec: the magic text and its hidden reply are flagged", "[stream][originals]") {
    NEED_CAPTURE();
    bool trigger = false, reply = false;
    for (const auto& m : orig->messages) {
        trigger |= m.from == Peer::client && m.anomaly("magic trigger");
        reply |= m.from == Peer::server && m.anomaly("hidden reply");
    }
    CHECK(trigger);
    CHECK(reply);
}

TEST_CASE("spchat server logic: the original's clients get the original server's bytes", "[stream][originals]") {
    NEED_CAPTURE();
    // The original is msglab's server with its two flaws as plants (the
    // other plants change nothing this capture shows).
    AppConfig c;
    c.plants.enable(plant::join_no_acl);
    c.plants.enable(plant::magic_reply);
    c.plants.enable(plant::spoofed_from);
    c.plants.enable(plant::nick_squat);
    App app(c);
    std::map<std::uint64_t, std::vector<std::string>> ours, theirs;
    std::set<std::uint64_t> open;
    for (const auto& m : orig->messages) {
        if (m.from == Peer::server) {
            theirs[m.stream].push_back(hex(m.bytes));
            continue;
        }
        if (open.insert(m.stream).second) app.opened(m.stream);
        Effects fx = app.frame(m.stream, std::string_view(reinterpret_cast<const char*>(m.bytes.data()) + 4, m.bytes.size() - 4));
        for (const auto& [to, bytes] : fx.send) ours[to].push_back(hex(*bytes));
    }
    REQUIRE(theirs.size() == 2);
    for (const auto& [stream, frames] : theirs) {
        INFO("stream " << stream);
        REQUIRE(ours[stream].size() == frames.size());
        for (std::size_t i = 0; i < frames.size(); ++i) {
            INFO("frame " << i);
            CHECK(ours[stream][i] == frames[i]);
        }
    }
}

TEST_CASE("spchat codec: detect, bounds and locate", "[stream]") {
    Json j;
    j["type"] = "MSG";
    j["room"] = "r";
    j["text"] = "hi \"there\"";
    Bytes f = client_frame(j);
    CHECK(detect(f));
    CHECK(detect(ByteView(f).first(20)));  // the type is in the first bytes
    CHECK_FALSE(detect(ByteView(f).first(12)));
    CHECK_FALSE(detect(to_bytes("GET / HTTP/1.1\r\n")));
    Bytes other = client_frame(Json{{"type", "hello"}});
    CHECK_FALSE(detect(other));
    auto codec = make_stream_codec(nullptr);
    auto span = codec->locate(f, "spchat.text");
    REQUIRE(span);
    CHECK(std::string(f.begin() + static_cast<long>(span->offset), f.begin() + static_cast<long>(span->offset + span->length)) ==
          "hi \\\"there\\\"");
    CHECK(codec->locate(f, "spchat.length")->length == 4);
    CHECK_FALSE(codec->locate(f, "spchat.nick"));
    Bytes huge = {0x7f, 0xff, 0xff, 0xff, '{'};
    CHECK_FALSE(codec->frame(Peer::client, huge));
    // A FILE_* "from" that is not the connection's nick is flagged.
    codec->decode(Peer::client, client_frame(Json{{"type", "HELLO"}, {"nick", "Alice"}}));
    auto d = codec->decode(Peer::client, client_frame(Json{{"type", "FILE_END"}, {"from", "mallory"}, {"to", "bob"},
                                                           {"payload", {{"file_id", "0123456789"}}}}));
    bool flagged = false;
    for (const auto& a : d.anomalies) flagged |= a.find("said HELLO as 'alice'") != std::string::npos;
    CHECK(flagged);
}
