// The CSMP server's logic, sans-I/O (PROTOCOLS.md section 1): sessions, the
// HTTP routes of section 1.3, chat rooms (1.4) and call signalling (1.5).
// The Beast server (server.hpp) only moves bytes; everything a client can
// cause happens here, which is what the tests and the fuzzers drive.
//
// Clean behaviour, where the original differs:
//   - sessions are uuid4 from the system's generator, live `expires_in`
//     (1800 s, sliding) as advertised, and an unknown id is refused (401, or
//     403 on a WebSocket upgrade), never created;
//   - the session table, rooms, sockets per room, registered names and live
//     calls are bounded; a full session table refuses new handshakes (503)
//     after dropping expired sessions;
//   - /chat/send works, history opens across sessions, call history is
//     served at /call/history and at the original's /call/call/history;
//   - rooms: `room_<a>_<b>` admits only a and b; any other room only when
//     configured open (default: "general"); history follows the same rule;
//   - one identity's call socket is not taken over from another session;
//     call events are checked by the call state machine (calls.hpp);
//   - bad frames get an error message instead of a silent drop or a closed
//     socket; frames beyond a rate get an error message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/clock.hpp"
#include "core/registry.hpp"
#include "csmp/calls.hpp"
#include "csmp/store.hpp"

namespace msglab::csmp {

namespace plant {
inline constexpr const char* session_fallback = "csmp.session-fallback";
inline constexpr const char* room_no_acl = "csmp.room-no-acl";
inline constexpr const char* call_hijack = "csmp.call-hijack";
inline constexpr const char* predictable_session_id = "csmp.predictable-session-id";
inline constexpr const char* hardcoded_secret = "csmp.hardcoded-secret";
inline constexpr const char* debug_traceback = "csmp.debug-traceback";
}  // namespace plant

inline constexpr std::uint16_t kDefaultPort = 8000;
inline constexpr const char* kProtocolVersion = "1.0.0";

struct AppConfig {
    PlantSet plants;
    std::uint64_t session_ttl_s = 1800;
    std::size_t max_sessions = 100'000;
    std::size_t max_registered = 10'000;
    std::size_t max_identity_bytes = 256;
    std::size_t max_message_chars = 1000;  // code points, as the original
    std::size_t max_rooms = 10'000;
    std::size_t max_sockets_per_room = 1'000;
    std::size_t max_history_limit = 1'000;
    std::set<std::string> open_rooms = {"general"};
    // Per socket: a token bucket of `burst` frames refilled at `rate` per second.
    double chat_rate = 20, chat_burst = 40;
    double call_rate = 50, call_burst = 100;
    CallConfig calls;
};

struct HttpRequest {
    std::string method;
    std::string target;                          // path and query, as sent
    std::map<std::string, std::string> headers;  // names in lower case
    std::string body;
};

struct HttpResponse {
    int status = 200;
    std::string body;  // JSON unless content_type says otherwise
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;  // extra ones (location)
};

using ConnId = std::uint64_t;

// What the server must do after a WebSocket event.
struct Effects {
    std::vector<std::pair<ConnId, std::string>> send;  // text frames
    std::vector<std::pair<ConnId, int>> close;         // close code
};

// The verdict on a WebSocket upgrade request.
struct Admission {
    bool ok = false;
    HttpResponse refusal;  // 403 when !ok
    std::string session_id;
    std::string client_id;
    std::string room;  // chat only
};

class App {
public:
    // `store` may be null: chat then fails with an error (tests of routes
    // that need no history).
    App(AppConfig config, HistoryStore* store, Rng& rng);

    HttpResponse http(const HttpRequest& request, std::uint64_t now_us);

    Admission admit_chat(const std::string& target, std::uint64_t now_us);
    Effects chat_opened(ConnId conn, const Admission& a);
    Effects chat_text(ConnId conn, const std::string& text, std::uint64_t now_us);
    void chat_closed(ConnId conn);

    Admission admit_call(const std::string& target, std::uint64_t now_us);
    Effects call_opened(ConnId conn, const Admission& a);
    Effects call_text(ConnId conn, const std::string& text, std::uint64_t now_us);
    Effects call_closed(ConnId conn, std::uint64_t now_us);

    // Timers: ringing calls that time out, idle calls, expired sessions.
    Effects tick(std::uint64_t now_us);

    std::size_t sessions() const { return m_sessions.size(); }
    std::size_t chat_sockets() const { return m_chat.size(); }
    const CallBook& calls() const { return m_calls; }
    const AppConfig& config() const { return m_config; }
    bool room_member(const std::string& identity, const std::string& room) const;

private:
    struct Session {
        std::string client_id;
        std::uint64_t expires_s = 0;
    };
    struct Bucket {
        double tokens = 0;
        std::uint64_t at_us = 0;
    };
    struct ChatSocket {
        std::string session_id, client_id, room;
        Bucket bucket;
    };
    struct CallSocket {
        std::string session_id, client_id;
        Bucket bucket;
    };
    enum class Lookup { missing, not_found, ok };

    std::string new_session_id();
    Lookup lookup(const std::string& sid, std::uint64_t now_s, std::string& client_id);
    void drop_expired(std::uint64_t now_s);
    bool add_session(const std::string& sid, std::string client_id, std::uint64_t now_s);
    HttpResponse route(const HttpRequest& r, const std::string& path, const std::string& query,
                       std::uint64_t now_us);
    HttpResponse server_error(const std::string& detail, const std::string& what, const char* where) const;
    Effects deliver_calls(const std::vector<CallOut>& outs) const;
    bool take(Bucket& b, double rate, double burst, std::uint64_t now_us) const;
    std::vector<ConnId> room_sockets(const std::string& room) const;

    AppConfig m_config;
    HistoryStore* m_store;
    Rng& m_rng;
    std::uint64_t m_counter = 0;
    std::unordered_map<std::string, Session> m_sessions;
    std::set<std::pair<std::uint64_t, std::string>> m_by_expiry;
    std::set<std::string> m_registered;
    std::map<ConnId, ChatSocket> m_chat;
    std::map<std::string, std::set<ConnId>> m_rooms;
    std::map<ConnId, CallSocket> m_call_conns;
    std::map<std::string, ConnId> m_call_identity;  // identity -> its call socket
    CallBook m_calls;
};

// Query parameter `key` of a request target, percent-decoded; nullopt when absent.
std::optional<std::string> query_param(const std::string& target, const std::string& key);
// Python's len() of UTF-8 text: code points; nullopt when not UTF-8.
std::optional<std::size_t> code_points(const std::string& text);

}  // namespace msglab::csmp
