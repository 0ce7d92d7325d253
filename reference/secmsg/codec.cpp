#include "secmsg/codec.hpp"

#include <algorithm>

#include "secmsg/segmsg_cipher.hpp"

namespace msglab::secmsg {

const char* message_type_name(MessageType t) {
    switch (t) {
        case MessageType::regular: return "REGULAR_MESSAGE";
        case MessageType::handshake_request: return "HANDSHAKE_REQUEST";
        case MessageType::handshake_response: return "HANDSHAKE_RESPONSE";
    }
    return "UNKNOWN";
}

bool is_handshake(MessageType t) {
    return t == MessageType::handshake_request || t == MessageType::handshake_response;
}

namespace {

bool valid_type(std::uint8_t t) { return t >= 1 && t <= 3; }

// Checks the fixed part of a header against what has arrived so far.
std::optional<ParseError> check_header(ByteView buf, const Limits& limits) {
    std::size_t n = std::min(buf.size(), kMagic.size());
    if (!std::equal(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n), kMagic.begin()))
        return ParseError{ParseErrc::bad_magic, 0, "protocol id is not SegMSG"};
    if (buf.size() < 7) return std::nullopt;
    if (!valid_type(buf[6]))
        return ParseError{ParseErrc::unknown_type, 6, "message type " + std::to_string(buf[6])};
    if (buf.size() < 11) return std::nullopt;
    std::uint32_t len = static_cast<std::uint32_t>(buf[7]) << 24 | static_cast<std::uint32_t>(buf[8]) << 16 |
                        static_cast<std::uint32_t>(buf[9]) << 8 | buf[10];
    if (is_handshake(static_cast<MessageType>(buf[6])) && len != kHandshakePayloadBytes)
        return ParseError{ParseErrc::bad_length, 7,
                          "handshake payload length " + std::to_string(len) + ", must be 256"};
    if (len > limits.max_payload)
        return ParseError{ParseErrc::length_over_limit, 7,
                          "payload length " + std::to_string(len) + " exceeds limit " +
                              std::to_string(limits.max_payload)};
    return std::nullopt;
}

}  // namespace

Result<std::size_t, ParseError> frame_length(ByteView buffer, const Limits& limits) {
    if (auto err = check_header(buffer, limits)) return unexpected(std::move(*err));
    if (buffer.size() < 11) return std::size_t{0};
    std::uint32_t len = static_cast<std::uint32_t>(buffer[7]) << 24 | static_cast<std::uint32_t>(buffer[8]) << 16 |
                        static_cast<std::uint32_t>(buffer[9]) << 8 | buffer[10];
    return kOverheadBytes + len;
}

Result<Packet, ParseError> parse_packet(ByteView bytes, const Limits& limits) {
    if (auto err = check_header(bytes, limits)) return unexpected(std::move(*err));
    Reader r(bytes);
    Packet p;
    r.bytes(kMagic.size());
    p.type = static_cast<MessageType>(r.u8());
    std::uint32_t len = r.be32();
    p.original_hash = r.array<32>();
    p.timestamp = r.be64();
    ByteView payload = r.bytes(len);
    p.payload.assign(payload.begin(), payload.end());
    p.hmac = r.array<32>();
    r.expect_end();
    if (!r.ok()) return unexpected(r.error());
    return p;
}

Bytes serialize(const Packet& p) {
    Writer w(kOverheadBytes + p.payload.size());
    w.bytes(kMagic).u8(static_cast<std::uint8_t>(p.type)).be32(static_cast<std::uint32_t>(p.payload.size()));
    w.bytes(p.original_hash).be64(p.timestamp).bytes(p.payload).bytes(p.hmac);
    return w.take();
}

ByteView signed_part(ByteView packet_bytes) {
    return packet_bytes.size() < kMacBytes ? ByteView{} : packet_bytes.first(packet_bytes.size() - kMacBytes);
}

Keys Keys::from_master(ByteView master32) {
    Keys k;
    std::copy_n(master32.begin(), std::min<std::size_t>(32, master32.size()), k.master.begin());
    static const Bytes info = to_bytes("HMAC");
    Bytes h = crypto::hkdf_sha256(k.master, {}, info, 32);
    std::copy(h.begin(), h.end(), k.hmac_key.begin());
    return k;
}

Keys Keys::from_shared_secret(ByteView z256) { return from_master(crypto::sha256(z256)); }

Packet make_handshake(MessageType type, ByteView public_value, std::uint64_t timestamp) {
    Packet p;
    p.type = type;
    p.payload.assign(public_value.begin(), public_value.end());
    p.original_hash = crypto::sha256(public_value);
    p.timestamp = timestamp;
    p.hmac.fill(0);  // no key yet: the original sends 32 zero bytes
    return p;
}

Bytes seal_regular_wire(const Keys& keys, const SegmsgCipher& cipher, ByteView plaintext, std::uint64_t timestamp) {
    Writer w(kOverheadBytes + plaintext.size());
    w.bytes(kMagic).u8(static_cast<std::uint8_t>(MessageType::regular));
    w.be32(static_cast<std::uint32_t>(plaintext.size())).bytes(crypto::sha256(plaintext)).be64(timestamp);
    w.bytes(plaintext);
    Bytes wire = w.take();
    cipher.ctr_xor(wire.data() + kHeaderBytes, plaintext.size());
    crypto::Digest mac = crypto::hmac_sha256(keys.hmac_key, wire);
    wire.insert(wire.end(), mac.begin(), mac.end());
    return wire;
}

Packet seal_regular(const Keys& keys, ByteView plaintext, std::uint64_t timestamp) {
    return *parse_packet(seal_regular_wire(keys, SegmsgCipher(keys.master), plaintext, timestamp),
                         Limits{static_cast<std::uint32_t>(plaintext.size())});
}

Opened open_regular(const Keys& keys, const Packet& packet) {
    Opened o;
    Bytes wire = serialize(packet);
    o.hmac_ok = crypto::hmac_sha256_verify(keys.hmac_key, signed_part(wire), packet.hmac);
    o.plaintext = SegmsgCipher(keys.master).ctr(packet.payload);
    o.hash_ok = crypto::sha256(o.plaintext) == packet.original_hash;
    return o;
}

}  // namespace msglab::secmsg
