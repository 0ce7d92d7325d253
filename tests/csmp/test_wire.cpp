// CSMP's wire layer: HTTP/1.1 framing (Content-Length and chunked, every
// bound), WebSocket frames (RFC 6455), permessage-deflate (RFC 7692) and
// Sec-WebSocket-Accept, with the RFCs' own examples.
#include <zlib.h>

#include "csmp/wire.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::csmp;

namespace {

ByteView bv(std::string_view s) { return as_bytes(s); }

// Frames every proper prefix of `wire` (0 expected), then the whole, then the
// whole with another message's first bytes behind it.
void check_split(const std::string& wire, HttpKind kind, std::size_t expected) {
    for (std::size_t n = 0; n < expected; ++n) {
        auto r = frame_http(bv(std::string_view(wire).substr(0, n)), kind);
        INFO("prefix of " << n << " bytes");
        REQUIRE(r);
        CHECK(*r == 0);
    }
    auto whole = frame_http(bv(wire), kind);
    REQUIRE(whole);
    CHECK(*whole == expected);
}

ParseErrc http_error(const std::string& wire, HttpKind kind = HttpKind::request, std::string_view method = {}) {
    auto r = frame_http(bv(wire), kind, method);
    if (r) return ParseErrc::none;
    return r.error().code;
}

ParseErrc ws_error(const Bytes& wire) {
    auto r = frame_ws(wire);
    if (r) return ParseErrc::none;
    return r.error().code;
}

std::string repeat(std::string_view s, std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; ++i) out += s;
    return out;
}

const std::string kUpgrade =
    "GET /ws/chat?session_id=0c1009c5-e696-473d-9f1d-3d774a255628&room_id=room1 HTTP/1.1\r\n"
    "Host: 127.0.0.1:8000\r\n"
    "Upgrade: websocket\r\n"
    "Connection: Upgrade\r\n"
    "Sec-WebSocket-Key: Xk4T+zBRaV4dVGlZBZLm8g==\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    "User-Agent: Python/3.11 websockets/10.4\r\n"
    "\r\n";

const std::string kHandshakeResponse =
    "HTTP/1.1 200 OK\r\n"
    "date: Sat, 21 Nov 2026 14:41:34 GMT\r\n"
    "server: uvicorn\r\n"
    "content-length: 118\r\n"
    "content-type: application/json\r\n"
    "connection: close\r\n"
    "\r\n"
    "{\"session_id\":\"0c1009c5-e696-473d-9f1d-3d774a255628\",\"client_id\":\"alice\",\"protocol_version\":\"1.0.0\","
    "\"expires_in\":1800}";

}  // namespace

TEST_CASE("HTTP: a request head, its target split into path and query, headers case-insensitive", "[wire][http]") {
    auto m = parse_http(bv(kUpgrade), HttpKind::request);
    REQUIRE(m);
    CHECK(m->method == "GET");
    CHECK(m->target == "/ws/chat?session_id=0c1009c5-e696-473d-9f1d-3d774a255628&room_id=room1");
    CHECK(m->path == "/ws/chat");
    CHECK(m->query == "session_id=0c1009c5-e696-473d-9f1d-3d774a255628&room_id=room1");
    CHECK(kUpgrade.substr(m->target_offset, m->target.size()) == m->target);
    CHECK(kUpgrade.substr(m->query_offset, m->query.size()) == m->query);
    CHECK(m->version_major == 1);
    CHECK(m->version_minor == 1);
    CHECK(m->headers.size() == 7);
    CHECK(m->framing == BodyFraming::none);
    CHECK(m->head_length == kUpgrade.size());
    CHECK(m->length == kUpgrade.size());
    CHECK(m->body.empty());
    CHECK(m->header_value("SEC-websocket-KEY") == "Xk4T+zBRaV4dVGlZBZLm8g==");
    CHECK_FALSE(m->header_value("x-session-id"));
    const HttpHeader* host = m->header("host");
    REQUIRE(host);
    CHECK(kUpgrade.substr(host->value_offset, host->value.size()) == "127.0.0.1:8000");
    CHECK(m->has_token("connection", "upgrade"));
    CHECK_FALSE(m->has_token("connection", "close"));
    CHECK(m->websocket_upgrade());
    CHECK(query_parameter(m->query, "session_id") == "0c1009c5-e696-473d-9f1d-3d774a255628");
    CHECK(query_parameter(m->query, "room_id") == "room1");
    CHECK_FALSE(query_parameter(m->query, "room"));
    auto span = query_parameter_span(m->query, "room_id");
    REQUIRE(span);
    CHECK(m->query.substr(span->offset, span->length) == "room1");

    // The response's status line, an empty reason, HTTP/1.0, absolute form.
    auto r = parse_http(bv("HTTP/1.0 204\r\n\r\n"), HttpKind::response);
    REQUIRE(r);
    CHECK(r->status == 204);
    CHECK(r->reason.empty());
    CHECK(r->version_minor == 0);
    auto abs = parse_http(bv("GET http://127.0.0.1:8000/history/x?limit=5 HTTP/1.1\r\n\r\n"), HttpKind::request);
    REQUIRE(abs);
    CHECK(abs->path == "/history/x");
    CHECK(abs->query == "limit=5");
    // Header values keep inner whitespace and lose the outer; the first of a repeated name counts.
    auto h = parse_http(bv("GET / HTTP/1.1\r\nX-Session-Id: \t a b \t\r\nx-session-id: second\r\n\r\n"), HttpKind::request);
    REQUIRE(h);
    CHECK(h->header_value("x-session-id") == "a b");
    CHECK(h->header_count("X-SESSION-ID") == 2);
}

