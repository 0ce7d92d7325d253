// SLMP wire units (PROTOCOLS.md section 3).
//
// SLMP has no framing: each unit is one write of at most 1024 bytes (the
// original reads each with one recv(1024)). A connection carries four units:
//
//   C->S  the client's P-256 public key, PEM SubjectPublicKeyInfo (178 bytes)
//   S->C  the server's public key, the same format
//   C->S  a Fernet token (base64url with padding) of "token;user;message"
//   S->C  a Fernet token of "Message received: <message>"
//
// K = HKDF-SHA256(ECDH x-coordinate, no salt, "handshake data", 32) is the
// Fernet key; token = lowercase hex SHA-256(user || secret).
//
// A reader delimits the units itself: a key ends after its END line; a token
// is a run of base64url characters, complete when it verifies under K (or,
// without K, at a valid token length where the stream ends or another token
// starts).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/bytes.hpp"
#include "core/crypto.hpp"
#include "core/fernet.hpp"
#include "core/result.hpp"

namespace msglab::slmp {

constexpr std::uint16_t kDefaultPort = 9999;
// The original's recv(1024): what one unit may be for an original peer.
constexpr std::size_t kOriginalUnitBytes = 1024;
constexpr std::size_t kPemBytes = 178;  // P-256 SPKI as the original emits it
constexpr std::size_t kSpkiDerBytes = 91;
constexpr const char* kDefaultSecret = "my_secret";  // the original's, on both sides
constexpr const char* kDefaultUser = "msglab";
constexpr const char* kHkdfInfo = "handshake data";
constexpr const char* kReplyPrefix = "Message received: ";
constexpr const char* kKeyLogLabel = "SLMP_FERNET_KEY";
constexpr std::string_view kPemBegin = "-----BEGIN PUBLIC KEY-----\n";
// Every Fernet token from this century starts so (0x80, then the high bytes
// of a 64-bit timestamp below 2^40).
constexpr std::string_view kTokenStart = "gAAAAA";

// The largest token for a plaintext of n bytes: 57 + 16 * (n / 16 + 1) raw
// bytes, base64 with padding.
std::size_t token_length(std::size_t plaintext_bytes);
// The largest plaintext whose token fits `unit_bytes` (703 for 1024).
std::size_t max_plaintext(std::size_t unit_bytes);

enum class UnitKind { key, token };
// What a unit looks like from its first byte: '-' a key, base64url a token.
std::optional<UnitKind> unit_kind(ByteView unit);

// The length of the PEM block at the front of `buffer`, up to and with the
// newline after its END line: 0 when more bytes are needed, an error when the
// bytes cannot start a PEM block or no END line comes within `max_bytes`.
Result<std::size_t, ParseError> frame_key(ByteView buffer, std::size_t max_bytes);

// Tokens at the front of `buffer`. `verifies` (may be empty) says whether a
// candidate is a whole token under the session key.
struct TokenFrame {
    std::size_t length = 0;  // 0: more bytes are needed
    bool certain = false;    // padded, followed by other bytes, or verified
};
Result<TokenFrame, ParseError> frame_token(ByteView buffer, std::size_t max_bytes,
                                           const std::function<bool(std::string_view)>& verifies = {});
// A token length (base64 characters) a whole token can have.
bool plausible_token_length(std::size_t chars);
bool base64url_char(std::uint8_t c);
// Whether a token at the front of `buffer` may have become whole since the
// first `scanned` bytes were looked at (a byte that ends a base64url run
// arrived, or the buffer has a whole token's length); advances `scanned`.
// Readers call frame_token only then, so a token trickling in byte by byte
// costs linear scanning and one verification per possible length, not a
// full re-framing per byte.
bool token_may_be_complete(ByteView buffer, std::size_t& scanned);

// The key in a PEM unit: the DER SubjectPublicKeyInfo and, for P-256, the key.
struct PemKey {
    Bytes der;
    std::optional<crypto::P256PublicKey> key;  // nullopt: not a valid P-256 key
    std::string curve;                          // "P-256", or the OID / "unknown"
    bool original_layout = false;               // exactly the 178 bytes the original writes
};
Result<PemKey, ParseError> parse_key(ByteView unit);

// The first 8 bytes of SHA-256(client SPKI DER || server SPKI DER): how the
// key log names a connection.
Bytes session_id(ByteView client_der, ByteView server_der);
// K from the ECDH shared x-coordinate.
fernet::Key derive_key(ByteView shared_x);
std::string auth_token(std::string_view user, std::string_view secret);

// The request plaintext "token;user;message".
struct Request {
    std::string token, user, message;
};
// Exactly three fields on ';', valid UTF-8 (as the original's str.split and
// bytes.decode demand).
Result<Request, ParseError> parse_request(ByteView plaintext);
std::string request_text(const Request& r);
bool valid_utf8(ByteView b);
// True when `plaintext` is already a whole request: 64 lowercase hex digits
// then ';'.
bool looks_like_request(ByteView plaintext);

}  // namespace msglab::slmp
