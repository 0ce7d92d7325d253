#include "secmsg/session.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace msglab::secmsg {

const char* state_name(State s) {
    switch (s) {
        case State::idle: return "idle";
        case State::awaiting_request: return "awaiting_request";
        case State::awaiting_response: return "awaiting_response";
        case State::established: return "established";
        case State::closed: return "closed";
    }
    return "unknown";
}

const char* reject_name(Reject r) {
    switch (r) {
        case Reject::malformed: return "malformed";
        case Reject::unexpected_message: return "unexpected_message";
        case Reject::weak_dh: return "weak_dh";
        case Reject::bad_hmac: return "bad_hmac";
        case Reject::hash_mismatch: return "hash_mismatch";
        case Reject::stale: return "stale";
        case Reject::duplicate: return "duplicate";
        case Reject::reflected: return "reflected";
        case Reject::late_handshake: return "late_handshake";
    }
    return "unknown";
}

std::optional<Keys> keys_from_keylog(const KeyLog& log, ByteView session_id) {
    if (auto master = log.find(kKeyLogLabel, session_id); master && master->size() == 32)
        return Keys::from_master(*master);
    if (auto z = log.find(kKeyLogLabelShared, session_id); z && z->size() == crypto::dh14::kValueBytes)
        return Keys::from_shared_secret(*z);
    return std::nullopt;
}

std::uint64_t ReplayCache::key(const crypto::Digest& d) {
    std::uint64_t k = 0;
    for (int i = 0; i < 8; ++i) k = k << 8 | d[i];
    return k;
}

bool ReplayCache::contains(const crypto::Digest& mac, std::uint64_t ts) const {
    auto it = m_buckets.find(ts);
    return it != m_buckets.end() && it->second.count(key(mac)) != 0;
}

bool ReplayCache::insert(const crypto::Digest& mac, std::uint64_t ts, std::uint64_t now, std::uint64_t window) {
    // Seconds outside the window can go: their packets fail the time check.
    while (!m_buckets.empty() && m_buckets.begin()->first + window < now) {
        m_size -= m_buckets.begin()->second.size();
        m_buckets.erase(m_buckets.begin());
    }
    while (m_size >= m_max && !m_buckets.empty() && m_buckets.begin()->first < ts) {
        m_floor = m_have_floor ? std::max(m_floor, m_buckets.begin()->first) : m_buckets.begin()->first;
        m_have_floor = true;
        m_size -= m_buckets.begin()->second.size();
        m_buckets.erase(m_buckets.begin());
    }
    if (m_size >= m_max) return false;
    if (m_buckets[ts].insert(key(mac)).second) ++m_size;
    return true;
}

Session::Session(Role role, SessionConfig config, const Clock& clock, Rng& rng, KeyLogWriter* keylog)
    : m_role(role),
      m_config(std::move(config)),
      m_clock(clock),
      m_rng(rng),
      m_keylog(keylog),
      m_received(m_config.replay_cache_entries),
      m_sent(m_config.replay_cache_entries) {}

Output Session::start() {
    Output out;
    if (m_state != State::idle) return out;
    if (m_role == Role::responder) {
        m_state = State::awaiting_request;
        return out;
    }
    m_dh = crypto::dh14::generate(m_rng);
    Packet req = make_handshake(MessageType::handshake_request, m_dh.public_value, m_clock.unix_seconds());
    m_session_id.assign(req.original_hash.begin(), req.original_hash.begin() + 8);
    out.packets.push_back(serialize(req));
    m_state = State::awaiting_response;
    return out;
}