TEST_CASE("HTTP: percent-decoding and query parameters as Starlette reads them", "[wire][http]") {
    CHECK(percent_decode("room%5Falice%20bob", false) == "room_alice bob");
    CHECK(percent_decode("a+b", true) == "a b");
    CHECK(percent_decode("a+b", false) == "a+b");
    CHECK(percent_decode("100%", true) == "100%");
    CHECK(percent_decode("%zz%4", true) == "%zz%4");
    CHECK(percent_decode("%e2%82%AC", true) == "\xe2\x82\xac");
    std::string q = "session_id=first&room%5Fid=r%2B1&flag&session_id=last+one&=x&&";
    CHECK(query_parameter(q, "session_id") == "last one");
    CHECK(query_parameter_count(q, "session_id") == 2);
    CHECK(query_parameter(q, "room_id") == "r+1");
    CHECK(query_parameter(q, "flag") == "");
    CHECK(query_parameter(q, "") == "x");
    auto span = query_parameter_span(q, "session_id");
    REQUIRE(span);
    CHECK(q.substr(span->offset, span->length) == "last+one");
    CHECK_FALSE(query_parameter("", "session_id"));
}

TEST_CASE("HTTP: a Content-Length message frames only when whole, split byte by byte", "[wire][http]") {
    check_split(kHandshakeResponse, HttpKind::response, kHandshakeResponse.size());
    check_split(kUpgrade, HttpKind::request, kUpgrade.size());
    // Pipelined: the length is the first message's.
    auto two = frame_http(bv(kHandshakeResponse + kHandshakeResponse.substr(0, 20)), HttpKind::response);
    REQUIRE(two);
    CHECK(*two == kHandshakeResponse.size());
    auto m = parse_http(bv(kHandshakeResponse + "HTTP/1.1"), HttpKind::response);
    REQUIRE(m);
    CHECK(m->status == 200);
    CHECK(m->reason == "OK");
    CHECK(m->framing == BodyFraming::length);
    CHECK(to_string(m->body).substr(0, 15) == "{\"session_id\":\"");
    CHECK(m->body.size() == 118);
    // parse_http on a prefix is truncated, not a crash or a partial message.
    auto part = parse_http(bv(kHandshakeResponse.substr(0, kHandshakeResponse.size() - 1)), HttpKind::response);
    REQUIRE_FALSE(part);
    CHECK(part.error().code == ParseErrc::truncated);
    // A request body with a repeated, agreeing Content-Length.
    std::string post = "POST /chat/send HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5, 5\r\n\r\nhello";
    check_split(post, HttpKind::request, post.size());
}

TEST_CASE("HTTP: chunked bodies are decoded, with extensions and trailers, byte by byte", "[wire][http]") {
    std::string wire =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"
        "5\r\nhello\r\n"
        "1;name=value;x\r\n \r\n"
        "00006 \t;ext\r\nworld!\r\n"
        "0\r\nX-Trailer: yes\r\n\r\n";
    check_split(wire, HttpKind::response, wire.size());
    auto m = parse_http(bv(wire + "HTTP/1.1 200"), HttpKind::response);
    REQUIRE(m);
    CHECK(m->framing == BodyFraming::chunked);
    CHECK(to_string(m->body) == "hello world!");
    CHECK(m->length == wire.size());
    REQUIRE(m->trailers.size() == 1);
    CHECK(m->trailers[0].name == "X-Trailer");
    CHECK(m->trailers[0].value == "yes");
    // A request too, and an empty chunked body.
    std::string req = "POST /chat/send HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n";
    auto e = parse_http(bv(req), HttpKind::request);
    REQUIRE(e);
    CHECK(e->body.empty());
    CHECK(e->length == req.size());
}

TEST_CASE("HTTP: the incremental framer answers as frame_http, byte by byte, and starts over on other bytes",
          "[wire][http]") {
    std::string ch = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    std::string a = ch + "3\r\nabc\r\n10;x=y\r\n0123456789abcdef\r\n0\r\nT: 1\r\n\r\n";
    for (const std::string& wire : {a, kHandshakeResponse, kUpgrade}) {
        HttpKind kind = wire[0] == 'H' ? HttpKind::response : HttpKind::request;
        HttpFramer f(kind);
        for (std::size_t n = 0; n <= wire.size(); ++n) {
            INFO(n << " of " << wire.size());
            ByteView prefix = bv(std::string_view(wire).substr(0, n));
            HttpMessage head;
            auto got = f.frame(prefix, {}, &head);
            auto want = frame_http(prefix, kind);
            REQUIRE(got);
            REQUIRE(want);
            CHECK(*got == *want);
            if (*got > 0) {
                CHECK(head.length == *got);
                CHECK(head.headers.size() == parse_http(prefix, kind)->headers.size());
            }
        }
    }
    HttpFramer f(HttpKind::response);
    HttpMessage head;
    auto r = f.frame(bv(a), {}, &head);
    REQUIRE(r);
    CHECK(*r == a.size());
    REQUIRE(head.trailers.size() == 1);
    CHECK(head.trailers[0].name == "T");

    // Other bytes under the same head: the framer starts over.
    std::string b = ch + "2\r\nab\r\n0\r\n\r\n";
    r = f.frame(bv(a.substr(0, ch.size() + 12)));
    REQUIRE(r);
    CHECK(*r == 0);
    r = f.frame(bv(b));
    REQUIRE(r);
    CHECK(*r == b.size());
    // Another method for the same response, and a different head.
    std::string with_length = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n";
    r = f.frame(bv(with_length));
    REQUIRE(r);
    CHECK(*r == 0);
    r = f.frame(bv(with_length), "HEAD");
    REQUIRE(r);
    CHECK(*r == with_length.size());
    r = f.frame(bv(with_length + "ab"));
    REQUIRE(r);
    CHECK(*r == 0);
    r = f.frame(bv(kHandshakeResponse));
    REQUIRE(r);
    CHECK(*r == kHandshakeResponse.size());
    // After an error it keeps nothing.
    auto bad = f.frame(bv(ch + "3\r\nabcX"));
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code == ParseErrc::bad_value);
    r = f.frame(bv(a));
    REQUIRE(r);
    CHECK(*r == a.size());

    // 16383 one-byte chunks, arriving one byte at a time.
    std::string many = ch + repeat("1\r\nz\r\n", kMaxChunks - 1) + "0\r\n\r\n";
    HttpFramer trickle(HttpKind::response);
    std::size_t zeros = 0;
    for (std::size_t n = 1; n < many.size(); ++n) {
        auto part = trickle.frame(bv(std::string_view(many).substr(0, n)));
        REQUIRE(part);
        zeros += *part == 0;
    }
    CHECK(zeros == many.size() - 1);
    auto whole = trickle.frame(bv(many));
    REQUIRE(whole);
    CHECK(*whole == many.size());
}

