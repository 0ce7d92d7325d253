// The SLMP codec: key and token framing, the PEM key parser, the request
// parser, and the stream codec that decode and replay use, with invariants
// and round trips. The first byte chooses what the rest is:
//
//   s % 4 == 0  one unit: every framer and parser on it
//   s % 4 == 1  a plaintext, sealed under the fixed session's key (so the
//               paths behind the MAC are reached), then framed, parsed and
//               decoded as a request and as a reply
//   s % 4 == 2  a connection for the stream codec, keyed with the fixed
//               session's key log; records until the input ends:
//                 u8 h; h & 1: the server sent it, else the client;
//                 h & 2: the fixed session's unit (h >> 2) % 7 (slmp_fixture.hpp),
//                 else be16 n, then n % 2048 bytes
//   s % 4 == 3  the same without a key log
#include <algorithm>
#include <functional>
#include <string>

#include "core/bytes.hpp"
#include "fuzz_common.hpp"
#include "slmp/codec.hpp"
#include "slmp/stream.hpp"
#include "slmp_fixture.hpp"

using namespace msglab;
using namespace msglab::slmp;
using msglab::fuzzing::slmp_fixture;
using msglab::fuzzing::SlmpFixture;

namespace {

std::string_view text(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

bool b64url_or_pad(std::uint8_t c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '=';
}

bool opens(const fernet::Key& key, std::string_view token) {
    fernet::VerifyOptions o;
    o.check_future = false;
    return fernet::decrypt(key, token, 0, o).ok();
}

void check_key_framing(ByteView unit) {
    for (std::size_t max : {kOriginalUnitBytes, kDecodeMaxUnit}) {
        auto len = frame_key(unit, max);
        if (!len) continue;
        FUZZ_CHECK(*len <= unit.size() && *len <= max);
        if (*len == 0) continue;
        FUZZ_CHECK(*len >= 16);  // "-----BEGIN " ... "-----END " ... "-----"
        FUZZ_CHECK(text(unit).substr(0, 11) == "-----BEGIN ");
        // The same key unit, framed with the larger bound, is the same length.
        if (max == kOriginalUnitBytes) {
            auto wide = frame_key(unit, kDecodeMaxUnit);
            FUZZ_CHECK(wide && *wide == *len);
        }
        // What was framed frames alone as itself, once the stream has ended
        // after it (its newline, if any, is inside it).
        auto alone = frame_key(unit.first(*len), max);
        FUZZ_CHECK(alone && (*alone == *len || (*alone == 0 && unit[*len - 1] != '\n')));
        (void)parse_key(unit.first(*len));
    }
}

void check_key(ByteView unit) {
    auto k = parse_key(unit);
    if (!k) return;
    if (!k->key) {
        FUZZ_CHECK(!k->original_layout && k->curve != "P-256");
        return;
    }
    FUZZ_CHECK(k->curve == "P-256");
    // Re-emitted as PEM, the key parses to the same key in the original's layout.
    std::string pem = k->key->pem();
    FUZZ_CHECK(pem.size() == kPemBytes);
    auto again = parse_key(as_bytes(pem));
    FUZZ_CHECK(again && again->key && again->original_layout);
    FUZZ_CHECK(again->der == k->key->spki_der() && again->der.size() == kSpkiDerBytes);
    FUZZ_CHECK(again->key->point() == k->key->point());
    auto framed = frame_key(as_bytes(pem), kOriginalUnitBytes);
    FUZZ_CHECK(framed && *framed == pem.size());
    if (k->original_layout) {
        FUZZ_CHECK(text(unit) == pem);
        FUZZ_CHECK(k->der == again->der);
    }
}

void check_token_framing(ByteView unit) {
    const auto& fx = slmp_fixture();
    for (std::size_t max : {kOriginalUnitBytes, kDecodeMaxUnit}) {
        std::size_t verified = 0;
        std::function<bool(std::string_view)> verify = [&](std::string_view t) {
            // Only whole-length candidates at the front, within the bound.
            FUZZ_CHECK(t.data() == reinterpret_cast<const char*>(unit.data()));
            FUZZ_CHECK(t.size() <= unit.size() && t.size() <= max && plausible_token_length(t.size()));
            bool ok = opens(fx.key, t);
            if (ok) verified = t.size();
            return ok;
        };
        for (int with_verifier = 0; with_verifier < 2; ++with_verifier) {
            auto f = frame_token(unit, max, with_verifier ? verify : std::function<bool(std::string_view)>{});
            if (!f) continue;
            FUZZ_CHECK(f->length <= unit.size() && f->length <= max);
            if (f->length == 0) {
                FUZZ_CHECK(!f->certain);
                continue;
            }
            FUZZ_CHECK(plausible_token_length(f->length));
            for (std::size_t i = 0; i < f->length; ++i) FUZZ_CHECK(b64url_or_pad(unit[i]));
            // '=' only as padding at the end.
            auto first_pad = text(unit.first(f->length)).find('=');
            FUZZ_CHECK(first_pad == std::string_view::npos || first_pad + 2 >= f->length);
            if (with_verifier && verified == f->length) FUZZ_CHECK(f->certain);
            // A token the verifier accepted is one Fernet opens.
            if (with_verifier && f->certain && verified == f->length) FUZZ_CHECK(opens(fx.key, text(unit.first(f->length))));
        }
    }
}

void check_request(ByteView plaintext) {
    auto r = parse_request(plaintext);
    if (!valid_utf8(plaintext)) FUZZ_CHECK(!r);
    if (looks_like_request(plaintext)) {
        FUZZ_CHECK(plaintext.size() >= 65 && plaintext[64] == ';');
    }
    if (!r) return;
    FUZZ_CHECK(request_text(*r) == text(plaintext));
    for (const std::string* f : {&r->token, &r->user, &r->message}) FUZZ_CHECK(f->find(';') == std::string::npos);
    auto again = parse_request(to_bytes(request_text(*r)));
    FUZZ_CHECK(again && again->token == r->token && again->user == r->user && again->message == r->message);
}

void unit_mode(ByteView unit) {
    auto kind = unit_kind(unit);
    FUZZ_CHECK(kind.has_value() == (!unit.empty() && (unit[0] == '-' || (b64url_or_pad(unit[0]) && unit[0] != '='))));
    check_key_framing(unit);
    check_key(unit);
    check_token_framing(unit);
    check_request(unit);
    // Fernet under the fixed key: what opens is a plaintext of the size the
    // token's length allows.
    fernet::VerifyOptions o;
    o.check_future = false;
    if (auto opened = fernet::decrypt(slmp_fixture().key, text(unit), 0, o)) {
        // Padding is optional on the way in: up to two '=' fewer.
        FUZZ_CHECK(unit.size() <= token_length(opened->size()) && unit.size() + 2 >= token_length(opened->size()));
        check_request(*opened);
    }
    // The size limits agree with each other.
    std::size_t budget = 120 + unit.size();
    std::size_t most = max_plaintext(budget);
    FUZZ_CHECK(token_length(most) <= budget && token_length(most + 1) > budget);
}

// Feeds one connection through a stream codec, both directions, checking
// every cut and decode.
struct Stream {
    explicit Stream(std::unique_ptr<StreamCodec> c) : codec(std::move(c)) {}

    std::unique_ptr<StreamCodec> codec;
    Bytes buffer[2];
    bool dead[2] = {false, false};

    void push(Peer from, ByteView bytes) {
        auto& buf = buffer[static_cast<int>(from)];
        if (dead[static_cast<int>(from)]) return;
        buf.insert(buf.end(), bytes.begin(), bytes.end());
        for (;;) {
            auto len = codec->frame(from, buf);
            if (!len) {
                dead[static_cast<int>(from)] = true;  // no resynchronising
                return;
            }
            if (*len == 0) return;
            FUZZ_CHECK(*len <= buf.size());
            ByteView m(buf.data(), *len);
            DecodedMessage d = codec->decode(from, m);
            FUZZ_CHECK(!d.type.empty());
            if (d.plaintext) {
                // Only the fixed session's key is in the key log.
                fernet::VerifyOptions o;
                o.check_future = false;
                auto opened = fernet::decrypt(slmp_fixture().key, text(m), 0, o);
                FUZZ_CHECK(opened && *opened == *d.plaintext);
                FUZZ_CHECK(d.type == (from == Peer::client ? "REQUEST" : "RESPONSE"));
            }
            for (const char* field : {"slmp.pem", "slmp.token", "slmp.nothing"})
                if (auto span = codec->locate(m, field)) FUZZ_CHECK(span->offset + span->length <= m.size());
            buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*len));
        }
    }
};

