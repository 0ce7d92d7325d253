#include "core/crypto.hpp"

#include <botan/auto_rng.h>
#include <botan/bigint.h>
#include <botan/aead.h>
#include <botan/cipher_mode.h>
#include <botan/curve25519.h>
#include <botan/data_src.h>
#include <botan/dl_group.h>
#include <botan/ec_group.h>
#include <botan/ecdh.h>
#include <botan/ecdsa.h>
#include <botan/ed25519.h>
#include <botan/hash.h>
#include <botan/kdf.h>
#include <botan/mac.h>
#include <botan/mem_ops.h>
#include <botan/numthry.h>
#include <botan/pem.h>
#include <botan/pk_algs.h>
#include <botan/pkcs8.h>
#include <botan/pubkey.h>
#include <botan/rsa.h>
#include <botan/stream_cipher.h>
#include <botan/x509_key.h>

#include <botan/base64.h>

#include <map>
#include <stdexcept>

namespace msglab::crypto {

namespace {

// Hash and MAC objects are reused per thread: creating them costs more than
// hashing a short message.
Botan::HashFunction& sha256_object() {
    thread_local std::unique_ptr<Botan::HashFunction> h = Botan::HashFunction::create_or_throw("SHA-256");
    return *h;
}

Botan::MessageAuthenticationCode& hmac_object() {
    thread_local std::unique_ptr<Botan::MessageAuthenticationCode> m =
        Botan::MessageAuthenticationCode::create_or_throw("HMAC(SHA-256)");
    return *m;
}

std::string aes_name(std::size_t key_len) {
    switch (key_len) {
        case 16: return "AES-128";
        case 24: return "AES-192";
        case 32: return "AES-256";
    }
    throw std::invalid_argument("AES key must be 16, 24 or 32 bytes");
}

const Botan::EC_Group& p256() {
    static const Botan::EC_Group group("secp256r1");
    return group;
}

const Botan::DL_Group& modp14() {
    static const Botan::DL_Group group("modp/ietf/2048");
    return group;
}

Botan::BigInt to_bigint(ByteView b) { return Botan::BigInt(b.data(), b.size()); }

Bytes to_bytes_padded(const Botan::BigInt& n, std::size_t len) {
    Botan::secure_vector<std::uint8_t> v = Botan::BigInt::encode_1363(n, len);
    return Bytes(v.begin(), v.end());
}

}  // namespace

Digest sha256(ByteView data) {
    Digest out;
    auto& h = sha256_object();
    h.update(data.data(), data.size());
    h.final(out.data());
    return out;
}

Digest hmac_sha256(ByteView key, ByteView data) {
    Digest out;
    auto& m = hmac_object();
    m.set_key(key.data(), key.size());
    m.update(data.data(), data.size());
    m.final(out.data());
    return out;
}

bool hmac_sha256_verify(ByteView key, ByteView data, ByteView tag) {
    Digest expected = hmac_sha256(key, data);
    return constant_time_equal(expected, tag);
}

Bytes hkdf_sha256(ByteView ikm, ByteView salt, ByteView info, std::size_t length) {
    if (length > 255 * 32) throw std::invalid_argument("HKDF-SHA256 output is limited to 8160 bytes");
    auto kdf = Botan::KDF::create_or_throw("HKDF(SHA-256)");
    Botan::secure_vector<std::uint8_t> out =
        kdf->derive_key(length, ikm.data(), ikm.size(), salt.data(), salt.size(), info.data(), info.size());
    return Bytes(out.begin(), out.end());
}

bool constant_time_equal(ByteView a, ByteView b) {
    if (a.size() != b.size()) return false;
    return Botan::constant_time_compare(a.data(), b.data(), a.size());
}

// Cipher objects are looked up by name once per thread and re-keyed for each
// call: the lookup costs more than encrypting a short message.
static Botan::Cipher_Mode& cipher_mode(const std::string& spec, Botan::Cipher_Dir dir) {
    thread_local std::map<std::pair<std::string, int>, std::unique_ptr<Botan::Cipher_Mode>> cache;
    auto& slot = cache[{spec, static_cast<int>(dir)}];
    if (!slot) slot = Botan::Cipher_Mode::create_or_throw(spec, dir);
    return *slot;
}

static Botan::StreamCipher& stream_cipher(const std::string& spec) {
    thread_local std::map<std::string, std::unique_ptr<Botan::StreamCipher>> cache;
    auto& slot = cache[spec];
    if (!slot) slot = Botan::StreamCipher::create_or_throw(spec);
    return *slot;
}

Bytes aes_cbc_encrypt(ByteView key, ByteView iv, ByteView plaintext) {
    if (iv.size() != 16) throw std::invalid_argument("AES-CBC needs a 16-byte IV");
    Botan::Cipher_Mode* mode = &cipher_mode(aes_name(key.size()) + "/CBC/PKCS7", Botan::ENCRYPTION);
    mode->set_key(key.data(), key.size());
    mode->start(iv.data(), iv.size());
    Botan::secure_vector<std::uint8_t> buf(plaintext.begin(), plaintext.end());
    mode->finish(buf);
    return Bytes(buf.begin(), buf.end());
}

std::optional<Bytes> aes_cbc_decrypt(ByteView key, ByteView iv, ByteView ciphertext) {
    if (iv.size() != 16) throw std::invalid_argument("AES-CBC needs a 16-byte IV");
    if (ciphertext.empty() || ciphertext.size() % 16 != 0) return std::nullopt;
    Botan::Cipher_Mode* mode = &cipher_mode(aes_name(key.size()) + "/CBC/PKCS7", Botan::DECRYPTION);
    mode->set_key(key.data(), key.size());
    mode->start(iv.data(), iv.size());
    Botan::secure_vector<std::uint8_t> buf(ciphertext.begin(), ciphertext.end());
    try {
        mode->finish(buf);
    } catch (const Botan::Exception&) {
        return std::nullopt;  // bad padding
    }
    return Bytes(buf.begin(), buf.end());
}

Bytes aes_cbc_encrypt_raw(ByteView key, ByteView iv, ByteView plaintext) {
    if (iv.size() != 16) throw std::invalid_argument("AES-CBC needs a 16-byte IV");
    if (plaintext.empty() || plaintext.size() % 16 != 0)
        throw std::invalid_argument("unpadded AES-CBC needs a non-empty multiple of 16 bytes");
    Botan::Cipher_Mode* mode = &cipher_mode(aes_name(key.size()) + "/CBC/NoPadding", Botan::ENCRYPTION);
    mode->set_key(key.data(), key.size());
    mode->start(iv.data(), iv.size());
    Botan::secure_vector<std::uint8_t> buf(plaintext.begin(), plaintext.end());
    mode->finish(buf);
    return Bytes(buf.begin(), buf.end());
}

std::optional<Bytes> aes_cbc_decrypt_raw(ByteView key, ByteView iv, ByteView ciphertext) {
    if (iv.size() != 16) throw std::invalid_argument("AES-CBC needs a 16-byte IV");
    if (ciphertext.empty() || ciphertext.size() % 16 != 0) return std::nullopt;
    Botan::Cipher_Mode* mode = &cipher_mode(aes_name(key.size()) + "/CBC/NoPadding", Botan::DECRYPTION);
    mode->set_key(key.data(), key.size());
    mode->start(iv.data(), iv.size());
    Botan::secure_vector<std::uint8_t> buf(ciphertext.begin(), ciphertext.end());
    mode->finish(buf);
    return Bytes(buf.begin(), buf.end());
}

Bytes aes_ctr(ByteView key, ByteView iv, ByteView data) {
    if (iv.size() != 16) throw std::invalid_argument("AES-CTR needs a 16-byte counter block");
    Botan::StreamCipher* c = &stream_cipher("CTR-BE(" + aes_name(key.size()) + ")");
    c->set_key(key.data(), key.size());
    c->set_iv(iv.data(), iv.size());
    Bytes out(data.begin(), data.end());
    c->cipher1(out.data(), out.size());
    return out;
}

namespace {

Bytes aead_encrypt(const std::string& name, ByteView key, ByteView nonce, ByteView aad, ByteView plaintext) {
    if (nonce.empty()) throw std::invalid_argument(name + " needs a non-empty nonce");
    Botan::Cipher_Mode* mode = &cipher_mode(aes_name(key.size()) + "/" + name, Botan::ENCRYPTION);
    mode->set_key(key.data(), key.size());
    // The mode object is reused: a message that failed (or EAX, which keeps
    // its nonce MAC after finish) must not leave state behind.
    mode->reset();
    auto* aead = dynamic_cast<Botan::AEAD_Mode*>(mode);
    aead->set_associated_data(aad.data(), aad.size());
    mode->start(nonce.data(), nonce.size());
    Botan::secure_vector<std::uint8_t> buf(plaintext.begin(), plaintext.end());
    mode->finish(buf);
    return Bytes(buf.begin(), buf.end());
}

std::optional<Bytes> aead_decrypt(const std::string& name, ByteView key, ByteView nonce, ByteView aad,
                                  ByteView ciphertext_and_tag) {
    if (nonce.empty() || ciphertext_and_tag.size() < 16) return std::nullopt;
    Botan::Cipher_Mode* mode = &cipher_mode(aes_name(key.size()) + "/" + name, Botan::DECRYPTION);
    mode->set_key(key.data(), key.size());
    // The mode object is reused: a message that failed (or EAX, which keeps
    // its nonce MAC after finish) must not leave state behind.
    mode->reset();
    auto* aead = dynamic_cast<Botan::AEAD_Mode*>(mode);
    aead->set_associated_data(aad.data(), aad.size());
    mode->start(nonce.data(), nonce.size());
    Botan::secure_vector<std::uint8_t> buf(ciphertext_and_tag.begin(), ciphertext_and_tag.end());
    try {
        mode->finish(buf);
    } catch (const Botan::Exception&) {
        return std::nullopt;  // tag mismatch
    }
    return Bytes(buf.begin(), buf.end());
}

}  // namespace

Bytes aes_gcm_encrypt(ByteView key, ByteView nonce, ByteView aad, ByteView plaintext) {
    return aead_encrypt("GCM", key, nonce, aad, plaintext);
}

std::optional<Bytes> aes_gcm_decrypt(ByteView key, ByteView nonce, ByteView aad, ByteView ciphertext_and_tag) {
    return aead_decrypt("GCM", key, nonce, aad, ciphertext_and_tag);
}

Bytes aes_eax_encrypt(ByteView key, ByteView nonce, ByteView aad, ByteView plaintext) {
    return aead_encrypt("EAX", key, nonce, aad, plaintext);
}

std::optional<Bytes> aes_eax_decrypt(ByteView key, ByteView nonce, ByteView aad, ByteView ciphertext_and_tag) {
    return aead_decrypt("EAX", key, nonce, aad, ciphertext_and_tag);
}

X25519KeyPair x25519_generate(Rng& rng) {
    X25519KeyPair kp;
    rng.fill(kp.private_key);
    kp.public_key = x25519_public(kp.private_key);
    return kp;
}

X25519Key x25519_public(const X25519Key& private_key) {
    X25519Key pub;
    Botan::curve25519_basepoint(pub.data(), private_key.data());
    return pub;
}

std::optional<X25519Key> x25519(const X25519Key& private_key, ByteView peer_public) {
    if (peer_public.size() != 32) return std::nullopt;
    X25519Key out;
    Botan::curve25519_donna(out.data(), private_key.data(), peer_public.data());
    std::uint8_t acc = 0;
    for (std::uint8_t b : out) acc |= b;
    if (acc == 0) return std::nullopt;
    return out;
}

Ed25519KeyPair ed25519_generate(Rng& rng) {
    Bytes seed = rng.bytes(32);
    return ed25519_from_seed(seed);
}

Ed25519KeyPair ed25519_from_seed(ByteView seed32) {
    if (seed32.size() != 32) throw std::invalid_argument("Ed25519 seed must be 32 bytes");
    Botan::Ed25519_PrivateKey key(Botan::secure_vector<std::uint8_t>(seed32.begin(), seed32.end()));
    Ed25519KeyPair kp;
    std::copy(seed32.begin(), seed32.end(), kp.seed.begin());
    std::vector<std::uint8_t> pub = key.get_public_key();
    std::copy(pub.begin(), pub.end(), kp.public_key.begin());
    return kp;
}

std::array<std::uint8_t, 64> ed25519_sign(const Ed25519KeyPair& kp, ByteView message) {
    Botan::Ed25519_PrivateKey key(Botan::secure_vector<std::uint8_t>(kp.seed.begin(), kp.seed.end()));
    Botan::PK_Signer signer(key, SystemRng::instance().botan(), "Pure");
    std::vector<std::uint8_t> sig = signer.sign_message(message.data(), message.size(),
                                                        SystemRng::instance().botan());
    std::array<std::uint8_t, 64> out{};
    std::copy(sig.begin(), sig.end(), out.begin());
    return out;
}

bool ed25519_verify(ByteView public_key, ByteView message, ByteView signature) {
    if (public_key.size() != 32 || signature.size() != 64) return false;
    // RFC 8032 5.1.7: S must be below the group order L, or signatures are malleable.
    static const std::uint8_t L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                       0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                       0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};
    const std::uint8_t* s = signature.data() + 32;  // little-endian
    bool below = false;
    for (int i = 31; i >= 0; --i) {
        if (s[i] < L[i]) { below = true; break; }
        if (s[i] > L[i]) break;
    }
    if (!below) return false;
    try {
        Botan::Ed25519_PublicKey key(public_key.data(), public_key.size());
        Botan::PK_Verifier verifier(key, "Pure");
        return verifier.verify_message(message.data(), message.size(), signature.data(), signature.size());
    } catch (const Botan::Exception&) {
        return false;
    }
}

