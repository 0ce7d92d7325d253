#include "socp/stream.hpp"

#include <algorithm>
#include <deque>
#include <exception>
#include <map>
#include <unordered_set>

#include "core/crypto.hpp"
#include "csmp/wire.hpp"
#include "socp/wire.hpp"

namespace msglab::socp {

namespace {

using csmp::HttpKind;
using csmp::HttpMessage;

std::string_view text(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

int side_index(Peer p) { return p == Peer::client ? 0 : 1; }

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}


// Bounds on what one stream may make the codec remember.
constexpr std::size_t kMaxSeenIds = 64 * 1024;  // message ids per direction
constexpr std::size_t kMaxKeys = 1024;           // public keys the stream carried
constexpr std::size_t kMaxPrivateKeys = 64;      // key log keys parsed
constexpr std::size_t kMaxPayloadFields = 32;    // payload keys shown
// A value longer than this is shown as its first kShownPrefix bytes.
constexpr std::size_t kMaxShown = 64;
constexpr std::size_t kShownPrefix = 32;

std::string shorten(const std::string& s) {
    if (s.size() <= kMaxShown) return s;
    std::size_t n = kShownPrefix;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;  // not inside a UTF-8 sequence
    return s.substr(0, n) + "... (" + std::to_string(s.size()) + " bytes)";
}

std::string shown(const Json& v) {
    if (v.is_string()) return shorten(v.get<std::string>());
    return shorten(v.dump(-1, ' ', false, Json::error_handler_t::replace));
}

void add_field(DecodedMessage& d, std::string name, std::string value) {
    d.fields.push_back({std::move(name), std::move(value)});
}

bool hello_type(std::string_view t) {
    return t == "USER_HELLO" || t == "SERVER_HELLO_JOIN" || t == "SERVER_HELLO_LINK" || t == "SERVER_ANNOUNCE";
}

// ---- JSON members with their positions, for locate() ----------------------------

using Member = csmp::JsonMemberSpan;
using csmp::last_json_member;

// ---- The codec ---------------------------------------------------------------------

struct KnownKey {
    crypto::RsaPublicKey key;
    Bytes der;  // SubjectPublicKeyInfo, to compare keys whatever their encoding
};

// A key a message carries: where it is, whose it is (when the message says).
struct CarriedKey {
    std::string name;   // "pubkey", "meta.pubkey", ...
    std::string owner;  // empty when the message does not say whose
    std::string text;
};

class Codec final : public StreamCodec {
public:
    explicit Codec(const KeyLog* keys) : m_keylog(keys) { m_side[1].role = Role::server; }

    Result<std::size_t, ParseError> frame(Peer from, ByteView buffered) override {
        HttpMessage head;
        auto r = m_stream.frame(from, buffered, {}, &head);
        if (r && *r > 0 && from == Peer::server && head.status == 101) negotiate(head);
        return r;
    }

    DecodedMessage decode(Peer from, ByteView message) override {
        try {
            return decode_message(from, message);
        } catch (const std::exception& e) {
            DecodedMessage d;
            d.type = "MALFORMED";
            d.anomalies.push_back(std::string("decoder error: ") + e.what());
            return d;
        }
    }

    std::optional<FieldSpan> locate(ByteView m, std::string_view field) const override {
        static constexpr std::string_view prefix = "socp.", payload_prefix = "socp.payload.";
        if (field.substr(0, prefix.size()) != prefix) return std::nullopt;
        auto f = csmp::parse_ws_frame(m);
        if (!f || f->masked || f->rsv1 || !f->fin || f->opcode != csmp::ws_opcode::text) return std::nullopt;
        std::string_view s = text(f->payload);
        auto top = csmp::json_object_members(s);
        if (!top) return std::nullopt;
        std::size_t base = f->header_length;
        const Member* member = nullptr;
        std::optional<std::vector<Member>> inner;  // the payload's members, when the field is one
        if (field.substr(0, payload_prefix.size()) == payload_prefix) {
            const Member* payload = last_json_member(*top, "payload");
            if (!payload || payload->value.is_string) return std::nullopt;
            inner = csmp::json_object_members(s.substr(payload->value.offset, payload->value.length));
            if (!inner) return std::nullopt;
            member = last_json_member(*inner, field.substr(payload_prefix.size()));
            if (member) base += payload->value.offset;
        } else {
            std::string_view key = field.substr(prefix.size());
            if (key != "type" && key != "from" && key != "to" && key != "ts" && key != "sig") return std::nullopt;
            member = last_json_member(*top, key);
        }
        if (!member) return std::nullopt;
        return FieldSpan{base + member->value.offset, member->value.length};
    }

private:
    enum class Role { unknown, user, server };

