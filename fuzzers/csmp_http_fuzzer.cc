// CSMP's HTTP/1.1 framing on any input, and the stream codec on it. The
// first byte chooses how the rest is read:
//
//   bit 0     a response (else a request)
//   bit 1     the response answers HEAD
//   bits 2-7  where the rest is cut in two for the codec's split feeding
//
// Invariants: a framed length never exceeds the input; the framed prefix
// frames alone to the same length and every shorter prefix needs more bytes;
// parse_http and the incremental HttpFramer agree with frame_http, and the
// fields point at the input's own bytes; a decoded body sent again with a Content-Length parses back to
// itself; the stream codec cuts the same client messages whether the bytes
// come at once or in two pieces.
#include <algorithm>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "csmp/stream.hpp"
#include "csmp/wire.hpp"
#include "fuzz_common.hpp"

using namespace msglab;
using namespace msglab::csmp;

namespace {

std::string_view text(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

void check_framing(ByteView in, HttpKind kind, std::string_view method) {
    HttpMessage head;
    auto len = frame_http(in, kind, method, &head);
    {
        // The incremental framer on a prefix, then on everything.
        HttpFramer framer(kind);
        auto first = framer.frame(in.first(in.size() / 2), method);
        auto want_first = frame_http(in.first(in.size() / 2), kind, method);
        FUZZ_CHECK(first.ok() == want_first.ok());
        if (first) FUZZ_CHECK(*first == *want_first);
        auto all = framer.frame(in, method);
        FUZZ_CHECK(all.ok() == len.ok());
        if (all) FUZZ_CHECK(*all == *len);
        else FUZZ_CHECK(all.error().code == len.error().code);
    }
    auto parsed = parse_http(in, kind, method);
    if (!len) {
        FUZZ_CHECK(!parsed);
        FUZZ_CHECK(parsed.error().code == len.error().code);
        return;
    }
    if (*len == 0) {
        FUZZ_CHECK(!parsed && parsed.error().code == ParseErrc::truncated);
        FUZZ_CHECK(head.headers.empty() && head.length == 0);
        return;
    }
    FUZZ_CHECK(*len <= in.size());
    FUZZ_CHECK(head.length == *len);
    FUZZ_CHECK(head.head_length <= *len && head.head_length <= kMaxHttpHead && head.head_length >= 4);
    FUZZ_CHECK(text(in.first(head.head_length)).substr(head.head_length - 4) == "\r\n\r\n");
    FUZZ_CHECK(head.headers.size() <= kMaxHttpHeaders);
    FUZZ_CHECK(head.trailers.size() <= kMaxHttpHeaders);
    if (head.framing == BodyFraming::none || head.framing == BodyFraming::until_close)
        FUZZ_CHECK(*len == head.head_length);

    // The framed prefix frames alone to the same length; shorter ones wait.
    ByteView framed = in.first(*len);
    auto again = frame_http(framed, kind, method);
    FUZZ_CHECK(again && *again == *len);
    for (std::size_t cut : {*len - 1, *len / 2, head.head_length - 1}) {
        auto part = frame_http(in.first(cut), kind, method);
        FUZZ_CHECK(part && *part == 0);
    }

    // parse_http agrees, and its fields are the input's bytes.
    FUZZ_CHECK(parsed);
    const HttpMessage& m = *parsed;
    FUZZ_CHECK(m.length == *len && m.head_length == head.head_length && m.framing == head.framing);
    FUZZ_CHECK(m.headers.size() == head.headers.size());
    FUZZ_CHECK(m.body.size() <= kMaxHttpBody);
    for (const auto& h : m.headers) {
        FUZZ_CHECK(h.value_offset + h.value.size() <= m.head_length);
        FUZZ_CHECK(text(in).substr(h.value_offset, h.value.size()) == h.value);
        FUZZ_CHECK(!h.name.empty() && h.name.find(':') == std::string::npos);
    }
    if (kind == HttpKind::request) {
        FUZZ_CHECK(!m.method.empty() && !m.target.empty());
        FUZZ_CHECK(text(in).substr(m.target_offset, m.target.size()) == m.target);
        if (!m.query.empty()) FUZZ_CHECK(text(in).substr(m.query_offset, m.query.size()) == m.query);
        for (const char* name : {"session_id", "room_id"}) {
            auto value = query_parameter(m.query, name);
            auto span = query_parameter_span(m.query, name);
            FUZZ_CHECK(value.has_value() == span.has_value());
            FUZZ_CHECK(value.has_value() == (query_parameter_count(m.query, name) > 0));
            if (span) {
                FUZZ_CHECK(span->offset + span->length <= m.query.size());
                FUZZ_CHECK(percent_decode(std::string_view(m.query).substr(span->offset, span->length), true) == *value);
            }
        }
    } else {
        FUZZ_CHECK(m.status >= 100 && m.status <= 999);
    }
    if (m.framing == BodyFraming::length) {
        FUZZ_CHECK(m.body.size() == *len - m.head_length);
        FUZZ_CHECK(std::equal(m.body.begin(), m.body.end(), in.begin() + static_cast<std::ptrdiff_t>(m.head_length)));
    } else if (m.framing != BodyFraming::chunked) {
        FUZZ_CHECK(m.body.empty());
    }

    // The incremental framer, fed growing prefixes, answers the same.
    HttpFramer framer(kind);
    for (std::size_t cut : {head.head_length / 2, head.head_length, (head.head_length + *len) / 2, *len}) {
        HttpMessage h;
        auto got = framer.frame(in.first(cut), method, &h);
        auto want = frame_http(in.first(cut), kind, method);
        FUZZ_CHECK(got && want && *got == *want);
        if (*got > 0) FUZZ_CHECK(h.length == *got && h.headers.size() == head.headers.size());
    }

    // The body, sent again with a Content-Length, parses back to itself.
    std::string resent = "POST /chat/send HTTP/1.1\r\nContent-Length: " + std::to_string(m.body.size()) + "\r\n\r\n";
    resent.append(m.body.begin(), m.body.end());
    auto back = parse_http(as_bytes(resent), HttpKind::request);
    FUZZ_CHECK(back && back->body == m.body && back->length == resent.size());
}

struct Cut {
    std::size_t length;
    std::string type;
};

// The client direction of a connection through the stream codec, the bytes
// pushed in the given pieces. Stops at the first framing error.
std::vector<Cut> client_messages(const std::vector<ByteView>& pieces, bool& failed) {
    auto codec = make_stream_codec(nullptr);
    std::vector<Cut> out;
    Bytes buf;
    failed = false;
    for (ByteView p : pieces) {
        if (failed) break;
        buf.insert(buf.end(), p.begin(), p.end());
        for (;;) {
            auto len = codec->frame(Peer::client, buf);
            if (!len) {
                failed = true;
                break;
            }
            if (*len == 0) break;
            FUZZ_CHECK(*len <= buf.size());
            ByteView m(buf.data(), *len);
            DecodedMessage d = codec->decode(Peer::client, m);
            FUZZ_CHECK(!d.type.empty());
            for (const char* f : kLocatableFields)
                if (auto s = codec->locate(m, f)) FUZZ_CHECK(s->offset + s->length <= m.size());
            out.push_back({*len, d.type});
            buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*len));
        }
    }
    return out;
}

