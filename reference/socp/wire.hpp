// SOCP v1.3 on the wire (PROTOCOLS.md section 2.8): one JSON envelope
// {type, from, to, ts, payload, sig} per WebSocket text message, RSA-4096
// keys, RSA-OAEP-SHA256 for end-to-end payloads, RSASSA-PSS-SHA256 for the
// transport signature over the payload and for content signatures, binary
// values as base64url without padding. Sans-I/O: the server, the client, the
// stream codec, the dissector's bridge and the fuzzers all read and write
// envelopes here.
//
// Choices where the spec is open (documented in reference/socp/README.md):
//   - keys are written as base64url of the DER SubjectPublicKeyInfo; on input
//     base64url (padded or not) of DER or of PEM text is accepted, and so is
//     bare PEM text (the cohort implementation in the capture sends PEM);
//   - signatures are made with a PSS salt of 32 bytes over the payload as
//     Python's json.dumps(sort_keys=True, separators=(",",":")) writes it
//     (non-ASCII escaped); verification accepts any salt length and tries
//     that text, then sorted keys with raw UTF-8, then the received order;
//   - content signatures cover the plain concatenation of the listed fields
//     with ts in decimal, not a pre-hash;
//   - envelopes are written with sorted keys and no whitespace, as the
//     cohort implementation in the capture writes them.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/bytes.hpp"
#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "core/result.hpp"

namespace msglab::socp {

using Json = nlohmann::ordered_json;

inline constexpr std::uint16_t kDefaultPort = 8765;
inline constexpr std::size_t kRequiredBits = 4096;
// RSA-OAEP-SHA256 under a 4096-bit key: 512 - 2*32 - 2 bytes of plaintext.
inline constexpr std::size_t kMaxOaepPlaintext = 446;
inline constexpr const char* kPublicGroup = "public";

// Bounds every reader applies. A WebSocket message above max_message is
// refused before it is parsed.
struct Limits {
    std::size_t max_message = 1024 * 1024;
    std::size_t max_id_bytes = 256;    // type, from, to
    std::size_t max_key_text = 16 * 1024;
    std::size_t max_depth = 16;        // JSON nesting
};

struct Envelope {
    std::string type;
    std::string from;
    std::string to;
    std::int64_t ts = 0;
    Json payload = Json::object();
    std::optional<std::string> sig;  // absent or a string (maybe empty)
};

// Every type the v1.3 catalogue lists, plus SERVER_HELLO_LINK (the cohort
// implementation's link hello) and CTRL_CLOSE.
bool known_type(std::string_view type);
// Types a server originates, which must carry a valid transport signature
// from the server that sends them (SERVER_HELLO_JOIN, SERVER_WELCOME,
// SERVER_ANNOUNCE and SERVER_HELLO_LINK are first contact and relaxed).
bool server_signed_type(std::string_view type);
// Types a user sends to its server.
bool user_type(std::string_view type);

// A WebSocket text message read as an envelope: UTF-8 JSON object, no NUL,
// "type", "from" and "to" non-empty strings within the bounds, "ts" an
// integer, "payload" an object (nesting bounded), "sig" a string when
// present. Unknown top-level keys are ignored. The error names the problem.
Result<Envelope, std::string> parse_envelope(std::string_view text, const Limits& limits = {});
// Sorted keys, no whitespace, non-ASCII escaped.
std::string encode(const Envelope& e);

// ---- base64url ----------------------------------------------------------
std::string b64url(ByteView data);
// Padding optional; the standard alphabet is accepted too (lenient input).
std::optional<Bytes> b64url_decode(std::string_view text);

// ---- keys ---------------------------------------------------------------
enum class KeyEncoding { der, pem };
std::string encode_key(const crypto::RsaPublicKey& key, KeyEncoding encoding = KeyEncoding::der);
struct DecodedKey {
    crypto::RsaPublicKey key;
    KeyEncoding encoding;
};
std::optional<DecodedKey> decode_key(std::string_view text, const Limits& limits = {});

// ---- transport signatures -----------------------------------------------
enum class Canon { sorted_ascii, sorted_utf8, received_order };
const char* canon_name(Canon c);
std::string canonical(const Json& payload, Canon c);
std::string sign_payload(const crypto::RsaPrivateKey& key, const Json& payload, Rng& rng);
// The canonicalisation that verified, or nullopt.
std::optional<Canon> verify_payload(const crypto::RsaPublicKey& key, const Json& payload, std::string_view sig);

// ---- content signatures (end to end) -------------------------------------
std::string dm_content(std::string_view ciphertext, std::string_view from, std::string_view to, std::int64_t ts);
std::string public_content(std::string_view ciphertext, std::string_view from, std::int64_t ts);
std::string keyshare_content(const Json& shares, std::string_view creator_pub);
std::string sign_content(const crypto::RsaPrivateKey& key, std::string_view content, Rng& rng);
bool verify_content(const crypto::RsaPublicKey& key, std::string_view content, std::string_view sig);

// ---- end-to-end encryption ----------------------------------------------
// RSA-OAEP-SHA256 of at most kMaxOaepPlaintext bytes (less for smaller keys).
std::optional<std::string> encrypt_for(const crypto::RsaPublicKey& key, ByteView plaintext, Rng& rng);
std::optional<Bytes> decrypt_with(const crypto::RsaPrivateKey& key, std::string_view ciphertext, Rng& rng);
// The largest plaintext one RSA-OAEP-SHA256 block of this key holds.
std::size_t oaep_capacity(const crypto::RsaPublicKey& key);
// Splits text into pieces of at most `max_bytes`, never inside a UTF-8
// sequence (the spec has no chunking rule; msglab's client sends each piece
// as its own MSG_DIRECT).
std::vector<std::string> split_utf8(std::string_view text, std::size_t max_bytes);

// Public channel messages under the group key: AES-256-GCM, ciphertext =
// base64url(nonce(12) || ct || tag(16)).
std::string group_encrypt(ByteView key32, std::string_view plaintext, Rng& rng);
std::optional<std::string> group_decrypt(ByteView key32, std::string_view ciphertext);

// ---- duplicate suppression ------------------------------------------------
// The seen_ids key of section 8.3: (ts, from, to, SHA-256 of the payload).
std::string message_id(const Envelope& e);

// A bounded cache of message ids: an id is remembered for `ttl_ms` and at
// most `capacity` ids are kept (the oldest go first).
class SeenCache {
public:
    explicit SeenCache(std::size_t capacity = 100'000, std::int64_t ttl_ms = 10 * 60 * 1000)
        : m_capacity(capacity), m_ttl(ttl_ms) {}
    // True when `id` is new (and now remembered), false for a duplicate.
    bool insert(const std::string& id, std::int64_t now_ms);
    std::size_t size() const { return m_ids.size(); }

private:
    std::size_t m_capacity;
    std::int64_t m_ttl;
    std::unordered_map<std::string, std::int64_t> m_ids;
    std::deque<std::pair<std::int64_t, std::string>> m_order;
};

// Field accessors that never throw.
std::optional<std::string> string_field(const Json& object, const char* key);
std::optional<std::int64_t> int_field(const Json& object, const char* key);

}  // namespace msglab::socp
