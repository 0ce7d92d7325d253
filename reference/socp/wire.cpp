#include "socp/wire.hpp"

#include <algorithm>
#include <array>

namespace msglab::socp {

namespace {

constexpr std::array<std::string_view, 21> kTypes = {
    "SERVER_HELLO_JOIN", "SERVER_WELCOME", "SERVER_ANNOUNCE", "SERVER_HELLO_LINK", "USER_ADVERTISE", "USER_REMOVE",
    "SERVER_DELIVER", "HEARTBEAT", "USER_HELLO", "MSG_DIRECT", "USER_DELIVER", "PUBLIC_CHANNEL_ADD",
    "PUBLIC_CHANNEL_UPDATED", "PUBLIC_CHANNEL_KEY_SHARE", "MSG_PUBLIC_CHANNEL", "FILE_START", "FILE_CHUNK",
    "FILE_END", "ACK", "ERROR", "CTRL_CLOSE"};

std::string_view view(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }
ByteView bytes_of(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

std::size_t depth_of(const Json& j, std::size_t limit, std::size_t at = 1) {
    if (at > limit) return at;
    std::size_t deepest = at;
    if (j.is_object() || j.is_array())
        for (const auto& v : j) {
            deepest = std::max(deepest, depth_of(v, limit, at + 1));
            if (deepest > limit) break;
        }
    return deepest;
}

// nlohmann::json keeps object keys in a std::map: sorted by their UTF-8
// bytes, which is Python's sort by code point.
// Invalid UTF-8 (only a payload built locally can hold it: parsed input is
// checked) is written as U+FFFD rather than thrown.
constexpr auto kReplace = nlohmann::json::error_handler_t::replace;
nlohmann::json sorted(const Json& j) { return nlohmann::json::parse(j.dump(-1, ' ', false, kReplace)); }

bool plausible_base64(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
               c == '+' || c == '/' || c == '=';
    });
}

}  // namespace

bool known_type(std::string_view type) {
    return std::find(kTypes.begin(), kTypes.end(), type) != kTypes.end();
}

bool server_signed_type(std::string_view t) {
    return t == "USER_ADVERTISE" || t == "USER_REMOVE" || t == "SERVER_DELIVER" || t == "HEARTBEAT" ||
           t == "PUBLIC_CHANNEL_ADD" || t == "PUBLIC_CHANNEL_UPDATED" || t == "PUBLIC_CHANNEL_KEY_SHARE" ||
           t == "USER_DELIVER";
}

bool user_type(std::string_view t) {
    return t == "USER_HELLO" || t == "MSG_DIRECT" || t == "MSG_PUBLIC_CHANNEL" || t == "FILE_START" ||
           t == "FILE_CHUNK" || t == "FILE_END" || t == "CTRL_CLOSE";
}

Result<Envelope, std::string> parse_envelope(std::string_view text, const Limits& limits) {
    if (text.size() > limits.max_message)
        return unexpected(std::string("message of ") + std::to_string(text.size()) + " bytes is over the bound of " +
                          std::to_string(limits.max_message));
    // nlohmann reads a NUL as the end of its input: refuse it here.
    if (text.find('\0') != std::string_view::npos) return unexpected(std::string("NUL byte in the message"));
    Json j = Json::parse(text, nullptr, false);
    if (j.is_discarded()) return unexpected(std::string("not JSON"));
    if (!j.is_object()) return unexpected(std::string("not a JSON object"));
    Envelope e;
    auto str = [&](const char* key, std::string& out) -> std::optional<std::string> {
        auto it = j.find(key);
        if (it == j.end()) return std::string("no \"") + key + "\"";
        if (!it->is_string()) return std::string("\"") + key + "\" is not a string";
        out = it->get<std::string>();
        if (out.empty()) return std::string("\"") + key + "\" is empty";
        if (out.size() > limits.max_id_bytes) return std::string("\"") + key + "\" is over the bound";
        return std::nullopt;
    };
    if (auto err = str("type", e.type)) return unexpected(*err);
    if (auto err = str("from", e.from)) return unexpected(*err);
    if (auto err = str("to", e.to)) return unexpected(*err);
    auto ts = j.find("ts");
    if (ts == j.end()) return unexpected(std::string("no \"ts\""));
    if (ts->is_number_unsigned()) {
        auto v = ts->get<std::uint64_t>();
        if (v > static_cast<std::uint64_t>(INT64_MAX)) return unexpected(std::string("\"ts\" is out of range"));
        e.ts = static_cast<std::int64_t>(v);
    } else if (ts->is_number_integer()) {
        e.ts = ts->get<std::int64_t>();
    } else {
        return unexpected(std::string("\"ts\" is not an integer"));
    }
    auto payload = j.find("payload");
    if (payload == j.end()) return unexpected(std::string("no \"payload\""));
    if (!payload->is_object()) return unexpected(std::string("\"payload\" is not an object"));
    if (depth_of(*payload, limits.max_depth) > limits.max_depth)
        return unexpected(std::string("\"payload\" is nested too deeply"));
    e.payload = std::move(*payload);
    auto sig = j.find("sig");
    if (sig != j.end() && !sig->is_null()) {
        if (!sig->is_string()) return unexpected(std::string("\"sig\" is not a string"));
        e.sig = sig->get<std::string>();
    }
    return e;
}

