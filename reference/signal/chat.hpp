// One user's side of Signal-style chat (PROTOCOLS.md sections 5.3 to 5.6),
// sans-I/O: the identity, one X3DH session and Double Ratchet per partner,
// and the event payloads that go with them. client.hpp moves the payloads
// over Socket.IO; the bot, the probes and the benchmark use the same class.
//
// Clean behaviour:
//   * a bundle whose spk_sig does not verify under its sik is refused;
//   * the ratchet's state is committed only after the MAC verifies;
//   * x3dh_message and ratchet_msg are acked [true] only when they verified
//     and decrypted, [false] otherwise;
//   * the responder can send first: the initiator opens its ratchet with an
//     empty ratchet message right after the server acks its x3dh_message
//     (an original peer shows an empty line), and what the responder writes
//     before that message arrives waits in a bounded outbox and leaves with
//     it (the original crashes instead);
//   * a skipped message comes back un-padded.
// Plants: signal.spk-sig-unchecked, signal.state-before-mac,
// signal.ack-on-failure (app.hpp lists them all).
//
// Sessions are keyed by the `from` the server relays, as the original's:
// what a server says is the only name there is (design finding).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.hpp"
#include "core/registry.hpp"
#include "core/result.hpp"
#include "signal/events.hpp"
#include "signal/ratchet.hpp"

namespace msglab::signal {

struct ChatOptions {
    PlantSet plants;
    // Open the ratchet with an empty message once X3DH is acked (see above).
    bool open_ratchet = true;
    std::size_t max_outbox = 256;  // messages waiting per partner
    std::size_t max_partners = 10'000;
};

// Key log lines: label, id, secret (core/keylog.hpp's KeyLogWriter::write).
using KeyLogSink = std::function<void(std::string_view label, ByteView id, ByteView secret)>;

// What an incoming x3dh_message or ratchet_msg came to.
struct Incoming {
    enum class Kind {
        session,  // an X3DH session opened (responder side)
        message,  // a ratchet message decrypted
        opening,  // the partner's empty opening message
        refused,  // it did not verify or decrypt
    };
    Kind kind = Kind::refused;
    std::string from;
    std::string text;
    std::string detail;  // why it was refused; what was odd
    bool ack = false;    // what to answer the server
    // ratchet_msg payloads that waited for this message (the outbox), to send now.
    std::vector<Json> flush;
};

class Chat {
public:
    Chat(std::string user, Identity identity, ChatOptions options, Rng& rng);

    const std::string& user() const { return m_user; }
    const Identity& identity() const { return m_id; }
    void set_keylog(KeyLogSink sink) { m_keylog = std::move(sink); }

    // register_user's argument.
    Json register_event() const;
    // An x3dh_message to `peer` from request_prekey's ack arguments
    // ([true, {bundle}] or [false, {}]); an error in words otherwise.
    Result<Json, std::string> initiate(const std::string& peer, const Json& prekey_ack);
    // The server's ack of that x3dh_message: only a truthy one starts the
    // ratchet (5.5 step 6). Returns the opening ratchet_msg to send, if any.
    std::optional<Json> x3dh_answered(const std::string& peer, bool accepted);
    // A ratchet_msg to `peer`; nullopt (and queued) while the responder waits
    // for the partner's first message; an error when there is no session or
    // the outbox is full.
    Result<std::optional<Json>, std::string> seal(const std::string& peer, const std::string& text);

    Incoming receive_x3dh(const Json& payload);
    Incoming receive_ratchet(const Json& payload);

    bool has_session(const std::string& peer) const;
    bool can_send(const std::string& peer) const;
    std::size_t queued(const std::string& peer) const;
    std::vector<std::string> partners() const;
    // The partner's ratchet, for tests.
    const Ratchet* ratchet(const std::string& peer) const;

private:
    struct Partner {
        std::optional<Ratchet> ratchet;
        std::optional<X3dhInitiation> pending;  // sent, not yet acked
        Key32 pending_spk{};
        std::deque<std::string> outbox;
    };
    Json seal_now(const std::string& peer, Partner& p, const std::string& text);
    void log(std::string_view label, ByteView id, ByteView secret) const;
    Partner* partner(const std::string& peer);
    bool ack_value(bool ok) const;

    std::string m_user;
    Identity m_id;
    ChatOptions m_options;
    Rng& m_rng;
    KeyLogSink m_keylog;
    std::map<std::string, Partner> m_partners;
};

}  // namespace msglab::signal
