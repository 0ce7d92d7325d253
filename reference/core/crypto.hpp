// The crypto facade: every primitive msglab uses, over Botan 2.
//
// Inputs are byte spans, outputs are byte vectors or fixed arrays. Operations
// that can fail on attacker-controlled input (decryption, signature checks,
// key parsing) report failure in their return value and never throw;
// programmer errors (a wrong key length) throw std::invalid_argument.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/bytes.hpp"
#include "core/clock.hpp"

namespace msglab::crypto {

using Digest = std::array<std::uint8_t, 32>;

Digest sha256(ByteView data);
Digest hmac_sha256(ByteView key, ByteView data);
// Constant-time comparison of the computed tag with `tag`.
bool hmac_sha256_verify(ByteView key, ByteView data, ByteView tag);
// RFC 5869. An empty salt means HashLen zero bytes. Throws if length > 255*32.
Bytes hkdf_sha256(ByteView ikm, ByteView salt, ByteView info, std::size_t length);
// True when a and b have equal length and contents; time depends on length only.
bool constant_time_equal(ByteView a, ByteView b);

// AES with a 16- or 32-byte key.
Bytes aes_cbc_encrypt(ByteView key, ByteView iv, ByteView plaintext);  // PKCS#7
std::optional<Bytes> aes_cbc_decrypt(ByteView key, ByteView iv, ByteView ciphertext);
// AES-CBC without padding: the input must be a non-empty multiple of 16
// bytes (the caller pads, as Signal-style chat does with a 32-byte PKCS#7).
// Encryption throws std::invalid_argument on another length; decryption
// returns nullopt.
Bytes aes_cbc_encrypt_raw(ByteView key, ByteView iv, ByteView plaintext);
std::optional<Bytes> aes_cbc_decrypt_raw(ByteView key, ByteView iv, ByteView ciphertext);
Bytes aes_ctr(ByteView key, ByteView iv, ByteView data);  // 16-byte initial counter block
Bytes aes_gcm_encrypt(ByteView key, ByteView nonce, ByteView aad, ByteView plaintext);  // ct || tag16
std::optional<Bytes> aes_gcm_decrypt(ByteView key, ByteView nonce, ByteView aad, ByteView ciphertext_and_tag);
// EAX (Bellare, Rogaway, Wagner) with a 16-byte tag, as pycryptodome's
// default: any nonce length above zero.
Bytes aes_eax_encrypt(ByteView key, ByteView nonce, ByteView aad, ByteView plaintext);  // ct || tag16
std::optional<Bytes> aes_eax_decrypt(ByteView key, ByteView nonce, ByteView aad, ByteView ciphertext_and_tag);

// X25519 (RFC 7748).
using X25519Key = std::array<std::uint8_t, 32>;
struct X25519KeyPair {
    X25519Key private_key;
    X25519Key public_key;
};
X25519KeyPair x25519_generate(Rng& rng);
X25519Key x25519_public(const X25519Key& private_key);
// nullopt when the result is all zero (a low-order peer point).
std::optional<X25519Key> x25519(const X25519Key& private_key, ByteView peer_public);

// Ed25519 (RFC 8032, pure).
struct Ed25519KeyPair {
    std::array<std::uint8_t, 32> seed;
    std::array<std::uint8_t, 32> public_key;
};
Ed25519KeyPair ed25519_generate(Rng& rng);
Ed25519KeyPair ed25519_from_seed(ByteView seed32);
std::array<std::uint8_t, 64> ed25519_sign(const Ed25519KeyPair& key, ByteView message);
bool ed25519_verify(ByteView public_key, ByteView message, ByteView signature);

// ECDH over P-256.
class P256PublicKey {
public:
    // SubjectPublicKeyInfo in DER or PEM; the curve must be P-256 and the
    // point valid. nullopt otherwise.
    static std::optional<P256PublicKey> from_spki_der(ByteView der);
    static std::optional<P256PublicKey> from_pem(std::string_view pem);
    // SEC1 point (uncompressed or compressed).
    static std::optional<P256PublicKey> from_point(ByteView sec1);

