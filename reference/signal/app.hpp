// The Signal-style relay and key directory (PROTOCOLS.md section 5.3),
// sans-I/O: Socket.IO events in, actions out (acks, emits, relays whose
// answer comes back later). server.hpp moves them over Engine.IO.
//
// Clean behaviour:
//   * a socket registers one username; a name online on another socket is
//     not taken over, and a name in the directory stays bound to its first
//     signing key (SIK): a later registration must carry the same SIK and a
//     prekey signature that verifies under it (a signed-prekey rotation);
//   * `from` in x3dh_message and ratchet_msg must be the sending socket's
//     registered user, or the event is refused with [false];
//   * the debug event `pongi` has no handler (no ack, no broadcast);
//   * every field is bounded: usernames 1..64 bytes of printable UTF-8, keys
//     exactly 32 bytes (64 for the signature), ciphertexts at most 64 KiB.
// The directory itself does not verify first registrations' signatures:
// clients must (section 5.5), and a directory is not their trust anchor.
//
// Plants (off by default, through --plant):
//   signal.register-overwrite  any socket registers any name: the record is
//                              overwritten and the live mapping redirected
//   signal.from-spoof          `from` is relayed as sent
//   signal.debug-broadcast     `pongi` broadcasts `pingi` "sankalp" to all
// The client plants (spk-sig-unchecked, state-before-mac, ack-on-failure)
// are chat.hpp's.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/registry.hpp"
#include "signal/directory.hpp"

namespace msglab::signal {

namespace plant {
inline constexpr const char* register_overwrite = "signal.register-overwrite";
inline constexpr const char* from_spoof = "signal.from-spoof";
inline constexpr const char* spk_sig_unchecked = "signal.spk-sig-unchecked";
inline constexpr const char* state_before_mac = "signal.state-before-mac";
inline constexpr const char* ack_on_failure = "signal.ack-on-failure";
inline constexpr const char* debug_broadcast = "signal.debug-broadcast";
}  // namespace plant

inline constexpr std::uint16_t kDefaultPort = 8080;
inline constexpr std::size_t kMaxUsername = 64;  // as events.hpp kMaxUsernameBytes
inline constexpr std::size_t kMaxCipherText = 96 * 1024;  // base64 text of a 64 KiB ciphertext

using Json = nlohmann::ordered_json;

struct AppConfig {
    PlantSet plants;
    std::size_t max_users_online = 10'000;
    std::size_t max_directory = 100'000;
};

// What the transport must do. `request` names the event an ack answers (the
// transport keeps its ack handle under it).
struct Action {
    enum class Kind {
        ack,    // answer request `request` of socket `sid` with `args`
        emit,   // send event `event` with `args` to socket `sid`, no ack wanted
        relay,  // call socket `sid` with `event`/`args`; hand its ack to relay_answered(token)
        log,    // a log line (`text`)
    };
    Kind kind = Kind::log;
    std::string sid;
    std::uint64_t request = 0;
    std::uint64_t token = 0;
    std::string event;
    Json args = Json::array();
    std::string text;
};

class App {
public:
    App(AppConfig config, Directory& directory);

    void connected(const std::string& sid, const std::string& remote);
    // One event. `request` is set when the client asked for an ack.
    std::vector<Action> event(const std::string& sid, const std::string& name, const Json& args,
                              std::optional<std::uint64_t> request);
    // The recipient's ack of relay `token`, or nullopt when it did not come
    // (timeout, disconnect).
    std::vector<Action> relay_answered(std::uint64_t token, const std::optional<Json>& ack_args);
    std::vector<Action> disconnected(const std::string& sid);

    // The username registered on a socket, or "".
    std::string user_of(const std::string& sid) const;
    // The socket a username is online on, or "".
    std::string sid_of(const std::string& username) const;
    // Online usernames in the order they registered (request_users).
    std::vector<std::string> online() const;
    std::size_t pending_relays() const { return m_relays.size(); }
    const AppConfig& config() const { return m_config; }

private:
    struct Relay {
        std::string from_sid;
        std::optional<std::uint64_t> request;
        std::string event;
        std::string to;
    };
    void ack(std::vector<Action>& out, const std::string& sid, std::optional<std::uint64_t> request, Json args);
    void on_register(std::vector<Action>& out, const std::string& sid, const Json& args,
                     std::optional<std::uint64_t> request);
    void on_prekey(std::vector<Action>& out, const std::string& sid, const Json& args,
                   std::optional<std::uint64_t> request);
    void on_relay(std::vector<Action>& out, const std::string& sid, const std::string& name, const Json& args,
                  std::optional<std::uint64_t> request);
    void refuse(std::vector<Action>& out, const std::string& sid, std::optional<std::uint64_t> request,
                const std::string& name, const std::string& why);

    AppConfig m_config;
    Directory& m_directory;
    std::map<std::string, std::string> m_remote;      // sid -> peer address
    std::map<std::string, std::string> m_user;        // sid -> username
    std::map<std::string, std::string> m_sid;         // username -> sid
    std::vector<std::string> m_order;                 // usernames online, by registration
    std::map<std::uint64_t, Relay> m_relays;
    std::uint64_t m_next_token = 1;
};

// Field checks shared with the client and the stream codec: a username the
// clean server accepts, and standard base64 with padding of exactly `n` bytes.
bool username_ok(const std::string& name);
bool b64_of_size(const Json& v, std::size_t n);

}  // namespace msglab::signal
