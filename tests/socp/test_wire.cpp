// SOCP envelopes, keys, signatures and end-to-end encryption (PROTOCOLS.md 2.8).
#include <catch2/catch.hpp>

#include "core/clock.hpp"
#include "socp/wire.hpp"
#include "socp_support.hpp"

using namespace msglab;
using namespace msglab::socp;

namespace {
ByteView bv(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }
}  // namespace

TEST_CASE("socp envelopes: parsed strictly and written with sorted keys", "[wire]") {
    auto e = parse_envelope(
        R"({"type":"MSG_DIRECT","to":"b","from":"a","ts":1795272147656,"payload":{"z":1,"a":"\u00e9"},"sig":"AA","extra":1})");
    REQUIRE(e.ok());
    CHECK(e->type == "MSG_DIRECT");
    CHECK(e->ts == 1795272147656);
    CHECK(e->sig == std::optional<std::string>("AA"));
    CHECK(encode(*e) ==
          R"({"from":"a","payload":{"a":"\u00e9","z":1},"sig":"AA","to":"b","ts":1795272147656,"type":"MSG_DIRECT"})");
    // Key order as received is kept for verification.
    CHECK(canonical(e->payload, Canon::received_order) == "{\"z\":1,\"a\":\"\xc3\xa9\"}");
    CHECK(canonical(e->payload, Canon::sorted_utf8) == "{\"a\":\"\xc3\xa9\",\"z\":1}");
    CHECK(canonical(e->payload, Canon::sorted_ascii) == R"({"a":"\u00e9","z":1})");

    const char* bad[] = {
        "",
        "[]",
        "{\"type\":\"X\",\"from\":\"a\",\"to\":\"b\",\"ts\":1}",
        "{\"type\":\"X\",\"from\":\"a\",\"to\":\"b\",\"ts\":1.5,\"payload\":{}}",
        "{\"type\":\"X\",\"from\":\"a\",\"to\":\"b\",\"ts\":\"1\",\"payload\":{}}",
        "{\"type\":\"\",\"from\":\"a\",\"to\":\"b\",\"ts\":1,\"payload\":{}}",
        "{\"type\":\"X\",\"from\":7,\"to\":\"b\",\"ts\":1,\"payload\":{}}",
        "{\"type\":\"X\",\"from\":\"a\",\"to\":\"b\",\"ts\":1,\"payload\":[]}",
        "{\"type\":\"X\",\"from\":\"a\",\"to\":\"b\",\"ts\":1,\"payload\":{},\"sig\":5}",
        "{\"type\":\"X\",\"from\":\"a\",\"to\":\"b\",\"ts\":18446744073709551615,\"payload\":{}}",
    };
    for (const char* text : bad) {
        INFO(text);
        CHECK_FALSE(parse_envelope(text).ok());
    }
    std::string with_nul = "{\"type\":\"X\",\"from\":\"a\",\"to\":\"b\",\"ts\":1,\"payload\":{}}";
    with_nul.push_back('\0');
    CHECK(parse_envelope(with_nul).error() == "NUL byte in the message");
    std::string deep = "{\"type\":\"X\",\"from\":\"a\",\"to\":\"b\",\"ts\":1,\"payload\":" + std::string(40, '[');
    deep.insert(deep.size() - 40, "{\"k\":");
    deep = "{\"type\":\"X\",\"from\":\"a\",\"to\":\"b\",\"ts\":1,\"payload\":{\"k\":" + std::string(40, '[') +
           std::string(40, ']') + "}}";
    CHECK(parse_envelope(deep).error() == "\"payload\" is nested too deeply");
    Limits small;
    small.max_message = 10;
    CHECK_FALSE(parse_envelope("{\"type\":\"X\",\"from\":\"a\",\"to\":\"b\",\"ts\":1,\"payload\":{}}", small).ok());
    CHECK(parse_envelope("{\"type\":\"X\",\"from\":\"" + std::string(300, 'a') + "\",\"to\":\"b\",\"ts\":1,\"payload\":{}}")
              .error() == "\"from\" is over the bound");
}

TEST_CASE("socp keys: DER SPKI written, DER and PEM in base64url and bare PEM read", "[wire]") {
    const auto& priv = socp::test::key("user-1");
    auto pub = priv.public_key();
    CHECK(pub.bits() == 4096);
    std::string der = encode_key(pub);
    CHECK(der.find('=') == std::string::npos);
    CHECK(der.substr(0, 4) == "MIIC");
    std::string pem = encode_key(pub, KeyEncoding::pem);
    CHECK(pem.substr(0, 20) == "LS0tLS1CRUdJTiBQVUJM");  // as the cohort implementation in the capture
    std::string padded = crypto::base64_encode(pub.spki_der(), crypto::Base64Alphabet::url, true);
    std::string standard = crypto::base64_encode(pub.spki_der());
    for (const std::string& text : {der, pem, pub.pem(), padded, standard}) {
        auto k = decode_key(text);
        REQUIRE(k);
        CHECK(k->key.spki_der() == pub.spki_der());
    }
    CHECK(decode_key(der)->encoding == KeyEncoding::der);
    CHECK(decode_key(pem)->encoding == KeyEncoding::pem);
    CHECK_FALSE(decode_key(""));
    CHECK_FALSE(decode_key("not a key"));
    CHECK_FALSE(decode_key(der.substr(0, 100)));
    CHECK(decode_key(encode_key(socp::test::key("weak-1").public_key()))->key.bits() == 1024);
}