TEST_CASE("HTTP: bodiless responses, the answer to HEAD, and close-delimited bodies", "[wire][http]") {
    for (std::string status : {"100 Continue", "101 Switching Protocols", "204 No Content", "304 Not Modified"}) {
        INFO(status);
        std::string wire = "HTTP/1.1 " + status + "\r\nContent-Length: 10\r\n\r\n";
        auto r = frame_http(bv(wire + "0123456789"), HttpKind::response);
        REQUIRE(r);
        CHECK(*r == wire.size());
    }
    std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 72\r\n\r\n";
    auto r = frame_http(bv(head), HttpKind::response, "HEAD");
    REQUIRE(r);
    CHECK(*r == head.size());
    r = frame_http(bv(head), HttpKind::response, "GET");
    REQUIRE(r);
    CHECK(*r == 0);
    // No length on a response: the head is framed and the rest is the caller's.
    std::string old = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n";
    HttpMessage m;
    r = frame_http(bv(old + "body until close"), HttpKind::response, {}, &m);
    REQUIRE(r);
    CHECK(*r == old.size());
    CHECK(m.framing == BodyFraming::until_close);
    CHECK(std::string(body_framing_name(m.framing)) == "until-close");
    // A response whose last transfer coding is not chunked is close-delimited too.
    r = frame_http(bv("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx"), HttpKind::response, {}, &m);
    REQUIRE(r);
    CHECK(m.framing == BodyFraming::until_close);
    // A request without a length has no body.
    std::string get = "GET /health/ HTTP/1.1\r\n\r\n";
    r = frame_http(bv(get + "GET"), HttpKind::request);
    REQUIRE(r);
    CHECK(*r == get.size());
}

TEST_CASE("HTTP: every bound is a ParseError, and the bound itself is accepted", "[wire][http][bounds]") {
    // The head: 16 KiB with its blank line is fine; one more byte is not.
    std::string line = "GET / HTTP/1.1\r\n";
    std::string filler = "X-Fill: ";
    std::size_t pad = kMaxHttpHead - line.size() - filler.size() - 4;
    std::string at_limit = line + filler + std::string(pad, 'a') + "\r\n\r\n";
    REQUIRE(at_limit.size() == kMaxHttpHead);
    auto r = frame_http(bv(at_limit), HttpKind::request);
    REQUIRE(r);
    CHECK(*r == kMaxHttpHead);
    std::string over = line + filler + std::string(pad + 1, 'a') + "\r\n\r\n";
    CHECK(http_error(over) == ParseErrc::length_over_limit);
    // Without an end, the error comes once 16 KiB have arrived, not later.
    std::string endless = line + filler + std::string(kMaxHttpHead, 'a');
    CHECK(http_error(endless.substr(0, kMaxHttpHead - 1)) == ParseErrc::none);
    CHECK(http_error(endless.substr(0, kMaxHttpHead)) == ParseErrc::length_over_limit);

    // 100 header fields, then 101.
    std::string hundred = line + repeat("A: b\r\n", kMaxHttpHeaders) + "\r\n";
    r = frame_http(bv(hundred), HttpKind::request);
    REQUIRE(r);
    CHECK(*r == hundred.size());
    CHECK(http_error(line + repeat("A: b\r\n", kMaxHttpHeaders + 1) + "\r\n") == ParseErrc::length_over_limit);

    // Content-Length: 1 MiB frames (once all there), 1 MiB + 1 is refused at once.
    std::string cl = "POST /chat/send HTTP/1.1\r\nContent-Length: " + std::to_string(kMaxHttpBody) + "\r\n\r\n";
    r = frame_http(bv(cl), HttpKind::request);
    REQUIRE(r);
    CHECK(*r == 0);
    std::string big = cl + std::string(kMaxHttpBody, 'x');
    r = frame_http(bv(big), HttpKind::request);
    REQUIRE(r);
    CHECK(*r == big.size());
    CHECK(http_error("POST / HTTP/1.1\r\nContent-Length: 1048577\r\n\r\n") == ParseErrc::length_over_limit);
    CHECK(http_error("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n") ==
          ParseErrc::length_over_limit);

    // Chunked: a chunk size over the body bound, a decoded body over it, too
    // many chunks, a long chunk-size line, too many trailers, too long a coding.
    std::string ch = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    CHECK(http_error(ch + "100001\r\n", HttpKind::response) == ParseErrc::length_over_limit);
    CHECK(http_error(ch + "ffffffffffffffffffffffff\r\n", HttpKind::response) == ParseErrc::length_over_limit);
    std::string half = "80000\r\n" + std::string(0x80000, 'a') + "\r\n";
    CHECK(http_error(ch + half + half + "1\r\n", HttpKind::response) == ParseErrc::length_over_limit);
    r = frame_http(bv(ch + half + half + "0\r\n\r\n"), HttpKind::response);
    REQUIRE(r);
    CHECK(*r == ch.size() + 2 * half.size() + 5);
    CHECK(http_error(ch + repeat("1\r\na\r\n", kMaxChunks) + "1\r\n", HttpKind::response) ==
          ParseErrc::length_over_limit);
    r = frame_http(bv(ch + repeat("1\r\na\r\n", kMaxChunks - 1) + "0\r\n\r\n"), HttpKind::response);
    REQUIRE(r);
    CHECK(*r > 0);
    CHECK(http_error(ch + "1;" + std::string(kMaxChunkLine + 1, 'e'), HttpKind::response) ==
          ParseErrc::length_over_limit);
    CHECK(http_error(ch + "1;" + std::string(kMaxChunkLine - 4, 'e') + "\r\na\r\n", HttpKind::response) ==
          ParseErrc::none);
    CHECK(http_error(ch + "0\r\n" + repeat("T: x\r\n", kMaxHttpHeaders + 1) + "\r\n", HttpKind::response) ==
          ParseErrc::length_over_limit);
    // The chunked coding on the wire: 2 MiB at most, however small the body.
    std::string fat = repeat("1;" + std::string(1000, 'e') + "\r\na\r\n", 2200);
    CHECK(http_error(ch + fat, HttpKind::response) == ParseErrc::length_over_limit);
}

