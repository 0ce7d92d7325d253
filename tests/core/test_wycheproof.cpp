// Wycheproof vectors (../shared/vectors/wycheproof) run through the msglab::crypto facade.
//
// valid cases must give the expected output, invalid ones must be rejected, acceptable ones may go
// either way but must not throw, and when accepted must still give the expected output.

#include "support.hpp"

#include <algorithm>
#include <functional>
#include <sstream>
#include <stdexcept>

#include "core/crypto.hpp"

namespace {

using msglab::Bytes;
using msglab::ByteView;
using msglab::test::hex_field;
using nlohmann::json;

namespace crypto = msglab::crypto;

enum class Outcome {
    match,     // accepted, output equals the vector's
    mismatch,  // accepted, output differs
    rejected,  // nullopt / false / std::invalid_argument where the facade documents it
};

struct Verdict {
    Verdict(Outcome o, bool reject = false, std::string why = {})
        : outcome(o), must_reject(reject), note(std::move(why)) {}

    Outcome outcome;
    // Set when the facade must reject the case whatever its `result` says (a feature it does not offer).
    bool must_reject;
    std::string note;  // why, shown on failure
};

const char* outcome_name(Outcome o) {
    switch (o) {
        case Outcome::match: return "accepted (matches)";
        case Outcome::mismatch: return "accepted (differs from expected)";
        case Outcome::rejected: return "rejected";
    }
    return "?";
}

Outcome compare(const std::optional<Bytes>& got, const Bytes& expected) {
    if (!got) return Outcome::rejected;
    return *got == expected ? Outcome::match : Outcome::mismatch;
}

struct Counts {
    std::size_t valid = 0;
    std::size_t invalid = 0;
    std::size_t acceptable = 0;
    std::size_t acceptable_accepted = 0;
    std::size_t forced_reject = 0;
    std::size_t not_covered = 0;