    struct Side {
        csmp::WsAssembler assembler;
        std::optional<csmp::Inflater> inflater;
        Role role = Role::unknown;
        std::string identity;  // the "from" of this side's hello
        std::unordered_set<std::string> seen;
        std::deque<std::string> seen_order;
    };

    static HttpKind kind_of(Peer from) { return from == Peer::client ? HttpKind::request : HttpKind::response; }

    // What a framed HTTP head changes for the stream; framing the same bytes
    // again changes nothing more.
    void learn(Peer from, const HttpMessage& head) {
        m_stream.learn(from, head);
        if (from == Peer::server && head.status == 101) negotiate(head);
    }

    void negotiate(const HttpMessage& head) {
        if (m_negotiated) return;
        m_negotiated = true;
        std::string value;
        for (const auto& h : head.headers) {
            if (!iequals(h.name, "sec-websocket-extensions")) continue;
            if (!value.empty()) value += ", ";
            value += h.value;
        }
        if (value.empty()) return;
        auto agreed = csmp::agreed_deflate(value);
        if (!agreed) {
            m_negotiation_problem = "Sec-WebSocket-Extensions not understood: " + agreed.error().detail +
                                    " (compressed messages cannot be read)";
            return;
        }
        m_deflate = *agreed;
    }

    DecodedMessage decode_message(Peer from, ByteView message) {
        const auto unit = m_stream.unit(from, message);
        if (unit == csmp::HttpWsStream::Unit::body) {
            DecodedMessage d;
            d.type = "HTTP_BODY";
            d.plaintext = Bytes(message.begin(), message.end());
            return d;
        }
        if (unit == csmp::HttpWsStream::Unit::ws) return decode_ws(from, message);
        DecodedMessage d = decode_http(from, message);
        if (d.type == "MALFORMED" && m_stream.websocket(from) && csmp::parse_ws_frame(message))
            return decode_ws(from, message);
        return d;
    }

    // ---- The handshake ----

    DecodedMessage decode_http(Peer from, ByteView message) {
        DecodedMessage d;
        auto parsed = csmp::parse_http(message, kind_of(from));
        if (!parsed) {
            d.type = "MALFORMED";
            d.anomalies.push_back("not an HTTP " + std::string(from == Peer::client ? "request" : "response") + ": " +
                                  parsed.error().to_string());
            return d;
        }
        const HttpMessage& m = *parsed;
        learn(from, m);
        if (!m.body.empty()) d.plaintext = m.body;
        if (from == Peer::client) {
            d.type = "HTTP_REQUEST";
            add_field(d, "socp.method", m.method);
            add_field(d, "socp.path", m.path);
            if (!m.websocket_upgrade()) return d;
            add_field(d, "socp.upgrade", "websocket");
            if (auto key = m.header_value("sec-websocket-key")) {
                m_ws_key = *key;
                if (!csmp::valid_websocket_key(*key))
                    d.anomalies.push_back("Sec-WebSocket-Key is not the base64 of 16 bytes");
            } else {
                d.anomalies.push_back("a WebSocket upgrade without Sec-WebSocket-Key");
            }
            return d;
        }
        d.type = "HTTP_RESPONSE";
        add_field(d, "socp.status", std::to_string(m.status));
        if (m.framing == csmp::BodyFraming::until_close)
            d.anomalies.push_back("a response without Content-Length or chunked coding: its body runs to the close");
        if (m.status != 101) return d;
        add_field(d, "socp.upgrade", "websocket");
        if (m_deflate) add_field(d, "socp.extensions", csmp::deflate_element(*m_deflate));
        if (!m_negotiation_problem.empty()) d.anomalies.push_back(m_negotiation_problem);
        auto accept = m.header_value("sec-websocket-accept");
        if (!accept)
            d.anomalies.push_back("101 without Sec-WebSocket-Accept");
        else if (!m_ws_key.empty() && *accept != csmp::websocket_accept(m_ws_key))
            d.anomalies.push_back("Sec-WebSocket-Accept does not match the request's key");
        return d;
    }

