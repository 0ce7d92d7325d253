// Fernet: the spec's own vectors (../shared/vectors/fernet) and unit cases.

#include "support.hpp"

#include <charconv>
#include <map>

#include "core/crypto.hpp"
#include "core/fernet.hpp"

namespace {

using msglab::Bytes;
using nlohmann::json;

namespace fernet = msglab::fernet;
namespace crypto = msglab::crypto;

int parse_int(std::string_view s) {
    int v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) throw std::invalid_argument("bad number in time");
    return v;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// RFC 3339 date-time ("1985-10-26T01:20:00-07:00", "...Z", optional fraction, which is dropped) to unix seconds.
std::uint64_t rfc3339_to_unix(std::string_view s) {
    if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':')
        throw std::invalid_argument("not an RFC 3339 time: " + std::string(s));
    const int year = parse_int(s.substr(0, 4)), month = parse_int(s.substr(5, 2)), day = parse_int(s.substr(8, 2));
    const int hour = parse_int(s.substr(11, 2)), minute = parse_int(s.substr(14, 2)), sec = parse_int(s.substr(17, 2));
    if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || sec > 60)
        throw std::invalid_argument("field out of range: " + std::string(s));
    std::string_view rest = s.substr(19);
    if (!rest.empty() && rest[0] == '.') {
        std::size_t i = 1;
        while (i < rest.size() && rest[i] >= '0' && rest[i] <= '9') ++i;
        if (i == 1) throw std::invalid_argument("empty fraction: " + std::string(s));
        rest.remove_prefix(i);
    }
    std::int64_t offset = 0;
    if (rest == "Z" || rest == "z") {
        offset = 0;
    } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
        offset = (parse_int(rest.substr(1, 2)) * 60 + parse_int(rest.substr(4, 2))) * 60;
        if (rest[0] == '-') offset = -offset;
    } else {
        throw std::invalid_argument("bad UTC offset: " + std::string(s));
    }
    const std::int64_t local = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400 +
                               hour * 3600 + minute * 60 + sec;
    const std::int64_t utc = local - offset;
    if (utc < 0) throw std::invalid_argument("time before 1970: " + std::string(s));
    return static_cast<std::uint64_t>(utc);
}

std::optional<json> load_fernet(const std::string& file) {
    auto dir = msglab::test::vectors_dir();
    if (!dir) return std::nullopt;
    auto path = *dir / "fernet" / file;
    INFO("vector file " << path.string());
    REQUIRE(std::filesystem::is_regular_file(path));
    return msglab::test::load_json(path);
}

fernet::Key key_of(const json& c) {
    auto key = fernet::Key::from_base64(c.at("secret").get<std::string>());
    REQUIRE(key);
    return *key;
}

std::string decoded_errc(const msglab::Result<Bytes, fernet::Error>& r) {
    return r.ok() ? std::string("ok") : fernet::errc_name(r.error().code);
}

}  // namespace

TEST_CASE("fernet: RFC 3339 parser used by the spec vectors", "[fernet]") {
    CHECK(rfc3339_to_unix("1970-01-01T00:00:00Z") == 0);
    CHECK(rfc3339_to_unix("1985-10-26T01:20:00-07:00") == 499162800);
    CHECK(rfc3339_to_unix("1985-10-26T08:20:00Z") == 499162800);
    CHECK(rfc3339_to_unix("1985-10-26T10:20:00+02:00") == 499162800);
    CHECK(rfc3339_to_unix("2000-02-29T23:59:59.75Z") == 951868799);
    CHECK(rfc3339_to_unix("2024-03-01T00:00:00+00:00") == 1709251200);
    CHECK_THROWS_AS(rfc3339_to_unix("1985-10-26 01:20:00"), std::invalid_argument);
    CHECK_THROWS_AS(rfc3339_to_unix("1985-10-26T01:20:00+0700"), std::invalid_argument);
}

