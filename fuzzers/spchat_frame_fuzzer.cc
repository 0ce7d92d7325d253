// SP-SimpleChat's framing and message codec: FrameReader against a one-shot
// cut of the same bytes, parse() with round trips through server_frame and
// client_frame, and the stream codec (frame, decode, locate) on both
// directions. The first byte chooses what the rest is:
//
//   s % 4 == 0  one direction's byte stream in pieces: u8 k, then k % 8 be16
//               cut points (taken modulo the stream's length), then the
//               stream. The FrameReader's bound is (s >> 2) % 3: 1 MiB, 256
//               bytes, or any length (spchat.unbounded-frame); s & 0x20: the
//               server sent it (for the stream codec)
//   s % 4 == 1  one frame's body: parsed, re-encoded both ways, framed and
//               decoded from either side, and given to detect()
//   s % 4 == 2  a connection: records until the input ends: u8 h (h & 1:
//               from the server), be16 n, n % 4096 bytes; each side through a
//               FrameReader and the stream codec, which must cut alike
//   s % 4 == 3  a file transfer the stream codec must open: u8 n, a file
//               nonce of n % 64 + 1 bytes, then the plaintext of one chunk;
//               s & 4: sent by the server, s & 8: as the original's client
//               writes it; the same chunk tampered, and one of an unknown file
//               id, must not open
#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "core/crypto.hpp"
#include "fuzz_common.hpp"
#include "slmp/codec.hpp"  // valid_utf8
#include "spchat/files.hpp"
#include "spchat/stream.hpp"
#include "spchat/wire.hpp"

using namespace msglab;
using namespace msglab::spchat;

