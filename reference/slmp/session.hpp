// SLMP sans-I/O sessions (PROTOCOLS.md sections 3.2 to 3.4): one request and
// one response per connection.
//
// Feed a session the bytes that arrived; it returns the units to send (each
// with its own write), the units it took whole, and what happened. Clock and
// randomness are injected. Because SLMP has no framing, a session that holds
// a token of a whole length that does not verify cannot tell a bad token from
// one still arriving: the endpoint calls idle() once the peer has been quiet
// for a short gap, and the session judges the token then.
//
// The clean server makes a fresh key pair for every connection, checks the
// Fernet TTL and clock skew, compares the token in constant time, and answers
// any bad input by closing this connection only. The original's flaws that
// the wire does not force are plants (protocol.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "core/fernet.hpp"
#include "core/keylog.hpp"
#include "core/registry.hpp"
#include "slmp/codec.hpp"

namespace msglab::slmp {

namespace plant {
constexpr const char* static_server_key = "slmp.static-server-key";
constexpr const char* no_ttl = "slmp.no-ttl";
constexpr const char* serial_server = "slmp.serial-server";
constexpr const char* crash_on_bad_input = "slmp.crash-on-bad-input";
constexpr const char* unit_overflow = "slmp.unit-overflow";
}  // namespace plant

// The Fernet key of a connection from a key log; nullopt when absent.
std::optional<fernet::Key> key_from_keylog(const KeyLog& log, ByteView session_id);

enum class State { idle, awaiting_key, awaiting_request, awaiting_reply, closed };
const char* state_name(State s);

enum class Reject {
    bad_key,          // not a PEM public key block, or over the bound
    not_p256,         // a PEM key that is not a valid P-256 point
    bad_token,        // not a Fernet token (framing, base64, version, padding)
    bad_mac,          // the token does not verify under the session key
    expired,          // older than the TTL
    from_future,      // stamped beyond the allowed clock skew
    bad_request,      // not UTF-8, or not exactly three ';'-separated fields
    bad_auth,         // the token field is not SHA-256(user || secret)
    incomplete,       // the peer stopped inside a unit
    unit_overflow,    // slmp.unit-overflow: the unit did not fit the fixed buffer
};
const char* reject_name(Reject r);

struct Event {
    enum class Kind { key_exchanged, request, reply, closed };
    Kind kind;
    std::string user, message;     // request: the claimed user and the message; reply: the text
    std::uint64_t timestamp = 0;   // request, reply: the token's timestamp
    std::optional<Reject> reason;  // closed because of a rejection
    std::string detail;
};

struct Output {
    std::vector<Bytes> units;     // to send, each with its own write
    std::vector<Bytes> received;  // whole units taken from the peer
    std::vector<Event> events;
    bool close = false;  // close the connection once `units` are written
    bool fatal = false;  // slmp.crash-on-bad-input: the whole server dies
};

struct ServerConfig {
    std::string secret = kDefaultSecret;
    std::size_t max_plaintext = 8192;  // largest request plaintext taken (an original client: 703)
    std::uint64_t ttl = 300;            // seconds a token stays valid
    std::uint64_t max_clock_skew = 60;  // seconds a token may come from the future
    PlantSet plants;
};

class ServerSession {
public:
    // `static_key`: the process's one key pair, used only with the
    // slmp.static-server-key plant; otherwise every session makes its own.
    ServerSession(ServerConfig config, const Clock& clock, Rng& rng, const crypto::P256PrivateKey* static_key = nullptr,
                  KeyLogWriter* keylog = nullptr);

    Output feed(ByteView data);
    // The peer has been quiet for the unit gap (the endpoint's timer).
    Output idle();
    // The peer closed its side, or the endpoint gave up waiting.
    Output end_of_input(const std::string& why);

    State state() const { return m_state; }
    const Bytes& session_id() const { return m_session_id; }
    std::size_t buffered() const { return m_buffer.size(); }
    // True when a unit is partly here (idle() may judge it).
    bool waiting_in_unit() const { return !m_buffer.empty() && m_state != State::closed; }
    const std::optional<fernet::Key>& key() const { return m_key; }

private:
    void handle_key(ByteView unit, Output& out);
    void handle_token(std::string_view token, Output& out);
    bool overflow(ByteView unit, Output& out);
    void reject(Output& out, Reject reason, std::string detail);
    bool planted(const char* id) const { return m_config.plants.has(id); }
    std::size_t max_token() const;

    ServerConfig m_config;
    const Clock& m_clock;
    Rng& m_rng;
    const crypto::P256PrivateKey* m_static_key;
    KeyLogWriter* m_keylog;
    State m_state = State::awaiting_key;
    std::optional<fernet::Key> m_key;
    Bytes m_session_id;
    Bytes m_buffer;
    std::size_t m_scanned = 0;  // token bytes already looked at (token_may_be_complete)
};

struct ClientConfig {
    std::string user = kDefaultUser;
    std::string secret = kDefaultSecret;
    std::size_t max_unit = 1 << 20;  // largest reply taken
};

class ClientSession {
public:
    ClientSession(ClientConfig config, const Clock& clock, Rng& rng, KeyLogWriter* keylog = nullptr);

    // The client's PEM key: the first unit.
    Bytes start();
    Output feed(ByteView data);
    Output idle();
    // The request token for `message` ("token;user;message"), stamped now or
    // at `timestamp`. Throws std::logic_error before the server's key.
    Bytes request(std::string_view message, std::optional<std::uint64_t> timestamp = std::nullopt);
    // A token of any plaintext in this session (for tests and attacks).
    Bytes seal(ByteView plaintext, std::optional<std::uint64_t> timestamp = std::nullopt);

    State state() const { return m_state; }
    bool established() const { return m_key.has_value(); }
    const Bytes& session_id() const { return m_session_id; }
    const std::optional<fernet::Key>& key() const { return m_key; }
    const ClientConfig& config() const { return m_config; }

private:
    void handle_token(std::string_view token, Output& out);
    void fail(Output& out, Reject reason, std::string detail);

    ClientConfig m_config;
    const Clock& m_clock;
    Rng& m_rng;
    KeyLogWriter* m_keylog;
    crypto::P256PrivateKey m_private;
    Bytes m_der;
    State m_state = State::idle;
    std::optional<fernet::Key> m_key;
    Bytes m_session_id;
    Bytes m_buffer;
    std::size_t m_scanned = 0;
};

}  // namespace msglab::slmp