    // ---- WebSocket frames ----

    DecodedMessage decode_ws(Peer from, ByteView message) {
        DecodedMessage d;
        Side& side = m_side[side_index(from)];
        auto f = csmp::parse_ws_frame(message);
        if (!f) {
            d.type = "MALFORMED";
            d.anomalies.push_back("not a WebSocket frame: " + f.error().to_string());
            return d;
        }
        if (from == Peer::client && !f->masked) d.anomalies.push_back("an unmasked client frame (RFC 6455 5.1)");
        if (from == Peer::server && f->masked) d.anomalies.push_back("a masked server frame (RFC 6455 5.1)");
        side.assembler.allow_compressed(m_deflate.has_value());
        auto r = side.assembler.add(*f);
        if (!r) {
            d.type = "MALFORMED";
            d.anomalies.push_back(r.error().detail);
            return d;
        }
        if (!*r) {
            d.type = "WS_FRAGMENT";
            add_field(d, "socp.opcode", csmp::ws_opcode_name(f->opcode));
            add_field(d, "socp.fragment", std::to_string(side.assembler.fragments()));
            return d;
        }
        csmp::WsMessage& msg = **r;
        switch (msg.opcode) {
            case csmp::ws_opcode::close: {
                d.type = "WS_CLOSE";
                auto c = csmp::parse_ws_close(msg.payload);
                if (!c) {
                    d.anomalies.push_back("a bad close payload: " + c.error().detail);
                } else {
                    if (c->code) add_field(d, "socp.close_code", std::to_string(*c->code));
                    if (!c->reason.empty()) add_field(d, "socp.close_reason", c->reason);
                }
                if (!msg.payload.empty()) d.plaintext = msg.payload;
                return d;
            }
            case csmp::ws_opcode::ping:
            case csmp::ws_opcode::pong:
                d.type = msg.opcode == csmp::ws_opcode::ping ? "WS_PING" : "WS_PONG";
                if (!msg.payload.empty()) d.plaintext = msg.payload;
                return d;
            default:
                break;
        }
        Bytes payload;
        const std::size_t sent_size = msg.payload.size();
        if (msg.compressed) {
            if (!side.inflater) {
                bool nct = from == Peer::client ? m_deflate->client_no_context_takeover
                                                : m_deflate->server_no_context_takeover;
                side.inflater.emplace(nct, csmp::kMaxInflated);
            }
            auto inflated = side.inflater->inflate(msg.payload);
            if (!inflated) {
                d.type = "MALFORMED";
                d.anomalies.push_back("the compressed message does not inflate: " + inflated.error().detail);
                add_field(d, "socp.compressed", std::to_string(sent_size) + " bytes");
                return d;
            }
            payload = std::move(*inflated);
        } else {
            payload = std::move(msg.payload);
        }
        if (msg.opcode == csmp::ws_opcode::binary) {
            d.type = "WS_BINARY";
            d.anomalies.push_back("a binary message (SOCP sends each envelope as a text message)");
        } else {
            auto e = parse_envelope(text(payload));
            if (!e) {
                d.type = "MALFORMED";
                d.anomalies.push_back("not a SOCP envelope: " + e.error());
            } else {
                read_envelope(from, *e, d);
            }
        }
        if (msg.frames > 1) add_field(d, "socp.fragments", std::to_string(msg.frames));
        if (msg.compressed)
            add_field(d, "socp.compressed",
                      std::to_string(sent_size) + " bytes, " + std::to_string(payload.size()) + " inflated");
        d.plaintext = std::move(payload);
        return d;
    }

