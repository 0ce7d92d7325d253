// A SOCP v1.3 server's logic, sans-I/O (PROTOCOLS.md section 2.8): one node
// of a mesh with no central server. The Asio/Beast server (server.hpp) opens
// and accepts WebSockets and moves text messages; everything a user or a
// server can cause happens here, which is what the tests and the fuzzers
// drive. Time is given to every call (`now`, Unix milliseconds) and is also
// the `ts` the node writes.
//
// The node:
//   - joins through its introducers in order (SERVER_HELLO_JOIN, then
//     SERVER_WELCOME with the assigned id, the known servers and users), then
//     links to every server it learnt (SERVER_ANNOUNCE on each link); a server
//     that announces itself (SERVER_ANNOUNCE, or the cohort implementation's
//     SERVER_HELLO_LINK) is linked and answered with this node's own
//     announcement, and its key is pinned to its id from then on;
//   - keeps presence by gossip: USER_ADVERTISE / USER_REMOVE, signed by the
//     server that originates them, checked with the key of `from` or of the
//     link's server (a relaying server may re-sign), forwarded to the other
//     servers once (duplicate cache) and to local users;
//   - routes (route_to_user): a local user gets USER_DELIVER, a user on
//     another server gets SERVER_DELIVER over that server's link (or, with
//     no link to it, over every link, each server forwarding it unchanged),
//     anyone else gets the sender an ERROR USER_NOT_FOUND; a frame seen
//     before (ts, from, to, payload) is dropped, and so is one whose ts is
//     further from now than the duplicate cache remembers (a user is told
//     ERROR TIMEOUT);
//   - sends HEARTBEAT on every server link each heartbeat interval, declares
//     a server dead after dead_after without a frame from it (or when its
//     link closes), forgets the users it hosted, and redials its address
//     with a back-off until it answers or forget_after passes;
//   - runs the public channel: each admitted user gets PUBLIC_CHANNEL_ADD,
//     then a new version of the group key (32 random bytes) is wrapped with
//     RSA-OAEP for every member whose key is known (PUBLIC_CHANNEL_UPDATED);
//     MSG_PUBLIC_CHANNEL goes to every user of the mesh except its sender.
//
// Clean behaviour, where the cohort implementations differ (each a plant):
// keys under 4096 bits are refused (socp.weak-rsa), transport signatures are
// checked (socp.any-signature, socp.unsigned-advertise), duplicates are
// dropped (socp.no-dedup), a user id in use anywhere in the mesh is refused
// (socp.dual-login), a user's frames must carry its own id as `from`, and no
// recipient has a hidden meaning (socp.hidden-command).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "core/registry.hpp"
#include "socp/wire.hpp"

namespace msglab::socp {

namespace plant {
inline constexpr const char* weak_rsa = "socp.weak-rsa";
inline constexpr const char* unsigned_advertise = "socp.unsigned-advertise";
inline constexpr const char* no_dedup = "socp.no-dedup";
inline constexpr const char* any_signature = "socp.any-signature";
inline constexpr const char* dual_login = "socp.dual-login";
inline constexpr const char* hidden_command = "socp.hidden-command";
}  // namespace plant

// socp.hidden-command: a MSG_DIRECT to this "user" is answered with the
// node's whole directory (every user, server, address and key).
inline constexpr const char* kDebugRecipient = "__debug__";
// The smallest key socp.weak-rsa accepts (and the size it makes).
inline constexpr std::size_t kWeakBits = 1024;

struct Endpoint {
    std::string host;
    std::uint16_t port = 0;
    std::string text() const { return host + ":" + std::to_string(port); }
};

struct AppConfig {
    PlantSet plants;
    Endpoint self;                     // the address other servers dial
    std::vector<Endpoint> introducers;  // tried in order
    std::int64_t heartbeat_ms = 15'000;
    std::int64_t dead_after_ms = 45'000;
    std::int64_t redial_min_ms = 500;     // first redial delay, doubled up to redial_max_ms
    std::int64_t redial_max_ms = 15'000;
    std::int64_t forget_after_ms = 10 * 60 * 1000;  // a dead server is forgotten after this
    std::int64_t join_timeout_ms = 10'000;          // an introducer must welcome within this
    Limits limits;
    // Keys below min_key_bits are refused (weak_key_bits under socp.weak-rsa).
    // The fuzzer lowers both so that its keys sign fast; servers keep these.
    std::size_t min_key_bits = kRequiredBits;
    std::size_t weak_key_bits = kWeakBits;
    std::size_t max_users = 100'000;
    std::size_t max_servers = 1'000;
    std::size_t seen_capacity = 100'000;
    std::int64_t seen_ttl_ms = 10 * 60 * 1000;
};

using LinkId = std::uint64_t;
using Text = std::shared_ptr<const std::string>;

struct Dial {
    std::uint64_t token = 0;  // handed back to opened() or dial_failed()
    Endpoint to;
};

// What the I/O layer must do after an event: messages to send, links to
// close once their messages are written, WebSockets to open, and lines for
// the console.
struct Effects {
    std::vector<std::pair<LinkId, Text>> send;
    std::vector<LinkId> close;
    std::vector<Dial> dial;
    std::vector<std::string> log;
};

class App {
public:
    App(AppConfig config, crypto::RsaPrivateKey key, std::string id, Rng& rng);

