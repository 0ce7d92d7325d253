#include "slmp/codec.hpp"

#include <algorithm>

namespace msglab::slmp {

namespace {

bool b64url_char(std::uint8_t c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

std::string_view text(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

ParseError error(ParseErrc code, std::size_t offset, std::string detail) { return ParseError{code, offset, std::move(detail)}; }

// DER of the named curve P-256 (1.2.840.10045.3.1.7) and of id-ecPublicKey.
constexpr std::uint8_t kP256Oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
constexpr std::uint8_t kEcPublicKeyOid[] = {0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};

bool contains(ByteView hay, ByteView needle) {
    return std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

}  // namespace

std::size_t token_length(std::size_t plaintext_bytes) {
    std::size_t raw = 57 + 16 * (plaintext_bytes / 16 + 1);
    return (raw + 2) / 3 * 4;
}

std::size_t max_plaintext(std::size_t unit_bytes) {
    // k ciphertext blocks hold up to 16k - 1 plaintext bytes (PKCS#7 pads a whole block).
    std::size_t k = 0;
    while ((57 + 16 * (k + 1) + 2) / 3 * 4 <= unit_bytes) ++k;
    return k ? 16 * k - 1 : 0;
}

std::optional<UnitKind> unit_kind(ByteView unit) {
    if (unit.empty()) return std::nullopt;
    if (unit[0] == '-') return UnitKind::key;
    if (b64url_char(unit[0])) return UnitKind::token;
    return std::nullopt;
}

Result<std::size_t, ParseError> frame_key(ByteView buffer, std::size_t max_bytes) {
    static constexpr std::string_view begin = "-----BEGIN ", end = "-----END ";
    std::string_view s = text(buffer);
    std::size_t n = std::min(s.size(), begin.size());
    if (s.substr(0, n) != begin.substr(0, n))
        return unexpected(error(ParseErrc::bad_magic, 0, "a key unit starts with '-----BEGIN '"));
    std::size_t at = s.find(end, begin.size());
    if (at != std::string_view::npos) {
        std::size_t close = s.find("-----", at + end.size());
        if (close != std::string_view::npos) {
            std::size_t len = close + 5;
            if (len > max_bytes)
                return unexpected(error(ParseErrc::length_over_limit, max_bytes,
                                        "key unit longer than " + std::to_string(max_bytes) + " bytes"));
            if (len == s.size()) return std::size_t{0};  // the newline may follow
            if (s[len] == '\n') return len + 1;
            if (s[len] == '\r') {
                if (len + 1 == s.size()) return std::size_t{0};
                return s[len + 1] == '\n' ? len + 2 : len + 1;
            }
            return len;
        }
    }
    if (s.size() > max_bytes)
        return unexpected(error(ParseErrc::length_over_limit, max_bytes,
                                "no END line within " + std::to_string(max_bytes) + " bytes"));
    return std::size_t{0};
}

bool base64url_char(std::uint8_t c) { return b64url_char(c); }

bool token_may_be_complete(ByteView buffer, std::size_t& scanned) {
    bool ended = false;
    for (std::size_t i = std::min(scanned, buffer.size()); i < buffer.size() && !ended; ++i) ended = !b64url_char(buffer[i]);
    scanned = buffer.size();
    return ended || plausible_token_length(buffer.size());
}

bool plausible_token_length(std::size_t chars) {
    if (chars == 0 || chars % 4 != 0) return false;
    std::size_t hi = chars / 4 * 3;
    for (std::size_t n = hi - 2; n <= hi; ++n)
        if (n >= 73 && (n - 57) % 16 == 0) return true;
    return false;
}

Result<TokenFrame, ParseError> frame_token(ByteView buffer, std::size_t max_bytes,
                                           const std::function<bool(std::string_view)>& verifies) {
    if (buffer.empty()) return TokenFrame{};
    if (!b64url_char(buffer[0]))
        return unexpected(error(ParseErrc::bad_value, 0, "a token unit starts with a base64url character"));
    std::size_t run = 0, pad = 0;
    while (run < buffer.size() && b64url_char(buffer[run]) && run <= max_bytes) ++run;
    while (run + pad < buffer.size() && buffer[run + pad] == '=' && pad < 2) ++pad;
    std::size_t total = run + pad;
    bool followed = total < buffer.size();  // another byte after the run ends it
    std::string_view s = text(buffer);
    // Whole tokens inside the run: where another token starts right after.
    for (std::size_t len = 4; len < run && len <= max_bytes; len += 4) {
        if (!plausible_token_length(len) || s.substr(len, kTokenStart.size()) != kTokenStart) continue;
        if (verifies) {
            if (verifies(s.substr(0, len))) return TokenFrame{len, true};
        } else {
            return TokenFrame{len, false};
        }
    }
    if (total > max_bytes)
        return unexpected(error(ParseErrc::length_over_limit, max_bytes,
                                "token longer than " + std::to_string(max_bytes) + " bytes"));
    if (!plausible_token_length(total)) {
        if (followed || (pad > 0 && total % 4 == 0))
            return unexpected(error(ParseErrc::bad_length, 0,
                                    "a token of " + std::to_string(total) + " characters cannot be a Fernet token"));
        return TokenFrame{};
    }
    bool ok = verifies && verifies(s.substr(0, total));
    return TokenFrame{total, ok || followed || pad > 0};
}

Result<PemKey, ParseError> parse_key(ByteView unit) {
    std::string_view s = text(unit);
    static constexpr std::string_view begin = "-----BEGIN PUBLIC KEY-----", end = "-----END PUBLIC KEY-----";
    if (s.substr(0, begin.size()) != begin)
        return unexpected(error(ParseErrc::bad_magic, 0, "not a '-----BEGIN PUBLIC KEY-----' block"));
    std::size_t at = s.find(end);
    if (at == std::string_view::npos) return unexpected(error(ParseErrc::truncated, s.size(), "no END line"));
    std::string body;
    for (char c : s.substr(begin.size(), at - begin.size()))
        if (c != '\n' && c != '\r') body += c;
    auto der = crypto::base64_decode(body, crypto::Base64Alphabet::standard, crypto::Base64Padding::required);
    if (!der) return unexpected(error(ParseErrc::bad_value, begin.size(), "the PEM body is not base64"));
    PemKey k;
    k.der = std::move(*der);
    k.key = crypto::P256PublicKey::from_spki_der(k.der);
    if (k.key) {
        k.curve = "P-256";
        k.original_layout = s == k.key->pem();
    } else if (contains(k.der, kEcPublicKeyOid)) {
        k.curve = contains(k.der, kP256Oid) ? "P-256 (invalid point)" : "another EC curve";
    } else {
        k.curve = "not an EC key";
    }
    return k;
}

Bytes session_id(ByteView client_der, ByteView server_der) {
    Bytes both(client_der.begin(), client_der.end());
    both.insert(both.end(), server_der.begin(), server_der.end());
    auto d = crypto::sha256(both);
    return Bytes(d.begin(), d.begin() + 8);
}

fernet::Key derive_key(ByteView shared_x) {
    Bytes k = crypto::hkdf_sha256(shared_x, {}, to_bytes(kHkdfInfo), 32);
    return *fernet::Key::from_bytes(k);
}

std::string auth_token(std::string_view user, std::string_view secret) {
    Bytes in = to_bytes(user);
    in.insert(in.end(), secret.begin(), secret.end());
    auto d = crypto::sha256(in);
    return hex(d);
}

bool valid_utf8(ByteView b) {
    std::size_t i = 0;
    while (i < b.size()) {
        std::uint8_t c = b[i];
        std::size_t n;
        std::uint32_t cp;
        if (c < 0x80) { ++i; continue; }
        if ((c & 0xe0) == 0xc0) n = 1, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0) n = 2, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0) n = 3, cp = c & 0x07;
        else return false;
        if (i + n >= b.size()) return false;
        for (std::size_t k = 1; k <= n; ++k) {
            if (i + k >= b.size() || (b[i + k] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (b[i + k] & 0x3f);
        }
        // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;
        if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return false;
        i += n + 1;
    }
    return true;
}

Result<Request, ParseError> parse_request(ByteView plaintext) {
    if (!valid_utf8(plaintext)) return unexpected(error(ParseErrc::bad_value, 0, "the plaintext is not UTF-8"));
    std::string_view s = text(plaintext);
    std::size_t a = s.find(';');
    std::size_t b = a == std::string_view::npos ? a : s.find(';', a + 1);
    if (a == std::string_view::npos || b == std::string_view::npos || s.find(';', b + 1) != std::string_view::npos) {
        std::size_t fields = static_cast<std::size_t>(std::count(s.begin(), s.end(), ';')) + 1;
        return unexpected(error(ParseErrc::bad_value, 0,
                                "the plaintext has " + std::to_string(fields) + " ';'-separated fields, not 3"));
    }
    return Request{std::string(s.substr(0, a)), std::string(s.substr(a + 1, b - a - 1)), std::string(s.substr(b + 1))};
}

std::string request_text(const Request& r) { return r.token + ";" + r.user + ";" + r.message; }

bool looks_like_request(ByteView plaintext) {
    if (plaintext.size() < 65 || plaintext[64] != ';') return false;
    for (std::size_t i = 0; i < 64; ++i) {
        std::uint8_t c = plaintext[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

}  // namespace msglab::slmp