    // ---- Envelopes ----

    void read_envelope(Peer from, const Envelope& e, DecodedMessage& d) {
        Side& side = m_side[side_index(from)];
        d.type = e.type;
        add_field(d, "socp.type", e.type);
        add_field(d, "socp.from", e.from);
        add_field(d, "socp.to", e.to);
        add_field(d, "socp.ts", std::to_string(e.ts));
        if (e.ts >= 0) d.timestamp = static_cast<std::uint64_t>(e.ts / 1000);
        std::size_t shown_keys = 0;
        for (auto it = e.payload.begin(); it != e.payload.end(); ++it) {
            if (shown_keys++ == kMaxPayloadFields) {
                add_field(d, "socp.payload", std::to_string(e.payload.size()) + " keys, " +
                                                 std::to_string(kMaxPayloadFields) + " shown");
                break;
            }
            add_field(d, "socp.payload." + shorten(it.key()), shown(it.value()));
        }
        if (e.sig) add_field(d, "socp.sig", shorten(*e.sig));
        const bool signed_frame = e.sig && !e.sig->empty();
        d.authenticated = signed_frame;

        if (!known_type(e.type)) d.anomalies.push_back("unknown type \"" + shorten(e.type) + "\"");

        // Who this side is: its first hello says.
        if (side.identity.empty() && (hello_type(e.type) || e.type == "SERVER_WELCOME")) {
            side.identity = e.from;
            if (from == Peer::client) side.role = e.type == "USER_HELLO" ? Role::user : Role::server;
        }
        if (from == Peer::client && side.role == Role::user && user_type(e.type) && e.from != side.identity)
            d.anomalies.push_back("\"from\" is " + shorten(e.from) + " but this connection said USER_HELLO as " +
                                  shorten(side.identity));
        if (side.role == Role::server && server_signed_type(e.type) && !signed_frame)
            d.anomalies.push_back("a " + e.type + " from a server without a sig (server frames must be signed)");

        std::string id = message_id(e);
        if (side.seen.count(id)) {
            d.anomalies.push_back("the same message id (ts, from, to, payload) as an earlier message in this "
                                  "direction: a replay or a loop");
        } else {
            if (side.seen_order.size() >= kMaxSeenIds) {
                side.seen.erase(side.seen_order.front());
                side.seen_order.pop_front();
            }
            side.seen.insert(id);
            side.seen_order.push_back(std::move(id));
        }

        // The keys it carries: sizes checked; a hello's own key is known
        // before its sig is checked, any other only after.
        std::vector<std::pair<CarriedKey, std::optional<DecodedKey>>> keys;
        std::string bits;
        for (auto& k : carried_keys(e)) {
            auto decoded = decode_key(k.text);
            if (!decoded) {
                d.anomalies.push_back(k.name + " is not an RSA public key");
            } else {
                std::size_t b = decoded->key.bits();
                bits += (bits.empty() ? "" : ", ") + std::to_string(b) + " (" + k.name + ")";
                if (b < kRequiredBits)
                    d.anomalies.push_back("weak key: RSA-" + std::to_string(b) + " key in " + k.name +
                                          " (SOCP requires " + std::to_string(kRequiredBits) + " bits)");
            }
            keys.emplace_back(std::move(k), std::move(decoded));
        }
        if (!bits.empty()) add_field(d, "socp.key_bits", bits);
        const bool hello = hello_type(e.type);
        if (hello) remember_keys(keys, d);
        if (signed_frame) add_field(d, "socp.sig_check", check_sig(e, side));
        if (auto c = check_content_sig(e)) add_field(d, "socp.content_sig_check", *c);
        if (!hello) remember_keys(keys, d);

        decrypt(e, d);
    }

