// SLMP units: framing, sizes, PEM keys, tokens and key derivation
// (PROTOCOLS.md section 3), checked against the original programs' capture.
#include "core/crypto.hpp"
#include "core/fernet.hpp"
#include "core/registry.hpp"
#include "replay/extract.hpp"
#include "slmp/codec.hpp"
#include "slmp_support.hpp"

using namespace msglab;
using namespace msglab::slmp;
using namespace msglab::test;

namespace {

constexpr const char* kSpkiPrefix = "3059301306072a8648ce3d020106082a8648ce3d030107034200";

std::string text(ByteView b) { return to_string(b); }

// A real 204-character token: an 81-byte plaintext, as the original demo's request.
struct Sealed {
    fernet::Key key;
    std::string token;
};
Sealed sealed(std::size_t plaintext_bytes, std::uint8_t fill = 'x') {
    DeterministicRng rng(5);
    Sealed s{fernet::Key::generate(rng), {}};
    s.token = fernet::encrypt(s.key, Bytes(plaintext_bytes, fill), 1700000000, rng.bytes(16));
    return s;
}

std::function<bool(std::string_view)> verifier(const fernet::Key& k) {
    return [k](std::string_view t) {
        fernet::VerifyOptions o;
        o.check_future = false;
        return fernet::decrypt(k, t, 0, o).ok();
    };
}

std::vector<replay::ExtractedMessage> original_messages(const std::string& path) {
    std::vector<replay::StreamProblem> problems;
    auto msgs = replay::extract_file(path, Registry::builtin(), {}, &problems);
    for (const auto& p : problems) UNSCOPED_INFO("stream " << p.stream << " frame " << p.frame << ": " << p.what);
    CHECK(problems.empty());
    return msgs;
}

}  // namespace

TEST_CASE("SLMP sizes: token lengths, the 703-byte limit, plausible lengths", "[codec]") {
    CHECK(max_plaintext(1024) == 703);
    CHECK(max_plaintext(1016) == 703);
    CHECK(max_plaintext(1015) == 687);
    CHECK(max_plaintext(100) == 15);
    CHECK(max_plaintext(99) == 0);
    CHECK(token_length(0) == 100);
    CHECK(token_length(15) == 100);
    CHECK(token_length(16) == 120);
    CHECK(token_length(29) == 120);   // "Message received: Hello SLMP!"
    CHECK(token_length(32) == 140);   // "Message received: second message"
    CHECK(token_length(81) == 204);   // the demo request
    CHECK(token_length(703) == 1016);
    CHECK(token_length(704) == 1036);
    for (std::size_t chars : {100u, 120u, 140u, 164u, 184u, 204u, 1016u, 1036u})
        CHECK(plausible_token_length(chars));
    for (std::size_t chars : {0u, 4u, 96u, 101u, 104u, 116u, 124u, 202u, 203u, 1020u, 1024u})
        CHECK_FALSE(plausible_token_length(chars));
    // Every real token has the length token_length() gives, and it is plausible.
    DeterministicRng rng(1);
    auto key = fernet::Key::generate(rng);
    for (std::size_t n = 0; n <= 1000; ++n) {
        std::string t = fernet::encrypt(key, Bytes(n, 'a'), 1700000000, rng.bytes(16));
        INFO("plaintext of " << n << " bytes");
        REQUIRE(t.size() == token_length(n));
        REQUIRE(plausible_token_length(t.size()));
        REQUIRE(t.substr(0, 6) == "gAAAAA");
    }
}