TEST_CASE("HTTP: malformed messages are refused, garbage at once", "[wire][http]") {
    CHECK(http_error("GET / HTTP/1.1\nHost: x\n\n") == ParseErrc::bad_value);                   // bare LF
    CHECK(http_error("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n") == ParseErrc::bad_value);          // bare CR
    CHECK(http_error("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n") == ParseErrc::bad_value);  // obs-fold
    CHECK(http_error("GET / HTTP/1.1\r\nHost : x\r\n\r\n") == ParseErrc::bad_value);
    CHECK(http_error("GET / HTTP/1.1\r\n: x\r\n\r\n") == ParseErrc::bad_value);
    CHECK(http_error("GET / HTTP/1.1\r\nNoColon\r\n\r\n") == ParseErrc::bad_value);
    CHECK(http_error("GET / HTTP/1.1\r\nA: \x01\r\n\r\n") == ParseErrc::bad_value);
    CHECK(http_error("G(T / HTTP/1.1\r\n\r\n") == ParseErrc::bad_magic);
    CHECK(http_error("GET / HTTP/11\r\n\r\n") == ParseErrc::bad_value);
    CHECK(http_error("GET / HTTP/1.1 x\r\n\r\n") == ParseErrc::bad_value);
    CHECK(http_error("GET  HTTP/1.1\r\n\r\n") == ParseErrc::bad_value);
    CHECK(http_error("GET /\x7f HTTP/1.1\r\n\r\n") == ParseErrc::bad_value);
    CHECK(http_error("\r\nGET / HTTP/1.1\r\n\r\n") == ParseErrc::bad_magic);
    CHECK(http_error("FTP/1.1 200 OK\r\n\r\n", HttpKind::response) == ParseErrc::bad_magic);
    CHECK(http_error("HTTP/1.1 20 OK\r\n\r\n", HttpKind::response) == ParseErrc::bad_value);
    CHECK(http_error("HTTP/1.1 099 X\r\n\r\n", HttpKind::response) == ParseErrc::bad_value);
    CHECK(http_error("HTTP/1.1 200OK\r\n\r\n", HttpKind::response) == ParseErrc::bad_value);
    CHECK(http_error("HTTP/2 200 OK\r\n\r\n", HttpKind::response) == ParseErrc::bad_value);
    // Lengths that disagree or are not numbers, and request smuggling shapes.
    CHECK(http_error("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n") == ParseErrc::bad_value);
    CHECK(http_error("POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n") == ParseErrc::bad_value);
    CHECK(http_error("POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n") == ParseErrc::bad_value);
    CHECK(http_error("POST / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n") == ParseErrc::bad_value);
    CHECK(http_error("POST / HTTP/1.1\r\nContent-Length:\r\n\r\n") == ParseErrc::bad_value);
    CHECK(http_error("POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n") ==
          ParseErrc::bad_value);
    CHECK(http_error("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n") == ParseErrc::bad_value);
    CHECK(http_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n") == ParseErrc::bad_value);
    CHECK(http_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n") ==
          ParseErrc::bad_value);
    // Chunk framing.
    std::string ch = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    CHECK(http_error(ch + "x\r\n", HttpKind::response) == ParseErrc::bad_value);
    CHECK(http_error(ch + "5 junk\r\n", HttpKind::response) == ParseErrc::bad_value);
    CHECK(http_error(ch + "5\r\nhelloX", HttpKind::response) == ParseErrc::bad_value);
    CHECK(http_error(ch + "5\r\nhello\rX", HttpKind::response) == ParseErrc::bad_value);
    CHECK(http_error(ch + "5\nhello\r\n", HttpKind::response) == ParseErrc::bad_value);
    CHECK(http_error(ch + "5;\x01\r\nhello\r\n", HttpKind::response) == ParseErrc::bad_value);
    // Binary (a WebSocket frame where HTTP was expected) fails on its first byte.
    CHECK(http_error("\x81") == ParseErrc::bad_magic);
    CHECK(http_error("\xc1\x83", HttpKind::response) == ParseErrc::bad_magic);
    CHECK(http_error("-----BEGIN PUBLIC KEY-----\n") == ParseErrc::bad_value);
    CHECK(http_error("SegMSG\x01") == ParseErrc::bad_magic);
    CHECK(http_error("GET /\x01") == ParseErrc::bad_value);
    CHECK(http_error("GET / XTTP") == ParseErrc::bad_value);
    // Partial but plausible: more bytes needed.
    CHECK(http_error("GE") == ParseErrc::none);
    CHECK(http_error("HTT", HttpKind::response) == ParseErrc::none);
    CHECK(http_error("GET / HTTP/1.1\r") == ParseErrc::none);

    CHECK(looks_like_http_request(bv("GET /")));
    CHECK(looks_like_http_request(bv("M-SEARCH *")));
    CHECK_FALSE(looks_like_http_request(bv("GET")));
    CHECK_FALSE(looks_like_http_request(bv("\x81\x85")));
    CHECK_FALSE(looks_like_http_request(bv("A\x85")));  // a masked, compressed first fragment
    CHECK(looks_like_http_response(bv("HTTP/1.1 101")));
    CHECK_FALSE(looks_like_http_response(bv("HTTP/2")));
}

TEST_CASE("WebSocket: RFC 6455 section 5.7's example frames", "[wire][ws]") {
    // A single-frame unmasked text message.
    Bytes hello = unhex("810548656c6c6f");
    auto f = parse_ws_frame(hello);
    REQUIRE(f);
    CHECK(f->fin);
    CHECK(f->opcode == ws_opcode::text);
    CHECK_FALSE(f->masked);
    CHECK(f->header_length == 2);
    CHECK(to_string(f->payload) == "Hello");
    CHECK(build_ws_frame(*f) == hello);
    // The same, masked with 37 fa 21 3d.
    Bytes masked = unhex("818537fa213d7f9f4d5158");
    f = parse_ws_frame(masked);
    REQUIRE(f);
    CHECK(f->masked);
    CHECK(f->mask == WsMask{0x37, 0xfa, 0x21, 0x3d});
    CHECK(f->header_length == 6);
    CHECK(to_string(f->payload) == "Hello");
    CHECK(build_ws_frame(*f) == masked);
    // A fragmented message, and a ping between its fragments.
    WsAssembler a;
    auto first = parse_ws_frame(unhex("010348656c"));
    auto ping = parse_ws_frame(unhex("890548656c6c6f"));
    auto last = parse_ws_frame(unhex("80026c6f"));
    REQUIRE(first);
    REQUIRE(ping);
    REQUIRE(last);
    CHECK_FALSE(first->fin);
    auto r = a.add(*first);
    REQUIRE(r);
    CHECK_FALSE(*r);
    CHECK(a.in_message());
    CHECK(a.fragments() == 1);
    r = a.add(*ping);
    REQUIRE(r);
    REQUIRE(*r);
    CHECK((*r)->opcode == ws_opcode::ping);
    CHECK(to_string((*r)->payload) == "Hello");
    CHECK(a.in_message());
    r = a.add(*last);
    REQUIRE(r);
    REQUIRE(*r);
    CHECK((*r)->opcode == ws_opcode::text);
    CHECK((*r)->frames == 2);
    CHECK(to_string((*r)->payload) == "Hello");
    CHECK_FALSE(a.in_message());
    // A masked pong.
    f = parse_ws_frame(unhex("8a8537fa213d7f9f4d5158"));
    REQUIRE(f);
    CHECK(f->opcode == ws_opcode::pong);
    CHECK(to_string(f->payload) == "Hello");
    // 256 bytes in a 16-bit length, 65536 in a 64-bit one.
    Bytes b256 = unhex("827e0100");
    b256.resize(4 + 256, 0x5a);
    auto len = frame_ws(b256);
    REQUIRE(len);
    CHECK(*len == b256.size());
    Bytes b64k = unhex("827f0000000000010000");
    b64k.resize(10 + 65536, 0xa5);
    f = parse_ws_frame(b64k);
    REQUIRE(f);
    CHECK(f->payload.size() == 65536);
    CHECK(f->header_length == 10);
    CHECK(build_ws_frame(*f) == b64k);
}

TEST_CASE("WebSocket: frames build in the minimal encoding and parse back, masked or not", "[wire][ws]") {
    for (std::size_t n : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u, 70000u}) {
        for (bool masked : {false, true}) {
            INFO(n << " bytes, masked " << masked);
            WsFrame f;
            f.opcode = ws_opcode::binary;
            f.rsv1 = n % 2 == 1;
            f.fin = n != 127;
            f.masked = masked;
            f.mask = {0x01, 0x80, 0xfe, 0x7f};
            f.payload.resize(n);
            for (std::size_t i = 0; i < n; ++i) f.payload[i] = static_cast<std::uint8_t>(i * 7);
            Bytes wire = build_ws_frame(f);
            std::size_t ext = n < 126 ? 0 : n <= 0xffff ? 2 : 8;
            CHECK(wire.size() == 2 + ext + (masked ? 4 : 0) + n);
            if (masked && n > 0) CHECK(!std::equal(f.payload.begin(), f.payload.end(), wire.end() - static_cast<std::ptrdiff_t>(n)));
            // Split byte by byte: nothing until the last byte.
            for (std::size_t k = 0; k < wire.size(); k += (k < 20 ? 1 : 4093)) {
                auto part = frame_ws(ByteView(wire).first(k));
                REQUIRE(part);
                CHECK(*part == 0);
            }
            Bytes more = wire;
            more.push_back(0x81);
            auto back = parse_ws_frame(more);
            REQUIRE(back);
            CHECK(back->payload == f.payload);
            CHECK(back->fin == f.fin);
            CHECK(back->rsv1 == f.rsv1);
            CHECK(back->masked == masked);
            CHECK(back->header_length == 2 + ext + (masked ? 4 : 0));
            CHECK(build_ws_frame(*back) == wire);
        }
    }
    Bytes p = {1, 2, 3, 4, 5};
    ws_apply_mask(p, {0xff, 0, 0xff, 0});
    CHECK(p == Bytes{0xfe, 2, 0xfc, 4, 0xfa});
}