Output Session::feed(ByteView data) {
    Output out;
    if (m_state == State::idle) out = start();
    if (m_state == State::closed) return out;
    m_buffer.insert(m_buffer.end(), data.begin(), data.end());
    // Delimit by the length field: coalesced and split segments both work.
    std::size_t pos = 0;
    while (m_state != State::closed) {
        ByteView rest(m_buffer.data() + pos, m_buffer.size() - pos);
        if (rest.empty()) break;
        auto len = frame_length(rest, m_config.limits);
        if (!len) {
            close(out, Reject::malformed, len.error().to_string());
            break;
        }
        if (*len == 0 || rest.size() < *len) break;
        handle_packet(rest.first(*len), out);
        pos += *len;
    }
    if (m_state == State::closed)
        m_buffer.clear();
    else
        m_buffer.erase(m_buffer.begin(), m_buffer.begin() + static_cast<std::ptrdiff_t>(pos));
    return out;
}

void Session::handle_packet(ByteView wire, Output& out) {
    std::unique_ptr<std::uint8_t[]> recv_copy;
    if (planted(plant::recv_overflow) && wire.size() <= kOriginalRecvBytes + 1) {
        // Plant: the original's fixed receive buffer with its bound off by
        // one; a packet of exactly 8193 bytes writes one byte past the end.
        // Harmless-looking without a sanitizer, a heap overflow under ASan.
        recv_copy.reset(new std::uint8_t[kOriginalRecvBytes]);
        std::memcpy(recv_copy.get(), wire.data(), wire.size());
        wire = ByteView(recv_copy.get(), std::min(wire.size(), kOriginalRecvBytes));
    }
    auto parsed = parse_packet(wire, m_config.limits);
    if (!parsed) {
        close(out, Reject::malformed, parsed.error().to_string());
        return;
    }
    const Packet& p = *parsed;
    if (is_handshake(p.type))
        handle_handshake(p, out);
    else
        handle_regular(wire, p, out);
}

bool Session::fresh(std::uint64_t ts, std::string& why) const {
    std::uint64_t now = m_clock.unix_seconds();
    std::uint64_t w = m_config.freshness_window;
    if (ts + w < now) {
        why = "timestamp " + std::to_string(ts) + " is " + std::to_string(now - ts) + " s old (window " +
              std::to_string(w) + " s)";
        return false;
    }
    if (ts > now + w) {
        why = "timestamp " + std::to_string(ts) + " is " + std::to_string(ts - now) + " s in the future (window " +
              std::to_string(w) + " s)";
        return false;
    }
    return true;
}

void Session::derive(ByteView peer_public) {
    Bytes z = crypto::dh14::agree(m_dh.private_exponent, peer_public);
    m_keys = Keys::from_shared_secret(z);
    m_cipher.emplace(m_keys->master);
    if (m_keylog) m_keylog->write(kKeyLogLabel, m_session_id, m_keys->master);
}

void Session::handle_handshake(const Packet& p, Output& out) {
    bool keyed = m_state == State::established;
    if (keyed && !planted(plant::late_handshake)) {
        close(out, Reject::late_handshake,
              std::string(message_type_name(p.type)) + " after the session was keyed");
        return;
    }
    MessageType expected =
        m_role == Role::responder ? MessageType::handshake_request : MessageType::handshake_response;
    if (!keyed && p.type != expected) {
        close(out, Reject::unexpected_message,
              std::string(message_type_name(p.type)) + " in state " + state_name(m_state));
        return;
    }
    if (crypto::sha256(p.payload) != p.original_hash) {
        close(out, Reject::hash_mismatch, "handshake original_hash is not SHA-256 of the public value");
        return;
    }
    std::string why;
    if (!planted(plant::no_freshness) && !fresh(p.timestamp, why)) {
        close(out, Reject::stale, why);
        return;
    }
    if (!planted(plant::accept_weak_dh) && !crypto::dh14::public_value_ok(p.payload)) {
        close(out, Reject::weak_dh, "DH public value is 0, 1, p-1 or not below p");
        return;
    }
    if (keyed) {
        // Plant late-handshake: re-key from the injected value.
        derive(p.payload);
        out.events.push_back(Event{Event::Kind::rekeyed, {}, p.timestamp, std::nullopt,
                                   std::string(message_type_name(p.type)) + " accepted on a keyed session"});
        return;
    }
    if (m_role == Role::responder) {
        m_session_id.assign(p.original_hash.begin(), p.original_hash.begin() + 8);
        m_dh = crypto::dh14::generate(m_rng);
        Packet resp = make_handshake(MessageType::handshake_response, m_dh.public_value, m_clock.unix_seconds());
        out.packets.push_back(serialize(resp));
    }
    derive(p.payload);
    m_state = State::established;
    out.events.push_back(Event{Event::Kind::established, {}, p.timestamp, std::nullopt, hex(m_session_id)});
}

