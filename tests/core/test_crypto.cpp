// Facade behaviour beyond the public vectors (those are in test_wycheproof.cpp).
#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::crypto;

TEST_CASE("HKDF-SHA256: RFC 5869 A.1 to A.3", "[crypto][hkdf]") {
    // A.1 basic
    CHECK(hex(hkdf_sha256(unhex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), unhex("000102030405060708090a0b0c"),
                          unhex("f0f1f2f3f4f5f6f7f8f9"), 42)) ==
          "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    // A.2 longer inputs and outputs
    Bytes ikm, salt, info;
    for (int i = 0x00; i <= 0x4f; ++i) ikm.push_back(static_cast<std::uint8_t>(i));
    for (int i = 0x60; i <= 0xaf; ++i) salt.push_back(static_cast<std::uint8_t>(i));
    for (int i = 0xb0; i <= 0xff; ++i) info.push_back(static_cast<std::uint8_t>(i));
    CHECK(hex(hkdf_sha256(ikm, salt, info, 82)) ==
          "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f"
          "09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87");
    // A.3 zero-length salt and info
    CHECK(hex(hkdf_sha256(unhex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), {}, {}, 42)) ==
          "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
    CHECK_THROWS_AS(hkdf_sha256(as_bytes("k"), {}, {}, 255 * 32 + 1), std::invalid_argument);
}

TEST_CASE("base64 standard and URL-safe, with and without padding", "[crypto][base64]") {
    Bytes data = unhex("fbff00fe");
    CHECK(base64_encode(data) == "+/8A/g==");
    CHECK(base64_encode(data, Base64Alphabet::url) == "-_8A_g==");
    CHECK(base64_encode(data, Base64Alphabet::url, false) == "-_8A_g");
    CHECK(base64_decode("+/8A/g==") == std::optional<Bytes>(data));
    CHECK(base64_decode("-_8A_g", Base64Alphabet::url) == std::optional<Bytes>(data));
    CHECK_FALSE(base64_decode("-_8A_g==", Base64Alphabet::standard));  // wrong alphabet
    CHECK_FALSE(base64_decode("+/8A/g==", Base64Alphabet::url));
    CHECK_FALSE(base64_decode("+/8A/g", Base64Alphabet::standard, Base64Padding::required));
    CHECK_FALSE(base64_decode("+/8A/g==", Base64Alphabet::standard, Base64Padding::forbidden));
    CHECK_FALSE(base64_decode("+/8A /g=="));   // whitespace is not base64
    CHECK_FALSE(base64_decode("+/8A/g=A"));    // data after padding
    CHECK_FALSE(base64_decode("A"));           // impossible length
    CHECK(base64_decode("") == std::optional<Bytes>(Bytes{}));
}

TEST_CASE("constant_time_equal", "[crypto]") {
    CHECK(constant_time_equal(as_bytes("abc"), as_bytes("abc")));
    CHECK_FALSE(constant_time_equal(as_bytes("abc"), as_bytes("abd")));
    CHECK_FALSE(constant_time_equal(as_bytes("abc"), as_bytes("ab")));
}

TEST_CASE("DH group 14: public value checks and agreement", "[crypto][dh]") {
    const Bytes& p = dh14::prime();
    REQUIRE(p.size() == 256);
    CHECK(hex(ByteView(p).first(8)) == "ffffffffffffffff");
    Bytes zero(256, 0), one(256, 0), two(256, 0);
    one.back() = 1;
    two.back() = 2;
    Bytes p_minus_1 = p;
    p_minus_1.back() -= 1;
    CHECK_FALSE(dh14::public_value_ok(zero));
    CHECK_FALSE(dh14::public_value_ok(one));
    CHECK_FALSE(dh14::public_value_ok(p_minus_1));
    CHECK_FALSE(dh14::public_value_ok(p));
    CHECK_FALSE(dh14::public_value_ok(Bytes(256, 0xff)));
    CHECK(dh14::public_value_ok(two));

    DeterministicRng rng(7);
    auto a = dh14::generate(rng), b = dh14::generate(rng);
    CHECK(a.public_value.size() == 256);
    CHECK(dh14::agree(a.private_exponent, b.public_value) == dh14::agree(b.private_exponent, a.public_value));
    // No validation in agree(): y = 1 gives Z = 1 (the weak-DH attack of 4.7).
    CHECK(dh14::agree(a.private_exponent, one) == one);
    CHECK(dh14::agree(a.private_exponent, zero) == zero);
}

TEST_CASE("P-256 keys: PEM as OpenSSL writes it, and parse failures", "[crypto][p256]") {
    DeterministicRng rng(11);
    auto key = P256PrivateKey::generate(rng);
    std::string pem = key.public_key().pem();
    // 91-byte SPKI: 178 bytes of PEM in 64-character lines (SLMP depends on it).
    CHECK(pem.size() == 178);
    CHECK(pem.rfind("-----BEGIN PUBLIC KEY-----\n", 0) == 0);
    CHECK(pem.substr(pem.size() - 25) == "-----END PUBLIC KEY-----\n");
    Bytes der = key.public_key().spki_der();
    CHECK(der.size() == 91);
    // id-ecPublicKey and prime256v1, not Botan's ECDH OID.
    CHECK(hex(ByteView(der).first(26)) == "3059301306072a8648ce3d020106082a8648ce3d030107034200");
    auto again = P256PublicKey::from_pem(pem);
    REQUIRE(again);
    CHECK(again->point() == key.public_key().point());
    CHECK_FALSE(P256PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"));
    CHECK_FALSE(P256PublicKey::from_pem("not a pem"));
    Bytes bad_point = key.public_key().point();
    bad_point[40] ^= 1;
    CHECK_FALSE(P256PublicKey::from_point(bad_point));
    CHECK_FALSE(P256PrivateKey::from_scalar(Bytes(32, 0)));
}

TEST_CASE("DeterministicRng repeats for a seed and differs across seeds", "[crypto][rng]") {
    DeterministicRng a(42), b(42), c(43);
    Bytes x = a.bytes(64), y = b.bytes(64), z = c.bytes(64);
    CHECK(x == y);
    CHECK(x != z);
    // Key generation through Botan stays deterministic too.
    DeterministicRng d(5), e(5);
    CHECK(dh14::generate(d).public_value == dh14::generate(e).public_value);
    for (int i = 0; i < 1000; ++i) CHECK(a.below(10) < 10);
}

TEST_CASE("AES-CBC rejects bad ciphertext lengths, GCM rejects a bad tag", "[crypto][aes]") {
    Bytes key(16, 1), iv(16, 2);
    CHECK_FALSE(aes_cbc_decrypt(key, iv, Bytes(15)));
    CHECK_FALSE(aes_cbc_decrypt(key, iv, Bytes{}));
    Bytes ct = aes_gcm_encrypt(key, Bytes(12, 3), as_bytes("aad"), as_bytes("secret"));
    CHECK(aes_gcm_decrypt(key, Bytes(12, 3), as_bytes("aad"), ct) == std::optional<Bytes>(to_bytes("secret")));
    ct.back() ^= 1;
    CHECK_FALSE(aes_gcm_decrypt(key, Bytes(12, 3), as_bytes("aad"), ct));
    CHECK_THROWS_AS(aes_cbc_encrypt(Bytes(15), iv, {}), std::invalid_argument);
}
