// The SP-SimpleChat server's logic, sans-I/O (PROTOCOLS.md section 2.3):
// nicks, rooms, chat relay and file relay. The Asio server (server.hpp) only
// cuts frames and moves bytes; everything a client can cause happens here,
// which is what the tests and the fuzzers drive.
//
// Replies carry the original's exact texts. Clean behaviour, where the
// original differs (each original flaw is a plant):
//   - rooms are protected (spchat.join-no-acl turns it off): a room named by
//     `--room NAME=PASSWORD` or `--room-members NAME=a,b` is protected from
//     the start; any other room is created by its first JOIN, and when that
//     JOIN carries a "password" the room keeps it for the server's lifetime.
//     A JOIN to a protected room without the right password (or by a nick
//     not on its member list) gets ERROR "not authorized to join room", the
//     original's own secure handler's text; a room created without a
//     password is open, like "lobby". WHO shows a room's members to its
//     members only.
//   - a second HELLO renames the connection and releases the old nick, and a
//     nick is released when its connection closes (spchat.nick-squat keeps
//     every nick a connection ever said bound to it forever, as the
//     original); "server", the name of the server's own messages, is
//     reserved;
//   - the "from" of a relayed FILE_* frame must be the sender's nick (case
//     and surrounding spaces aside, as the original client writes the nick
//     as typed) and FILE_* needs a HELLO first (spchat.spoofed-from relays
//     any "from");
//   - MSG "BACKDOOR" is relayed like any text (spchat.magic-reply answers
//     with the original's hidden reply);
//   - frames are bounded (spchat.unbounded-frame: any length is read), and
//     so are nicks, room names, texts, the number of rooms and connections;
//     a frame that is not a JSON object with a string "type" gets an ERROR
//     before the connection closes (the original closes silently);
//   - a member whose connection closes is announced to the room.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/registry.hpp"
#include "spchat/wire.hpp"

namespace msglab::spchat {

namespace plant {
inline constexpr const char* join_no_acl = "spchat.join-no-acl";
inline constexpr const char* magic_reply = "spchat.magic-reply";
inline constexpr const char* nick_squat = "spchat.nick-squat";
inline constexpr const char* unbounded_frame = "spchat.unbounded-frame";
inline constexpr const char* spoofed_from = "spchat.spoofed-from";
}  // namespace plant

inline constexpr const char* kMagicText = "BACKDOOR";
inline constexpr const char* kMagicReply = "You found the secret backdoor!";

struct RoomRule {
    std::optional<std::string> password;
    std::optional<std::set<std::string>> members;  // nicks, lower case
};

struct AppConfig {
    PlantSet plants;
    std::size_t max_frame = kDefaultMaxFrame;
    std::size_t max_nick_bytes = 64;
    std::size_t max_room_bytes = 128;
    std::size_t max_text_bytes = 16 * 1024;
    std::size_t max_rooms = 10'000;
    std::size_t max_password_bytes = 256;
    std::map<std::string, RoomRule> rooms;  // configured protected rooms
};

using ConnId = std::uint64_t;
using SharedBytes = std::shared_ptr<const Bytes>;

// What the server must do after an event: frames to send (one encoding shared
// by every member of a broadcast), then connections to close once their
// frames are written.
struct Effects {
    std::vector<std::pair<ConnId, SharedBytes>> send;
    std::vector<ConnId> close;
};

class App {
public:
    explicit App(AppConfig config);

    void opened(ConnId conn);
    // One whole frame's body from `conn`.
    Effects frame(ConnId conn, std::string_view body);
    // A length prefix above the bound: an ERROR, then the connection closes.
    Effects oversized(ConnId conn, std::uint64_t announced);
    Effects closed(ConnId conn);

    const AppConfig& config() const { return m_config; }
    std::uint64_t max_frame() const;
    std::size_t connections() const { return m_conns.size(); }
    std::size_t rooms() const { return m_rooms.size(); }
    std::size_t nicks() const { return m_nicks.size(); }
    std::optional<std::string> nick_of(ConnId conn) const;
    std::vector<std::string> members(const std::string& room) const;

private:
    struct Conn {
        std::string nick;              // empty before HELLO
        std::vector<std::string> old;  // spchat.nick-squat: every nick said before
        std::optional<std::string> last_room;
        std::optional<std::string> room;  // the room it is a member of
    };
    struct Room {
        std::vector<ConnId> members;  // join order
        std::optional<std::string> password_hash;
        std::optional<std::set<std::string>> allowed;
        bool configured = false;
    };

    void info(Effects& fx, ConnId to, const std::string& text) const;
    void error(Effects& fx, ConnId to, const std::string& text) const;
    void to_room(Effects& fx, const std::string& room, const Json& message, ConnId except) const;
    void leave_room(Conn& c, ConnId conn);
    bool authorized(const Room& room, const std::string& nick, const Json& request) const;

    void on_hello(Effects& fx, ConnId id, Conn& c, const Json& m);
    void on_join(Effects& fx, ConnId id, Conn& c, const Json& m);
    void on_who(Effects& fx, ConnId id, Conn& c, const Json& m);
    void on_msg(Effects& fx, ConnId id, Conn& c, const Json& m);
    void on_leave(Effects& fx, ConnId id, Conn& c);
    bool on_file(Effects& fx, ConnId id, Conn& c, const Json& m);

    AppConfig m_config;
    std::unordered_map<ConnId, Conn> m_conns;
    std::unordered_map<std::string, ConnId> m_nicks;  // nick -> connection (maybe gone: nick-squat)
    std::map<std::string, Room> m_rooms;
};

}  // namespace msglab::spchat