void check_codec(ByteView rest, std::size_t cut) {
    cut = std::min(cut, rest.size());
    bool failed_whole = false, failed_split = false;
    auto whole = client_messages({rest}, failed_whole);
    auto split = client_messages({rest.first(cut), rest.subspan(cut)}, failed_split);
    FUZZ_CHECK(failed_whole == failed_split);
    FUZZ_CHECK(whole.size() == split.size());
    for (std::size_t i = 0; i < whole.size() && i < split.size(); ++i) {
        FUZZ_CHECK(whole[i].length == split[i].length);
        FUZZ_CHECK(whole[i].type == split[i].type);
    }
    // The server direction: whatever comes, no crash, lengths in bounds.
    auto codec = make_stream_codec(nullptr);
    std::size_t pos = 0;
    for (int n = 0; n < 64 && pos < rest.size(); ++n) {
        auto len = codec->frame(Peer::server, rest.subspan(pos));
        if (!len || *len == 0) break;
        FUZZ_CHECK(*len <= rest.size() - pos);
        DecodedMessage d = codec->decode(Peer::server, rest.subspan(pos, *len));
        FUZZ_CHECK(!d.type.empty());
        pos += *len;
    }
    (void)detect(rest);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::uint8_t selector = data[0];
    ByteView rest(data + 1, size - 1);
    HttpKind kind = (selector & 1) ? HttpKind::response : HttpKind::request;
    check_framing(rest, kind, (selector & 2) ? "HEAD" : "GET");
    check_codec(rest, static_cast<std::size_t>(selector >> 2) * rest.size() / 64);
    return 0;
}