    std::size_t checked() const { return valid + invalid + acceptable + forced_reject; }
};

std::optional<json> load_vectors(const std::string& file) {
    auto dir = msglab::test::vectors_dir();
    if (!dir) return std::nullopt;
    auto path = *dir / "wycheproof" / file;
    // The vectors folder exists, so a missing file is a broken checkout, not a skip.
    INFO("vector file " << path.string());
    REQUIRE(std::filesystem::is_regular_file(path));
    return msglab::test::load_json(path);
}

// A case callback returns nullopt for a case the facade does not cover.
using CaseFn = std::function<std::optional<Verdict>(const json& group, const json& test)>;

// Runs every case of `file`; `expected_not_covered` is the number of cases the facade cannot express,
// fixed per file so that a change in coverage is noticed.
void run_file(const std::string& file, std::size_t expected_not_covered, const CaseFn& fn) {
    auto doc = load_vectors(file);
    if (!doc) MSGLAB_SKIP("vectors folder not found (set MSGLAB_VECTORS_DIR or put shared/ beside the project); " +
                          file + " not run");

    Counts c;
    std::size_t seen = 0;
    for (const json& group : doc->at("testGroups")) {
        for (const json& t : group.at("tests")) {
            ++seen;
            const int tc = t.at("tcId").get<int>();
            const std::string result = t.at("result").get<std::string>();
            INFO(file << " tcId " << tc << " (" << result << "): " << t.value("comment", std::string())
                      << " flags " << t.value("flags", json::array()).dump());

            std::optional<Verdict> v;
            try {
                v = fn(group, t);
            } catch (const std::exception& e) {
                FAIL_CHECK("threw " << e.what());
                // A throw is a failure but the case was examined.
                v = Verdict{Outcome::mismatch, false, "exception"};
            }
            if (!v) {
                ++c.not_covered;
                continue;
            }
            INFO("outcome: " << outcome_name(v->outcome) << (v->note.empty() ? "" : "; ") << v->note);
            if (v->must_reject) {
                ++c.forced_reject;
                CHECK(v->outcome == Outcome::rejected);
            } else if (result == "valid") {
                ++c.valid;
                CHECK(v->outcome == Outcome::match);
            } else if (result == "invalid") {
                ++c.invalid;
                CHECK(v->outcome == Outcome::rejected);
            } else if (result == "acceptable") {
                ++c.acceptable;
                if (v->outcome != Outcome::rejected) ++c.acceptable_accepted;
                CHECK(v->outcome != Outcome::mismatch);
            } else {
                FAIL_CHECK("unknown result field");
            }
        }
    }

    std::ostringstream summary;
    summary << "wycheproof " << file << ": " << c.checked() << " checked (valid " << c.valid << ", invalid "
            << c.invalid << ", acceptable " << c.acceptable << " [accepted " << c.acceptable_accepted << "]";
    if (c.forced_reject) summary << ", must-reject " << c.forced_reject;
    summary << "), not covered " << c.not_covered << ", numberOfTests " << doc->at("numberOfTests").get<std::size_t>();
    std::cout << summary.str() << std::endl;

    INFO(summary.str());
    REQUIRE(seen == doc->at("numberOfTests").get<std::size_t>());
    REQUIRE(c.not_covered == expected_not_covered);
    REQUIRE(c.checked() == doc->at("numberOfTests").get<std::size_t>() - c.not_covered);
    REQUIRE(c.checked() > 0);
}

// Wycheproof writes EC scalars as ASN.1 integers: possibly a leading 00, possibly shorter than 32 bytes.
Bytes scalar32(Bytes s) {
    std::size_t skip = 0;
    while (s.size() - skip > 32 && s[skip] == 0) ++skip;
    s.erase(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(skip));
    if (s.size() > 32) throw std::runtime_error("private scalar longer than 32 bytes");
    s.insert(s.begin(), 32 - s.size(), 0);
    return s;
}

template <std::size_t N>
std::array<std::uint8_t, N> to_array(const Bytes& b) {
    if (b.size() != N) throw std::runtime_error("unexpected field length " + std::to_string(b.size()));
    std::array<std::uint8_t, N> a{};
    std::copy(b.begin(), b.end(), a.begin());
    return a;
}

Bytes concat(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

}  // namespace

TEST_CASE("wycheproof aes_cbc_pkcs5", "[wycheproof][aes]") {
    run_file("aes_cbc_pkcs5_test.json", 0, [](const json&, const json& t) -> std::optional<Verdict> {
        Bytes key = hex_field(t, "key"), iv = hex_field(t, "iv"), msg = hex_field(t, "msg"), ct = hex_field(t, "ct");
        Outcome dec = compare(crypto::aes_cbc_decrypt(key, iv, ct), msg);
        if (t.at("result") != "valid") return Verdict{dec};
        Outcome enc = crypto::aes_cbc_encrypt(key, iv, msg) == ct ? Outcome::match : Outcome::mismatch;
        if (enc != Outcome::match) return Verdict{enc, false, "encryption differs"};
        return Verdict{dec, false, "decryption"};
    });
}

TEST_CASE("wycheproof aes_gcm", "[wycheproof][aes]") {
    // Every group of this file uses 128-bit tags, the only size the facade produces.
    run_file("aes_gcm_test.json", 0, [](const json& g, const json& t) -> std::optional<Verdict> {
        if (g.at("tagSize").get<int>() != 128) return std::nullopt;
        Bytes key = hex_field(t, "key"), iv = hex_field(t, "iv"), aad = hex_field(t, "aad"), msg = hex_field(t, "msg");
        Bytes sealed = concat(hex_field(t, "ct"), hex_field(t, "tag"));
        Outcome dec = compare(crypto::aes_gcm_decrypt(key, iv, aad, sealed), msg);
        if (t.at("result") != "valid") return Verdict{dec};
        Outcome enc = crypto::aes_gcm_encrypt(key, iv, aad, msg) == sealed ? Outcome::match : Outcome::mismatch;
        if (enc != Outcome::match) return Verdict{enc, false, "encryption differs"};
        return Verdict{dec, false, "decryption"};
    });
}

TEST_CASE("wycheproof aes_gcm empty nonce is a programmer error on encryption", "[wycheproof][aes]") {
    Bytes key(16, 0x11);
    CHECK_THROWS_AS(crypto::aes_gcm_encrypt(key, Bytes{}, Bytes{}, Bytes{1, 2, 3}), std::invalid_argument);
    CHECK_FALSE(crypto::aes_gcm_decrypt(key, Bytes{}, Bytes{}, Bytes(19, 0)).has_value());
}

TEST_CASE("wycheproof hmac_sha256", "[wycheproof][hmac]") {
    run_file("hmac_sha256_test.json", 0, [](const json& g, const json& t) -> std::optional<Verdict> {
        const auto tag_bytes = static_cast<std::size_t>(g.at("tagSize").get<int>() / 8);
        Bytes key = hex_field(t, "key"), msg = hex_field(t, "msg"), tag = hex_field(t, "tag");
        crypto::Digest mac = crypto::hmac_sha256(key, msg);
        if (tag_bytes > mac.size()) return std::nullopt;
        Bytes prefix(mac.begin(), mac.begin() + static_cast<std::ptrdiff_t>(tag_bytes));
        if (tag_bytes == mac.size()) {
            // The full-length tag also goes through the constant-time verifier; both must agree.
            bool verified = crypto::hmac_sha256_verify(key, msg, tag);
            if (verified != (prefix == tag)) return Verdict{Outcome::mismatch, false, "verify disagrees with MAC"};
        }
        return Verdict{prefix == tag ? Outcome::match : Outcome::rejected};
    });
}

TEST_CASE("wycheproof hkdf_sha256", "[wycheproof][hkdf]") {
    run_file("hkdf_sha256_test.json", 0, [](const json&, const json& t) -> std::optional<Verdict> {
        Bytes ikm = hex_field(t, "ikm"), salt = hex_field(t, "salt"), info = hex_field(t, "info");
        const auto size = t.at("size").get<std::size_t>();
        try {
            return Verdict{crypto::hkdf_sha256(ikm, salt, info, size) == hex_field(t, "okm") ? Outcome::match
                                                                                                : Outcome::mismatch};
        } catch (const std::invalid_argument& e) {
            return Verdict{Outcome::rejected, false, e.what()};
        }
    });
}

TEST_CASE("wycheproof ecdh_secp256r1", "[wycheproof][ecdh]") {
    run_file("ecdh_secp256r1_test.json", 0, [](const json&, const json& t) -> std::optional<Verdict> {
        auto pub = crypto::P256PublicKey::from_spki_der(hex_field(t, "public"));
        if (!pub) return Verdict{Outcome::rejected, false, "public key parse"};
        auto priv = crypto::P256PrivateKey::from_scalar(scalar32(hex_field(t, "private")));
        // Every private key in the file is a valid scalar; a refusal here is a facade bug, not a rejection.
        if (!priv) return Verdict{Outcome::mismatch, false, "from_scalar refused the private key"};
        auto shared = priv->agree(*pub);
        if (!shared) return Verdict{Outcome::rejected, false, "agree"};
        return Verdict{*shared == hex_field(t, "shared") ? Outcome::match : Outcome::mismatch, false,
                       "computed " + msglab::hex(*shared)};
    });
}

TEST_CASE("wycheproof x25519", "[wycheproof][x25519]") {
    run_file("x25519_test.json", 0, [](const json&, const json& t) -> std::optional<Verdict> {
        auto priv = to_array<32>(hex_field(t, "private"));
        auto out = crypto::x25519(priv, hex_field(t, "public"));
        if (!out) return Verdict{Outcome::rejected};
        return Verdict{Bytes(out->begin(), out->end()) == hex_field(t, "shared") ? Outcome::match : Outcome::mismatch,
                       false, "computed " + msglab::hex(*out)};
    });
}

TEST_CASE("wycheproof ed25519", "[wycheproof][ed25519]") {
    run_file("ed25519_test.json", 0, [](const json& g, const json& t) -> std::optional<Verdict> {
        Bytes pk = msglab::unhex(g.at("publicKey").at("pk").get<std::string>());
        bool ok = crypto::ed25519_verify(pk, hex_field(t, "msg"), hex_field(t, "sig"));
        return Verdict{ok ? Outcome::match : Outcome::rejected};
    });
}

TEST_CASE("wycheproof rsa_oaep_4096_sha256_mgf1sha256", "[wycheproof][rsa]") {
    // Parsing a 4096-bit key per case is slow, so the key is kept while the group's key stays the same.
    std::optional<crypto::RsaPrivateKey> key;
    std::string key_hex;
    msglab::DeterministicRng rng(1);
    auto fn = [&](const json& g, const json& t) -> std::optional<Verdict> {
        if (!key || g.at("privateKeyPkcs8").get<std::string>() != key_hex) {
            key_hex = g.at("privateKeyPkcs8").get<std::string>();
            auto parsed = crypto::RsaPrivateKey::from_pkcs8_der(msglab::unhex(key_hex));
            REQUIRE(parsed);
            key.reset();
            key.emplace(std::move(*parsed));
            REQUIRE(key->public_key().bits() == 4096);
        }
        auto pt = key->oaep_decrypt(hex_field(t, "ct"), rng);
        Outcome o = compare(pt, hex_field(t, "msg"));
        // The facade fixes the empty label, so a ciphertext made under any other label must not decrypt.
        if (!t.at("label").get<std::string>().empty()) return Verdict{o, true, "non-empty label"};
        return Verdict{o};
    };
    run_file("rsa_oaep_4096_sha256_mgf1sha256_test.json", 0, fn);
}

TEST_CASE("wycheproof rsa_pss_4096_sha256_mgf1_32", "[wycheproof][rsa]") {
    run_file("rsa_pss_4096_sha256_mgf1_32_test.json", 0, [](const json& g, const json& t) -> std::optional<Verdict> {
        // The facade's PSS is SHA-256 with MGF1-SHA-256; anything else would need a different primitive.
        REQUIRE(g.at("sha") == "SHA-256");
        REQUIRE(g.at("mgfSha") == "SHA-256");
        REQUIRE(g.at("sLen").get<std::size_t>() == 32);
        auto pub = crypto::RsaPublicKey::from_pkcs1_der(hex_field(g, "publicKeyAsn"));
        REQUIRE(pub);
        // The SPKI form of the same key must load too, to the same size.
        auto spki = crypto::RsaPublicKey::from_spki_der(hex_field(g, "publicKeyDer"));
        REQUIRE(spki);
        REQUIRE(pub->bits() == 4096);
        REQUIRE(spki->bits() == 4096);
        bool ok = pub->pss_verify(hex_field(t, "msg"), hex_field(t, "sig"), 32);
        return Verdict{ok ? Outcome::match : Outcome::rejected};
    });
}

TEST_CASE("rsa pss: lenient verification accepts any salt length and strict does not", "[wycheproof][rsa]") {
    msglab::DeterministicRng rng(20240521);
    auto key = crypto::RsaPrivateKey::generate(rng, 2048);
    auto pub = key.public_key();
    REQUIRE(pub.bits() == 2048);
    const Bytes msg = msglab::to_bytes("salt length check");

    Bytes sig20 = key.pss_sign(msg, rng, 20);
    CHECK(pub.pss_verify(msg, sig20, std::nullopt));
    CHECK(pub.pss_verify(msg, sig20, 20));
    CHECK_FALSE(pub.pss_verify(msg, sig20, 32));

    Bytes sig32 = key.pss_sign(msg, rng, 32);
    CHECK(pub.pss_verify(msg, sig32, 32));
    CHECK(pub.pss_verify(msg, sig32, std::nullopt));
    CHECK_FALSE(pub.pss_verify(msg, sig32, 20));

    // Lenient means any salt length, not any signature.
    CHECK_FALSE(pub.pss_verify(msglab::to_bytes("another message"), sig20, std::nullopt));
    sig20[sig20.size() / 2] ^= 0x01;
    CHECK_FALSE(pub.pss_verify(msg, sig20, std::nullopt));
}