TEST_CASE("WebSocket: lengths, bounds and control-frame rules", "[wire][ws][bounds]") {
    // Non-minimal lengths and the 64-bit top bit, refused before any payload.
    CHECK(ws_error(unhex("827e007d")) == ParseErrc::bad_length);
    CHECK(ws_error(unhex("827e007e")) == ParseErrc::none);
    CHECK(ws_error(unhex("827f000000000000ffff")) == ParseErrc::bad_length);
    CHECK(ws_error(unhex("827f0000000000010000")) == ParseErrc::none);
    CHECK(ws_error(unhex("827f8000000000000000")) == ParseErrc::bad_length);
    // The payload bound: 1 MiB is accepted, one more byte is not, whatever the encoding says.
    CHECK(ws_error(unhex("827f0000000000100000")) == ParseErrc::none);
    CHECK(ws_error(unhex("827f0000000000100001")) == ParseErrc::length_over_limit);
    CHECK(ws_error(unhex("827f7fffffffffffffff")) == ParseErrc::length_over_limit);
    auto small = frame_ws(unhex("827e0100"), 255);
    REQUIRE_FALSE(small);
    CHECK(small.error().code == ParseErrc::length_over_limit);
    // Control frames: at most 125 bytes, never fragmented.
    CHECK(ws_error(unhex("897e007e")) == ParseErrc::bad_length);
    CHECK(ws_error(unhex("887e")) == ParseErrc::bad_length);
    CHECK(ws_error(unhex("0900")) == ParseErrc::bad_value);
    CHECK(ws_error(unhex("08")) == ParseErrc::bad_value);
    Bytes ping125 = unhex("897d");
    ping125.resize(2 + 125, 'p');
    CHECK(ws_error(ping125) == ParseErrc::none);
    // Reserved opcodes, data and control.
    for (std::uint8_t op : {3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf}) {
        INFO("opcode " << int(op));
        CHECK(ws_error(Bytes{static_cast<std::uint8_t>(0x80 | op), 0x00}) == ParseErrc::unknown_type);
        CHECK(std::string(ws_opcode_name(op)) == "reserved");
    }
    // Partial headers need more bytes.
    CHECK(ws_error(unhex("82")) == ParseErrc::none);
    CHECK(ws_error(unhex("827f0000")) == ParseErrc::none);
    CHECK(ws_error(unhex("8285aabb")) == ParseErrc::none);
    auto trunc = parse_ws_frame(unhex("8285aabbccdd00"));
    REQUIRE_FALSE(trunc);
    CHECK(trunc.error().code == ParseErrc::truncated);
}

