// SecMsg wire codec (PROTOCOLS.md section 4.2).
//
//   0   6  protocol_id  "SegMSG"
//   6   1  message_type 1 REGULAR, 2 HANDSHAKE_REQUEST, 3 HANDSHAKE_RESPONSE
//   7   4  length       BE32 payload length as sent
//  11  32  original_hash SHA-256 of the plaintext payload, in clear
//  43   8  timestamp    BE64 seconds
//  51   n  payload      ciphertext, or the 256-byte DH public value
//  51+n 32 hmac         HMAC-SHA256 over bytes [0, 51+n); zeros in handshakes
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "core/bytes.hpp"
#include "core/crypto.hpp"
#include "core/result.hpp"

namespace msglab::secmsg {

constexpr std::array<std::uint8_t, 6> kMagic = {'S', 'e', 'g', 'M', 'S', 'G'};
constexpr std::size_t kHeaderBytes = 51;
constexpr std::size_t kMacBytes = 32;
constexpr std::size_t kOverheadBytes = kHeaderBytes + kMacBytes;  // 83
constexpr std::size_t kHandshakePayloadBytes = 256;
constexpr std::size_t kHandshakePacketBytes = kOverheadBytes + kHandshakePayloadBytes;  // 339
// The original reads each packet with one recv(8192).
constexpr std::size_t kOriginalRecvBytes = 8192;
constexpr std::uint16_t kDefaultPort = 5000;

enum class MessageType : std::uint8_t { regular = 1, handshake_request = 2, handshake_response = 3 };
const char* message_type_name(MessageType t);
bool is_handshake(MessageType t);

struct Limits {
    // Largest payload accepted. The original has no bound (and breaks above
    // 8109 bytes); 64 KiB keeps a peer from making us buffer more.
    std::uint32_t max_payload = 65536;
};

struct Packet {
    MessageType type = MessageType::regular;
    crypto::Digest original_hash{};
    std::uint64_t timestamp = 0;
    Bytes payload;
    crypto::Digest hmac{};
};

// The length of the packet at the front of `buffer`: 0 when more bytes are
// needed to tell, the whole packet length (83 + length) otherwise. Fails on a
// wrong magic, an unknown type, a length over the limit or a handshake whose
// length is not 256, as soon as the bytes that show it have arrived.
Result<std::size_t, ParseError> frame_length(ByteView buffer, const Limits& limits = {});

// Parses exactly one packet; bytes after it are an error (trailing_bytes).
Result<Packet, ParseError> parse_packet(ByteView packet, const Limits& limits = {});
Bytes serialize(const Packet& packet);
// The bytes the HMAC covers: everything before the trailing 32.
ByteView signed_part(ByteView packet_bytes);

// Session keys (section 4.3): master = SHA-256(Z), the cipher uses
// master[0:16], hmac_key = HKDF-SHA256(master, zero salt, "HMAC", 32).
struct Keys {
    crypto::Digest master{};
    crypto::Digest hmac_key{};
    static Keys from_master(ByteView master32);
    static Keys from_shared_secret(ByteView z256);
};

Packet make_handshake(MessageType type, ByteView public_value, std::uint64_t timestamp);
// A REGULAR packet: the payload encrypted with the SegMSG cipher in CTR mode,
// the plaintext hash in clear and the HMAC over the rest.
Packet seal_regular(const Keys& keys, ByteView plaintext, std::uint64_t timestamp);
// The same packet straight to wire bytes, with one cipher already keyed.
class SegmsgCipher;
Bytes seal_regular_wire(const Keys& keys, const SegmsgCipher& cipher, ByteView plaintext, std::uint64_t timestamp);

struct Opened {
    Bytes plaintext;
    bool hmac_ok = false;
    bool hash_ok = false;  // SHA-256(plaintext) == original_hash
};
// Decrypts and checks a parsed REGULAR packet; never fails, it reports.
Opened open_regular(const Keys& keys, const Packet& packet);

}  // namespace msglab::secmsg