std::string encode(const Envelope& e) {
    nlohmann::json j = nlohmann::json::object();
    j["type"] = e.type;
    j["from"] = e.from;
    j["to"] = e.to;
    j["ts"] = e.ts;
    j["payload"] = sorted(e.payload);
    if (e.sig) j["sig"] = *e.sig;
    return j.dump(-1, ' ', true, kReplace);
}

std::string b64url(ByteView data) { return crypto::base64_encode(data, crypto::Base64Alphabet::url, false); }

std::optional<Bytes> b64url_decode(std::string_view text) {
    if (auto b = crypto::base64_decode(text, crypto::Base64Alphabet::url, crypto::Base64Padding::optional)) return b;
    return crypto::base64_decode(text, crypto::Base64Alphabet::standard, crypto::Base64Padding::optional);
}

std::string encode_key(const crypto::RsaPublicKey& key, KeyEncoding encoding) {
    if (encoding == KeyEncoding::pem) return b64url(bytes_of(key.pem()));
    return b64url(key.spki_der());
}

std::optional<DecodedKey> decode_key(std::string_view text, const Limits& limits) {
    if (text.empty() || text.size() > limits.max_key_text) return std::nullopt;
    if (text.substr(0, 5) == "-----") {
        if (auto k = crypto::RsaPublicKey::from_pem(text)) return DecodedKey{std::move(*k), KeyEncoding::pem};
        return std::nullopt;
    }
    if (!plausible_base64(text)) return std::nullopt;
    auto raw = b64url_decode(text);
    if (!raw || raw->empty()) return std::nullopt;
    if ((*raw)[0] == '-') {
        if (auto k = crypto::RsaPublicKey::from_pem(view(*raw))) return DecodedKey{std::move(*k), KeyEncoding::pem};
        return std::nullopt;
    }
    if (auto k = crypto::RsaPublicKey::from_spki_der(*raw)) return DecodedKey{std::move(*k), KeyEncoding::der};
    if (auto k = crypto::RsaPublicKey::from_pkcs1_der(*raw)) return DecodedKey{std::move(*k), KeyEncoding::der};
    return std::nullopt;
}

const char* canon_name(Canon c) {
    switch (c) {
        case Canon::sorted_ascii: return "sorted keys, ASCII-escaped";
        case Canon::sorted_utf8: return "sorted keys, raw UTF-8";
        case Canon::received_order: return "received key order";
    }
    return "?";
}

std::string canonical(const Json& payload, Canon c) {
    switch (c) {
        case Canon::sorted_ascii: return sorted(payload).dump(-1, ' ', true, kReplace);
        case Canon::sorted_utf8: return sorted(payload).dump(-1, ' ', false, kReplace);
        case Canon::received_order: return payload.dump(-1, ' ', false, kReplace);
    }
    return {};
}

std::string sign_payload(const crypto::RsaPrivateKey& key, const Json& payload, Rng& rng) {
    return b64url(key.pss_sign(bytes_of(canonical(payload, Canon::sorted_ascii)), rng));
}

std::optional<Canon> verify_payload(const crypto::RsaPublicKey& key, const Json& payload, std::string_view sig) {
    auto raw = b64url_decode(sig);
    if (!raw || raw->empty()) return std::nullopt;
    std::string previous;
    for (Canon c : {Canon::sorted_ascii, Canon::sorted_utf8, Canon::received_order}) {
        std::string text = canonical(payload, c);
        if (text == previous) continue;  // the same bytes: no second RSA operation
        if (key.pss_verify(bytes_of(text), *raw)) return c;
        previous = std::move(text);
    }
    return std::nullopt;
}