    Bytes point() const;  // uncompressed, 65 bytes
    // Written with the id-ecPublicKey OID and the named curve, as OpenSSL does.
    Bytes spki_der() const;
    std::string pem() const;  // 64-character lines, trailing newline

private:
    Bytes m_point;
};

class P256PrivateKey {
public:
    static P256PrivateKey generate(Rng& rng);
    // A 32-byte big-endian scalar in [1, n-1]; nullopt otherwise.
    static std::optional<P256PrivateKey> from_scalar(ByteView scalar);
    P256PrivateKey(P256PrivateKey&&) noexcept;
    P256PrivateKey& operator=(P256PrivateKey&&) noexcept;
    ~P256PrivateKey();

    P256PublicKey public_key() const;
    Bytes scalar() const;
    // The x-coordinate of the shared point (32 bytes).
    std::optional<Bytes> agree(const P256PublicKey& peer) const;

private:
    struct Impl;
    explicit P256PrivateKey(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

// Finite-field Diffie-Hellman over the RFC 3526 2048-bit MODP group (group 14).
namespace dh14 {
constexpr std::size_t kValueBytes = 256;
const Bytes& prime();  // p, 256 bytes big-endian
struct KeyPair {
    Bytes private_exponent;  // big-endian
    Bytes public_value;      // g^x mod p, 256 bytes big-endian
};
KeyPair generate(Rng& rng);
// 1 < y < p-1: rejects 0, 1, p-1 and anything not below p.
bool public_value_ok(ByteView y);
// y^x mod p as 256 bytes big-endian. Performs no validation of y: callers
// decide (SecMsg's original accepts anything). Values of y >= p are reduced.
Bytes agree(ByteView private_exponent, ByteView peer_public);
}  // namespace dh14

// RSA with OAEP-SHA256 (MGF1-SHA256, empty label) and PSS-SHA256.
class RsaPublicKey {
public:
    static std::optional<RsaPublicKey> from_spki_der(ByteView der);
    static std::optional<RsaPublicKey> from_pkcs1_der(ByteView der);
    static std::optional<RsaPublicKey> from_pem(std::string_view pem);
    RsaPublicKey(const RsaPublicKey&);
    RsaPublicKey(RsaPublicKey&&) noexcept;
    RsaPublicKey& operator=(const RsaPublicKey&);
    RsaPublicKey& operator=(RsaPublicKey&&) noexcept;
    ~RsaPublicKey();

    std::size_t bits() const;
    Bytes spki_der() const;
    std::string pem() const;
    Bytes oaep_encrypt(ByteView plaintext, Rng& rng) const;
    // salt_length: the required salt length, or any length when nullopt.
    bool pss_verify(ByteView message, ByteView signature, std::optional<std::size_t> salt_length = std::nullopt) const;

private:
    struct Impl;
    explicit RsaPublicKey(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
    friend class RsaPrivateKey;
};

class RsaPrivateKey {
public:
    static RsaPrivateKey generate(Rng& rng, std::size_t bits = 4096);
    static std::optional<RsaPrivateKey> from_pkcs8_der(ByteView der);
    // "PRIVATE KEY" (PKCS#8) or "RSA PRIVATE KEY" (PKCS#1).
    static std::optional<RsaPrivateKey> from_pem(std::string_view pem);
    RsaPrivateKey(RsaPrivateKey&&) noexcept;
    ~RsaPrivateKey();

    RsaPublicKey public_key() const;
    Bytes pkcs8_der() const;
    std::string pem() const;
    std::optional<Bytes> oaep_decrypt(ByteView ciphertext, Rng& rng) const;
    Bytes pss_sign(ByteView message, Rng& rng, std::size_t salt_length = 32) const;

private:
    struct Impl;
    explicit RsaPrivateKey(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

// Base64 (RFC 4648) in the standard and URL-safe alphabets.
enum class Base64Alphabet { standard, url };
enum class Base64Padding { required, optional, forbidden };
std::string base64_encode(ByteView data, Base64Alphabet alphabet = Base64Alphabet::standard, bool pad = true);
// Strict: characters outside the alphabet (including whitespace) are rejected.
std::optional<Bytes> base64_decode(std::string_view text, Base64Alphabet alphabet = Base64Alphabet::standard,
                                   Base64Padding padding = Base64Padding::optional);

}  // namespace msglab::crypto