void stream_mode(ByteView rest, bool keyed) {
    const auto& fx = slmp_fixture();
    Stream s(make_stream_codec(keyed ? &fx.keylog : nullptr));
    Reader in(rest);
    for (int records = 0; records < 32 && in.remaining() > 0; ++records) {
        std::uint8_t h = in.u8();
        Peer from = (h & 1) ? Peer::server : Peer::client;
        if (h & 2) {
            s.push(from, fx.units[(h >> 2) % SlmpFixture::unit_count]);
        } else {
            std::size_t n = in.be16() % 2048;
            s.push(from, in.bytes(std::min(n, in.remaining())));
        }
    }
}

void sealed_mode(std::uint8_t selector, ByteView plaintext) {
    if (plaintext.size() > 65536) return;
    const auto& fx = slmp_fixture();
    std::uint64_t ts = fx.time + selector * 1000ull;
    std::string token = fernet::encrypt(fx.key, plaintext, ts, Bytes(16, selector));
    ByteView t = as_bytes(token);
    FUZZ_CHECK(token.size() == token_length(plaintext.size()));
    FUZZ_CHECK(plausible_token_length(token.size()));
    FUZZ_CHECK(plaintext.size() <= max_plaintext(token.size()));
    // The original's one recv(1024) holds the token exactly when the plaintext is within its limit.
    FUZZ_CHECK((token.size() <= kOriginalUnitBytes) == (plaintext.size() <= max_plaintext(kOriginalUnitBytes)));
    FUZZ_CHECK(unit_kind(t) == UnitKind::token);
    auto verify = [&](std::string_view c) { return opens(fx.key, c); };
    // Alone, and with the next unit right behind it in the same read.
    auto f = frame_token(t, kDecodeMaxUnit, verify);
    FUZZ_CHECK(f && f->length == token.size() && f->certain);
    // Under the original's bound it is whole, or refused as too long.
    f = frame_token(t, kOriginalUnitBytes, verify);
    FUZZ_CHECK(token.size() <= kOriginalUnitBytes ? f && f->length == token.size() && f->certain
                                                  : !f && f.error().code == ParseErrc::length_over_limit);
    Bytes two = to_bytes(token);
    const Bytes& next = fx.units[SlmpFixture::reply];
    two.insert(two.end(), next.begin(), next.end());
    f = frame_token(two, kDecodeMaxUnit, verify);
    FUZZ_CHECK(f && f->length == token.size() && f->certain);
    f = frame_token(two, kDecodeMaxUnit);  // no key: the first whole-length cut
    FUZZ_CHECK(f && f->length <= token.size());
    check_request(plaintext);

    // The stream codec opens it as a request and as a response.
    for (Peer from : {Peer::client, Peer::server}) {
        auto codec = make_stream_codec(&fx.keylog);
        for (auto u : {SlmpFixture::client_key, SlmpFixture::server_key}) {
            Peer p = u == SlmpFixture::client_key ? Peer::client : Peer::server;
            auto len = codec->frame(p, fx.units[u]);
            FUZZ_CHECK(len && *len == fx.units[u].size());
            codec->decode(p, fx.units[u]);
        }
        auto len = codec->frame(from, t);
        FUZZ_CHECK(len && *len == token.size());
        DecodedMessage d = codec->decode(from, t);
        FUZZ_CHECK(d.type == (from == Peer::client ? "REQUEST" : "RESPONSE"));
        FUZZ_CHECK(d.plaintext && *d.plaintext == Bytes(plaintext.begin(), plaintext.end()));
        FUZZ_CHECK(d.timestamp == ts);
        FUZZ_CHECK(d.session_id == hex(fx.session_id));
        if (from == Peer::client) {
            auto r = parse_request(plaintext);
            bool has_user = std::any_of(d.fields.begin(), d.fields.end(), [](const Field& x) { return x.name == "slmp.user"; });
            FUZZ_CHECK(has_user == r.ok());
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::uint8_t selector = data[0];
    ByteView rest(data + 1, size - 1);
    switch (selector % 4) {
        case 0: unit_mode(rest); break;
        case 1: sealed_mode(selector, rest); break;
        case 2: stream_mode(rest, true); break;
        case 3: stream_mode(rest, false); break;
    }
    return 0;
}