    // Starts joining through the introducers (none: a mesh of one).
    Effects start(std::int64_t now);
    // A WebSocket is open: accepted (token nullopt) or dialled by us.
    Effects opened(LinkId link, std::optional<std::uint64_t> token, std::int64_t now);
    Effects dial_failed(std::uint64_t token, std::int64_t now);
    // One whole text message from `link`.
    Effects message(LinkId link, std::string_view text, std::int64_t now);
    // A message that is too large or not text: ERROR, then the link closes.
    Effects refused(LinkId link, const std::string& why, std::int64_t now);
    Effects closed(LinkId link, std::int64_t now);
    // Heartbeats, dead servers, redials, join timeouts. Call it often (every
    // few hundred milliseconds); the next time anything is due is next_due().
    Effects tick(std::int64_t now);
    std::int64_t next_due() const;

    const AppConfig& config() const { return m_config; }
    const std::string& id() const { return m_id; }
    std::string public_key_text() const { return m_pub_text; }
    bool joined() const { return m_joined; }
    std::size_t links() const { return m_links.size(); }
    std::vector<std::string> local_users() const;
    // user -> "local" or a server id.
    std::map<std::string, std::string> user_locations() const;
    // Servers with a live link.
    std::vector<std::string> linked_servers() const;
    std::vector<std::string> known_servers() const;
    std::uint64_t public_version() const { return m_public_version; }
    std::size_t seen_ids() const { return m_seen.size(); }

private:
    enum class Kind { unknown, user, server };
    struct Link {
        Kind kind = Kind::unknown;
        bool outbound = false;
        std::optional<std::uint64_t> token;
        std::string peer;  // user id or server id
        std::int64_t opened_at = 0;
        std::int64_t last_rx = 0;
        std::int64_t last_hb = 0;
        bool joining = false;  // our SERVER_HELLO_JOIN went out on it
        bool closing = false;  // we asked the I/O layer to close it; closed() forgets it
    };
    struct Server {
        Endpoint addr;
        std::optional<crypto::RsaPublicKey> key;
        std::string key_text;
        std::optional<LinkId> link;
        std::optional<std::uint64_t> dialing;  // token
        std::int64_t next_dial = 0;
        std::int64_t redial_delay = 0;
        std::int64_t lost_at = 0;  // 0 while linked or never linked
    };
    struct User {
        std::string location;  // "local" or a server id
        std::optional<LinkId> link;
        std::string key_text;
        std::optional<crypto::RsaPublicKey> key;
        Json meta = Json::object();
    };

    Envelope envelope(std::string type, std::string to, Json payload, std::int64_t now) const;
    Text signed_text(Envelope e) const;
    void send(Effects& fx, LinkId link, Text text) const;
    void to_servers(Effects& fx, const Text& text, std::optional<LinkId> except = std::nullopt) const;
    void to_local_users(Effects& fx, const Text& text, const std::string& except = {}) const;
    void error(Effects& fx, LinkId link, const std::string& code, const std::string& detail, std::int64_t now) const;
    bool key_ok(const crypto::RsaPublicKey& key) const;
    bool check_sig(const Envelope& e, const Link& link) const;
    bool fresh(const Envelope& e, std::int64_t now);
    // ts within seen_ttl of now (either side).
    bool in_window(const Envelope& e, std::int64_t now) const;

    void dial(Effects& fx, const Endpoint& to, std::int64_t now, std::optional<std::string> server);
    void next_introducer(Effects& fx, std::int64_t now);
    Json advertise_payload(const std::string& user, const User& u) const;
    Text announcement(std::int64_t now) const;
    void introduce_users(Effects& fx, LinkId link, std::int64_t now) const;
    bool register_server(Effects& fx, LinkId link, const Envelope& e, std::int64_t now);
    void server_lost(Effects& fx, const std::string& id, std::int64_t now, const char* why);
    void drop_link(Effects& fx, LinkId link, std::int64_t now);
    // Asks for `link` to be closed and stops listening to it; it is
    // forgotten when closed() reports it.
    void retire(Effects& fx, LinkId link);
    void admit_public(Effects& fx, const std::string& user, std::int64_t now);
    void route(Effects& fx, LinkId from_link, const Envelope& e, const std::string& user, const Text& deliver_text,
               std::int64_t now);

    void on_first(Effects& fx, LinkId id, Link& link, const Envelope& e, std::int64_t now);
    void on_hello_join(Effects& fx, LinkId id, Link& link, const Envelope& e, std::int64_t now);
    void on_welcome(Effects& fx, LinkId id, Link& link, const Envelope& e, std::int64_t now);
    void on_user_hello(Effects& fx, LinkId id, Link& link, const Envelope& e, std::int64_t now);
    void on_user_frame(Effects& fx, LinkId id, Link& link, const Envelope& e, std::string_view text,
                       std::int64_t now);
    void on_server_frame(Effects& fx, LinkId id, Link& link, const Envelope& e, std::string_view text,
                         std::int64_t now);
    void debug_dump(Effects& fx, LinkId id, const Envelope& e, std::int64_t now) const;

    AppConfig m_config;
    crypto::RsaPrivateKey m_key;
    std::string m_pub_text;
    std::string m_id;
    Rng& m_rng;
    bool m_joined = false;
    std::size_t m_next_introducer = 0;
    std::optional<std::uint64_t> m_join_token;
    std::int64_t m_join_started = 0;
    std::int64_t m_join_retry_at = 0;
    std::uint64_t m_next_token = 1;
    std::map<LinkId, Link> m_links;
    std::map<std::string, Server> m_servers;
    std::map<std::string, User> m_users;
    std::map<std::uint64_t, std::string> m_dial_targets;  // token -> server id ("" for an introducer)
    SeenCache m_seen;
    std::uint64_t m_public_version = 0;
};

}  // namespace msglab::socp
