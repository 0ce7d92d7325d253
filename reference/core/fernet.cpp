#include "core/fernet.hpp"

#include "core/crypto.hpp"

namespace msglab::fernet {

using crypto::Base64Alphabet;
using crypto::Base64Padding;

const char* errc_name(Errc e) {
    switch (e) {
        case Errc::bad_base64: return "bad_base64";
        case Errc::bad_version: return "bad_version";
        case Errc::too_short: return "too_short";
        case Errc::bad_mac: return "bad_mac";
        case Errc::bad_padding: return "bad_padding";
        case Errc::expired: return "expired";
        case Errc::from_future: return "from_future";
    }
    return "unknown";
}

Key Key::generate(Rng& rng) {
    Bytes raw = rng.bytes(32);
    return *from_bytes(raw);
}

std::optional<Key> Key::from_bytes(ByteView raw) {
    if (raw.size() != 32) return std::nullopt;
    Key k;
    std::copy(raw.begin(), raw.begin() + 16, k.signing.begin());
    std::copy(raw.begin() + 16, raw.end(), k.encryption.begin());
    return k;
}

std::optional<Key> Key::from_base64(std::string_view text) {
    auto raw = crypto::base64_decode(text, Base64Alphabet::url, Base64Padding::optional);
    if (!raw) return std::nullopt;
    return from_bytes(*raw);
}

Bytes Key::raw() const {
    Bytes out(signing.begin(), signing.end());
    out.insert(out.end(), encryption.begin(), encryption.end());
    return out;
}

std::string Key::to_base64() const { return crypto::base64_encode(raw(), Base64Alphabet::url, true); }

Result<Token, Error> parse(std::string_view text) {
    auto raw = crypto::base64_decode(text, Base64Alphabet::url, Base64Padding::optional);
    if (!raw) return unexpected(Error{Errc::bad_base64, "token is not URL-safe base64"});
    if (raw->empty() || (*raw)[0] != kVersion) {
        if (raw->size() < kMinTokenBytes) return unexpected(Error{Errc::too_short, "token shorter than 57 bytes"});
        return unexpected(Error{Errc::bad_version, "version byte is not 0x80"});
    }
    if (raw->size() < kMinTokenBytes)
        return unexpected(Error{Errc::too_short, "token is " + std::to_string(raw->size()) + " bytes, minimum 57"});
    Reader r(*raw);
    Token t;
    t.version = r.u8();
    t.timestamp = r.be64();
    t.iv = r.array<16>();
    ByteView ct = r.bytes(raw->size() - 1 - 8 - 16 - 32);
    t.ciphertext.assign(ct.begin(), ct.end());
    t.hmac = r.array<32>();
    t.signed_part.assign(raw->begin(), raw->end() - 32);
    return t;
}

std::string encrypt(const Key& key, ByteView plaintext, std::uint64_t now, ByteView iv16) {
    Writer w;
    w.u8(kVersion).be64(now).bytes(iv16);
    w.bytes(crypto::aes_cbc_encrypt(key.encryption, iv16, plaintext));
    crypto::Digest mac = crypto::hmac_sha256(key.signing, w.data());
    w.bytes(mac);
    return crypto::base64_encode(w.data(), Base64Alphabet::url, true);
}

std::string encrypt(const Key& key, ByteView plaintext, const Clock& clock, Rng& rng) {
    Bytes iv = rng.bytes(16);
    return encrypt(key, plaintext, clock.unix_seconds(), iv);
}

Result<Bytes, Error> decrypt(const Key& key, std::string_view text, std::uint64_t now, const VerifyOptions& options) {
    auto parsed = parse(text);
    if (!parsed) return unexpected(parsed.error());
    const Token& t = *parsed;
    // The spec's order: the time window first, then the MAC, then the padding.
    if (options.ttl && t.timestamp + *options.ttl < now)
        return unexpected(Error{Errc::expired, "token is " + std::to_string(now - t.timestamp) + " s old, TTL " +
                                                   std::to_string(*options.ttl) + " s"});
    if (options.check_future && t.timestamp > now + options.max_clock_skew)
        return unexpected(Error{Errc::from_future, "token timestamp is " + std::to_string(t.timestamp - now) +
                                                       " s in the future"});
    if (!crypto::hmac_sha256_verify(key.signing, t.signed_part, t.hmac))
        return unexpected(Error{Errc::bad_mac, "HMAC does not verify"});
    if (t.ciphertext.empty() || t.ciphertext.size() % 16 != 0)
        return unexpected(Error{Errc::bad_padding, "ciphertext is not a whole number of blocks"});
    auto pt = crypto::aes_cbc_decrypt(key.encryption, t.iv, t.ciphertext);
    if (!pt) return unexpected(Error{Errc::bad_padding, "PKCS#7 padding is wrong"});
    return std::move(*pt);
}

}  // namespace msglab::fernet