    std::vector<CarriedKey> carried_keys(const Envelope& e) const {
        std::vector<CarriedKey> out;
        const Json& p = e.payload;
        auto add = [&](const Json& object, const char* key, std::string name, std::string owner) {
            if (auto v = string_field(object, key)) out.push_back({std::move(name), std::move(owner), std::move(*v)});
        };
        add(p, "pubkey", "pubkey", hello_type(e.type) ? e.from : std::string());
        add(p, "enc_pubkey", "enc_pubkey", std::string());
        add(p, "sender_pub", "sender_pub", string_field(p, "sender").value_or(e.from));
        add(p, "creator_pub", "creator_pub", std::string());
        if (auto meta = p.find("meta"); meta != p.end() && meta->is_object())
            add(*meta, "pubkey", "meta.pubkey",
                e.type == "USER_ADVERTISE" ? string_field(p, "user_id").value_or(std::string()) : std::string());
        return out;
    }

    void remember_keys(const std::vector<std::pair<CarriedKey, std::optional<DecodedKey>>>& keys, DecodedMessage& d) {
        for (const auto& [k, decoded] : keys) {
            // An id over the envelope's own bound names nobody worth remembering.
            if (!decoded || k.owner.empty() || k.owner.size() > Limits{}.max_id_bytes) continue;
            Bytes der = decoded->key.spki_der();
            auto it = m_keys.find(k.owner);
            if (it != m_keys.end()) {
                if (it->second.der != der)
                    d.anomalies.push_back(k.name + " for " + shorten(k.owner) +
                                          " is not the key this stream carried for it before");
                continue;
            }
            if (m_keys.size() >= kMaxKeys) continue;
            m_keys.emplace(k.owner, KnownKey{decoded->key, std::move(der)});
        }
    }

    const crypto::RsaPublicKey* known_key(const std::string& id) const {
        auto it = m_keys.find(id);
        return it == m_keys.end() ? nullptr : &it->second.key;
    }

    // The transport sig: with the key of "from", then with the key of the
    // side that sent it. A user's frame a server relays may carry that
    // server's sig: without the server's key, it cannot be called bad.
    std::string check_sig(const Envelope& e, const Side& side) const {
        bool tried = false;
        if (const auto* k = known_key(e.from)) {
            tried = true;
            if (auto c = verify_payload(*k, e.payload, *e.sig)) return std::string("verified (") + canon_name(*c) + ")";
        }
        const crypto::RsaPublicKey* peer = side.identity.empty() ? nullptr : known_key(side.identity);
        if (peer && side.identity != e.from) {
            tried = true;
            if (auto c = verify_payload(*peer, e.payload, *e.sig))
                return std::string("verified (") + canon_name(*c) + ") by " + side.identity + ", the sending peer";
        }
        if (side.role == Role::server && user_type(e.type) && !peer) return "no key";
        return tried ? "bad" : "no key";
    }

    // content_sig over the end-to-end fields (section 12), with the sender's
    // key from earlier in the stream, else the key the frame carries.
    std::optional<std::string> check_content_sig(const Envelope& e) const {
        const Json& p = e.payload;
        auto sig = string_field(p, "content_sig");
        if (!sig) return std::nullopt;
        std::string content, sender, key_text;
        if (e.type == "PUBLIC_CHANNEL_KEY_SHARE") {
            auto shares = p.find("shares");
            auto creator = string_field(p, "creator_pub");
            if (shares == p.end() || !creator) return std::nullopt;
            content = keyshare_content(*shares, *creator);
            key_text = *creator;
        } else {
            auto ct = string_field(p, "ciphertext");
            if (!ct) return std::nullopt;
            if (e.type == "MSG_DIRECT") {
                sender = e.from;
                content = dm_content(*ct, e.from, e.to, e.ts);
            } else if (e.type == "USER_DELIVER" || e.type == "SERVER_DELIVER") {
                auto s = string_field(p, "sender");
                if (!s) return std::nullopt;
                sender = *s;
                auto user = string_field(p, "user_id");
                if (!user && e.type == "USER_DELIVER") user = e.to;
                if (!user) return std::nullopt;
                content = dm_content(*ct, sender, *user, e.ts);
            } else if (e.type == "MSG_PUBLIC_CHANNEL") {
                sender = string_field(p, "sender").value_or(e.from);
                content = public_content(*ct, sender, e.ts);
            } else {
                return std::nullopt;
            }
            key_text = string_field(p, "sender_pub").value_or(std::string());
        }
        if (const auto* k = sender.empty() ? nullptr : known_key(sender))
            return verify_content(*k, content, *sig) ? "verified" : "bad";
        if (key_text.empty()) return std::string("no key");
        auto carried = decode_key(key_text);
        if (!carried) return std::string("no key");
        return verify_content(carried->key, content, *sig) ? "verified with the key it carries" : "bad";
    }

