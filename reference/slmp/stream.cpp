#include "slmp/stream.hpp"

#include <cstdlib>

#include "slmp/codec.hpp"
#include "slmp/session.hpp"

namespace msglab::slmp {

namespace {

std::string_view text(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

std::string env_or(const char* name, const char* fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}

class Codec final : public StreamCodec {
public:
    explicit Codec(const KeyLog* keys) : m_keylog(keys) {}

    Result<std::size_t, ParseError> frame(Peer, ByteView buffered) override {
        auto kind = unit_kind(buffered);
        if (!kind) {
            if (buffered.empty()) return std::size_t{0};
            return unexpected(ParseError{ParseErrc::bad_value, 0, "neither a PEM key nor a Fernet token"});
        }
        if (*kind == UnitKind::key) return frame_key(buffered, kDecodeMaxUnit);
        const fernet::Key* k = key();
        std::function<bool(std::string_view)> verify;
        if (k)
            verify = [k](std::string_view t) {
                fernet::VerifyOptions o;
                o.check_future = false;
                return fernet::decrypt(*k, t, 0, o).ok();
            };
        auto f = frame_token(buffered, kDecodeMaxUnit, verify);
        if (!f) return unexpected(f.error());
        return f->length;
    }

    DecodedMessage decode(Peer from, ByteView message) override {
        DecodedMessage d;
        auto kind = unit_kind(message);
        if (kind == UnitKind::key) {
            d.type = from == Peer::client ? "CLIENT_KEY" : "SERVER_KEY";
            auto k = parse_key(message);
            if (!k) {
                d.type = "MALFORMED";
                d.anomalies.push_back(k.error().to_string());
                return d;
            }
            d.fields.push_back({"slmp.key.curve", k->curve});
            if (k->key) d.fields.push_back({"slmp.key.point", short_hex(k->key->point(), 12)});
            d.fields.push_back({"slmp.key.length", std::to_string(message.size())});
            if (!k->key) d.anomalies.push_back("not a valid P-256 key: " + k->curve);
            else if (!k->original_layout) d.anomalies.push_back("PEM not in the original's 178-byte layout");
            Bytes& mine = from == Peer::client ? m_client_der : m_server_der;
            if (mine != k->der) {
                if (from == Peer::client) m_server_der.clear();  // a new exchange
                mine = k->der;
                m_key.reset();
                m_looked_up = false;
            }
            if (!m_client_der.empty() && !m_server_der.empty()) d.session_id = hex(session_id(m_client_der, m_server_der));
            return d;
        }
        d.type = from == Peer::client ? "REQUEST" : "RESPONSE";
        if (!m_client_der.empty() && !m_server_der.empty()) d.session_id = hex(session_id(m_client_der, m_server_der));
        auto t = fernet::parse(text(message));
        if (!t) {
            d.type = "MALFORMED";
            d.anomalies.push_back(std::string("not a Fernet token: ") + fernet::errc_name(t.error().code));
            return d;
        }
        d.authenticated = true;
        d.timestamp = t->timestamp;
        d.fields.push_back({"slmp.fernet.version", "0x" + hex(ByteView(&t->version, 1))});
        d.fields.push_back({"slmp.fernet.timestamp", utc_text(t->timestamp)});
        d.fields.push_back({"slmp.fernet.iv", hex(t->iv)});
        d.fields.push_back({"slmp.fernet.ciphertext", std::to_string(t->ciphertext.size()) + " bytes"});
        d.fields.push_back({"slmp.fernet.hmac", short_hex(t->hmac, 8)});
        if (message.size() > kOriginalUnitBytes) d.anomalies.push_back("token over the original's 1024-byte read");
        if (const fernet::Key* k = key()) {
            fernet::VerifyOptions o;
            o.check_future = false;
            auto opened = fernet::decrypt(*k, text(message), 0, o);
            if (!opened) {
                d.anomalies.push_back(opened.error().code == fernet::Errc::bad_mac
                                          ? "HMAC mismatch"
                                          : std::string("token does not open: ") + fernet::errc_name(opened.error().code));
                return d;
            }
            d.plaintext = *opened;
            if (from == Peer::client) {
                auto req = parse_request(*opened);
                if (!req) {
                    d.anomalies.push_back(req.error().detail);
                } else {
                    d.fields.push_back({"slmp.user", req->user});
                    d.fields.push_back({"slmp.message", req->message});
                    if (req->token == auth_token(req->user, kDefaultSecret))
                        d.fields.push_back({"slmp.token", "SHA-256(user || \"my_secret\"): the original's default secret"});
                }
            }
        }
        return d;
    }

    std::optional<FieldSpan> locate(ByteView m, std::string_view field) const override {
        auto kind = unit_kind(m);
        if (!kind) return std::nullopt;
        if (field == "slmp.pem" && *kind == UnitKind::key) return FieldSpan{0, m.size()};
        if (field == "slmp.token" && *kind == UnitKind::token) return FieldSpan{0, m.size()};
        return std::nullopt;
    }

private:
    const fernet::Key* key() {
        if (!m_looked_up && m_keylog && !m_client_der.empty() && !m_server_der.empty()) {
            m_looked_up = true;
            m_key = key_from_keylog(*m_keylog, session_id(m_client_der, m_server_der));
        }
        return m_key ? &*m_key : nullptr;
    }

    const KeyLog* m_keylog;
    Bytes m_client_der, m_server_der;
    std::optional<fernet::Key> m_key;
    bool m_looked_up = false;
};

class Client final : public LiveClient {
public:
    Client(const Clock& clock, Rng& rng)
        : m_session(ClientConfig{env_or("MSGLAB_SLMP_USER", kDefaultUser), env_or("MSGLAB_SLMP_SECRET", kDefaultSecret),
                                 kDecodeMaxUnit},
                    clock, rng) {}

    std::vector<Bytes> start() override { return {m_session.start()}; }

    Fed feed(ByteView data) override {
        Fed fed;
        Output out = m_session.feed(data);
        fed.messages = std::move(out.received);
        for (const auto& e : out.events) {
            if (e.kind == Event::Kind::key_exchanged) fed.established = true;
            if (e.kind == Event::Kind::closed && e.reason) fed.closed = std::string(reject_name(*e.reason)) + ": " + e.detail;
        }
        return fed;
    }

    bool established() const override { return m_session.established(); }

    // A plaintext that is already a whole request ("token;user;message", as
    // a capture decodes) goes as it is; any other is the message of a
    // request from this client's user.
    Bytes seal(ByteView plaintext, std::optional<std::uint64_t> timestamp) override {
        if (looks_like_request(plaintext)) return m_session.seal(plaintext, timestamp);
        return m_session.request(text(plaintext), timestamp);
    }

    std::optional<KeyLogEntry> keylog_entry() const override {
        if (!m_session.key()) return std::nullopt;
        return KeyLogEntry{kKeyLogLabel, m_session.session_id(), m_session.key()->raw()};
    }

private:
    ClientSession m_session;
};

}  // namespace

std::unique_ptr<StreamCodec> make_stream_codec(const KeyLog* keys) { return std::make_unique<Codec>(keys); }
std::unique_ptr<LiveClient> make_live_client(const Clock& clock, Rng& rng) {
    return std::make_unique<Client>(clock, rng);
}

bool detect(ByteView b) {
    std::size_t n = std::min(b.size(), kPemBegin.size());
    if (n < 5) return false;
    return text(b).substr(0, n) == kPemBegin.substr(0, n);
}

}  // namespace msglab::slmp