TEST_CASE("WebSocket: reassembly refuses what RFC 6455 and 7692 forbid, and is bounded", "[wire][ws][bounds]") {
    auto frame = [](std::uint8_t op, bool fin, std::string payload, bool rsv1 = false) {
        WsFrame f;
        f.opcode = op;
        f.fin = fin;
        f.rsv1 = rsv1;
        f.payload = to_bytes(payload);
        return f;
    };
    auto code = [](WsAssembler& a, const WsFrame& f) {
        auto r = a.add(f);
        return r ? ParseErrc::none : r.error().code;
    };
    WsAssembler a;
    CHECK(code(a, frame(ws_opcode::continuation, true, "x")) == ParseErrc::bad_value);
    CHECK(code(a, frame(ws_opcode::text, false, "a")) == ParseErrc::none);
    CHECK(code(a, frame(ws_opcode::binary, true, "b")) == ParseErrc::bad_value);  // a new message inside one
    CHECK_FALSE(a.in_message());  // the error dropped the open message
    CHECK(code(a, frame(ws_opcode::text, true, "c", true)) == ParseErrc::bad_value);  // RSV1, not agreed
    a.allow_compressed(true);
    auto r = a.add(frame(ws_opcode::text, false, "c", true));
    REQUIRE(r);
    CHECK(code(a, frame(ws_opcode::continuation, true, "d", true)) == ParseErrc::bad_value);  // RSV1 on a continuation
    r = a.add(frame(ws_opcode::text, false, "c", true));
    REQUIRE(r);
    CHECK(code(a, frame(ws_opcode::ping, true, "", true)) == ParseErrc::bad_value);  // RSV1 on a control frame
    WsFrame rsv2 = frame(ws_opcode::text, true, "x");
    rsv2.rsv2 = true;
    CHECK(code(a, rsv2) == ParseErrc::bad_value);
    WsFrame rsv3 = frame(ws_opcode::text, true, "x");
    rsv3.rsv3 = true;
    CHECK(code(a, rsv3) == ParseErrc::bad_value);
    r = a.add(frame(ws_opcode::text, true, "z", true));
    REQUIRE(r);
    REQUIRE(*r);
    CHECK((*r)->compressed);

    // Bounded in bytes and in frames.
    WsAssembler small(10, 3);
    CHECK(code(small, frame(ws_opcode::text, true, std::string(11, 'x'))) == ParseErrc::length_over_limit);
    CHECK(code(small, frame(ws_opcode::text, false, std::string(6, 'x'))) == ParseErrc::none);
    CHECK(code(small, frame(ws_opcode::continuation, false, std::string(5, 'x'))) == ParseErrc::length_over_limit);
    CHECK(code(small, frame(ws_opcode::text, false, "")) == ParseErrc::none);
    CHECK(code(small, frame(ws_opcode::continuation, false, "")) == ParseErrc::none);
    CHECK(code(small, frame(ws_opcode::continuation, false, "")) == ParseErrc::none);
    CHECK(code(small, frame(ws_opcode::continuation, true, "")) == ParseErrc::length_over_limit);
    CHECK(code(small, frame(ws_opcode::text, false, std::string(10, 'x'))) == ParseErrc::none);
    r = small.add(frame(ws_opcode::continuation, true, ""));
    REQUIRE(r);
    REQUIRE(*r);
    CHECK((*r)->payload.size() == 10);
}