TEST_CASE("fernet spec: generate.json", "[fernet][vectors]") {
    auto doc = load_fernet("generate.json");
    if (!doc) MSGLAB_SKIP("vectors folder not found (set MSGLAB_VECTORS_DIR); fernet generate.json not run");
    REQUIRE(doc->size() == 1);
    for (const json& c : *doc) {
        const std::string token = c.at("token").get<std::string>();
        INFO("token " << token);
        Bytes iv;
        for (const json& b : c.at("iv")) iv.push_back(b.get<std::uint8_t>());
        REQUIRE(iv.size() == 16);
        const std::uint64_t now = rfc3339_to_unix(c.at("now").get<std::string>());
        CHECK(fernet::encrypt(key_of(c), msglab::as_bytes(c.at("src").get<std::string>()), now, iv) == token);
        auto parsed = fernet::parse(token);
        REQUIRE(parsed.ok());
        CHECK(parsed->timestamp == now);
    }
}

TEST_CASE("fernet spec: verify.json", "[fernet][vectors]") {
    auto doc = load_fernet("verify.json");
    if (!doc) MSGLAB_SKIP("vectors folder not found (set MSGLAB_VECTORS_DIR); fernet verify.json not run");
    REQUIRE(doc->size() == 1);
    for (const json& c : *doc) {
        INFO("token " << c.at("token").get<std::string>());
        fernet::VerifyOptions opt;
        opt.ttl = c.at("ttl_sec").get<std::uint64_t>();
        auto r = fernet::decrypt(key_of(c), c.at("token").get<std::string>(),
                                 rfc3339_to_unix(c.at("now").get<std::string>()), opt);
        INFO("result " << decoded_errc(r) << (r.ok() ? "" : ": " + r.error().detail));
        REQUIRE(r.ok());
        CHECK(msglab::to_string(*r) == c.at("src").get<std::string>());
    }
}

TEST_CASE("fernet spec: invalid.json", "[fernet][vectors]") {
    auto doc = load_fernet("invalid.json");
    if (!doc) MSGLAB_SKIP("vectors folder not found (set MSGLAB_VECTORS_DIR); fernet invalid.json not run");
    const std::map<std::string, fernet::Errc> expected = {
        {"incorrect mac", fernet::Errc::bad_mac},
        {"too short", fernet::Errc::too_short},
        {"invalid base64", fernet::Errc::bad_base64},
        {"payload size not multiple of block size", fernet::Errc::bad_padding},
        {"payload padding error", fernet::Errc::bad_padding},
        {"far-future TS (unacceptable clock skew)", fernet::Errc::from_future},
        {"expired TTL", fernet::Errc::expired},
        {"incorrect IV (causes padding error)", fernet::Errc::bad_padding},
    };
    REQUIRE(doc->size() == expected.size());
    std::size_t checked = 0;
    for (const json& c : *doc) {
        const std::string desc = c.at("desc").get<std::string>();
        INFO("case '" << desc << "'");
        auto it = expected.find(desc);
        REQUIRE(it != expected.end());
        fernet::VerifyOptions opt;
        opt.ttl = c.at("ttl_sec").get<std::uint64_t>();
        auto r = fernet::decrypt(key_of(c), c.at("token").get<std::string>(),
                                 rfc3339_to_unix(c.at("now").get<std::string>()), opt);
        INFO("detail: " << (r.ok() ? std::string("decrypted") : r.error().detail));
        CHECK(decoded_errc(r) == fernet::errc_name(it->second));
        ++checked;
    }
    CHECK(checked == expected.size());
}

TEST_CASE("fernet: round trip", "[fernet]") {
    msglab::DeterministicRng rng(7);
    msglab::ManualClock clock(1700000000);
    const fernet::Key key = fernet::Key::generate(rng);
    for (std::size_t len : {0, 1, 15, 16, 17, 31, 32, 100, 1000}) {
        INFO("plaintext length " << len);
        Bytes pt = rng.bytes(len);
        std::string token = fernet::encrypt(key, pt, clock, rng);
        auto parsed = fernet::parse(token);
        REQUIRE(parsed.ok());
        CHECK(parsed->version == fernet::kVersion);
        CHECK(parsed->timestamp == clock.unix_seconds());
        CHECK(parsed->ciphertext.size() == (len / 16 + 1) * 16);
        auto r = fernet::decrypt(key, token, clock.unix_seconds());
        INFO("result " << decoded_errc(r));
        REQUIRE(r.ok());
        CHECK(*r == pt);
    }

    // A different key fails on the MAC before touching the ciphertext.
    const fernet::Key other = fernet::Key::generate(rng);
    std::string token = fernet::encrypt(key, msglab::as_bytes("secret"), clock, rng);
    CHECK(decoded_errc(fernet::decrypt(other, token, clock.unix_seconds())) == "bad_mac");
}

