// SOCP's envelopes and stream codec on any input: parse_envelope with encode
// round trips, the canonical forms and message ids, and the stream codec
// (frame, decode, locate) on bytes cut anywhere. The first byte chooses what
// the rest is:
//
//   s % 4 == 0  a WebSocket text message: parse_envelope; what parses is
//               written by encode() to text that parses to the same envelope
//               and is written again to the same bytes (stable); the three
//               canonical forms of its payload are the same JSON value, the
//               sorted ASCII one ASCII only; its message id is its (ts, from,
//               to, payload)'s and changes with ts
//   s % 4 == 1  one direction of a connection in pieces: u8 k, then k % 8 be16
//               cut points (modulo the stream's length), then the bytes; s & 4:
//               the server's side, s & 8: after an upgrade agreeing on
//               permessage-deflate. Cut at the points, the codec frames the
//               same messages, decoded alike, as from one buffer
//   s % 4 == 2  a connection upgraded with permessage-deflate (s & 4:
//               server_no_context_takeover, s & 8: client_no_context_takeover),
//               then records until the input ends: u8 h, be16 n, n % 4096
//               bytes; h & 1: from the server; h & 2: the bytes are a
//               message's text, sent as one text frame (masked from the
//               client), h & 4: compressed by the side's deflater first
//   s % 4 == 3  detect() on a connection's first bytes, and parse_envelope
//               under tight bounds, which accepts no more than the defaults
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "csmp/wire.hpp"
#include "fuzz_common.hpp"
#include "socp/stream.hpp"
#include "socp/wire.hpp"

using namespace msglab;
using namespace msglab::socp;

