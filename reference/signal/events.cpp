#include "signal/events.hpp"

#include <algorithm>

#include "core/crypto.hpp"

namespace msglab::signal {

bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        std::size_t len;
        std::uint32_t cp;
        if (c < 0x80) {
            ++i;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4, cp = c & 0x07;
        } else {
            return false;
        }
        if (s.size() - i < len) return false;
        for (std::size_t k = 1; k < len; ++k) {
            auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += len;
    }
    return true;
}

namespace {

// One reader per event: the first failure is kept with its event and field.
class Fields {
public:
    Fields(const Json& j, const char* event) : m_j(j), m_event(event) {
        if (!j.is_object()) m_error = std::string(event) + ": the argument is not a JSON object";
    }
    bool ok() const { return m_error.empty(); }
    const std::string& error() const { return m_error; }

    void fail(const std::string& field, const std::string& why) {
        if (m_error.empty()) m_error = std::string(m_event) + ": " + field + ": " + why;
    }

    const std::string* text(const Json& obj, const char* key, const std::string& field) {
        if (!ok()) return nullptr;
        auto it = obj.find(key);
        if (it == obj.end()) {
            fail(field, "missing");
            return nullptr;
        }
        if (!it->is_string()) {
            fail(field, "not a string");
            return nullptr;
        }
        return it->get_ptr<const std::string*>();
    }

    std::string username(const char* key) {
        const std::string* s = text(m_j, key, key);
        if (!s) return {};
        if (s->size() > kMaxUsernameBytes) {
            fail(key, "longer than " + std::to_string(kMaxUsernameBytes) + " bytes");
            return {};
        }
        if (!valid_utf8(*s)) {
            fail(key, "not valid UTF-8");
            return {};
        }
        return *s;
    }

    // Standard base64 with padding, canonical, of at most `max` raw bytes.
    Bytes binary(const Json& obj, const char* key, const std::string& field, std::size_t max) {
        const std::string* s = text(obj, key, field);
        if (!s) return {};
        if (s->size() > (max + 2) / 3 * 4) {
            fail(field, "longer than base64 of " + std::to_string(max) + " bytes");
            return {};
        }
        auto raw = crypto::base64_decode(*s, crypto::Base64Alphabet::standard, crypto::Base64Padding::required);
        if (!raw || crypto::base64_encode(*raw) != *s) {
            fail(field, "not canonical standard base64 with padding");
            return {};
        }
        if (raw->size() > max) {
            fail(field, "more than " + std::to_string(max) + " bytes");
            return {};
        }
        return std::move(*raw);
    }

    template <std::size_t N>
    std::array<std::uint8_t, N> fixed(const char* key) {
        std::array<std::uint8_t, N> out{};
        Bytes raw = binary(m_j, key, key, N);
        if (!ok()) return out;
        if (raw.size() != N) {
            fail(key, "must be base64 of " + std::to_string(N) + " bytes, not " + std::to_string(raw.size()));
            return out;
        }
        std::copy(raw.begin(), raw.end(), out.begin());
        return out;
    }

private:
    const Json& m_j;
    const char* m_event;
    std::string m_error;
};

}  // namespace

Result<RegisterUser, std::string> parse_register_user(const Json& j) {
    Fields f(j, "register_user");
    RegisterUser e;
    e.username = f.username("username");
    e.keys.ik = f.fixed<32>("ik");
    e.keys.sik = f.fixed<32>("sik");
    e.keys.spk = f.fixed<32>("spk");
    e.keys.spk_sig = f.fixed<64>("spk_sig");
    if (!f.ok()) return unexpected(f.error());
    return e;
}

Json register_user_json(const RegisterUser& e) {
    Json j = Json::object();
    j["username"] = e.username;
    j["ik"] = crypto::base64_encode(e.keys.ik);
    j["sik"] = crypto::base64_encode(e.keys.sik);
    j["spk"] = crypto::base64_encode(e.keys.spk);
    j["spk_sig"] = crypto::base64_encode(e.keys.spk_sig);
    return j;
}