std::string dm_content(std::string_view ciphertext, std::string_view from, std::string_view to, std::int64_t ts) {
    return std::string(ciphertext) + std::string(from) + std::string(to) + std::to_string(ts);
}

std::string public_content(std::string_view ciphertext, std::string_view from, std::int64_t ts) {
    return std::string(ciphertext) + std::string(from) + std::to_string(ts);
}

std::string keyshare_content(const Json& shares, std::string_view creator_pub) {
    return canonical(shares, Canon::sorted_ascii) + std::string(creator_pub);
}

std::string sign_content(const crypto::RsaPrivateKey& key, std::string_view content, Rng& rng) {
    return b64url(key.pss_sign(bytes_of(content), rng));
}

bool verify_content(const crypto::RsaPublicKey& key, std::string_view content, std::string_view sig) {
    auto raw = b64url_decode(sig);
    return raw && !raw->empty() && key.pss_verify(bytes_of(content), *raw);
}

std::size_t oaep_capacity(const crypto::RsaPublicKey& key) {
    std::size_t k = (key.bits() + 7) / 8;
    return k > 66 ? k - 66 : 0;
}

std::optional<std::string> encrypt_for(const crypto::RsaPublicKey& key, ByteView plaintext, Rng& rng) {
    if (plaintext.size() > oaep_capacity(key)) return std::nullopt;
    return b64url(key.oaep_encrypt(plaintext, rng));
}

std::optional<Bytes> decrypt_with(const crypto::RsaPrivateKey& key, std::string_view ciphertext, Rng& rng) {
    auto raw = b64url_decode(ciphertext);
    if (!raw) return std::nullopt;
    return key.oaep_decrypt(*raw, rng);
}

std::vector<std::string> split_utf8(std::string_view text, std::size_t max_bytes) {
    std::vector<std::string> out;
    if (max_bytes < 4) max_bytes = 4;
    while (!text.empty()) {
        std::size_t n = std::min(max_bytes, text.size());
        if (n < text.size())
            while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
        if (n == 0) n = std::min(max_bytes, text.size());
        out.emplace_back(text.substr(0, n));
        text.remove_prefix(n);
    }
    return out;
}

std::string group_encrypt(ByteView key32, std::string_view plaintext, Rng& rng) {
    Bytes nonce = rng.bytes(12);
    Bytes sealed = crypto::aes_gcm_encrypt(key32, nonce, {}, bytes_of(plaintext));
    nonce.insert(nonce.end(), sealed.begin(), sealed.end());
    return b64url(nonce);
}

std::optional<std::string> group_decrypt(ByteView key32, std::string_view ciphertext) {
    auto raw = b64url_decode(ciphertext);
    if (!raw || raw->size() < 12 + 16 || key32.size() != 32) return std::nullopt;
    ByteView all(*raw);
    auto plain = crypto::aes_gcm_decrypt(key32, all.subspan(0, 12), {}, all.subspan(12));
    if (!plain) return std::nullopt;
    return std::string(view(*plain));
}

std::string message_id(const Envelope& e) {
    auto digest = crypto::sha256(bytes_of(canonical(e.payload, Canon::sorted_ascii)));
    return std::to_string(e.ts) + '\n' + e.from + '\n' + e.to + '\n' + b64url(digest);
}

bool SeenCache::insert(const std::string& id, std::int64_t now_ms) {
    while (!m_order.empty() && (m_order.front().first + m_ttl <= now_ms || m_order.size() >= m_capacity)) {
        auto it = m_ids.find(m_order.front().second);
        if (it != m_ids.end() && it->second == m_order.front().first) m_ids.erase(it);
        m_order.pop_front();
    }
    if (m_ids.count(id)) return false;
    if (m_capacity == 0) return true;  // remembers nothing
    m_ids.emplace(id, now_ms);
    m_order.emplace_back(now_ms, id);
    return true;
}

std::optional<std::string> string_field(const Json& object, const char* key) {
    if (!object.is_object()) return std::nullopt;
    auto it = object.find(key);
    if (it == object.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
}

std::optional<std::int64_t> int_field(const Json& object, const char* key) {
    if (!object.is_object()) return std::nullopt;
    auto it = object.find(key);
    if (it == object.end()) return std::nullopt;
    if (it->is_number_unsigned()) {
        auto v = it->get<std::uint64_t>();
        if (v > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
        return static_cast<std::int64_t>(v);
    }
    if (it->is_number_integer()) return it->get<std::int64_t>();
    return std::nullopt;
}

}  // namespace msglab::socp
