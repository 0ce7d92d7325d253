#include "slmp/session.hpp"

#include <cstring>
#include <memory>
#include <stdexcept>

namespace msglab::slmp {

namespace {

std::string_view text(ByteView b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }
ByteView view(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

// Whether `token` is whole under `key`: its MAC and padding check out (its
// age is judged afterwards, with a reason of its own).
bool verifies(const fernet::Key& key, std::string_view token) {
    fernet::VerifyOptions o;
    o.check_future = false;
    return fernet::decrypt(key, token, 0, o).ok();
}

Reject reject_of(fernet::Errc e) {
    switch (e) {
        case fernet::Errc::bad_mac: return Reject::bad_mac;
        case fernet::Errc::expired: return Reject::expired;
        case fernet::Errc::from_future: return Reject::from_future;
        default: return Reject::bad_token;
    }
}

// Keys take at most this: the original's 1024 (a P-256 PEM is 178 bytes).
constexpr std::size_t kMaxKeyUnit = kOriginalUnitBytes;

}  // namespace

std::optional<fernet::Key> key_from_keylog(const KeyLog& log, ByteView session_id) {
    if (auto k = log.find(kKeyLogLabel, session_id); k && k->size() == 32) return fernet::Key::from_bytes(*k);
    return std::nullopt;
}

const char* state_name(State s) {
    switch (s) {
        case State::idle: return "idle";
        case State::awaiting_key: return "awaiting-key";
        case State::awaiting_request: return "awaiting-request";
        case State::awaiting_reply: return "awaiting-reply";
        case State::closed: return "closed";
    }
    return "?";
}

const char* reject_name(Reject r) {
    switch (r) {
        case Reject::bad_key: return "bad key";
        case Reject::not_p256: return "not a P-256 key";
        case Reject::bad_token: return "bad token";
        case Reject::bad_mac: return "token does not verify";
        case Reject::expired: return "token expired";
        case Reject::from_future: return "token from the future";
        case Reject::bad_request: return "bad request";
        case Reject::bad_auth: return "bad authentication token";
        case Reject::incomplete: return "incomplete unit";
        case Reject::unit_overflow: return "unit overflow";
    }
    return "?";
}

// ---------------------------------------------------------------- server

ServerSession::ServerSession(ServerConfig config, const Clock& clock, Rng& rng, const crypto::P256PrivateKey* static_key,
                             KeyLogWriter* keylog)
    : m_config(std::move(config)), m_clock(clock), m_rng(rng), m_static_key(static_key), m_keylog(keylog) {}

std::size_t ServerSession::max_token() const { return token_length(m_config.max_plaintext); }

void ServerSession::reject(Output& out, Reject reason, std::string detail) {
    m_state = State::closed;
    m_buffer.clear();
    out.close = true;
    // The original dies of any exception, taking every client with it.
    if (planted(plant::crash_on_bad_input)) out.fatal = true;
    out.events.push_back({Event::Kind::closed, {}, {}, 0, reason, std::move(detail)});
}

// slmp.unit-overflow: the unit is assembled in a fixed buffer of the
// original's recv size whose bound check is off by one, so any unit over
// 1024 bytes writes one byte past its end (only a sanitizer sees it), and
// what is left is cut at 1024 bytes and refused.
bool ServerSession::overflow(ByteView unit, Output& out) {
    if (!planted(plant::unit_overflow) || unit.size() <= kOriginalUnitBytes) return false;
    // Read at run time, as the original's size would be: the compiler must
    // not see (and warn about) the planted overflow.
    volatile std::size_t capacity = kOriginalUnitBytes;
    const std::size_t cap = capacity;
    std::unique_ptr<std::uint8_t[]> buf(new std::uint8_t[cap]);
    // The bug: `<=` where `<` was meant.
    for (std::size_t i = 0; i <= cap && i < unit.size(); ++i) buf[i] = unit[i];
    reject(out, Reject::unit_overflow,
           "a " + std::to_string(unit.size()) + "-byte unit did not fit the 1024-byte receive buffer");
    return true;
}

Output ServerSession::feed(ByteView data) {
    Output out;
    if (m_state == State::closed) return out;
    m_buffer.insert(m_buffer.end(), data.begin(), data.end());
    if (m_state == State::awaiting_key) {
        auto len = frame_key(m_buffer, planted(plant::unit_overflow) ? 2 * kMaxKeyUnit : kMaxKeyUnit);
        if (!len) {
            reject(out, Reject::bad_key, len.error().to_string());
            return out;
        }
        if (*len == 0) return out;
        Bytes unit(m_buffer.begin(), m_buffer.begin() + static_cast<std::ptrdiff_t>(*len));
        m_buffer.erase(m_buffer.begin(), m_buffer.begin() + static_cast<std::ptrdiff_t>(*len));
        if (overflow(unit, out)) return out;
        out.received.push_back(unit);
        handle_key(unit, out);
    }
    if (m_state == State::awaiting_request && !m_buffer.empty()) {
        if (!token_may_be_complete(m_buffer, m_scanned)) {
            if (m_buffer.size() > max_token())
                reject(out, Reject::bad_token, "token longer than " + std::to_string(max_token()) + " bytes");
            return out;
        }
        auto framed = frame_token(m_buffer, max_token(), [&](std::string_view t) { return verifies(*m_key, t); });
        if (!framed) {
            reject(out, Reject::bad_token, framed.error().to_string());
            return out;
        }
        // Whole and verified, or whole by its padding or what follows it.
        if (framed->length && framed->certain) {
            std::string token(text(m_buffer).substr(0, framed->length));
            out.received.push_back(to_bytes(token));
            if (overflow(view(token), out)) return out;
            handle_token(token, out);
        }
    }
    return out;
}

Output ServerSession::idle() {
    Output out;
    if (m_state != State::awaiting_request || m_buffer.empty()) return out;
    auto framed = frame_token(m_buffer, max_token());
    if (framed && framed->length == m_buffer.size()) {
        // A whole-length token that did not verify, and nothing more came.
        std::string token(text(m_buffer));
        out.received.push_back(to_bytes(token));
        if (overflow(view(token), out)) return out;
        handle_token(token, out);
    }
    return out;
}

Output ServerSession::end_of_input(const std::string& why) {
    Output out;
    if (m_state == State::closed) return out;
    if (!m_buffer.empty()) {
        Output judged = idle();
        if (m_state == State::closed) return judged;
        reject(out, Reject::incomplete, why + " inside a unit (" + std::to_string(m_buffer.size()) + " bytes)");
        return out;
    }
    m_state = State::closed;
    out.close = true;
    out.events.push_back({Event::Kind::closed, {}, {}, 0, std::nullopt, why});
    return out;
}

void ServerSession::handle_key(ByteView unit, Output& out) {
    auto parsed = parse_key(unit);
    if (!parsed) {
        reject(out, Reject::bad_key, parsed.error().to_string());
        return;
    }
    if (!parsed->key) {
        reject(out, Reject::not_p256, "the client's key is " + parsed->curve);
        return;
    }
    std::optional<crypto::P256PrivateKey> fresh;
    const crypto::P256PrivateKey* mine = m_static_key;
    if (!planted(plant::static_server_key) || !mine) {
        fresh.emplace(crypto::P256PrivateKey::generate(m_rng));
        mine = &*fresh;
    }
    auto z = mine->agree(*parsed->key);
    if (!z) {
        reject(out, Reject::not_p256, "ECDH with the client's key failed");
        return;
    }
    crypto::P256PublicKey pub = mine->public_key();
    m_key = derive_key(*z);
    m_session_id = slmp::session_id(parsed->der, pub.spki_der());
    if (m_keylog) m_keylog->write(kKeyLogLabel, m_session_id, m_key->raw());
    out.units.push_back(to_bytes(pub.pem()));
    out.events.push_back({Event::Kind::key_exchanged, {}, {}, 0, std::nullopt, hex(m_session_id)});
    m_state = State::awaiting_request;
}

void ServerSession::handle_token(std::string_view token, Output& out) {
    m_buffer.clear();
    fernet::VerifyOptions o;
    if (planted(plant::no_ttl)) {
        o.check_future = false;  // the original: Fernet.decrypt(token) without a TTL
    } else {
        o.ttl = m_config.ttl;
        o.max_clock_skew = m_config.max_clock_skew;
    }
    auto opened = fernet::decrypt(*m_key, token, m_clock.unix_seconds(), o);
    if (!opened) {
        reject(out, reject_of(opened.error().code), opened.error().detail);
        return;
    }
    auto req = parse_request(*opened);
    if (!req) {
        reject(out, Reject::bad_request, req.error().detail);
        return;
    }
    if (!crypto::constant_time_equal(to_bytes(req->token), to_bytes(auth_token(req->user, m_config.secret)))) {
        reject(out, Reject::bad_auth, "the token is not SHA-256(user || secret) for user '" + req->user + "'");
        return;
    }
    std::uint64_t ts = fernet::parse(token)->timestamp;
    out.events.push_back({Event::Kind::request, req->user, req->message, ts, std::nullopt, {}});
    out.units.push_back(to_bytes(fernet::encrypt(*m_key, to_bytes(kReplyPrefix + req->message), m_clock, m_rng)));
    out.close = true;
    m_state = State::closed;
}

// ---------------------------------------------------------------- client

ClientSession::ClientSession(ClientConfig config, const Clock& clock, Rng& rng, KeyLogWriter* keylog)
    : m_config(std::move(config)), m_clock(clock), m_rng(rng), m_keylog(keylog),
      m_private(crypto::P256PrivateKey::generate(rng)) {}

Bytes ClientSession::start() {
    auto pub = m_private.public_key();
    m_der = pub.spki_der();
    m_state = State::awaiting_key;
    return to_bytes(pub.pem());
}

void ClientSession::fail(Output& out, Reject reason, std::string detail) {
    m_state = State::closed;
    m_buffer.clear();
    out.close = true;
    out.events.push_back({Event::Kind::closed, {}, {}, 0, reason, std::move(detail)});
}

Output ClientSession::feed(ByteView data) {
    Output out;
    if (m_state == State::closed || m_state == State::idle) return out;
    m_buffer.insert(m_buffer.end(), data.begin(), data.end());
    if (m_state == State::awaiting_key) {
        auto len = frame_key(m_buffer, kMaxKeyUnit);
        if (!len) {
            fail(out, Reject::bad_key, len.error().to_string());
            return out;
        }
        if (*len == 0) return out;
        Bytes unit(m_buffer.begin(), m_buffer.begin() + static_cast<std::ptrdiff_t>(*len));
        m_buffer.erase(m_buffer.begin(), m_buffer.begin() + static_cast<std::ptrdiff_t>(*len));
        out.received.push_back(unit);
        auto parsed = parse_key(unit);
        if (!parsed || !parsed->key) {
            fail(out, parsed ? Reject::not_p256 : Reject::bad_key,
                 parsed ? "the server's key is " + parsed->curve : parsed.error().to_string());
            return out;
        }
        auto z = m_private.agree(*parsed->key);
        if (!z) {
            fail(out, Reject::not_p256, "ECDH with the server's key failed");
            return out;
        }
        m_key = derive_key(*z);
        m_session_id = slmp::session_id(m_der, parsed->der);
        if (m_keylog) m_keylog->write(kKeyLogLabel, m_session_id, m_key->raw());
        m_state = State::awaiting_reply;
        out.events.push_back({Event::Kind::key_exchanged, {}, {}, 0, std::nullopt, hex(m_session_id)});
    }
    if (m_state == State::awaiting_reply && !m_buffer.empty()) {
        if (!token_may_be_complete(m_buffer, m_scanned)) {
            if (m_buffer.size() > m_config.max_unit)
                fail(out, Reject::bad_token, "token longer than " + std::to_string(m_config.max_unit) + " bytes");
            return out;
        }
        auto framed = frame_token(m_buffer, m_config.max_unit, [&](std::string_view t) { return verifies(*m_key, t); });
        if (!framed) {
            fail(out, Reject::bad_token, framed.error().to_string());
            return out;
        }
        if (framed->length && framed->certain) {
            std::string token(text(m_buffer).substr(0, framed->length));
            m_buffer.erase(m_buffer.begin(), m_buffer.begin() + static_cast<std::ptrdiff_t>(framed->length));
            out.received.push_back(to_bytes(token));
            handle_token(token, out);
        }
    }
    return out;
}

Output ClientSession::idle() {
    Output out;
    if (m_state != State::awaiting_reply || m_buffer.empty()) return out;
    auto framed = frame_token(m_buffer, m_config.max_unit);
    if (framed && framed->length == m_buffer.size()) {
        std::string token(text(m_buffer));
        m_buffer.clear();
        out.received.push_back(to_bytes(token));
        handle_token(token, out);
    }
    return out;
}

void ClientSession::handle_token(std::string_view token, Output& out) {
    fernet::VerifyOptions o;
    o.check_future = false;  // the reply's age says nothing the client acts on
    auto opened = fernet::decrypt(*m_key, token, m_clock.unix_seconds(), o);
    if (!opened) {
        fail(out, reject_of(opened.error().code), opened.error().detail);
        return;
    }
    if (!valid_utf8(*opened)) {
        fail(out, Reject::bad_request, "the reply is not UTF-8");
        return;
    }
    out.events.push_back({Event::Kind::reply, {}, to_string(*opened), fernet::parse(token)->timestamp, std::nullopt, {}});
    // One request, one response: the client closes.
    m_state = State::closed;
    out.close = true;
}

Bytes ClientSession::seal(ByteView plaintext, std::optional<std::uint64_t> timestamp) {
    if (!m_key) throw std::logic_error("SLMP: no session key before the server's key arrives");
    Bytes iv(16);
    m_rng.fill(iv);
    return to_bytes(fernet::encrypt(*m_key, plaintext, timestamp.value_or(m_clock.unix_seconds()), iv));
}

Bytes ClientSession::request(std::string_view message, std::optional<std::uint64_t> timestamp) {
    Request r{auth_token(m_config.user, m_config.secret), m_config.user, std::string(message)};
    return seal(to_bytes(request_text(r)), timestamp);
}

}  // namespace msglab::slmp