TEST_CASE("WebSocket: close payloads", "[wire][ws]") {
    auto c = parse_ws_close({});
    REQUIRE(c);
    CHECK_FALSE(c->code);
    c = parse_ws_close(unhex("03e8"));
    REQUIRE(c);
    CHECK(c->code == 1000);
    c = parse_ws_close(unhex("0fa0627965"));
    REQUIRE(c);
    CHECK(c->code == 4000);
    CHECK(c->reason == "bye");
    CHECK(parse_ws_close(unhex("03")).error().code == ParseErrc::bad_length);
    for (std::uint16_t bad : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535}) {
        INFO(bad);
        CHECK_FALSE(ws_close_code_valid(bad));
        Bytes p = {static_cast<std::uint8_t>(bad >> 8), static_cast<std::uint8_t>(bad)};
        CHECK(parse_ws_close(p).error().code == ParseErrc::bad_value);
    }
    for (std::uint16_t good : {1000, 1001, 1003, 1007, 1008, 1011, 1014, 3000, 4999}) CHECK(ws_close_code_valid(good));
    CHECK(parse_ws_close(unhex("03e8c328")).error().code == ParseErrc::bad_value);  // the reason is not UTF-8
    CHECK(valid_utf8(bv("h\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")));
    CHECK_FALSE(valid_utf8(bv("\xc0\xaf")));          // overlong
    CHECK_FALSE(valid_utf8(bv("\xed\xa0\x80")));      // a surrogate
    CHECK_FALSE(valid_utf8(bv("\xf4\x90\x80\x80")));  // past U+10FFFF
    CHECK_FALSE(valid_utf8(bv("\xe2\x82")));          // cut short
}

TEST_CASE("permessage-deflate: extension headers and their parameters", "[wire][deflate]") {
    auto list = parse_ws_extensions(
        "permessage-deflate; client_max_window_bits, permessage-deflate;server_max_window_bits=\"10\" ; "
        "client_no_context_takeover,x-other");
    REQUIRE(list);
    REQUIRE(list->size() == 3);
    CHECK((*list)[0].name == "permessage-deflate");
    REQUIRE((*list)[0].params.size() == 1);
    CHECK((*list)[0].params[0].first == "client_max_window_bits");
    CHECK_FALSE((*list)[0].params[0].second);
    CHECK((*list)[1].params[0].second == "10");
    CHECK((*list)[2].name == "x-other");
    auto offer = parse_deflate_params((*list)[0], DeflateRole::offer);
    REQUIRE(offer);
    CHECK(offer->client_max_window_bits == 0);
    auto second = parse_deflate_params((*list)[1], DeflateRole::offer);
    REQUIRE(second);
    CHECK(second->server_max_window_bits == 10);
    CHECK(second->client_no_context_takeover);
    CHECK_FALSE(second->server_no_context_takeover);
    // A response must give client_max_window_bits a value.
    CHECK_FALSE(parse_deflate_params((*list)[0], DeflateRole::response));

    auto agreed = agreed_deflate("permessage-deflate");
    REQUIRE(agreed);
    REQUIRE(*agreed);
    CHECK_FALSE((*agreed)->server_no_context_takeover);
    CHECK_FALSE((*agreed)->client_no_context_takeover);
    agreed = agreed_deflate("x-webkit, Permessage-Deflate; server_no_context_takeover; client_max_window_bits=15");
    REQUIRE(agreed);
    REQUIRE(*agreed);
    CHECK((*agreed)->server_no_context_takeover);
    CHECK((*agreed)->client_max_window_bits == 15);
    CHECK(deflate_element(**agreed) == "permessage-deflate; server_no_context_takeover; client_max_window_bits=15");
    agreed = agreed_deflate("x-other; a=b");
    REQUIRE(agreed);
    CHECK_FALSE(*agreed);

    for (std::string bad : {"permessage-deflate; server_max_window_bits=7", "permessage-deflate; server_max_window_bits=16",
                            "permessage-deflate; server_max_window_bits=010", "permessage-deflate; server_max_window_bits",
                            "permessage-deflate; server_no_context_takeover=1", "permessage-deflate; unknown",
                            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                            "permessage-deflate, permessage-deflate", "permessage-deflate; client_max_window_bits",
                            "permessage-deflate; x=\"unterminated", "permessage-deflate;", "permessage-deflate x",
                            "permessage-deflate; a=\"\x01\"", "@bad"}) {
        INFO(bad);
        CHECK_FALSE(agreed_deflate(bad));
    }
    CHECK_FALSE(parse_ws_extensions(repeat("a,", 65)));
    CHECK(parse_ws_extensions(repeat("a,", 64)));
    CHECK_FALSE(parse_ws_extensions("a" + repeat(";p", 65)));
}

TEST_CASE("permessage-deflate: RFC 7692 section 7.2.3's example messages", "[wire][deflate]") {
    auto message = [](std::initializer_list<const char*> frames, Inflater& inf) {
        WsAssembler a;
        a.allow_compressed(true);
        std::optional<WsMessage> done;
        for (const char* h : frames) {
            auto f = parse_ws_frame(unhex(h));
            REQUIRE(f);
            auto r = a.add(*f);
            REQUIRE(r);
            if (*r) done = std::move(**r);
        }
        REQUIRE(done);
        CHECK(done->compressed);
        auto out = inf.inflate(done->payload);
        REQUIRE(out);
        return to_string(*out);
    };
    // 7.2.3.1: one compressed block, whole and fragmented.
    Inflater a;
    CHECK(message({"c107f248cdc9c90700"}, a) == "Hello");
    Inflater b;
    CHECK(message({"4103f248cd", "8004c9c90700"}, b) == "Hello");
    // 7.2.3.2: the second "Hello" refers back into the first one's window.
    CHECK(message({"c105f200110000"}, a) == "Hello");
    Inflater fresh;
    CHECK_FALSE(fresh.inflate(unhex("f200110000")));
    // 7.2.3.3: a stored block; 7.2.3.4: BFINAL set; 7.2.3.5: two blocks.
    Inflater c;
    CHECK(message({"c10b000500faff48656c6c6f00"}, c) == "Hello");
    CHECK(message({"c108f348cdc9c9070000"}, c) == "Hello");
    CHECK(message({"c10df24805000000ffffcac9c90700"}, c) == "Hello");

    // And zlib's deflate gives 7.2.3.1's bytes, then 7.2.3.2's.
    Deflater d;
    CHECK(hex(d.deflate(bv("Hello"))) == "f248cdc9c90700");
    CHECK(hex(d.deflate(bv("Hello"))) == "f200110000");
    Deflater e;
    CHECK(hex(e.deflate({})) == "00");
    Inflater ie;
    auto empty = ie.inflate(unhex("00"));
    REQUIRE(empty);
    CHECK(empty->empty());
}