TEST_CASE("SLMP frame_key: whole, byte by byte, coalesced, junk", "[codec]") {
    DeterministicRng rng(2);
    std::string pem = crypto::P256PrivateKey::generate(rng).public_key().pem();
    REQUIRE(pem.size() == 178);
    CHECK(*frame_key(as_bytes(pem), 1024) == 178);
    // Every prefix asks for more, up to the newline after the END line.
    for (std::size_t n = 0; n < pem.size(); ++n) {
        auto r = frame_key(as_bytes(pem.substr(0, n)), 1024);
        INFO("prefix of " << n << " bytes");
        REQUIRE(r);
        REQUIRE(*r == 0);
    }
    // Coalesced with what follows: the key ends after its own newline.
    std::string token = sealed(81).token;
    CHECK(*frame_key(as_bytes(pem + token), 1024) == 178);
    CHECK(*frame_key(as_bytes(pem + pem), 1024) == 178);
    // CRLF line ends.
    std::string crlf = std::regex_replace(pem, std::regex("\n"), "\r\n");
    CHECK(*frame_key(as_bytes(crlf), 1024) == 182);
    CHECK(*frame_key(as_bytes(crlf.substr(0, 181)), 1024) == 0);  // the \n may follow the \r

    auto junk = frame_key(as_bytes("GET / HTTP/1.1\r\n\r\n"), 1024);
    REQUIRE_FALSE(junk);
    CHECK(junk.error().code == ParseErrc::bad_magic);
    auto tok = frame_key(as_bytes(token), 1024);
    REQUIRE_FALSE(tok);
    CHECK(tok.error().code == ParseErrc::bad_magic);
    // No END line within the bound.
    std::string endless = "-----BEGIN PUBLIC KEY-----\n" + std::string(1100, 'A');
    auto over = frame_key(as_bytes(endless), 1024);
    REQUIRE_FALSE(over);
    CHECK(over.error().code == ParseErrc::length_over_limit);
    CHECK(*frame_key(as_bytes(endless.substr(0, 1024)), 1024) == 0);
    // An END line past the bound.
    std::string late = "-----BEGIN PUBLIC KEY-----\n" + std::string(1000, 'A') + "\n-----END PUBLIC KEY-----\n";
    auto late_r = frame_key(as_bytes(late), 1024);
    REQUIRE_FALSE(late_r);
    CHECK(late_r.error().code == ParseErrc::length_over_limit);
    CHECK(*frame_key(as_bytes(late), 2048) == late.size());
}

TEST_CASE("SLMP frame_token: whole, byte by byte, coalesced, junk", "[codec]") {
    Sealed s = sealed(81);
    const std::string& t = s.token;
    REQUIRE(t.size() == 204);
    REQUIRE(t.back() != '=');  // 153 raw bytes: no padding
    auto verify = verifier(s.key);

    // Whole: without a key it is only a candidate; the key makes it certain.
    auto bare = frame_token(as_bytes(t), 1024);
    REQUIRE(bare);
    CHECK(bare->length == 204);
    CHECK_FALSE(bare->certain);
    auto keyed = frame_token(as_bytes(t), 1024, verify);
    REQUIRE(keyed);
    CHECK(keyed->length == 204);
    CHECK(keyed->certain);
    // Padding ends a token by itself.
    Sealed r = sealed(29);
    REQUIRE(r.token.size() == 120);
    REQUIRE(r.token.back() == '=');
    auto padded = frame_token(as_bytes(r.token), 1024);
    REQUIRE(padded);
    CHECK(padded->length == 120);
    CHECK(padded->certain);

    // Byte by byte: no prefix is ever certain; prefixes of a plausible length
    // are candidates (100, 120, 140, 164, 184 characters), the rest need more.
    for (std::size_t n = 0; n < t.size(); ++n) {
        auto p = frame_token(as_bytes(t.substr(0, n)), 1024, verify);
        INFO("prefix of " << n << " characters");
        REQUIRE(p);
        REQUIRE_FALSE(p->certain);
        REQUIRE(p->length == (plausible_token_length(n) ? n : 0));
    }

    // Coalesced: two tokens back to back split where the second starts.
    Sealed second = sealed(81, 'y');
    std::string two = t + second.token;
    auto a = frame_token(as_bytes(two), 1024, verify);
    REQUIRE(a);
    CHECK(a->length == 204);
    CHECK(a->certain);
    auto a_bare = frame_token(as_bytes(two), 1024);
    REQUIRE(a_bare);
    CHECK(a_bare->length == 204);
    CHECK_FALSE(a_bare->certain);
    // A token followed by a byte outside base64url is whole.
    auto nl = frame_token(as_bytes(t + "\n"), 1024);
    REQUIRE(nl);
    CHECK(nl->length == 204);
    CHECK(nl->certain);

    // Junk.
    auto bang = frame_token(as_bytes("!gAAAAA"), 1024);
    REQUIRE_FALSE(bang);
    CHECK(bang.error().code == ParseErrc::bad_value);
    auto cut = frame_token(as_bytes(t.substr(0, 203) + "."), 1024);
    REQUIRE_FALSE(cut);
    CHECK(cut.error().code == ParseErrc::bad_length);
    auto pad_wrong = frame_token(as_bytes(std::string(102, 'A') + "=="), 1024);
    REQUIRE_FALSE(pad_wrong);
    CHECK(pad_wrong.error().code == ParseErrc::bad_length);
    auto big = frame_token(as_bytes(std::string(1100, 'A')), 1024);
    REQUIRE_FALSE(big);
    CHECK(big.error().code == ParseErrc::length_over_limit);
    CHECK(frame_token({}, 1024)->length == 0);
}

