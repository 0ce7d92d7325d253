// SP-SimpleChat framing and message reading (PROTOCOLS.md section 2.2).
#include <catch2/catch.hpp>

#include "spchat/wire.hpp"

using namespace msglab;
using namespace msglab::spchat;

namespace {
std::string str(const Bytes& b) { return std::string(b.begin(), b.end()); }
}  // namespace

TEST_CASE("spchat frames: the original's bytes for HELLO, INFO and PONG", "[wire]") {
    Json hello;
    hello["type"] = "HELLO";
    hello["nick"] = "alice";
    Bytes f = client_frame(hello);
    // PROTOCOLS.md 2.2: 00 00 00 22 + {"type": "HELLO", "nick": "alice"}
    CHECK(hex(ByteView(f.data(), 4)) == "00000022");
    CHECK(str(f).substr(4) == R"({"type": "HELLO", "nick": "alice"})");
    Json pong;
    pong["type"] = "PONG";
    CHECK(hex(ByteView(server_frame(pong).data(), 4)) == "00000010");
    // The server escapes non-ASCII (json.dumps defaults); the client keeps UTF-8.
    Json m;
    m["type"] = "MSG";
    m["text"] = "caf\xc3\xa9 \xf0\x9f\x98\x80";
    CHECK(str(server_frame(m)).substr(4) == R"({"type": "MSG", "text": "caf\u00e9 \ud83d\ude00"})");
    CHECK(str(client_frame(m)).substr(4) == "{\"type\": \"MSG\", \"text\": \"caf\xc3\xa9 \xf0\x9f\x98\x80\"}");
}

TEST_CASE("spchat frames: FrameReader cuts frames split anyhow and joined anyhow", "[wire]") {
    Bytes stream;
    std::vector<std::string> sent;
    for (int i = 0; i < 50; ++i) {
        Json j;
        j["type"] = "MSG";
        j["text"] = std::string(static_cast<std::size_t>(i * 37), 'x');
        Bytes f = client_frame(j);
        sent.push_back(str(f).substr(4));
        stream.insert(stream.end(), f.begin(), f.end());
    }
    for (std::size_t piece : {1u, 3u, 7u, 1000u, 100000u}) {
        FrameReader r;
        std::vector<std::string> got;
        std::string body;
        for (std::size_t at = 0; at < stream.size(); at += piece) {
            r.push(ByteView(stream).subspan(at, std::min(piece, stream.size() - at)));
            while (r.next(body) == FrameReader::Status::frame) got.push_back(body);
        }
        CHECK(got == sent);
        CHECK(r.buffered() == 0);
    }
}

TEST_CASE("spchat frames: a length over the bound is refused from its four bytes", "[wire]") {
    FrameReader r(1024);
    r.push(Bytes{0x00, 0x00, 0x04, 0x01});
    std::string body;
    CHECK(r.next(body) == FrameReader::Status::too_large);
    CHECK(r.announced() == 1025);
    FrameReader ok(1024);
    ok.push(Bytes{0x00, 0x00, 0x04, 0x00});
    CHECK(ok.next(body) == FrameReader::Status::need_more);
    // Unbounded (the plant): 4 GiB - 1 is waited for, holding only what came.
    FrameReader any(kMaxLengthPrefix);
    any.push(Bytes{0xff, 0xff, 0xff, 0xff, '{'});
    CHECK(any.next(body) == FrameReader::Status::need_more);
    CHECK(any.announced() == 0xffffffffu);
    CHECK(any.buffered() == 5);
}

TEST_CASE("spchat messages: only JSON objects with a string type are messages", "[wire]") {
    CHECK(parse(R"({"type": "PING"})"));
    CHECK(parse(R"({"nick":"a","type":"HELLO"})"));  // any key order, compact
    CHECK_FALSE(parse(""));
    CHECK_FALSE(parse("[]"));
    CHECK_FALSE(parse(R"({"type": 1})"));
    CHECK_FALSE(parse(R"({"nick": "a"})"));
    CHECK_FALSE(parse(R"({"type": "PING")"));
    CHECK_FALSE(parse("{\"type\": \"MSG\", \"text\": \"\xff\"}"));  // not UTF-8
    CHECK_FALSE(parse(std::string(100000, '[')));                   // deep nesting: refused, no crash
    std::string deep = R"({"type": "MSG", "x": )" + std::string(60, '[') + std::string(60, ']') + "}";
    CHECK(parse(deep));
}

TEST_CASE("spchat text rules: strip and lower as the original (ASCII)", "[wire]") {
    CHECK(strip("  Bob \t\r\n") == "Bob");
    CHECK(lower("BoB") == "bob");
    CHECK(upper("backDoor") == "BACKDOOR");
    CHECK(known_type("WHO_LIST"));
    CHECK_FALSE(known_type("who"));
}
