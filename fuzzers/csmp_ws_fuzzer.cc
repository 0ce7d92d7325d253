// CSMP's WebSocket layer on any input: frames, reassembly, permessage-deflate
// and the stream codec after an upgrade. The first byte chooses what the
// rest is:
//
//   s % 4 == 0  frames back to back: each parsed, rebuilt (the same bytes),
//               reassembled (RSV1 allowed when bit 2 is set) and, when
//               compressed, inflated (bit 3: no context takeover); what
//               inflates is deflated again and must come back
//   s % 4 == 1  two compressed messages (cut at byte 1 of the rest) for one
//               inflater, then the rest as a plaintext through a deflater
//               and an inflater (bit 3: no context takeover)
//   s % 4 == 2  a Sec-WebSocket-Extensions value: parsed, and an agreed
//               permessage-deflate written out parses back the same
//   s % 4 == 3  a connection upgraded with permessage-deflate (bits 2-3 pick
//               no_context_takeover per side), then records until the input
//               ends: u8 h (h & 1: from the server), be16 n, n % 4096 bytes
#include <algorithm>
#include <string>

#include "core/bytes.hpp"
#include "csmp/stream.hpp"
#include "csmp/wire.hpp"
#include "fuzz_common.hpp"

using namespace msglab;
using namespace msglab::csmp;