TEST_CASE("SLMP auth tokens, key derivation and session ids", "[codec]") {
    CHECK(auth_token("amir", "my_secret") == "7123e531f4dc6fa4c91fb7d1278cf06c174786254b72c58d6934ed625cd5a0a3");
    CHECK(auth_token("user1", kDefaultSecret) == "2d75f6dd4c166e8a0c6843c306fd81724c23baeabb701970823108f669337fd8");
    CHECK(auth_token("amir", "other") != auth_token("amir", "my_secret"));
    fernet::Key k = derive_key(Bytes(32, 0x01));
    CHECK(hex(k.raw()) == "9a28ec78439739e46d7830d1f45b0e0ad3b78f4203c3da9cdeb47e99b314de88");
    CHECK(k.to_base64() == "mijseEOXOeRteDDR9FsOCtO3j0IDw9qc3rR-mbMU3og=");
    // Signing key first, encryption key second (Fernet's split).
    CHECK(hex(k.signing) == "9a28ec78439739e46d7830d1f45b0e0a");
    CHECK(hex(k.encryption) == "d3b78f4203c3da9cdeb47e99b314de88");
}

TEST_CASE("SLMP parse_request: exactly three fields of UTF-8", "[codec]") {
    auto ok = parse_request(as_bytes("7123e531;amir;Hello SLMP!"));
    REQUIRE(ok);
    CHECK(ok->token == "7123e531");
    CHECK(ok->user == "amir");
    CHECK(ok->message == "Hello SLMP!");
    CHECK(request_text(*ok) == "7123e531;amir;Hello SLMP!");
    auto empty = parse_request(as_bytes(";;"));
    REQUIRE(empty);
    CHECK(empty->token.empty());
    CHECK(empty->user.empty());
    CHECK(empty->message.empty());
    auto utf8 = parse_request(as_bytes("t;Zo\xc3\xab;h\xc3\xa9llo \xe2\x98\x83 \xf0\x9f\x98\x80"));
    REQUIRE(utf8);
    CHECK(utf8->user == "Zo\xc3\xab");
    CHECK(utf8->message == "h\xc3\xa9llo \xe2\x98\x83 \xf0\x9f\x98\x80");

    auto detail = [](std::string_view s) {
        auto r = parse_request(as_bytes(s));
        REQUIRE_FALSE(r);
        CHECK(r.error().code == ParseErrc::bad_value);
        return r.error().detail;
    };
    CHECK(detail("") == "the plaintext has 1 ';'-separated fields, not 3");
    CHECK(detail("t;amir") == "the plaintext has 2 ';'-separated fields, not 3");
    CHECK(detail("t;amir;a;b") == "the plaintext has 4 ';'-separated fields, not 3");
    CHECK(detail(";;;") == "the plaintext has 4 ';'-separated fields, not 3");
    for (std::string_view bad : {std::string_view("t;amir;\xff"), std::string_view("t;\xc0\xaf;m"),
                                 std::string_view("t;a;\xed\xa0\x80"), std::string_view("t;a;\xe2\x98"),
                                 std::string_view("t;a;\xf4\x90\x80\x80"), std::string_view("\x80;a;b")})
        CHECK(detail(bad) == "the plaintext is not UTF-8");

    CHECK(looks_like_request(as_bytes(auth_token("amir", "my_secret") + ";amir;hi")));
    CHECK_FALSE(looks_like_request(as_bytes("hello")));
    CHECK_FALSE(looks_like_request(as_bytes(std::string(64, 'A') + ";amir;hi")));  // upper-case hex
}