namespace {

std::string_view text(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

std::uint64_t be32(ByteView b) {
    return (std::uint64_t{b[0]} << 24) | (std::uint64_t{b[1]} << 16) | (std::uint64_t{b[2]} << 8) | b[3];
}

// A float that JSON text cannot carry (1e999 parses as infinity and is
// written back as null): such a message does not round-trip, by design.
bool finite(const Json& j) {
    if (j.is_number_float()) return std::isfinite(j.get<double>());
    if (j.is_structured())
        for (const auto& e : j)
            if (!finite(e)) return false;
    return true;
}

bool ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

void check_text_helpers(const std::string& s) {
    std::string t = strip(s);
    FUZZ_CHECK(t.size() <= s.size());
    FUZZ_CHECK(t.empty() || (!ascii_space(t.front()) && !ascii_space(t.back())));
    FUZZ_CHECK(s.find(t) != std::string::npos);
    std::string l = lower(s), u = upper(s);
    FUZZ_CHECK(l.size() == s.size() && u.size() == s.size());
    FUZZ_CHECK(lower(u) == l && upper(l) == u);
    for (std::size_t i = 0; i < s.size(); ++i)
        if (static_cast<unsigned char>(s[i]) >= 0x80) FUZZ_CHECK(l[i] == s[i] && u[i] == s[i]);
}

// One frame's body: what parse() makes of it, and a parsed message written
// back either way parses to itself (and the server's writer, given that,
// writes the same bytes again).
std::optional<Json> check_body(std::string_view body) {
    auto m = parse(body);
    if (!m) return std::nullopt;
    FUZZ_CHECK(slmp::valid_utf8(as_bytes(body)));
    FUZZ_CHECK(body.find('\0') == std::string_view::npos);  // JSON text has none (nlohmann's lexer ends there)
    FUZZ_CHECK(m->is_object() && m->contains("type") && (*m)["type"].is_string());
    if (finite(*m)) {
        for (bool server : {true, false}) {
            Bytes f = server ? server_frame(*m) : client_frame(*m);
            FUZZ_CHECK(f.size() >= 4 && be32(f) == f.size() - 4);
            if (server)
                for (std::size_t i = 4; i < f.size(); ++i) FUZZ_CHECK(f[i] < 0x80);  // ensure_ascii
            auto back = parse(text(ByteView(f).subspan(4)));
            FUZZ_CHECK(back && *back == *m);
            // Written again, the same bytes (the server's writer stands for both).
            if (server) FUZZ_CHECK(server_frame(*back) == f);
        }
    }
    for (const char* key : {"type", "nick", "room", "text", "from", "to", "password"})
        if (auto v = string_field(*m, key)) check_text_helpers(*v);
    FUZZ_CHECK(!string_field(Json(5), "type"));
    return m;
}

// A message's type as parse() reads it; nullopt when it does not parse.
std::optional<std::string> type_of(ByteView body) {
    auto m = parse(text(body));
    if (!m) return std::nullopt;
    return (*m)["type"].get<std::string>();
}

// What the stream codec made of one message cut from `from`'s bytes, whose
// body parse() reads as `type` (nullopt: not a message).
void check_decoded(StreamCodec& codec, ByteView m, const std::optional<std::string>& type, const DecodedMessage& d) {
    FUZZ_CHECK(!d.type.empty());
    FUZZ_CHECK(m.size() >= 4);
    FUZZ_CHECK(!d.fields.empty() && d.fields[0].name == "spchat.length" &&
               d.fields[0].value == std::to_string(be32(m)));
    if (!type) {
        FUZZ_CHECK(d.type == "MALFORMED");
        FUZZ_CHECK(!d.plaintext && !d.authenticated);
    } else {
        // An empty type is shown as MALFORMED: a message always has a type.
        FUZZ_CHECK(d.type == (type->empty() ? std::string("MALFORMED") : *type));
        bool flagged = std::find(d.anomalies.begin(), d.anomalies.end(), "unknown type") != d.anomalies.end();
        FUZZ_CHECK(flagged == (!type->empty() && !known_type(*type)));
        FUZZ_CHECK(d.fields.size() >= 2 && d.fields[1].name == "spchat.type" && d.fields[1].value == *type);
    }
    if (d.plaintext) FUZZ_CHECK(d.authenticated && d.type == "FILE_CHUNK" && d.plaintext->size() <= m.size());
    auto len = codec.locate(m, "spchat.length");
    FUZZ_CHECK(len && len->offset == 0 && len->length == 4);
    for (const char* f : kFieldPaths)
        if (auto s = codec.locate(m, f))
            FUZZ_CHECK((s->offset >= 4 || s->offset + s->length == 4) && s->offset + s->length <= m.size());
    FUZZ_CHECK(!codec.locate(m, "secmsg.type") && !codec.locate(m.first(3), "spchat.type"));
}

// The cuts a FrameReader bounded by `bound` must make of the whole stream:
// the frames' lengths (prefix included), then whether it stops at a length
// over the bound.
struct Cuts {
    std::vector<std::size_t> frames;
    bool too_large = false;
    std::uint64_t announced = 0;
    std::size_t consumed = 0;
};
Cuts reference_cuts(ByteView s, std::uint64_t bound) {
    Cuts c;
    std::size_t pos = 0;
    while (s.size() - pos >= 4) {
        std::uint64_t n = be32(s.subspan(pos));
        if (n > bound) {
            c.too_large = true;
            c.announced = n;
            break;
        }
        if (s.size() - pos - 4 < n) break;
        c.frames.push_back(4 + static_cast<std::size_t>(n));
        pos += 4 + static_cast<std::size_t>(n);
    }
    c.consumed = pos;
    return c;
}

// One direction of a connection: a FrameReader and the stream codec fed the
// same pieces, each checked against the one-shot cut of what arrived so far.
struct Side {
    Side(std::uint64_t bound, Peer from, StreamCodec& codec) : reader(bound), bound(bound), from(from), codec(codec) {}

    FrameReader reader;
    std::uint64_t bound;
    Peer from;
    StreamCodec& codec;
    Bytes all;       // every byte pushed
    Bytes buffered;  // the codec's unread bytes
    std::vector<std::optional<std::string>> types;  // of the reader's frames, for the codec's
    std::size_t frames = 0, codec_frames = 0;
    bool too_large = false, codec_dead = false;

    void push(ByteView piece) {
        all.insert(all.end(), piece.begin(), piece.end());
        reader.push(piece);
        const Cuts want = reference_cuts(all, bound);
        std::size_t offset = 0;
        for (std::size_t i = 0; i < frames; ++i) offset += want.frames[i];
        std::string body;
        for (;;) {
            auto st = reader.next(body);
            if (st == FrameReader::Status::need_more) break;
            if (st == FrameReader::Status::too_large) {
                FUZZ_CHECK(want.too_large && frames == want.frames.size());
                FUZZ_CHECK(reader.announced() == want.announced && want.announced > bound);
                FUZZ_CHECK(reader.next(body) == FrameReader::Status::too_large);  // it stays refused
                too_large = true;
                break;
            }
            FUZZ_CHECK(!too_large && frames < want.frames.size());
            FUZZ_CHECK(body.size() + 4 == want.frames[frames] && body.size() <= bound);
            FUZZ_CHECK(body == text(ByteView(all).subspan(offset + 4, body.size())));
            offset += want.frames[frames];
            ++frames;
            auto m = check_body(body);
            types.push_back(m ? std::optional<std::string>((*m)["type"].get<std::string>()) : std::nullopt);
        }
        // Every whole frame that arrived was given out, and nothing else is kept.
        FUZZ_CHECK(frames == want.frames.size());
        FUZZ_CHECK(too_large == want.too_large);
        FUZZ_CHECK(reader.buffered() == all.size() - want.consumed);
        if (!too_large && reader.buffered() >= 4)
            FUZZ_CHECK(reader.announced() == be32(ByteView(all).subspan(want.consumed)));

        if (codec_dead) return;
        buffered.insert(buffered.end(), piece.begin(), piece.end());
        for (;;) {
            auto len = codec.frame(from, buffered);
            if (!len) {
                FUZZ_CHECK(buffered.size() >= 4 && be32(buffered) > kDecodeMaxFrame);
                codec_dead = true;
                return;
            }
            if (*len == 0) {
                FUZZ_CHECK(buffered.size() < 4 || buffered.size() - 4 < be32(buffered));
                return;
            }
            FUZZ_CHECK(*len <= buffered.size() && *len == 4 + be32(buffered));
            ByteView m(buffered.data(), *len);
            // The reader cuts alike while its bound allows the frame.
            if (codec_frames < frames) FUZZ_CHECK(want.frames[codec_frames] == *len);
            auto type = codec_frames < frames ? types[codec_frames] : type_of(m.subspan(4));
            ++codec_frames;
            check_decoded(codec, m, type, codec.decode(from, m));
            buffered.erase(buffered.begin(), buffered.begin() + static_cast<std::ptrdiff_t>(*len));
        }
    }
};

void stream_mode(std::uint8_t selector, ByteView rest) {
    Reader in(rest);
    std::size_t k = in.u8() % 8;
    std::vector<std::size_t> cuts;
    for (std::size_t i = 0; i < k; ++i) cuts.push_back(in.be16());
    ByteView s = in.rest();
    for (auto& c : cuts) c = s.empty() ? 0 : c % (s.size() + 1);
    cuts.push_back(0);
    cuts.push_back(s.size());
    std::sort(cuts.begin(), cuts.end());
    static const std::uint64_t bounds[] = {kDefaultMaxFrame, 256, kMaxLengthPrefix};
    auto codec = make_stream_codec(nullptr);
    Side side(bounds[(selector >> 2) % 3], (selector & 0x20) ? Peer::server : Peer::client, *codec);
    for (std::size_t i = 0; i + 1 < cuts.size(); ++i) side.push(s.subspan(cuts[i], cuts[i + 1] - cuts[i]));
}

void body_mode(ByteView rest) {
    std::string_view body = text(rest);
    auto m = check_body(body);
    // Nothing more may follow the object, not even behind a NUL.
    FUZZ_CHECK(!parse(std::string(body) + '\0' + "{\"type\": \"PING\"}"));
    Bytes f = frame(body);
    for (Peer from : {Peer::client, Peer::server}) {
        auto codec = make_stream_codec(nullptr);
        auto len = codec->frame(from, f);
        FUZZ_CHECK(len && *len == f.size());
        check_decoded(*codec, f, m ? std::optional<std::string>((*m)["type"].get<std::string>()) : std::nullopt,
                      codec->decode(from, f));
        // One byte short, it waits.
        auto part = codec->frame(from, ByteView(f).first(f.size() - 1));
        FUZZ_CHECK(part && *part == 0);
    }
    bool detected = detect(f);
    if (detected) FUZZ_CHECK(m && known_type((*m)["type"].get<std::string>()));
    if (m && known_type((*m)["type"].get<std::string>()) && body.size() >= 2 && body[0] == '{') FUZZ_CHECK(detected);
    // The first bytes alone, as decode's heuristic sees a connection's start.
    (void)detect(ByteView(f).first(std::min<std::size_t>(f.size(), 4 + body.size() / 2)));
}

void connection_mode(ByteView rest) {
    auto codec = make_stream_codec(nullptr);
    // The decoder's own bound: the reader and the codec cut the same frames.
    Side sides[2] = {Side(kDecodeMaxFrame, Peer::client, *codec), Side(kDecodeMaxFrame, Peer::server, *codec)};
    Reader in(rest);
    for (int records = 0; records < 64 && in.remaining() > 0; ++records) {
        std::uint8_t h = in.u8();
        std::size_t n = in.be16() % 4096;
        sides[h & 1].push(in.bytes(std::min(n, in.remaining())));
    }
    for (auto& s : sides) FUZZ_CHECK(s.codec_frames == s.frames && s.codec_dead == s.too_large);
}

void sealed_mode(std::uint8_t selector, ByteView rest) {
    Reader in(rest);
    std::size_t n = in.u8() % 64 + 1;
    ByteView fnonce = in.bytes(n);
    if (fnonce.size() != n) return;
    ByteView plain = in.rest();
    const Peer from = (selector & 4) ? Peer::server : Peer::client;
    auto enc = [&](const Json& j) { return (selector & 8) ? client_frame(j) : server_frame(j); };
    const std::string id = "0f3c2a9e-fuzz-4b1d-9c7e-" + hex(fnonce.first(std::min<std::size_t>(n, 6)));
    Json start = {{"type", "FILE_START"}, {"from", "alice"}, {"to", "room1"}, {"ts", 1700000000000ull}};
    start["payload"] = {{"file_id", id},
                        {"name", "f.bin"},
                        {"size", plain.size()},
                        {"sha256", hex(crypto::sha256(plain))},
                        {"mode", "public"},
                        {"aead", "AES-256-EAX"},
                        {"kdf", "HKDF-SHA256"},
                        {"file_nonce_b64", b64url(fnonce)}};
    start["sig"] = "";
    auto offer = read_offer(start);
    FUZZ_CHECK(offer && offer->second == Bytes(fnonce.begin(), fnonce.end()) && offer->first.size == plain.size());
    const Bytes key = file_key(zero_session_key(), fnonce);
    const Bytes nonce = chunk_nonce(key, fnonce, 0);
    const Bytes sealed = seal_chunk(key, nonce, plain);
    FUZZ_CHECK(sealed.size() == plain.size() + 16);
    auto chunk = [&](const std::string& file_id, Bytes ct_tag) {
        Json c = {{"type", "FILE_CHUNK"}, {"from", "alice"}, {"to", "room1"}, {"ts", 1700000000001ull}};
        c["payload"] = {{"file_id", file_id},
                        {"index", 0},
                        {"nonce_b64", b64url(nonce)},
                        {"ciphertext", b64url(ByteView(ct_tag).first(ct_tag.size() - 16))},
                        {"tag_b64", b64url(ByteView(ct_tag).last(16))}};
        c["sig"] = "";
        return enc(c);
    };
    Bytes tampered = sealed;
    tampered[(selector >> 4) % tampered.size()] ^= 0x01;
    auto codec = make_stream_codec(nullptr);
    auto decode = [&](const Bytes& f) {
        auto len = codec->frame(from, f);
        FUZZ_CHECK(len && *len == f.size());
        DecodedMessage d = codec->decode(from, f);
        check_decoded(*codec, f, type_of(ByteView(f).subspan(4)), d);
        return d;
    };
    // A chunk before its FILE_START does not open.
    DecodedMessage early = decode(chunk(id, sealed));
    FUZZ_CHECK(early.type == "FILE_CHUNK" && !early.plaintext);
    check_body(text(ByteView(enc(start)).subspan(4)));
    DecodedMessage s = decode(enc(start));
    FUZZ_CHECK(s.type == "FILE_START" && !s.anomalies.empty());
    DecodedMessage ok = decode(chunk(id, sealed));
    FUZZ_CHECK(ok.plaintext && *ok.plaintext == Bytes(plain.begin(), plain.end()) && ok.authenticated);
    DecodedMessage bad = decode(chunk(id, tampered));
    FUZZ_CHECK(!bad.plaintext && !bad.authenticated);
    DecodedMessage other = decode(chunk(id + "x", sealed));
    FUZZ_CHECK(!other.plaintext);
    Json end = {{"type", "FILE_END"}, {"from", "alice"}, {"to", "room1"}, {"ts", 1700000000002ull}};
    end["payload"] = {{"file_id", id}};
    end["sig"] = "";
    FUZZ_CHECK(decode(enc(end)).type == "FILE_END");
    // Opened directly, the same.
    auto opened = open_chunk(key, nonce, sealed);
    FUZZ_CHECK(opened && *opened == Bytes(plain.begin(), plain.end()));
    FUZZ_CHECK(!open_chunk(key, nonce, tampered));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::uint8_t selector = data[0];
    ByteView rest(data + 1, size - 1);
    switch (selector % 4) {
        case 0: stream_mode(selector, rest); break;
        case 1: body_mode(rest); break;
        case 2: connection_mode(rest); break;
        case 3: sealed_mode(selector, rest); break;
    }
    return 0;
}