namespace {

// Deflated and inflated again with matching settings, `plain` comes back.
void check_round_trip(ByteView plain, bool nct) {
    if (plain.size() > kMaxInflated) return;
    Deflater d(nct);
    Inflater i(nct);
    for (int k = 0; k < 2; ++k) {
        Bytes c = d.deflate(plain);
        auto back = i.inflate(c);
        FUZZ_CHECK(back && *back == Bytes(plain.begin(), plain.end()));
    }
}

void frames_mode(std::uint8_t selector, ByteView rest) {
    WsAssembler assembler;
    assembler.allow_compressed(selector & 4);
    Inflater inflater((selector & 8) != 0);
    std::size_t pos = 0;
    for (int n = 0; n < 256 && pos < rest.size(); ++n) {
        ByteView in = rest.subspan(pos);
        auto len = frame_ws(in);
        auto f = parse_ws_frame(in);
        if (!len) {
            FUZZ_CHECK(!f && f.error().code == len.error().code);
            return;
        }
        if (*len == 0) {
            FUZZ_CHECK(!f && f.error().code == ParseErrc::truncated);
            return;
        }
        FUZZ_CHECK(*len <= in.size() && *len >= 2);
        FUZZ_CHECK(f);
        FUZZ_CHECK(f->header_length + f->payload.size() == *len);
        FUZZ_CHECK(f->payload.size() <= kMaxWsPayload);
        if (ws_control(f->opcode)) FUZZ_CHECK(f->fin && f->payload.size() <= kMaxWsControlPayload);
        // Only minimal encodings parse, so rebuilding gives the same bytes.
        Bytes rebuilt = build_ws_frame(*f);
        FUZZ_CHECK(rebuilt.size() == *len && std::equal(rebuilt.begin(), rebuilt.end(), in.begin()));
        // Every shorter prefix waits for more bytes.
        for (std::size_t cut : {*len - 1, f->header_length - 1, f->header_length}) {
            if (cut >= *len) continue;
            auto part = frame_ws(in.first(cut));
            FUZZ_CHECK(part && *part == 0);
        }
        if (f->opcode == ws_opcode::close) {
            if (auto c = parse_ws_close(f->payload)) {
                Bytes again;
                if (c->code) {
                    FUZZ_CHECK(ws_close_code_valid(*c->code));
                    again = {static_cast<std::uint8_t>(*c->code >> 8), static_cast<std::uint8_t>(*c->code)};
                    again.insert(again.end(), c->reason.begin(), c->reason.end());
                }
                FUZZ_CHECK(again == f->payload);
            }
        }
        auto r = assembler.add(*f);
        if (r && *r) {
            const WsMessage& m = **r;
            FUZZ_CHECK(m.payload.size() <= kMaxWsMessage);
            FUZZ_CHECK(m.frames >= 1 && m.frames <= kMaxWsFragments);
            if (m.compressed) {
                FUZZ_CHECK(selector & 4);
                auto out = inflater.inflate(m.payload);
                if (out) {
                    FUZZ_CHECK(out->size() <= kMaxInflated);
                    check_round_trip(*out, (selector & 8) != 0);
                }
            }
        }
        FUZZ_CHECK(!assembler.in_message() || assembler.fragments() >= 1);
        pos += *len;
    }
}

void inflate_mode(std::uint8_t selector, ByteView rest) {
    bool nct = (selector & 8) != 0;
    std::size_t cut = rest.empty() ? 0 : std::min<std::size_t>(rest[0], rest.size() - 1) + 1;
    Inflater i(nct, 64 * 1024);
    auto a = i.inflate(rest.first(std::min(cut, rest.size())));
    if (a) FUZZ_CHECK(a->size() <= 64 * 1024);
    if (!a && !nct) FUZZ_CHECK(i.broken());
    auto b = i.inflate(rest.subspan(std::min(cut, rest.size())));
    if (b) FUZZ_CHECK(b->size() <= 64 * 1024 && !i.broken());
    check_round_trip(rest, nct);
}

void extensions_mode(ByteView rest) {
    std::string_view value(reinterpret_cast<const char*>(rest.data()), rest.size());
    auto list = parse_ws_extensions(value);
    if (list) {
        FUZZ_CHECK(list->size() <= 64);
        for (const auto& e : *list) {
            FUZZ_CHECK(!e.name.empty() && e.params.size() <= 64);
            for (DeflateRole role : {DeflateRole::offer, DeflateRole::response}) {
                auto p = parse_deflate_params(e, role);
                if (!p) continue;
                // Written out and read back, the same parameters.
                auto again = parse_ws_extensions(deflate_element(*p));
                FUZZ_CHECK(again && again->size() == 1);
                auto q = parse_deflate_params((*again)[0], role);
                FUZZ_CHECK(q);
                FUZZ_CHECK(q->server_no_context_takeover == p->server_no_context_takeover);
                FUZZ_CHECK(q->client_no_context_takeover == p->client_no_context_takeover);
                FUZZ_CHECK(q->server_max_window_bits == p->server_max_window_bits);
                FUZZ_CHECK(q->client_max_window_bits == p->client_max_window_bits);
                if (role == DeflateRole::response) FUZZ_CHECK(p->client_max_window_bits != 0);
            }
        }
    }
    auto agreed = agreed_deflate(value);
    if (agreed && *agreed) FUZZ_CHECK(list);
}

void connection_mode(std::uint8_t selector, ByteView rest) {
    std::string ext = "permessage-deflate";
    if (selector & 4) ext += "; server_no_context_takeover";
    if (selector & 8) ext += "; client_no_context_takeover";
    std::string req =
        "GET /ws/call?session_id=fuzz HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
    std::string resp =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Extensions: " + ext + "\r\n\r\n";
    auto codec = make_stream_codec(nullptr);
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
            FUZZ_CHECK(!d.type.empty());
            if (d.plaintext) FUZZ_CHECK(d.plaintext->size() <= std::max(kMaxInflated, kMaxWsMessage));
            for (const char* f : kLocatableFields)
                if (auto s = codec->locate(m, f)) FUZZ_CHECK(s->offset + s->length <= m.size());
            buffer[i].erase(buffer[i].begin(), buffer[i].begin() + static_cast<std::ptrdiff_t>(*len));
        }
    };
    push(Peer::client, as_bytes(req));
    push(Peer::server, as_bytes(resp));
    FUZZ_CHECK(buffer[0].empty() && buffer[1].empty());
    Reader in(rest);
    for (int records = 0; records < 64 && in.remaining() > 0; ++records) {
        std::uint8_t h = in.u8();
        std::size_t n = in.be16() % 4096;
        push((h & 1) ? Peer::server : Peer::client, in.bytes(std::min(n, in.remaining())));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::uint8_t selector = data[0];
    ByteView rest(data + 1, size - 1);
    switch (selector % 4) {
        case 0: frames_mode(selector, rest); break;
        case 1: inflate_mode(selector, rest); break;
        case 2: extensions_mode(rest); break;
        case 3: connection_mode(selector, rest); break;
    }
    return 0;
}