TEST_CASE("socp key files: PKCS#8 and PKCS#1 PEM private keys load", "[wire]") {
    // The PKCS#1 form of user-1 (openssl rsa -traditional; made by tools/socp-test-keys.sh).
    std::string pkcs1 = socp::test::read_text(std::string(MSGLAB_SOCP_KEYS) + "/user-1.pkcs1.pem");
    REQUIRE(pkcs1.find("BEGIN RSA PRIVATE KEY") != std::string::npos);
    auto k = crypto::RsaPrivateKey::from_pem(pkcs1);
    REQUIRE(k);
    CHECK(k->public_key().spki_der() == socp::test::key("user-1").public_key().spki_der());
    CHECK_FALSE(crypto::RsaPrivateKey::from_pem("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"));
}

TEST_CASE("socp signatures: salt 32 made, any salt and three canonical forms verified", "[wire]") {
    SystemRng rng;
    const auto& priv = socp::test::key("server-a");
    auto pub = priv.public_key();
    Json payload = Json::parse(R"({"user_id":"u","server_id":"s","meta":{"display_name":"Zo\u00eb"}})");
    std::string sig = sign_payload(priv, payload, rng);
    CHECK(verify_payload(pub, payload, sig) == std::optional<Canon>(Canon::sorted_ascii));
    // The salt the Python teams use (PSS.MAX_LENGTH: 478 bytes for RSA-4096/SHA-256).
    auto max_salt = priv.pss_sign(bv(canonical(payload, Canon::sorted_ascii)), rng, 478);
    CHECK(verify_payload(pub, payload, b64url(max_salt)) == std::optional<Canon>(Canon::sorted_ascii));
    // Node teams: insertion order, raw UTF-8.
    auto node = priv.pss_sign(bv(canonical(payload, Canon::received_order)), rng);
    CHECK(verify_payload(pub, payload, b64url(node)) == std::optional<Canon>(Canon::received_order));
    auto utf8 = priv.pss_sign(bv(canonical(payload, Canon::sorted_utf8)), rng);
    CHECK(verify_payload(pub, payload, b64url(utf8)) == std::optional<Canon>(Canon::sorted_utf8));
    // Wrong key, altered payload, garbage.
    CHECK_FALSE(verify_payload(socp::test::key("server-b").public_key(), payload, sig));
    Json altered = payload;
    altered["user_id"] = "v";
    CHECK_FALSE(verify_payload(pub, altered, sig));
    CHECK_FALSE(verify_payload(pub, payload, ""));
    CHECK_FALSE(verify_payload(pub, payload, "!!"));
    CHECK_FALSE(verify_payload(pub, payload, sig.substr(1)));

    std::string content = dm_content("CT", "alice", "bob", 1795272147656);
    CHECK(content == "CTalicebob1795272147656");
    CHECK(public_content("CT", "alice", 5) == "CTalice5");
    std::string csig = sign_content(priv, content, rng);
    CHECK(verify_content(pub, content, csig));
    CHECK_FALSE(verify_content(pub, content + "x", csig));
}

TEST_CASE("socp encryption: RSA-OAEP blocks, UTF-8 pieces and the group key", "[wire]") {
    SystemRng rng;
    const auto& priv = socp::test::key("user-2");
    auto pub = priv.public_key();
    CHECK(oaep_capacity(pub) == kMaxOaepPlaintext);
    std::string text(446, 'x');
    auto ct = encrypt_for(pub, bv(text), rng);
    REQUIRE(ct);
    CHECK(ct->size() == 683);
    auto back = decrypt_with(priv, *ct, rng);
    REQUIRE(back);
    CHECK(std::string(back->begin(), back->end()) == text);
    CHECK_FALSE(encrypt_for(pub, bv(text + "y"), rng));
    CHECK_FALSE(decrypt_with(socp::test::key("user-3"), *ct, rng));
    CHECK_FALSE(decrypt_with(priv, "AAAA", rng));

    std::string euro = "\xe2\x82\xac";  // 3 bytes
    std::string long_text;
    for (int i = 0; i < 200; ++i) long_text += euro;
    auto pieces = split_utf8(long_text, 446);
    REQUIRE(pieces.size() == 2);
    CHECK(pieces[0].size() == 444);
    CHECK(pieces[0] + pieces[1] == long_text);

    Bytes group = rng.bytes(32);
    std::string sealed = group_encrypt(group, "hello all", rng);
    CHECK(group_decrypt(group, sealed) == std::optional<std::string>("hello all"));
    Bytes other = rng.bytes(32);
    CHECK_FALSE(group_decrypt(other, sealed));
    CHECK_FALSE(group_decrypt(group, "cHVibGljIGhlbGxv"));  // the original's plaintext form
}

TEST_CASE("socp duplicate cache: ids by ts, from, to and payload, bounded in time and size", "[wire]") {
    auto a = parse_envelope(R"({"type":"MSG_DIRECT","from":"a","to":"b","ts":1,"payload":{"ciphertext":"x"}})");
    auto b = parse_envelope(R"({"type":"MSG_DIRECT","from":"a","to":"b","ts":1,"payload":{"ciphertext":"y"}})");
    REQUIRE((a.ok() && b.ok()));
    SeenCache seen(3, 1000);
    CHECK(seen.insert(message_id(*a), 0));
    CHECK_FALSE(seen.insert(message_id(*a), 10));
    CHECK(seen.insert(message_id(*b), 10));
    CHECK(seen.insert(message_id(*a), 1000));  // expired
    for (int i = 0; i < 10; ++i) seen.insert("id" + std::to_string(i), 1001);
    CHECK(seen.size() <= 3);
}
