#include "signal/chat.hpp"

#include "signal/app.hpp"  // plant ids

namespace msglab::signal {

namespace {

ByteView view(const std::string& s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

bool truthy(const Json& v) {
    if (v.is_boolean()) return v.get<bool>();
    if (v.is_number_integer()) return v.get<long long>() != 0;
    if (v.is_string()) return !v.get_ref<const std::string&>().empty();
    if (v.is_array() || v.is_object()) return !v.empty();
    return false;
}

}  // namespace

Chat::Chat(std::string user, Identity identity, ChatOptions options, Rng& rng)
    : m_user(std::move(user)), m_id(std::move(identity)), m_options(std::move(options)), m_rng(rng) {}

void Chat::log(std::string_view label, ByteView id, ByteView secret) const {
    if (m_keylog) m_keylog(label, id, secret);
}

bool Chat::ack_value(bool ok) const { return ok || m_options.plants.has(plant::ack_on_failure); }

Chat::Partner* Chat::partner(const std::string& peer) {
    auto it = m_partners.find(peer);
    if (it != m_partners.end()) return &it->second;
    if (m_partners.size() >= m_options.max_partners) return nullptr;
    return &m_partners[peer];
}

Json Chat::register_event() const { return register_user_json(register_user(m_user, m_id)); }

Result<Json, std::string> Chat::initiate(const std::string& peer, const Json& prekey_ack) {
    if (!prekey_ack.is_array() || prekey_ack.empty() || !truthy(prekey_ack[0]))
        return unexpected(std::string("the server has no bundle for ") + peer);
    if (prekey_ack.size() < 2) return unexpected(std::string("request_prekey's answer has no bundle"));
    auto bundle = parse_bundle(prekey_ack[1]);
    if (!bundle) return unexpected("bundle of " + peer + ": " + bundle.error());
    const bool verify = !m_options.plants.has(plant::spk_sig_unchecked);
    auto init = x3dh_initiate(m_id, *bundle, m_rng, std::nullopt, verify);
    if (!init) {
        if (init.error() == X3dhError::bad_signature)
            return unexpected("the bundle of " + peer + " has a prekey signature (spk_sign) that does not verify");
        return unexpected(std::string("X3DH with ") + peer + " failed: " + x3dh_error_name(init.error()));
    }
    Partner* p = partner(peer);
    if (!p) return unexpected(std::string("too many partners"));
    log(kKeylogX3dhSk, keylog_x3dh_id(init->ek.public_key), init->sk);
    auto payload = x3dh_message_json(x3dh_message(peer, m_user, m_id.ik.public_key, *init));
    p->pending_spk = bundle->spk;
    p->pending = std::move(*init);
    return payload;
}

std::optional<Json> Chat::x3dh_answered(const std::string& peer, bool accepted) {
    auto it = m_partners.find(peer);
    if (it == m_partners.end() || !it->second.pending) return std::nullopt;
    Partner& p = it->second;
    auto init = std::move(*p.pending);
    p.pending.reset();
    if (!accepted) return std::nullopt;
    auto r = Ratchet::initiator(init.sk, p.pending_spk, init.ad, m_rng);
    if (!r) return std::nullopt;
    p.ratchet = std::move(*r);
    p.outbox.clear();
    if (!m_options.open_ratchet) return std::nullopt;
    return seal_now(peer, p, "");
}

Json Chat::seal_now(const std::string& peer, Partner& p, const std::string& text) {
    auto sealed = p.ratchet->encrypt(view(text));
    // encrypt only fails without a chain or over the bounds, both checked by callers.
    const auto& s = sealed.value();
    log(kKeylogMessageKey, keylog_id(s.message.header.dh, s.message.header.n), s.mk);
    return ratchet_msg_json(ratchet_msg(peer, m_user, s.message));
}

Result<std::optional<Json>, std::string> Chat::seal(const std::string& peer, const std::string& text) {
    auto it = m_partners.find(peer);
    if (it == m_partners.end() || !it->second.ratchet)
        return unexpected("no session with " + peer + " (start one first)");
    if (text.size() > kMaxPlaintext) return unexpected(std::string("the message is over 64 KiB"));
    Partner& p = it->second;
    if (!p.ratchet->can_send()) {
        if (p.outbox.size() >= m_options.max_outbox)
            return unexpected(peer + " has not written yet and " + std::to_string(p.outbox.size()) +
                              " messages already wait for it");
        p.outbox.push_back(text);
        return std::optional<Json>();
    }
    return std::optional<Json>(seal_now(peer, p, text));
}

Incoming Chat::receive_x3dh(const Json& payload) {
    Incoming in;
    auto m = parse_x3dh_message(payload);
    if (!m) {
        in.detail = m.error();
        in.ack = ack_value(false);
        return in;
    }
    in.from = m->from;
    auto acc = x3dh_respond(m_id, m->ik, m->epk, m->cipher, m->hmac);
    if (!acc) {
        in.detail = std::string("x3dh_message from ") + m->from + ": " + x3dh_error_name(acc.error());
        in.ack = ack_value(false);
        return in;
    }
    Partner* p = partner(m->from);
    if (!p) {
        in.detail = "too many partners";
        in.ack = ack_value(false);
        return in;
    }
    log(kKeylogX3dhSk, keylog_x3dh_id(m->epk), acc->sk);
    // As the original: a new X3DH replaces whatever session `from` had.
    p->ratchet = Ratchet::responder(acc->sk, m_id.spk, acc->ad, m_rng);
    p->pending.reset();
    p->outbox.clear();
    in.kind = Incoming::Kind::session;
    if (!acc->expected_plaintext) in.detail = "the X3DH payload is not ##CHAT_START##";
    in.ack = true;
    return in;
}

Incoming Chat::receive_ratchet(const Json& payload) {
    Incoming in;
    auto m = parse_ratchet_msg(payload);
    if (!m) {
        in.detail = m.error();
        in.ack = ack_value(false);
        return in;
    }
    in.from = m->from;
    auto it = m_partners.find(m->from);
    if (it == m_partners.end() || !it->second.ratchet) {
        in.detail = "ratchet_msg from " + m->from + " without a session";
        in.ack = ack_value(false);
        return in;
    }
    Partner& p = it->second;
    DecryptOptions o;
    o.commit_before_mac = m_options.plants.has(plant::state_before_mac);
    auto d = p.ratchet->decrypt(m->message, o);
    if (!d.ok()) {
        in.detail = "ratchet_msg from " + m->from + " (n " + std::to_string(m->message.header.n) + "): " +
                    decrypt_status_name(d.status);
        in.ack = ack_value(false);
        return in;
    }
    if (d.mk) log(kKeylogMessageKey, keylog_id(m->message.header.dh, m->message.header.n), *d.mk);
    in.text.assign(d.plaintext.begin(), d.plaintext.end());
    in.kind = in.text.empty() ? Incoming::Kind::opening : Incoming::Kind::message;
    if (!valid_utf8(in.text)) in.detail = "the plaintext is not UTF-8";
    in.ack = true;
    if (p.ratchet->can_send())
        while (!p.outbox.empty()) {
            in.flush.push_back(seal_now(m->from, p, p.outbox.front()));
            p.outbox.pop_front();
        }
    return in;
}

bool Chat::has_session(const std::string& peer) const {
    auto it = m_partners.find(peer);
    return it != m_partners.end() && it->second.ratchet.has_value();
}

bool Chat::can_send(const std::string& peer) const {
    auto it = m_partners.find(peer);
    return it != m_partners.end() && it->second.ratchet && it->second.ratchet->can_send();
}

std::size_t Chat::queued(const std::string& peer) const {
    auto it = m_partners.find(peer);
    return it == m_partners.end() ? 0 : it->second.outbox.size();
}

std::vector<std::string> Chat::partners() const {
    std::vector<std::string> out;
    for (const auto& [name, p] : m_partners)
        if (p.ratchet) out.push_back(name);
    return out;
}

const Ratchet* Chat::ratchet(const std::string& peer) const {
    auto it = m_partners.find(peer);
    return it == m_partners.end() || !it->second.ratchet ? nullptr : &*it->second.ratchet;
}

}  // namespace msglab::signal