TEST_CASE("fernet: bad_version", "[fernet]") {
    msglab::DeterministicRng rng(8);
    const fernet::Key key = fernet::Key::generate(rng);
    Bytes iv(16, 0x42);
    std::string token = fernet::encrypt(key, msglab::as_bytes("version check"), 1700000000, iv);
    auto raw = crypto::base64_decode(token, crypto::Base64Alphabet::url);
    REQUIRE(raw);
    REQUIRE((*raw)[0] == 0x80);
    for (std::uint8_t v : {0x00, 0x7f, 0x81, 0xff}) {
        INFO("version byte " << int(v));
        (*raw)[0] = v;
        std::string bad = crypto::base64_encode(*raw, crypto::Base64Alphabet::url);
        auto parsed = fernet::parse(bad);
        REQUIRE_FALSE(parsed.ok());
        CHECK(std::string(fernet::errc_name(parsed.error().code)) == "bad_version");
        CHECK(decoded_errc(fernet::decrypt(key, bad, 1700000000)) == "bad_version");
    }
}

TEST_CASE("fernet: TTL boundary", "[fernet]") {
    msglab::DeterministicRng rng(9);
    const fernet::Key key = fernet::Key::generate(rng);
    const std::uint64_t t0 = 1700000000, ttl = 60;
    std::string token = fernet::encrypt(key, msglab::as_bytes("ttl"), t0, rng.bytes(16));
    fernet::VerifyOptions opt;
    opt.ttl = ttl;
    CHECK(decoded_errc(fernet::decrypt(key, token, t0, opt)) == "ok");
    CHECK(decoded_errc(fernet::decrypt(key, token, t0 + ttl - 1, opt)) == "ok");
    // Exactly ttl seconds old is still valid; one second more is not.
    CHECK(decoded_errc(fernet::decrypt(key, token, t0 + ttl, opt)) == "ok");
    CHECK(decoded_errc(fernet::decrypt(key, token, t0 + ttl + 1, opt)) == "expired");
    // Without a TTL there is no age limit.
    CHECK(decoded_errc(fernet::decrypt(key, token, t0 + 100 * ttl)) == "ok");
    // The future side: up to the allowed skew is fine.
    CHECK(decoded_errc(fernet::decrypt(key, token, t0 - fernet::kDefaultMaxClockSkew, opt)) == "ok");
    CHECK(decoded_errc(fernet::decrypt(key, token, t0 - fernet::kDefaultMaxClockSkew - 1, opt)) == "from_future");
}

TEST_CASE("fernet: Key::from_base64 length", "[fernet]") {
    msglab::DeterministicRng rng(10);
    for (std::size_t len : {0, 16, 31, 33, 48, 64}) {
        INFO("raw key length " << len);
        Bytes raw = rng.bytes(len);
        CHECK_FALSE(fernet::Key::from_base64(crypto::base64_encode(raw, crypto::Base64Alphabet::url)));
        CHECK_FALSE(fernet::Key::from_bytes(raw));
    }
    Bytes raw = rng.bytes(32);
    std::string b64 = crypto::base64_encode(raw, crypto::Base64Alphabet::url);
    auto key = fernet::Key::from_base64(b64);
    REQUIRE(key);
    CHECK(key->raw() == raw);
    CHECK(key->to_base64() == b64);
    CHECK(Bytes(key->signing.begin(), key->signing.end()) == Bytes(raw.begin(), raw.begin() + 16));
    CHECK(Bytes(key->encryption.begin(), key->encryption.end()) == Bytes(raw.begin() + 16, raw.end()));
}
