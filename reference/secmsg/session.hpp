// SecMsg sans-I/O session (PROTOCOLS.md sections 4.3 to 4.5).
//
// Feed it the bytes that arrived; it returns the bytes to send and what
// happened. Clock and randomness are injected. The connecting side
// (initiator) sends HANDSHAKE_REQUEST first; the accepting side (responder)
// answers HANDSHAKE_RESPONSE; then both send REGULAR messages.
//
// Clean behaviour is the best the wire format allows: DH public values
// checked, HMAC compared in constant time, timestamps checked against a
// window, duplicates and reflections rejected within it, no second handshake.
// Any rejection closes the session: SecMsg has no error message to send.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <map>
#include <unordered_set>
#include <vector>

#include "core/bytes.hpp"
#include "core/clock.hpp"
#include "core/keylog.hpp"
#include "core/registry.hpp"
#include "secmsg/codec.hpp"
#include "secmsg/segmsg_cipher.hpp"

namespace msglab::secmsg {

// Plant ids (the catalogue entries are in protocol.cpp).
namespace plant {
constexpr const char* accept_weak_dh = "secmsg.accept-weak-dh";
constexpr const char* no_freshness = "secmsg.no-freshness";
constexpr const char* accept_reflection = "secmsg.accept-reflection";
constexpr const char* skip_hmac = "secmsg.skip-hmac";
constexpr const char* late_handshake = "secmsg.late-handshake";
constexpr const char* recv_overflow = "secmsg.recv-overflow";
}  // namespace plant

constexpr const char* kKeyLogLabel = "SECMSG_MASTER_SECRET";
// The captures README gives the raw DH secret Z; the reader accepts it too.
constexpr const char* kKeyLogLabelShared = "SECMSG_SHARED_SECRET";

// The keys of a session from a key log: its SECMSG_MASTER_SECRET line, else
// its SECMSG_SHARED_SECRET (Z) line; nullopt when neither is there or the
// secret has the wrong length.
std::optional<Keys> keys_from_keylog(const KeyLog& log, ByteView session_id);

enum class Role { initiator, responder };
enum class State { idle, awaiting_request, awaiting_response, established, closed };
const char* state_name(State s);

enum class Reject {
    malformed,             // framing or field error
    unexpected_message,    // a message the state does not allow
    weak_dh,               // public value outside 1 < y < p-1
    bad_hmac,
    hash_mismatch,         // SHA-256(plaintext) != original_hash
    stale,                 // timestamp outside the window
    duplicate,             // seen before in this session (a replay)
    reflected,             // one of our own packets sent back
    late_handshake,        // a handshake on a keyed session
};
const char* reject_name(Reject r);

struct SessionConfig {
    Limits limits;
    std::uint64_t freshness_window = 300;     // seconds either side of our clock
    std::size_t replay_cache_entries = 1 << 18;  // per direction, about 10 MiB at most
    PlantSet plants;
};

struct Event {
    enum class Kind { established, message, rekeyed, closed };
    Kind kind;
    Bytes plaintext;             // message
    std::uint64_t timestamp = 0; // message: the sender's timestamp
    std::optional<Reject> reason;  // closed because of a rejection
    std::string detail;
};

struct Output {
    std::vector<Bytes> packets;  // send each with its own write
    std::vector<Event> events;
};

// Remembers the MACs of packets inside the freshness window, bucketed by
// their timestamp second (a duplicate carries the same timestamp, which the
// MAC covers). Bounded: when full, whole oldest seconds are forgotten and
// packets stamped no later than them are refused from then on, so a replay
// can never slip in through an eviction. When a single second holds more than
// the bound, further packets of that second are refused rather than risk
// accepting a duplicate. Keys are 64-bit MAC prefixes.
class ReplayCache {
public:
    explicit ReplayCache(std::size_t max_entries) : m_max(max_entries < 1 ? 1 : max_entries) {}
    bool contains(const crypto::Digest& mac, std::uint64_t ts) const;
    bool too_old(std::uint64_t ts) const { return m_have_floor && ts <= m_floor; }
    // False when the entry could not be recorded (the second is full).
    bool insert(const crypto::Digest& mac, std::uint64_t ts, std::uint64_t now, std::uint64_t window);
    std::size_t size() const { return m_size; }

private:
    static std::uint64_t key(const crypto::Digest& d);
    std::map<std::uint64_t, std::unordered_set<std::uint64_t>> m_buckets;
    std::size_t m_size = 0;
    std::size_t m_max;
    std::uint64_t m_floor = 0;
    bool m_have_floor = false;
};

class Session {
public:
    Session(Role role, SessionConfig config, const Clock& clock, Rng& rng, KeyLogWriter* keylog = nullptr);

    // Initiator: the HANDSHAKE_REQUEST. Responder: nothing; waits.
    Output start();
    Output feed(ByteView data);
    // A REGULAR packet for `plaintext`; throws std::logic_error unless established.
    Bytes send(ByteView plaintext);

    Role role() const { return m_role; }
    State state() const { return m_state; }
    bool established() const { return m_state == State::established; }
    // First 8 bytes of SHA-256 of the initiator's DH public value: the first
    // 8 bytes of the HANDSHAKE_REQUEST's original_hash, visible in captures.
    const Bytes& session_id() const { return m_session_id; }
    const std::optional<Keys>& keys() const { return m_keys; }
    std::size_t buffered() const { return m_buffer.size(); }

private:
    void handle_packet(ByteView wire, Output& out);
    void handle_handshake(const Packet& p, Output& out);
    void handle_regular(ByteView wire, const Packet& p, Output& out);
    bool fresh(std::uint64_t ts, std::string& why) const;
    void derive(ByteView peer_public);
    void close(Output& out, Reject reason, std::string detail);
    bool planted(const char* id) const { return m_config.plants.has(id); }

    Role m_role;
    SessionConfig m_config;
    const Clock& m_clock;
    Rng& m_rng;
    KeyLogWriter* m_keylog;
    State m_state = State::idle;
    crypto::dh14::KeyPair m_dh;
    std::optional<Keys> m_keys;
    std::optional<SegmsgCipher> m_cipher;  // keyed from m_keys
    Bytes m_session_id;
    Bytes m_buffer;
    ReplayCache m_received;
    ReplayCache m_sent;
    std::uint64_t m_last_sent_ts = 0;
};

}  // namespace msglab::secmsg