TEST_CASE("permessage-deflate: round trips with and without context takeover", "[wire][deflate]") {
    std::vector<std::string> messages;
    for (int i = 0; i < 20; ++i)
        messages.push_back("{\"type\": \"chat\", \"from\": \"alice\", \"room_id\": \"room1\", \"message\": \"message " +
                           std::to_string(i) + " " + std::string(static_cast<std::size_t>(i * 37), 'x') + "\"}");
    messages.push_back("");
    messages.push_back(std::string(300000, 'q'));
    for (bool nct : {false, true}) {
        INFO("no_context_takeover " << nct);
        Deflater d(nct);
        Inflater i(nct);
        std::size_t second_size = 0, first_size = 0;
        for (std::size_t k = 0; k < messages.size(); ++k) {
            Bytes c = d.deflate(bv(messages[k]));
            if (k == 0) first_size = c.size();
            if (k == 1) second_size = c.size();
            auto back = i.inflate(c);
            REQUIRE(back);
            CHECK(to_string(*back) == messages[k]);
        }
        // The second message repeats the first one's text: with takeover it costs fewer bytes.
        if (nct)
            CHECK(second_size >= first_size);
        else
            CHECK(second_size < first_size);
    }
    // Every window size a client may ask for.
    for (int bits = 8; bits <= 15; ++bits) {
        Deflater d(false, bits);
        Inflater i;
        for (int k = 0; k < 3; ++k) {
            auto back = i.inflate(d.deflate(bv(messages[5])));
            REQUIRE(back);
            CHECK(to_string(*back) == messages[5]);
        }
    }
    // Messages compressed with takeover need it: alone, the second does not inflate.
    Deflater d;
    (void)d.deflate(bv(messages[0]));
    Bytes second = d.deflate(bv(messages[0]));
    Inflater alone(true);
    CHECK_FALSE(alone.inflate(second));
    CHECK_THROWS_AS(Deflater(false, 7), std::invalid_argument);
}

TEST_CASE("permessage-deflate: a decompression bomb and broken data are clean errors", "[wire][deflate][bounds]") {
    Deflater d(true);
    Bytes bomb = d.deflate(Bytes(kMaxInflated + 1, 0));
    CHECK(bomb.size() < 4096);
    Bytes fits = d.deflate(Bytes(kMaxInflated, 0));
    {
        Inflater i(true);
        auto ok = i.inflate(fits);
        REQUIRE(ok);
        CHECK(ok->size() == kMaxInflated);
        auto r = i.inflate(bomb);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == ParseErrc::length_over_limit);
        // Without context takeover the next message still works.
        CHECK_FALSE(i.broken());
        auto next = i.inflate(d.deflate(bv("after")));
        REQUIRE(next);
        CHECK(to_string(*next) == "after");
    }
    {
        // With takeover the window is lost: every later message is refused.
        Deflater t;
        Inflater i(false, 1000);
        auto r = i.inflate(t.deflate(Bytes(1001, 'a')));
        REQUIRE_FALSE(r);
        CHECK(r.error().code == ParseErrc::length_over_limit);
        CHECK(i.broken());
        CHECK_FALSE(i.inflate(t.deflate(bv("x"))));
    }
    // A 64 MiB bomb stops at the bound.
    {
        z_stream zs{};
        REQUIRE(deflateInit2(&zs, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) == Z_OK);
        Bytes zeros(1 << 20, 0), out(1 << 20);
        Bytes big;
        for (int k = 0; k < 64; ++k) {
            zs.next_in = zeros.data();
            zs.avail_in = static_cast<uInt>(zeros.size());
            do {
                zs.next_out = out.data();
                zs.avail_out = static_cast<uInt>(out.size());
                deflate(&zs, k == 63 ? Z_SYNC_FLUSH : Z_NO_FLUSH);
                big.insert(big.end(), out.begin(), out.end() - zs.avail_out);
            } while (zs.avail_out == 0);
        }
        deflateEnd(&zs);
        big.resize(big.size() - 4);
        CHECK(big.size() < kMaxWsMessage);
        Inflater i;
        auto r = i.inflate(big);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == ParseErrc::length_over_limit);
    }
    // Not DEFLATE: a reserved block type; and a message cut inside a block.
    Inflater bad(true);
    auto r = bad.inflate(unhex("ff"));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == ParseErrc::bad_value);
    Bytes whole = Deflater(true).deflate(bv("a longer message, so that it spans a few bytes of Huffman codes"));
    auto cut = bad.inflate(ByteView(whole).first(whole.size() / 2));
    REQUIRE_FALSE(cut);
    auto after = bad.inflate(whole);
    REQUIRE(after);
}

TEST_CASE("Sec-WebSocket-Accept on RFC 6455's example key and the capture's", "[wire][handshake]") {
    CHECK(websocket_accept("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    // From csmp.pcap's first chat socket (websockets 10.4 on both ends).
    CHECK(websocket_accept("Xk4T+zBRaV4dVGlZBZLm8g==") == "w5AKr1kS3QX8H20XJ7d4H8nODjQ=");
    CHECK(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=="));
    CHECK_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ"));
    CHECK_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=!"));
    CHECK_FALSE(valid_websocket_key("dGhlIHNhbXBsZSBub25jZXg="));  // 17 bytes
}
