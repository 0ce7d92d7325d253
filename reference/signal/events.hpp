// The Socket.IO event payloads of Signal-style chat (PROTOCOLS.md 5.3) that
// carry keys and ciphertexts: register_user, the request_prekey bundle,
// x3dh_message and ratchet_msg. Read from JSON with every field checked and
// bounded, written back with the original's key order (the order Python's
// dict literals give), so what is read writes back byte for byte.
//
// Rules for every reader (msglab's bounds; the original checks nothing):
//   - the argument is a JSON object; unknown keys are ignored;
//   - binary fields are strings of standard base64 *with* padding, canonical
//     (what re-encodes to the same text), of the exact raw size: 32 for keys
//     and MACs, 64 for signatures; cipher at most kMaxCipherBytes;
//   - usernames (username, from) are strings of valid UTF-8, at most
//     kMaxUsernameBytes bytes;
//   - header.pn and header.n are base64 of a counter decode_counter accepts
//     (empty is 0; at most 64 bytes, value below 2^63).
// Errors name the event and the field: "ratchet_msg: header.n: ...".
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <string>

#include "core/bytes.hpp"
#include "core/result.hpp"
#include "signal/ratchet.hpp"

namespace msglab::signal {

using Json = nlohmann::ordered_json;

inline constexpr std::size_t kMaxUsernameBytes = 64;
inline constexpr std::size_t kMaxCipherBytes = 64 * 1024;

// register_user {username, ik, sik, spk, spk_sig}
struct RegisterUser {
    std::string username;
    Bundle keys;  // spk_sig travels as "spk_sig" here
};

// x3dh_message {username (recipient), from, ik, epk, cipher, hmac}
struct X3dhMessage {
    std::string username;
    std::string from;
    Key32 ik{};
    Key32 epk{};
    Bytes cipher;
    Mac hmac{};
};

// ratchet_msg {username (recipient), cipher, header {dh, pn, n}, hmac, from}
struct RatchetMsg {
    std::string username;
    RatchetMessage message;  // header.pn_bytes / n_bytes as they came; hmac 32 bytes
    std::string from;
};

Result<RegisterUser, std::string> parse_register_user(const Json& j);
Json register_user_json(const RegisterUser& e);

// request_prekey's answer {ik, sik, spk, spk_sign} ("spk_sign", 5.8).
Result<Bundle, std::string> parse_bundle(const Json& j);
Json bundle_json(const Bundle& b);

Result<X3dhMessage, std::string> parse_x3dh_message(const Json& j);
Json x3dh_message_json(const X3dhMessage& e);

Result<RatchetMsg, std::string> parse_ratchet_msg(const Json& j);
Json ratchet_msg_json(const RatchetMsg& e);

// Builders from the cryptography's results.
RegisterUser register_user(std::string username, const Identity& id);
X3dhMessage x3dh_message(std::string to, std::string from, const Key32& ik, const X3dhInitiation& init);
RatchetMsg ratchet_msg(std::string to, std::string from, const RatchetMessage& message);

// Valid UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool valid_utf8(std::string_view s);

}  // namespace msglab::signal