    // ---- The key log ----

    const crypto::RsaPrivateKey* private_key(const std::string& user) {
        if (!m_keylog) return nullptr;
        auto it = m_private.find(user);
        if (it == m_private.end()) {
            if (m_private.size() >= kMaxPrivateKeys) return nullptr;
            std::shared_ptr<const crypto::RsaPrivateKey> key;
            if (auto der = m_keylog->find(kKeyLogLabel, as_bytes(user)))
                if (auto k = crypto::RsaPrivateKey::from_pkcs8_der(*der))
                    key = std::make_shared<const crypto::RsaPrivateKey>(std::move(*k));
            it = m_private.emplace(user, std::move(key)).first;
        }
        return it->second.get();
    }

    void decrypt(const Envelope& e, DecodedMessage& d) {
        if (!m_keylog) return;
        std::optional<std::string> user;
        if (e.type == "MSG_DIRECT" || e.type == "FILE_CHUNK")
            user = e.to;
        else if (e.type == "USER_DELIVER")
            user = string_field(e.payload, "user_id").value_or(e.to);
        else if (e.type == "SERVER_DELIVER")
            user = string_field(e.payload, "user_id");
        if (!user || user->size() > Limits{}.max_id_bytes) return;
        auto ct = string_field(e.payload, "ciphertext");
        if (!ct) return;
        const crypto::RsaPrivateKey* key = private_key(*user);
        if (!key) return;
        auto plain = decrypt_with(*key, *ct, SystemRng::instance());
        if (!plain) {
            d.anomalies.push_back("the ciphertext does not open with the key log's key for " + shorten(*user));
            return;
        }
        add_field(d, "socp.plaintext", csmp::valid_utf8(*plain) ? to_string(*plain) : "hex:" + hex(*plain));
    }

    const KeyLog* m_keylog;
    Side m_side[2];
    csmp::HttpWsStream m_stream;
    bool m_negotiated = false;
    std::optional<csmp::DeflateParams> m_deflate;
    std::string m_negotiation_problem;
    std::string m_ws_key;
    std::map<std::string, KnownKey> m_keys;  // id -> the first key the stream carried for it
    std::map<std::string, std::shared_ptr<const crypto::RsaPrivateKey>> m_private;  // user -> key log key (or none)
};

}  // namespace

std::unique_ptr<StreamCodec> make_stream_codec(const KeyLog* keys) { return std::make_unique<Codec>(keys); }

bool detect(ByteView b) {
    if (!csmp::looks_like_http_request(b)) return false;
    std::string_view s = text(b.first(std::min(b.size(), csmp::kMaxHttpHead)));
    if (s.substr(0, 4) != "GET ") return false;
    std::size_t end = s.find_first_of(" \r\n", 4);
    if (end == std::string_view::npos) return false;
    std::string_view target = s.substr(4, end - 4);
    if (target.substr(0, target.find('?')) != "/") return false;
    // An Upgrade field naming websocket among the lines that have arrived.
    std::size_t pos = s.find("\r\n");
    while (pos != std::string_view::npos) {
        pos += 2;
        std::size_t next = s.find("\r\n", pos);
        if (next == std::string_view::npos) break;  // a line still arriving
        std::string_view line = s.substr(pos, next - pos);
        if (line.empty()) break;
        std::size_t colon = line.find(':');
        if (colon != std::string_view::npos && iequals(line.substr(0, colon), "upgrade")) {
            std::string value;
            for (char c : line.substr(colon + 1)) value += ascii_lower(c);
            if (value.find("websocket") != std::string::npos) return true;
        }
        pos = next;
    }
    return false;
}

}  // namespace msglab::socp