namespace {

std::string_view text(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

bool ascii(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

const std::string kRequest =
    "GET / HTTP/1.1\r\nHost: 127.0.0.1:8765\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";

std::string response(bool server_nct, bool client_nct) {
    std::string ext = "permessage-deflate; client_max_window_bits=15";
    if (server_nct) ext += "; server_no_context_takeover";
    if (client_nct) ext += "; client_no_context_takeover";
    return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Extensions: " +
           ext + "\r\n\r\n";
}

void check_canonical(const Json& payload) {
    std::string a = canonical(payload, Canon::sorted_ascii);
    std::string u = canonical(payload, Canon::sorted_utf8);
    std::string r = canonical(payload, Canon::received_order);
    FUZZ_CHECK(ascii(a));
    auto pa = nlohmann::json::parse(a, nullptr, false), pu = nlohmann::json::parse(u, nullptr, false),
         pr = nlohmann::json::parse(r, nullptr, false);
    FUZZ_CHECK(!pa.is_discarded() && pa.is_object());
    FUZZ_CHECK(pa == pu && pa == pr);
    // Sorted forms are already sorted: written again, the same bytes.
    FUZZ_CHECK(canonical(Json::parse(a), Canon::sorted_ascii) == a);
    FUZZ_CHECK(canonical(Json::parse(u), Canon::received_order) == u);
    FUZZ_CHECK(keyshare_content(payload, "k") == a + "k");
}

void envelope_mode(ByteView rest) {
    auto e = parse_envelope(text(rest));
    if (!e) {
        FUZZ_CHECK(!e.error().empty());
        return;
    }
    const Limits limits;
    FUZZ_CHECK(rest.size() <= limits.max_message);
    for (const std::string* s : {&e->type, &e->from, &e->to}) FUZZ_CHECK(!s->empty() && s->size() <= limits.max_id_bytes);
    FUZZ_CHECK(e->payload.is_object());
    std::string x = encode(*e);
    FUZZ_CHECK(ascii(x));
    check_canonical(e->payload);
    if (x.size() > limits.max_message) return;  // ASCII escapes can grow a message past the bound
    auto back = parse_envelope(x);
    FUZZ_CHECK(back);
    FUZZ_CHECK(back->type == e->type && back->from == e->from && back->to == e->to && back->ts == e->ts &&
               back->sig == e->sig);
    FUZZ_CHECK(encode(*back) == x);
    FUZZ_CHECK(canonical(back->payload, Canon::sorted_ascii) == canonical(e->payload, Canon::sorted_ascii));
    const std::string id = message_id(*e);
    FUZZ_CHECK(message_id(*back) == id);
    FUZZ_CHECK(id.rfind(std::to_string(e->ts) + '\n' + e->from + '\n' + e->to + '\n', 0) == 0);
    Envelope later = *back;
    later.ts = e->ts == INT64_MAX ? e->ts - 1 : e->ts + 1;
    FUZZ_CHECK(message_id(later) != id);
    // The sig is not part of the id.
    later = *back;
    later.sig = std::string("x");
    FUZZ_CHECK(message_id(later) == id);
}

// One message as the codec made it.
struct Cut {
    std::size_t length;
    std::string type;
    std::size_t fields;
    std::size_t anomalies;
    bool operator==(const Cut& o) const {
        return length == o.length && type == o.type && fields == o.fields && anomalies == o.anomalies;
    }
};

void check_decoded(const StreamCodec& codec, ByteView m, const DecodedMessage& d) {
    FUZZ_CHECK(!d.type.empty());
    for (const auto& f : d.fields) FUZZ_CHECK(f.name.rfind("socp.", 0) == 0);
    if (d.plaintext) FUZZ_CHECK(d.plaintext->size() <= std::max(csmp::kMaxInflated, csmp::kMaxHttpBody));
    for (const char* f : kFieldPaths)
        if (auto s = codec.locate(m, f)) FUZZ_CHECK(s->offset + s->length <= m.size());
}

// Feeds `pieces` of one direction to a fresh codec (after the handshake when
// `upgraded`) and lists what it cut, an error as a last entry of length 0;
// `left`: the bytes given and not cut when the pieces ran out (0 after an
// error, where the pieces stop).
std::vector<Cut> cut_direction(Peer from, bool upgraded, const std::vector<ByteView>& pieces, std::size_t& left) {
    auto codec = make_stream_codec(nullptr);
    if (upgraded) {
        for (Peer p : {Peer::client, Peer::server}) {
            Bytes h = to_bytes(p == Peer::client ? kRequest : response(false, false));
            auto len = codec->frame(p, h);
            FUZZ_CHECK(len && *len == h.size());
            codec->decode(p, h);
        }
    }
    std::vector<Cut> out;
    Bytes buffer;
    for (ByteView piece : pieces) {
        buffer.insert(buffer.end(), piece.begin(), piece.end());
        for (;;) {
            auto len = codec->frame(from, buffer);
            if (!len) {
                // Which rule a bad start line breaks first may depend on
                // how much of it has arrived (CSMP's HTTP framer): only
                // where the error comes counts.
                out.push_back({0, "error", 0, 0});
                left = 0;
                return out;
            }
            if (*len == 0) break;
            FUZZ_CHECK(*len <= buffer.size());
            ByteView m(buffer.data(), *len);
            DecodedMessage d = codec->decode(from, m);
            check_decoded(*codec, m, d);
            out.push_back({*len, d.type, d.fields.size(), d.anomalies.size()});
            buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(*len));
        }
    }
    left = buffer.size();
    return out;
}

void pieces_mode(std::uint8_t selector, ByteView rest) {
    Reader in(rest);
    std::size_t k = in.u8() % 8;
    std::vector<std::size_t> cuts;
    for (std::size_t i = 0; i < k; ++i) cuts.push_back(in.be16());
    ByteView s = in.rest();
    for (auto& c : cuts) c = s.empty() ? 0 : c % (s.size() + 1);
    cuts.push_back(0);
    cuts.push_back(s.size());
    std::sort(cuts.begin(), cuts.end());
    std::vector<ByteView> pieces;
    for (std::size_t i = 0; i + 1 < cuts.size(); ++i) pieces.push_back(s.subspan(cuts[i], cuts[i + 1] - cuts[i]));
    Peer from = (selector & 4) ? Peer::server : Peer::client;
    bool upgraded = (selector & 8) != 0;
    std::size_t left_whole = 0, left_cut = 0;
    auto whole = cut_direction(from, upgraded, {s}, left_whole);
    auto cut = cut_direction(from, upgraded, pieces, left_cut);
    // A close-delimited body is whatever has arrived: from there on, only
    // the bytes count.
    auto body = [](const std::vector<Cut>& v) {
        return std::find_if(v.begin(), v.end(), [](const Cut& c) { return c.type == "HTTP_BODY"; }) - v.begin();
    };
    auto n = std::min(body(whole), body(cut));
    if (n == static_cast<std::ptrdiff_t>(whole.size()) && n == static_cast<std::ptrdiff_t>(cut.size())) {
        FUZZ_CHECK(whole == cut);
        FUZZ_CHECK(left_whole == left_cut);
        return;
    }
    FUZZ_CHECK(std::equal(whole.begin(), whole.begin() + n, cut.begin()));
}

void connection_mode(std::uint8_t selector, ByteView rest) {
    const bool server_nct = (selector & 4) != 0, client_nct = (selector & 8) != 0;
    auto codec = make_stream_codec(nullptr);
    csmp::Deflater deflater[2] = {csmp::Deflater(client_nct), csmp::Deflater(server_nct)};
    Bytes buffer[2];
    bool dead[2] = {false, false};
    auto push = [&](Peer from, ByteView bytes) {
        int i = from == Peer::client ? 0 : 1;
        if (dead[i]) return;
        buffer[i].insert(buffer[i].end(), bytes.begin(), bytes.end());
        for (;;) {
            auto len = codec->frame(from, buffer[i]);
            if (!len) {
                dead[i] = true;
                return;
            }
            if (*len == 0) return;
            FUZZ_CHECK(*len <= buffer[i].size());
            ByteView m(buffer[i].data(), *len);
            DecodedMessage d = codec->decode(from, m);
            check_decoded(*codec, m, d);
            // An envelope's fields come first, from its own text.
            if (!d.fields.empty() && d.fields[0].name == "socp.type") {
                FUZZ_CHECK(d.plaintext);
                auto e = parse_envelope(text(*d.plaintext));
                FUZZ_CHECK(e && e->type == d.type && d.fields[0].value == d.type);
            }
            buffer[i].erase(buffer[i].begin(), buffer[i].begin() + static_cast<std::ptrdiff_t>(*len));
        }
    };
    push(Peer::client, as_bytes(kRequest));
    push(Peer::server, as_bytes(response(server_nct, client_nct)));
    FUZZ_CHECK(buffer[0].empty() && buffer[1].empty());
    Reader in(rest);
    for (int records = 0; records < 64 && in.remaining() > 0; ++records) {
        std::uint8_t h = in.u8();
        std::size_t n = in.be16() % 4096;
        Peer from = (h & 1) ? Peer::server : Peer::client;
        ByteView bytes = in.bytes(std::min(n, in.remaining()));
        if (!(h & 2)) {
            push(from, bytes);
            continue;
        }
        csmp::WsFrame f;
        f.opcode = csmp::ws_opcode::text;
        f.masked = from == Peer::client;
        f.mask = {h, 0x5a, static_cast<std::uint8_t>(n), 0xa5};
        f.rsv1 = (h & 4) != 0;
        if (f.rsv1)
            f.payload = deflater[from == Peer::client ? 0 : 1].deflate(bytes);
        else
            f.payload.assign(bytes.begin(), bytes.end());
        push(from, csmp::build_ws_frame(f));
    }
}

void detect_mode(ByteView rest) {
    if (detect(rest)) FUZZ_CHECK(text(rest).substr(0, 5) == "GET /");
    // The first bytes alone, as decode's heuristic may see them.
    if (detect(rest.first(std::min<std::size_t>(rest.size(), 24)))) FUZZ_CHECK(detect(rest));
    Limits tight;
    tight.max_message = 512;
    tight.max_id_bytes = 16;
    tight.max_key_text = 64;
    tight.max_depth = 3;
    if (parse_envelope(text(rest), tight)) FUZZ_CHECK(parse_envelope(text(rest)));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::uint8_t selector = data[0];
    ByteView rest(data + 1, size - 1);
    switch (selector % 4) {
        case 0: envelope_mode(rest); break;
        case 1: pieces_mode(selector, rest); break;
        case 2: connection_mode(selector, rest); break;
        case 3: detect_mode(rest); break;
    }
    return 0;
}