void Session::handle_regular(ByteView wire, const Packet& p, Output& out) {
    if (m_state != State::established) {
        close(out, Reject::unexpected_message, std::string("REGULAR_MESSAGE in state ") + state_name(m_state));
        return;
    }
    if (!planted(plant::skip_hmac) &&
        !crypto::hmac_sha256_verify(m_keys->hmac_key, signed_part(wire), p.hmac)) {
        close(out, Reject::bad_hmac, "HMAC does not verify");
        return;
    }
    if (!planted(plant::accept_reflection) && m_sent.contains(p.hmac, p.timestamp)) {
        close(out, Reject::reflected, "a packet this side sent came back");
        return;
    }
    if (!planted(plant::no_freshness)) {
        std::string why;
        if (!fresh(p.timestamp, why)) {
            close(out, Reject::stale, why);
            return;
        }
        if (m_received.contains(p.hmac, p.timestamp)) {
            close(out, Reject::duplicate, "the same packet was received before (a replay)");
            return;
        }
        if (m_received.too_old(p.timestamp)) {
            close(out, Reject::stale, "timestamp older than the replay cache still covers");
            return;
        }
        if (!m_received.insert(p.hmac, p.timestamp, m_clock.unix_seconds(), m_config.freshness_window)) {
            close(out, Reject::stale, "more packets stamped in one second than the replay cache holds");
            return;
        }
    } else {
        // Recorded under the no-freshness plant too: send() consults it.
        m_received.insert(p.hmac, p.timestamp, m_clock.unix_seconds(), m_config.freshness_window);
    }
    // The HMAC was checked above: decrypt and check the plaintext hash only.
    Bytes plaintext = p.payload;
    m_cipher->ctr_xor(plaintext.data(), plaintext.size());
    if (crypto::sha256(plaintext) != p.original_hash) {
        close(out, Reject::hash_mismatch, "SHA-256 of the plaintext does not match original_hash");
        return;
    }
    out.events.push_back(Event{Event::Kind::message, std::move(plaintext), p.timestamp, std::nullopt, {}});
}

Bytes Session::send(ByteView plaintext) {
    if (m_state != State::established) throw std::logic_error("SecMsg session is not established");
    std::uint64_t now = m_clock.unix_seconds();
    std::uint64_t ts = std::max(now, m_last_sent_ts);
    // Both directions share one key and one keystream, so the same plaintext
    // in the same second gives the same packet: a repeat of one we sent looks
    // like a replay, and an echo of one we received looks like a reflection.
    // Move the timestamp on until the packet is new.
    auto mac_of = [](const Bytes& wire) {
        crypto::Digest d;
        std::copy(wire.end() - kMacBytes, wire.end(), d.begin());
        return d;
    };
    Bytes wire = seal_regular_wire(*m_keys, *m_cipher, plaintext, ts);
    // A second too full to record in is skipped too: this side could not
    // recognise the packet if it were reflected.
    while (m_sent.contains(mac_of(wire), ts) || m_received.contains(mac_of(wire), ts) ||
           !m_sent.insert(mac_of(wire), ts, now, m_config.freshness_window))
        wire = seal_regular_wire(*m_keys, *m_cipher, plaintext, ++ts);
    m_last_sent_ts = ts;
    return wire;
}

void Session::close(Output& out, Reject reason, std::string detail) {
    m_state = State::closed;
    out.events.push_back(Event{Event::Kind::closed, {}, 0, reason, std::move(detail)});
}

}  // namespace msglab::secmsg