TEST_CASE("SLMP parse_key: P-256 in the original layout, and other keys", "[codec]") {
    DeterministicRng rng(3);
    auto pub = crypto::P256PrivateKey::generate(rng).public_key();
    auto mine = parse_key(as_bytes(pub.pem()));
    REQUIRE(mine);
    CHECK(mine->curve == "P-256");
    REQUIRE(mine->key);
    CHECK(mine->key->point() == pub.point());
    CHECK(mine->der.size() == kSpkiDerBytes);
    CHECK(hex(mine->der).substr(0, 52) == kSpkiPrefix);
    CHECK(mine->original_layout);

    // The same key on one base64 line: a valid key, not the original's layout.
    std::string b64 = crypto::base64_encode(pub.spki_der());
    auto one_line = parse_key(as_bytes("-----BEGIN PUBLIC KEY-----\n" + b64 + "\n-----END PUBLIC KEY-----\n"));
    REQUIRE(one_line);
    REQUIRE(one_line->key);
    CHECK(one_line->key->point() == pub.point());
    CHECK_FALSE(one_line->original_layout);

    auto compressed = parse_key(as_bytes(kCompressedP256Pem));
    REQUIRE(compressed);
    CHECK(compressed->der.size() == 59);
    CHECK(compressed->curve == "P-256");
    REQUIRE(compressed->key);
    // Read as the point it names: the same x, written uncompressed.
    Bytes point = compressed->key->point();
    REQUIRE(point.size() == 65);
    CHECK(point[0] == 0x04);
    CHECK(Bytes(point.begin() + 1, point.begin() + 33) == Bytes(compressed->der.end() - 32, compressed->der.end()));
    CHECK_FALSE(compressed->original_layout);

    auto p384 = parse_key(as_bytes(kP384Pem));
    REQUIRE(p384);
    CHECK_FALSE(p384->key);
    CHECK(p384->curve == "another EC curve");
    CHECK(p384->der.size() == 120);
    auto rsa = parse_key(as_bytes(kRsaPem));
    REQUIRE(rsa);
    CHECK_FALSE(rsa->key);
    CHECK(rsa->curve == "not an EC key");
    // A P-256 SPKI whose point is not on the curve.
    auto off_curve = parse_key(as_bytes(off_curve_pem()));
    CHECK(off_curve_pem().size() == 178);
    REQUIRE(off_curve);
    CHECK_FALSE(off_curve->key);
    CHECK(off_curve->curve == "P-256 (invalid point)");

    auto not_pem = parse_key(as_bytes("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"));
    REQUIRE_FALSE(not_pem);
    CHECK(not_pem.error().code == ParseErrc::bad_magic);
    auto no_end = parse_key(as_bytes(pub.pem().substr(0, 150)));
    REQUIRE_FALSE(no_end);
    CHECK(no_end.error().code == ParseErrc::truncated);
    auto bad_b64 = parse_key(as_bytes("-----BEGIN PUBLIC KEY-----\nMF*w\n-----END PUBLIC KEY-----\n"));
    REQUIRE_FALSE(bad_b64);
    CHECK(bad_b64.error().code == ParseErrc::bad_value);
}