// ---- P-256 ----

std::optional<P256PublicKey> P256PublicKey::from_point(ByteView sec1) {
    try {
        Botan::PointGFp pt = p256().OS2ECP(sec1.data(), sec1.size());
        if (pt.is_zero() || !pt.on_the_curve()) return std::nullopt;
        P256PublicKey k;
        k.m_point = pt.encode(Botan::PointGFp::UNCOMPRESSED);
        return k;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

std::optional<P256PublicKey> P256PublicKey::from_spki_der(ByteView der) {
    try {
        Botan::DataSource_Memory src(der.data(), der.size());
        std::unique_ptr<Botan::Public_Key> key(Botan::X509::load_key(src));
        // Keys written by OpenSSL carry id-ecPublicKey and load as ECDSA keys.
        auto* ec = dynamic_cast<Botan::EC_PublicKey*>(key.get());
        if (!ec || ec->domain() != p256()) return std::nullopt;
        const Botan::PointGFp& pt = ec->public_point();
        if (pt.is_zero() || !pt.on_the_curve()) return std::nullopt;
        P256PublicKey k;
        k.m_point = pt.encode(Botan::PointGFp::UNCOMPRESSED);
        return k;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

std::optional<P256PublicKey> P256PublicKey::from_pem(std::string_view pem) {
    try {
        Botan::DataSource_Memory src{std::string(pem)};
        std::string label;
        Botan::secure_vector<std::uint8_t> der = Botan::PEM_Code::decode(src, label);
        if (label != "PUBLIC KEY") return std::nullopt;
        return from_spki_der(der);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

Bytes P256PublicKey::point() const { return m_point; }

Bytes P256PublicKey::spki_der() const {
    // Botan writes ECDH keys under an OID that OpenSSL rejects; the ECDSA
    // wrapper writes the standard id-ecPublicKey with the named curve.
    Botan::ECDSA_PublicKey pub(p256(), p256().OS2ECP(m_point));
    return Botan::X509::BER_encode(pub);
}

std::string P256PublicKey::pem() const {
    Botan::ECDSA_PublicKey pub(p256(), p256().OS2ECP(m_point));
    return Botan::X509::PEM_encode(pub);
}

struct P256PrivateKey::Impl {
    std::unique_ptr<Botan::ECDH_PrivateKey> key;
};

P256PrivateKey::P256PrivateKey(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
P256PrivateKey::P256PrivateKey(P256PrivateKey&&) noexcept = default;
P256PrivateKey& P256PrivateKey::operator=(P256PrivateKey&&) noexcept = default;
P256PrivateKey::~P256PrivateKey() = default;

P256PrivateKey P256PrivateKey::generate(Rng& rng) {
    auto impl = std::make_unique<Impl>();
    impl->key = std::make_unique<Botan::ECDH_PrivateKey>(rng.botan(), p256());
    return P256PrivateKey(std::move(impl));
}

std::optional<P256PrivateKey> P256PrivateKey::from_scalar(ByteView scalar) {
    Botan::BigInt x = to_bigint(scalar);
    if (x < 1 || x >= p256().get_order()) return std::nullopt;
    auto impl = std::make_unique<Impl>();
    impl->key = std::make_unique<Botan::ECDH_PrivateKey>(SystemRng::instance().botan(), p256(), x);
    return P256PrivateKey(std::move(impl));
}

P256PublicKey P256PrivateKey::public_key() const {
    return *P256PublicKey::from_point(m_impl->key->public_point().encode(Botan::PointGFp::UNCOMPRESSED));
}

Bytes P256PrivateKey::scalar() const { return to_bytes_padded(m_impl->key->private_value(), 32); }

std::optional<Bytes> P256PrivateKey::agree(const P256PublicKey& peer) const {
    try {
        Botan::PK_Key_Agreement ka(*m_impl->key, SystemRng::instance().botan(), "Raw");
        Bytes point = peer.point();
        Botan::SymmetricKey k = ka.derive_key(0, point.data(), point.size());
        return Bytes(k.begin(), k.end());
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

// ---- DH group 14 ----

namespace dh14 {

const Bytes& prime() {
    static const Bytes p = to_bytes_padded(modp14().get_p(), kValueBytes);
    return p;
}

KeyPair generate(Rng& rng) {
    const auto& g = modp14();
    // Botan sizes the exponent for the group's strength (RFC 3526 section 8).
    const std::size_t bits = g.exponent_bits();
    Botan::BigInt x;
    do {
        x.randomize(rng.botan(), bits);
    } while (x < 2);
    KeyPair kp;
    kp.private_exponent = to_bytes_padded(x, (bits + 7) / 8);
    kp.public_value = to_bytes_padded(g.power_g_p(x, bits), kValueBytes);
    return kp;
}

bool public_value_ok(ByteView y) {
    Botan::BigInt v = to_bigint(y);
    return v > 1 && v < modp14().get_p() - 1;
}

Bytes agree(ByteView private_exponent, ByteView peer_public) {
    const Botan::BigInt& p = modp14().get_p();
    Botan::BigInt y = to_bigint(peer_public) % p;
    Botan::BigInt x = to_bigint(private_exponent);
    return to_bytes_padded(Botan::power_mod(y, x, p), kValueBytes);
}

}  // namespace dh14

// ---- RSA ----

struct RsaPublicKey::Impl {
    std::unique_ptr<Botan::RSA_PublicKey> key;
};
struct RsaPrivateKey::Impl {
    std::unique_ptr<Botan::RSA_PrivateKey> key;
};

RsaPublicKey::RsaPublicKey(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
RsaPublicKey::RsaPublicKey(const RsaPublicKey& other)
    : m_impl(std::make_unique<Impl>(
          Impl{std::make_unique<Botan::RSA_PublicKey>(other.m_impl->key->get_n(), other.m_impl->key->get_e())})) {}
RsaPublicKey::RsaPublicKey(RsaPublicKey&&) noexcept = default;
RsaPublicKey::~RsaPublicKey() = default;
RsaPublicKey& RsaPublicKey::operator=(const RsaPublicKey& other) {
    if (this != &other) *this = RsaPublicKey(other);
    return *this;
}
RsaPublicKey& RsaPublicKey::operator=(RsaPublicKey&&) noexcept = default;

std::optional<RsaPublicKey> RsaPublicKey::from_spki_der(ByteView der) {
    try {
        Botan::DataSource_Memory src(der.data(), der.size());
        std::unique_ptr<Botan::Public_Key> key(Botan::X509::load_key(src));
        auto* rsa = dynamic_cast<Botan::RSA_PublicKey*>(key.get());
        if (!rsa) return std::nullopt;
        auto impl = std::make_unique<Impl>();
        impl->key = std::make_unique<Botan::RSA_PublicKey>(rsa->get_n(), rsa->get_e());
        return RsaPublicKey(std::move(impl));
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

std::optional<RsaPublicKey> RsaPublicKey::from_pkcs1_der(ByteView der) {
    try {
        Botan::AlgorithmIdentifier alg("RSA", Botan::AlgorithmIdentifier::USE_NULL_PARAM);
        auto impl = std::make_unique<Impl>();
        impl->key = std::make_unique<Botan::RSA_PublicKey>(alg, std::vector<std::uint8_t>(der.begin(), der.end()));
        return RsaPublicKey(std::move(impl));
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

std::optional<RsaPublicKey> RsaPublicKey::from_pem(std::string_view pem) {
    try {
        Botan::DataSource_Memory src{std::string(pem)};
        std::string label;
        Botan::secure_vector<std::uint8_t> der = Botan::PEM_Code::decode(src, label);
        if (label == "PUBLIC KEY") return from_spki_der(der);
        if (label == "RSA PUBLIC KEY") return from_pkcs1_der(der);
        return std::nullopt;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

std::size_t RsaPublicKey::bits() const { return m_impl->key->key_length(); }
Bytes RsaPublicKey::spki_der() const { return Botan::X509::BER_encode(*m_impl->key); }
std::string RsaPublicKey::pem() const { return Botan::X509::PEM_encode(*m_impl->key); }

Bytes RsaPublicKey::oaep_encrypt(ByteView plaintext, Rng& rng) const {
    Botan::PK_Encryptor_EME enc(*m_impl->key, rng.botan(), "OAEP(SHA-256)");
    if (plaintext.size() > enc.maximum_input_size())
        throw std::invalid_argument("plaintext too long for RSA-OAEP with this key");
    return enc.encrypt(plaintext.data(), plaintext.size(), rng.botan());
}

bool RsaPublicKey::pss_verify(ByteView message, ByteView signature, std::optional<std::size_t> salt_length) const {
    // RFC 8017 8.1.2 step 1: a signature must be exactly k bytes; Botan 2 accepts leading zero bytes.
    if (signature.size() != (m_impl->key->key_length() + 7) / 8) return false;
    try {
        // Without a salt length Botan's PSSR accepts any salt length.
        std::string emsa = salt_length ? "PSSR(SHA-256,MGF1," + std::to_string(*salt_length) + ")" : "PSSR(SHA-256)";
        Botan::PK_Verifier v(*m_impl->key, emsa);
        return v.verify_message(message.data(), message.size(), signature.data(), signature.size());
    } catch (const std::exception&) {
        return false;
    }
}

RsaPrivateKey::RsaPrivateKey(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
RsaPrivateKey::RsaPrivateKey(RsaPrivateKey&&) noexcept = default;
RsaPrivateKey::~RsaPrivateKey() = default;

RsaPrivateKey RsaPrivateKey::generate(Rng& rng, std::size_t bits) {
    auto impl = std::make_unique<Impl>();
    impl->key = std::make_unique<Botan::RSA_PrivateKey>(rng.botan(), bits);
    return RsaPrivateKey(std::move(impl));
}


std::optional<RsaPrivateKey> RsaPrivateKey::from_pkcs8_der(ByteView der) {
    try {
        Botan::DataSource_Memory src(der.data(), der.size());
        std::unique_ptr<Botan::Private_Key> key = Botan::PKCS8::load_key(src);
        auto* rsa = dynamic_cast<Botan::RSA_PrivateKey*>(key.get());
        if (!rsa) return std::nullopt;
        auto impl = std::make_unique<Impl>();
        impl->key = std::make_unique<Botan::RSA_PrivateKey>(rsa->get_p(), rsa->get_q(), rsa->get_e(), rsa->get_d(),
                                                            rsa->get_n());
        return RsaPrivateKey(std::move(impl));
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

std::optional<RsaPrivateKey> RsaPrivateKey::from_pem(std::string_view pem) {
    try {
        Botan::DataSource_Memory src{std::string(pem)};
        std::string label;
        Botan::secure_vector<std::uint8_t> der = Botan::PEM_Code::decode(src, label);
        if (label == "PRIVATE KEY") return from_pkcs8_der(der);
        if (label != "RSA PRIVATE KEY") return std::nullopt;
        // PKCS#1 (openssl genrsa, Python's TraditionalOpenSSL).
        Botan::RSA_PrivateKey rsa(Botan::AlgorithmIdentifier(), der);
        auto impl = std::make_unique<Impl>();
        impl->key = std::make_unique<Botan::RSA_PrivateKey>(rsa.get_p(), rsa.get_q(), rsa.get_e(), rsa.get_d(),
                                                            rsa.get_n());
        return RsaPrivateKey(std::move(impl));
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

RsaPublicKey RsaPrivateKey::public_key() const {
    auto impl = std::make_unique<RsaPublicKey::Impl>();
    impl->key = std::make_unique<Botan::RSA_PublicKey>(m_impl->key->get_n(), m_impl->key->get_e());
    return RsaPublicKey(std::move(impl));
}

Bytes RsaPrivateKey::pkcs8_der() const {
    Botan::secure_vector<std::uint8_t> der = Botan::PKCS8::BER_encode(*m_impl->key);
    return Bytes(der.begin(), der.end());
}

std::string RsaPrivateKey::pem() const { return Botan::PKCS8::PEM_encode(*m_impl->key); }

std::optional<Bytes> RsaPrivateKey::oaep_decrypt(ByteView ciphertext, Rng& rng) const {
    // RFC 8017 7.1.2 step 1: a ciphertext must be exactly k bytes; Botan 2 accepts leading zero bytes.
    if (ciphertext.size() != (m_impl->key->key_length() + 7) / 8) return std::nullopt;
    try {
        Botan::PK_Decryptor_EME dec(*m_impl->key, rng.botan(), "OAEP(SHA-256)");
        Botan::secure_vector<std::uint8_t> pt = dec.decrypt(ciphertext.data(), ciphertext.size());
        return Bytes(pt.begin(), pt.end());
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

Bytes RsaPrivateKey::pss_sign(ByteView message, Rng& rng, std::size_t salt_length) const {
    Botan::PK_Signer s(*m_impl->key, rng.botan(), "PSSR(SHA-256,MGF1," + std::to_string(salt_length) + ")");
    return s.sign_message(message.data(), message.size(), rng.botan());
}

// ---- Base64 ----

std::string base64_encode(ByteView data, Base64Alphabet alphabet, bool pad) {
    std::string s = Botan::base64_encode(data.data(), data.size());
    if (alphabet == Base64Alphabet::url)
        for (char& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
    if (!pad)
        while (!s.empty() && s.back() == '=') s.pop_back();
    return s;
}

std::optional<Bytes> base64_decode(std::string_view text, Base64Alphabet alphabet, Base64Padding padding) {
    std::string s;
    s.reserve(text.size() + 2);
    std::size_t pads = 0;
    for (char c : text) {
        bool alnum = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (c == '=') {
            ++pads;
            s.push_back(c);
            continue;
        }
        if (pads) return std::nullopt;  // data after padding
        if (alnum) {
            s.push_back(c);
        } else if (alphabet == Base64Alphabet::standard && (c == '+' || c == '/')) {
            s.push_back(c);
        } else if (alphabet == Base64Alphabet::url && (c == '-' || c == '_')) {
            s.push_back(c == '-' ? '+' : '/');
        } else {
            return std::nullopt;
        }
    }
    if (pads > 2) return std::nullopt;
    if (pads && padding == Base64Padding::forbidden) return std::nullopt;
    if (pads && s.size() % 4 != 0) return std::nullopt;
    if (!pads) {
        if (s.size() % 4 == 1) return std::nullopt;
        if (s.size() % 4 != 0 && padding == Base64Padding::required) return std::nullopt;
        while (s.size() % 4 != 0) s.push_back('=');
    }
    try {
        Botan::secure_vector<std::uint8_t> out = Botan::base64_decode(s, false);
        return Bytes(out.begin(), out.end());
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}  // namespace msglab::crypto