Result<Bundle, std::string> parse_bundle(const Json& j) {
    Fields f(j, "bundle");
    Bundle b;
    b.ik = f.fixed<32>("ik");
    b.sik = f.fixed<32>("sik");
    b.spk = f.fixed<32>("spk");
    b.spk_sig = f.fixed<64>("spk_sign");
    if (!f.ok()) return unexpected(f.error());
    return b;
}

Json bundle_json(const Bundle& b) {
    Json j = Json::object();
    j["ik"] = crypto::base64_encode(b.ik);
    j["sik"] = crypto::base64_encode(b.sik);
    j["spk"] = crypto::base64_encode(b.spk);
    j["spk_sign"] = crypto::base64_encode(b.spk_sig);
    return j;
}

Result<X3dhMessage, std::string> parse_x3dh_message(const Json& j) {
    Fields f(j, "x3dh_message");
    X3dhMessage e;
    e.username = f.username("username");
    e.from = f.username("from");
    e.ik = f.fixed<32>("ik");
    e.epk = f.fixed<32>("epk");
    e.cipher = f.binary(j, "cipher", "cipher", kMaxCipherBytes);
    e.hmac = f.fixed<32>("hmac");
    if (!f.ok()) return unexpected(f.error());
    return e;
}

Json x3dh_message_json(const X3dhMessage& e) {
    Json j = Json::object();
    j["username"] = e.username;
    j["from"] = e.from;
    j["ik"] = crypto::base64_encode(e.ik);
    j["epk"] = crypto::base64_encode(e.epk);
    j["cipher"] = crypto::base64_encode(e.cipher);
    j["hmac"] = crypto::base64_encode(e.hmac);
    return j;
}

Result<RatchetMsg, std::string> parse_ratchet_msg(const Json& j) {
    Fields f(j, "ratchet_msg");
    RatchetMsg e;
    e.username = f.username("username");
    e.message.cipher = f.binary(j, "cipher", "cipher", kMaxCipherBytes);
    if (f.ok()) {
        auto h = j.find("header");
        if (h == j.end())
            f.fail("header", "missing");
        else if (!h->is_object())
            f.fail("header", "not a JSON object");
        else {
            Bytes dh = f.binary(*h, "dh", "header.dh", 32);
            if (f.ok() && dh.size() != 32)
                f.fail("header.dh", "must be base64 of 32 bytes, not " + std::to_string(dh.size()));
            Bytes pn = f.binary(*h, "pn", "header.pn", kMaxCounterBytes);
            if (f.ok() && !decode_counter(pn)) f.fail("header.pn", "not a counter below 2^63 in at most 64 bytes");
            Bytes n = f.binary(*h, "n", "header.n", kMaxCounterBytes);
            if (f.ok() && !decode_counter(n)) f.fail("header.n", "not a counter below 2^63 in at most 64 bytes");
            if (f.ok()) {
                Key32 k{};
                std::copy(dh.begin(), dh.end(), k.begin());
                e.message.header = *Header::from_wire(k, pn, n);
            }
        }
    }
    Mac mac = f.fixed<32>("hmac");
    e.message.hmac.assign(mac.begin(), mac.end());
    e.from = f.username("from");
    if (!f.ok()) return unexpected(f.error());
    return e;
}

Json ratchet_msg_json(const RatchetMsg& e) {
    Json header = Json::object();
    header["dh"] = crypto::base64_encode(e.message.header.dh);
    header["pn"] = crypto::base64_encode(e.message.header.pn_bytes);
    header["n"] = crypto::base64_encode(e.message.header.n_bytes);
    Json j = Json::object();
    j["username"] = e.username;
    j["cipher"] = crypto::base64_encode(e.message.cipher);
    j["header"] = std::move(header);
    j["hmac"] = crypto::base64_encode(e.message.hmac);
    j["from"] = e.from;
    return j;
}

RegisterUser register_user(std::string username, const Identity& id) { return {std::move(username), id.bundle()}; }

X3dhMessage x3dh_message(std::string to, std::string from, const Key32& ik, const X3dhInitiation& init) {
    return {std::move(to), std::move(from), ik, init.ek.public_key, init.cipher, init.mac};
}

RatchetMsg ratchet_msg(std::string to, std::string from, const RatchetMessage& message) {
    return {std::move(to), message, std::move(from)};
}

}  // namespace msglab::signal