TEST_CASE("SLMP codec on the original programs' capture: PEMs, tokens, session ids", "[codec][originals]") {
    auto path = original_slmp_capture();
    if (!path) MSGLAB_SKIP("captures/originals/slmp.pcap not found (set MSGLAB_CAPTURES_DIR)");
    auto msgs = original_messages(*path);
    REQUIRE(msgs.size() == 8);
    const std::vector<std::string> types = {"CLIENT_KEY", "SERVER_KEY", "REQUEST", "RESPONSE"};
    const std::vector<std::size_t> sizes = {178, 178, 204, 120, 178, 178, 204, 140};
    for (std::size_t i = 0; i < msgs.size(); ++i) {
        INFO("message " << i);
        CHECK(msgs[i].protocol == "slmp");
        CHECK(msgs[i].stream == i / 4);
        CHECK(msgs[i].decoded.type == types[i % 4]);
        CHECK(msgs[i].bytes.size() == sizes[i]);
        CHECK(msgs[i].decoded.anomalies.empty());
        CHECK((i % 4 == 0 || i % 4 == 2 ? msgs[i].from == Peer::client : msgs[i].from == Peer::server));
    }
    CHECK(msgs[0].dst.port == 9999);
    CHECK(msgs[0].src.port == 39804);
    CHECK(msgs[4].src.port == 39812);

    // The PEMs: 178 bytes in the original layout, P-256; one server key for both sessions.
    std::vector<PemKey> keys;
    for (std::size_t i : {0u, 1u, 4u, 5u}) {
        INFO("message " << i);
        auto k = parse_key(msgs[i].bytes);
        REQUIRE(k);
        CHECK(k->original_layout);
        CHECK(k->curve == "P-256");
        REQUIRE(k->key);
        CHECK(k->der.size() == 91);
        CHECK(hex(k->der).substr(0, 52) == kSpkiPrefix);
        CHECK(*frame_key(msgs[i].bytes, 1024) == 178);
        keys.push_back(std::move(*k));
    }
    CHECK(hex(keys[0].key->point()) ==
          "0437b3fecd2edf7bc88176b244e9817bb8b33eaca388ae8b34068dba9e7240e071ed1ed258c03ecbd5135953fccc8e2b0c08864fee6c"
          "2b701d25a7a0aef2a20f66");
    const std::string server_point =
        "046009f709edf64fcfdcd36fed23dddc9c81e4a488751a97a4538da9258d8976c43038ff17b26dd9d82e7f455da6795a92d2b4643070cc"
        "484006297fa50263d514";
    CHECK(hex(keys[1].key->point()) == server_point);
    CHECK(hex(keys[3].key->point()) == server_point);  // the original's static key
    CHECK(msgs[1].bytes == msgs[5].bytes);
    CHECK(keys[0].der != keys[2].der);
    // Our encoder writes a P-256 key exactly as the original did.
    CHECK(keys[1].key->pem() == text(msgs[1].bytes));

    CHECK(hex(session_id(keys[0].der, keys[1].der)) == "41d42fd09cf6e9a8");
    CHECK(hex(session_id(keys[2].der, keys[3].der)) == "2a3ba7176e316e0b");
    CHECK(msgs[2].decoded.session_id == "41d42fd09cf6e9a8");
    CHECK(msgs[6].decoded.session_id == "2a3ba7176e316e0b");

    // The tokens: whole-length, padded or not, all stamped 1795272078.
    for (std::size_t i : {2u, 3u, 6u, 7u}) {
        INFO("message " << i);
        std::string tok = text(msgs[i].bytes);
        CHECK(tok.substr(0, 6) == "gAAAAA");
        CHECK(plausible_token_length(tok.size()));
        auto f = frame_token(msgs[i].bytes, 1024);
        REQUIRE(f);
        CHECK(f->length == tok.size());
        auto parsed = fernet::parse(tok);
        REQUIRE(parsed);
        CHECK(parsed->timestamp == 1795272078u);
        CHECK(msgs[i].decoded.timestamp == 1795272078u);
    }
    CHECK(hex(fernet::parse(text(msgs[2].bytes))->iv) == "942e1d21dcfb9bed84247402b278a207");
    // Sizes follow from the plaintexts the README names.
    CHECK(msgs[2].bytes.size() == token_length((auth_token("amir", "my_secret") + ";amir;Hello SLMP!").size()));
    CHECK(msgs[3].bytes.size() == token_length(std::string("Message received: Hello SLMP!").size()));
    CHECK(msgs[6].bytes.size() == token_length((auth_token("user1", "my_secret") + ";user1;second message").size()));
    CHECK(msgs[7].bytes.size() == token_length(std::string("Message received: second message").size()));
}
