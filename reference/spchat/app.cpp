#include "spchat/app.hpp"

#include "core/crypto.hpp"

#include <algorithm>

namespace msglab::spchat {

namespace {

Json msg(const std::string& room, const std::string& nick, const std::string& text) {
    Json j;
    j["type"] = "MSG";
    j["room"] = room;
    j["nick"] = nick;
    j["text"] = text;
    return j;
}

SharedBytes encode(const Json& j) { return std::make_shared<const Bytes>(server_frame(j)); }

Bytes password_hash(const std::string& password) {
    auto d = crypto::sha256(Bytes(password.begin(), password.end()));
    return Bytes(d.begin(), d.end());
}

// At most `n` bytes of `s` for an error text, cut on a UTF-8 boundary.
std::string clip(const std::string& s, std::size_t n = 64) {
    if (s.size() <= n) return s;
    std::size_t i = n;
    while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
    return s.substr(0, i) + "...";
}

}  // namespace

App::App(AppConfig config) : m_config(std::move(config)) {
    for (const auto& [name, rule] : m_config.rooms) {
        Room r;
        r.configured = true;
        if (rule.password) r.password_hash = hex(password_hash(*rule.password));
        r.allowed = rule.members;
        m_rooms.emplace(name, std::move(r));
    }
}

std::uint64_t App::max_frame() const {
    return m_config.plants.has(plant::unbounded_frame) ? kMaxLengthPrefix : m_config.max_frame;
}

void App::opened(ConnId conn) { m_conns.emplace(conn, Conn{}); }

std::optional<std::string> App::nick_of(ConnId conn) const {
    auto it = m_conns.find(conn);
    if (it == m_conns.end() || it->second.nick.empty()) return std::nullopt;
    return it->second.nick;
}

std::vector<std::string> App::members(const std::string& room) const {
    std::vector<std::string> out;
    auto it = m_rooms.find(room);
    if (it == m_rooms.end()) return out;
    for (ConnId m : it->second.members) {
        auto c = m_conns.find(m);
        out.push_back(c == m_conns.end() || c->second.nick.empty() ? "unknown" : c->second.nick);
    }
    // The original lists a Python set (no order); sorted is deterministic.
    std::sort(out.begin(), out.end());
    return out;
}

void App::info(Effects& fx, ConnId to, const std::string& text) const {
    Json j;
    j["type"] = "INFO";
    j["text"] = text;
    fx.send.emplace_back(to, encode(j));
}

void App::error(Effects& fx, ConnId to, const std::string& text) const {
    Json j;
    j["type"] = "ERROR";
    j["text"] = text;
    fx.send.emplace_back(to, encode(j));
}

void App::to_room(Effects& fx, const std::string& room, const Json& message, ConnId except) const {
    auto it = m_rooms.find(room);
    if (it == m_rooms.end()) return;
    SharedBytes bytes;
    for (ConnId m : it->second.members) {
        if (m == except) continue;
        if (!bytes) bytes = encode(message);
        fx.send.emplace_back(m, bytes);
    }
}

void App::leave_room(Conn& c, ConnId conn) {
    if (!c.room) return;
    auto it = m_rooms.find(*c.room);
    if (it != m_rooms.end()) {
        auto& v = it->second.members;
        v.erase(std::remove(v.begin(), v.end(), conn), v.end());
        // An empty room is forgotten unless it is protected: a password
        // stays with its room for the server's lifetime.
        if (v.empty() && !it->second.configured && !it->second.password_hash) m_rooms.erase(it);
    }
    c.room.reset();
}

bool App::authorized(const Room& room, const std::string& nick, const Json& request) const {
    if (m_config.plants.has(plant::join_no_acl)) return true;
    if (room.allowed && !room.allowed->count(nick)) return false;
    if (room.password_hash) {
        auto pw = string_field(request, "password");
        if (!pw) return false;
        return crypto::constant_time_equal(unhex(*room.password_hash), password_hash(*pw));
    }
    return true;
}

Effects App::frame(ConnId id, std::string_view body) {
    Effects fx;
    auto cit = m_conns.find(id);
    if (cit == m_conns.end()) return fx;
    Conn& c = cit->second;
    auto m = parse(body);
    if (!m) {
        error(fx, id, "malformed frame: not a JSON object with a string \"type\"");
        fx.close.push_back(id);
        return fx;
    }
    const std::string type = (*m)["type"].get<std::string>();
    if (type == "PING") {
        Json j;
        j["type"] = "PONG";
        fx.send.emplace_back(id, encode(j));
    } else if (type == "HELLO") {
        on_hello(fx, id, c, *m);
    } else if (type == "JOIN") {
        on_join(fx, id, c, *m);
    } else if (type == "WHO") {
        on_who(fx, id, c, *m);
    } else if (type == "MSG") {
        on_msg(fx, id, c, *m);
    } else if (type == "LEAVE") {
        on_leave(fx, id, c);
    } else if (type == "QUIT") {
        info(fx, id, "Goodbye!");
        fx.close.push_back(id);
    } else if ((type == "FILE_START" || type == "FILE_CHUNK" || type == "FILE_END") && on_file(fx, id, c, *m)) {
        // relayed or refused
    } else {
        error(fx, id, "Unknown type: " + clip(type));
    }
    return fx;
}

Effects App::oversized(ConnId id, std::uint64_t announced) {
    Effects fx;
    error(fx, id,
          "frame too large: " + std::to_string(announced) + " bytes (limit " + std::to_string(m_config.max_frame) + ")");
    fx.close.push_back(id);
    return fx;
}

Effects App::closed(ConnId id) {
    Effects fx;
    auto it = m_conns.find(id);
    if (it == m_conns.end()) return fx;
    Conn& c = it->second;
    if (c.room && !c.nick.empty()) {
        const std::string room = *c.room;
        leave_room(c, id);
        to_room(fx, room, msg(room, "server", c.nick + " left the room"), id);
    } else {
        leave_room(c, id);
    }
    // The current nick is released. Under spchat.nick-squat the nicks said
    // before stay bound to this dead connection, as the original's cleanup
    // only knows the last one.
    auto n = m_nicks.find(c.nick);
    if (!c.nick.empty() && n != m_nicks.end() && n->second == id) m_nicks.erase(n);
    m_conns.erase(it);
    return fx;
}

void App::on_hello(Effects& fx, ConnId id, Conn& c, const Json& m) {
    const std::string nick = lower(strip(string_field(m, "nick").value_or("")));
    if (nick.empty()) return error(fx, id, "nick required in HELLO");
    if (nick.size() > m_config.max_nick_bytes)
        return error(fx, id, "nick too long (at most " + std::to_string(m_config.max_nick_bytes) + " bytes)");
    if (nick == "server") return error(fx, id, "nick 'server' is reserved");
    auto held = m_nicks.find(nick);
    if (held != m_nicks.end() && held->second != id) {
        error(fx, id, "Nickname already in use!");
        fx.close.push_back(id);
        return;
    }
    if (!c.nick.empty() && c.nick != nick) {
        if (m_config.plants.has(plant::nick_squat)) {
            // The original keeps the old mapping: the old nick stays taken.
            if (m_nicks.size() >= 100'000) return error(fx, id, "too many nicks");
            c.old.push_back(c.nick);
        } else {
            m_nicks.erase(c.nick);
        }
    }
    m_nicks[nick] = id;
    c.nick = nick;
    info(fx, id, "hello " + nick);
}

void App::on_join(Effects& fx, ConnId id, Conn& c, const Json& m) {
    auto rit = m.find("room");
    std::string room = "lobby";
    if (rit != m.end()) {
        if (!rit->is_string()) return error(fx, id, "room must be a string");
        room = rit->get<std::string>();
    }
    c.last_room = room;  // as the original, before any check
    if (c.nick.empty()) return error(fx, id, "Say HELLO first to register your nick");
    if (room.empty()) return error(fx, id, "room name required");
    if (room.size() > m_config.max_room_bytes)
        return error(fx, id, "room name too long (at most " + std::to_string(m_config.max_room_bytes) + " bytes)");
    const bool planted = m_config.plants.has(plant::join_no_acl);
    auto it = m_rooms.find(room);
    if (it == m_rooms.end()) {
        if (m_rooms.size() >= m_config.max_rooms) return error(fx, id, "too many rooms");
        Room r;
        auto pw = string_field(m, "password");
        if (pw && !pw->empty() && !planted) {
            if (pw->size() > m_config.max_password_bytes) return error(fx, id, "password too long");
            r.password_hash = hex(password_hash(*pw));
        }
        it = m_rooms.emplace(room, std::move(r)).first;
    } else if (!authorized(it->second, c.nick, m)) {
        return error(fx, id, "not authorized to join room");
    }
    if (c.room != room) {
        leave_room(c, id);
        it = m_rooms.find(room);
        if (it == m_rooms.end()) it = m_rooms.emplace(room, Room{}).first;  // cannot happen: it was just found
        it->second.members.push_back(id);
        c.room = room;
    }
    const char* tag = planted ? " (VULNERABLE)" : " (SECURE)";
    info(fx, id, c.nick + " joined " + room + tag);
    to_room(fx, room, msg(room, "server", c.nick + " joined the room" + tag), id);
}

void App::on_who(Effects& fx, ConnId id, Conn& c, const Json& m) {
    std::optional<std::string> room = string_field(m, "room");
    if (!room) room = c.last_room;
    if (!room || c.room != room) return error(fx, id, "You are not in any room");
    Json j;
    j["type"] = "WHO_LIST";
    j["room"] = *room;
    j["members"] = members(*room);
    fx.send.emplace_back(id, encode(j));
}

void App::on_msg(Effects& fx, ConnId id, Conn& c, const Json& m) {
    if (c.nick.empty()) return error(fx, id, "Say HELLO first");
    if (auto r = m.find("room"); r != m.end()) {
        if (!r->is_string()) return error(fx, id, "room must be a string");
        c.last_room = r->get<std::string>();  // as the original, even when the MSG fails
    }
    if (!c.last_room || c.room != c.last_room) return error(fx, id, "You haven't joined a room yet!");
    const std::string& room = *c.last_room;
    auto t = m.find("text");
    if (t != m.end() && !t->is_string() && !t->is_null()) return error(fx, id, "text must be a string");
    const std::string text = strip(string_field(m, "text").value_or(""));
    if (text.empty()) return;
    if (text.size() > m_config.max_text_bytes)
        return error(fx, id, "text too long (at most " + std::to_string(m_config.max_text_bytes) + " bytes)");
    if (m_config.plants.has(plant::magic_reply) && upper(text) == kMagicText) {
        fx.send.emplace_back(id, encode(msg(room, "server", kMagicReply)));
        return;
    }
    to_room(fx, room, msg(room, c.nick, text), id);
}

void App::on_leave(Effects& fx, ConnId id, Conn& c) {
    if (c.nick.empty() || !c.last_room) return error(fx, id, "You're not in any room");
    if (c.room != c.last_room) return;  // not a member: no reply, as the original
    const std::string room = *c.room;
    leave_room(c, id);
    c.last_room.reset();
    info(fx, id, "You left " + room);
    to_room(fx, room, msg(room, "server", c.nick + " left the room"), id);
}

bool App::on_file(Effects& fx, ConnId id, Conn& c, const Json& m) {
    auto pl = m.find("payload");
    std::optional<std::string> fid;
    if (pl != m.end() && pl->is_object()) fid = string_field(*pl, "file_id");
    if (!fid || fid->size() < 8) {
        error(fx, id, "BAD_FILE_ID");
        return true;
    }
    if (!m_config.plants.has(plant::spoofed_from)) {
        if (c.nick.empty()) {
            error(fx, id, "Say HELLO first");
            return true;
        }
        if (lower(strip(string_field(m, "from").value_or(""))) != c.nick) {
            error(fx, id, "from does not match your nick");
            return true;
        }
    }
    const std::string to = lower(strip(string_field(m, "to").value_or("")));
    if (auto n = m_nicks.find(to); !to.empty() && n != m_nicks.end()) {
        // A nick left behind by spchat.nick-squat may name a closed
        // connection: the frame goes nowhere, as the original's send fails.
        if (m_conns.count(n->second)) fx.send.emplace_back(n->second, encode(m));
        return true;
    }
    if (!to.empty() && c.room == to) {
        to_room(fx, to, m, id);
        return true;
    }
    return false;  // the original falls through to "Unknown type"
}

}  // namespace msglab::spchat
