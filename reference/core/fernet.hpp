// Fernet tokens (https://github.com/fernet/spec): AES-128-CBC + HMAC-SHA256.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/bytes.hpp"
#include "core/clock.hpp"
#include "core/result.hpp"

namespace msglab::fernet {

constexpr std::uint8_t kVersion = 0x80;
// version(1) + timestamp(8) + IV(16) + HMAC(32): anything shorter has no room
// for the fields. A token with room for them but no whole ciphertext block is
// a padding error once its MAC has been checked, as the spec's vectors say.
constexpr std::size_t kMinTokenBytes = 57;
constexpr std::uint64_t kDefaultMaxClockSkew = 60;

enum class Errc {
    bad_base64,   // not URL-safe base64
    bad_version,  // first byte is not 0x80
    too_short,    // fewer bytes than the smallest token
    bad_mac,      // HMAC does not verify
    bad_padding,  // ciphertext not whole blocks, or PKCS#7 padding wrong
    expired,      // older than the TTL
    from_future,  // timestamp beyond the allowed clock skew
};
const char* errc_name(Errc e);

struct Error {
    Errc code;
    std::string detail;
};

struct Key {
    std::array<std::uint8_t, 16> signing{};
    std::array<std::uint8_t, 16> encryption{};

    static Key generate(Rng& rng);
    // 32 bytes: signing key then encryption key.
    static std::optional<Key> from_bytes(ByteView raw);
    // URL-safe base64 of 32 bytes, as Python's Fernet.generate_key() gives.
    static std::optional<Key> from_base64(std::string_view text);
    std::string to_base64() const;
    Bytes raw() const;
};

// The fields of a token, without any check of its MAC.
struct Token {
    std::uint8_t version = 0;
    std::uint64_t timestamp = 0;
    std::array<std::uint8_t, 16> iv{};
    Bytes ciphertext;
    std::array<std::uint8_t, 32> hmac{};
    Bytes signed_part;  // version .. ciphertext, what the HMAC covers
};
Result<Token, Error> parse(std::string_view token);

std::string encrypt(const Key& key, ByteView plaintext, std::uint64_t now, ByteView iv16);
std::string encrypt(const Key& key, ByteView plaintext, const Clock& clock, Rng& rng);

struct VerifyOptions {
    std::optional<std::uint64_t> ttl;  // seconds; no age limit when absent
    std::uint64_t max_clock_skew = kDefaultMaxClockSkew;
    bool check_future = true;
};
Result<Bytes, Error> decrypt(const Key& key, std::string_view token, std::uint64_t now,
                             const VerifyOptions& options = {});

}  // namespace msglab::fernet
