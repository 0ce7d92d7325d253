#include "csmp/app.hpp"

#include "csmp/wire.hpp"
#include "core/pyjson.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace msglab::csmp {

namespace {

std::string dump(const Json& j) {
    // Compact, UTF-8 kept as is: Starlette's JSONResponse. Invalid UTF-8
    // cannot reach here (every input string was parsed as JSON or checked).
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

// A WebSocket message as the original's server writes it: Python's
// json.dumps defaults, as its capture shows.
std::string ws_dump(const Json& j) { return python_dumps(j); }

HttpResponse json_response(int status, const Json& body) {
    HttpResponse r;
    r.status = status;
    r.body = dump(body);
    return r;
}

HttpResponse detail(int status, const std::string& text) {
    Json j;
    j["detail"] = text;
    return json_response(status, j);
}

HttpResponse detail_code(int status, const std::string& text, const std::string& code) {
    Json j;
    j["detail"] = text;
    j["code"] = code;
    return json_response(status, j);
}

// FastAPI's validation error body, one error.
HttpResponse unprocessable(const char* type, Json loc, const std::string& msg, const Json& input) {
    Json e;
    e["type"] = type;
    e["loc"] = std::move(loc);
    e["msg"] = msg;
    e["input"] = input;
    Json j;
    j["detail"] = "Data validation failed";
    j["errors"] = Json::array({e});
    return json_response(422, j);
}

// The body as a JSON object, or the 422 FastAPI gives.
std::optional<Json> json_body(const HttpRequest& r, HttpResponse& error) {
    Json j = Json::parse(r.body, nullptr, false);
    if (j.is_discarded()) {
        error = unprocessable("json_invalid", Json::array({"body", 0}), "JSON decode error", Json::object());
        return std::nullopt;
    }
    if (!j.is_object()) {
        error = unprocessable("model_attributes_type", Json::array({"body"}), "Input should be a valid dictionary", j);
        return std::nullopt;
    }
    return j;
}

// A required string field, or the 422.
const std::string* string_field(const Json& body, const char* key, HttpResponse& error) {
    auto it = body.find(key);
    if (it == body.end()) {
        error = unprocessable("missing", Json::array({"body", key}), "Field required", body);
        return nullptr;
    }
    if (!it->is_string()) {
        error = unprocessable("string_type", Json::array({"body", key}), "Input should be a valid string", *it);
        return nullptr;
    }
    return &it->get_ref<const std::string&>();
}

bool starts_with(const std::string& s, std::string_view p) { return s.compare(0, p.size(), p) == 0; }

// Python's s[:n] on UTF-8 text.
std::string first_code_points(const std::string& s, std::size_t n) {
    std::size_t i = 0, cps = 0;
    while (i < s.size() && cps < n) {
        ++i;
        while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xc0) == 0x80) ++i;
        ++cps;
    }
    return s.substr(0, i);
}

}  // namespace

std::optional<std::string> query_param(const std::string& target, const std::string& key) {
    auto q = target.find('?');
    if (q == std::string::npos) return std::nullopt;
    return query_parameter(std::string_view(target).substr(q + 1), key);
}

std::optional<std::size_t> code_points(const std::string& text) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < text.size();) {
        unsigned char b = static_cast<unsigned char>(text[i]);
        std::size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3 : (b >> 3) == 0x1e ? 4 : 0;
        if (len == 0 || i + len > text.size()) return std::nullopt;
        for (std::size_t k = 1; k < len; ++k)
            if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return std::nullopt;
        i += len;
        ++n;
    }
    return n;
}

App::App(AppConfig config, HistoryStore* store, Rng& rng)
    : m_config(std::move(config)),
      m_store(store),
      m_rng(rng),
      m_calls(
          [this] {
              CallConfig c = m_config.calls;
              c.any_party = m_config.plants.has(plant::call_hijack);
              return c;
          }(),
          [this] { return new_session_id(); },
          [this](const std::string& who) { return m_call_identity.count(who) != 0; }) {}

std::string App::new_session_id() {
    char buf[40];
    if (m_config.plants.has(plant::predictable_session_id)) {
        // Sequential ids in uuid4's shape: the next one is the last one plus one.
        std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012llx", static_cast<unsigned long long>(++m_counter));
        return buf;
    }
    return uuid4(m_rng);
}

void App::drop_expired(std::uint64_t now_s) {
    while (!m_by_expiry.empty() && m_by_expiry.begin()->first <= now_s) {
        m_sessions.erase(m_by_expiry.begin()->second);
        m_by_expiry.erase(m_by_expiry.begin());
    }
}

bool App::add_session(const std::string& sid, std::string client_id, std::uint64_t now_s) {
    if (m_sessions.size() >= m_config.max_sessions) drop_expired(now_s);
    if (m_sessions.size() >= m_config.max_sessions) {
        if (!m_config.plants.has(plant::session_fallback)) return false;
        // The original grows without end; even planted, the oldest goes.
        m_sessions.erase(m_by_expiry.begin()->second);
        m_by_expiry.erase(m_by_expiry.begin());
    }
    std::uint64_t expires = now_s + m_config.session_ttl_s;
    auto [it, inserted] = m_sessions.emplace(sid, Session{std::move(client_id), expires});
    if (!inserted) return false;
    m_by_expiry.emplace(expires, sid);
    return true;
}

App::Lookup App::lookup(const std::string& sid, std::uint64_t now_s, std::string& client_id) {
    if (sid.empty()) return Lookup::missing;
    auto it = m_sessions.find(sid);
    if (it != m_sessions.end()) {
        m_by_expiry.erase({it->second.expires_s, sid});
        if (it->second.expires_s <= now_s) {
            m_sessions.erase(it);
            return Lookup::not_found;
        }
        it->second.expires_s = now_s + m_config.session_ttl_s;  // sliding
        m_by_expiry.emplace(it->second.expires_s, sid);
        client_id = it->second.client_id;
        return Lookup::ok;
    }
    if (m_config.plants.has(plant::session_fallback) && sid.size() <= m_config.max_identity_bytes &&
        code_points(sid)) {
        // The original's development fallback: any string is a session,
        // and its identity is the string's first eight characters.
        client_id = first_code_points(sid, 8);
        add_session(sid, client_id, now_s);
        return Lookup::ok;
    }
    return Lookup::not_found;
}

bool App::room_member(const std::string& identity, const std::string& room) const {
    if (m_config.plants.has(plant::room_no_acl)) return true;
    if (m_config.open_rooms.count(room)) return true;
    // room_<a>_<b> with a <= b: the two people it is named after.
    if (!starts_with(room, "room_")) return false;
    std::string rest = room.substr(5);
    if (rest.size() > identity.size() + 1 && starts_with(rest, identity) && rest[identity.size()] == '_') {
        std::string other = rest.substr(identity.size() + 1);
        if (identity <= other) return true;
    }
    if (rest.size() > identity.size() + 1 && rest.compare(rest.size() - identity.size(), identity.size(), identity) == 0 &&
        rest[rest.size() - identity.size() - 1] == '_') {
        std::string other = rest.substr(0, rest.size() - identity.size() - 1);
        if (other <= identity) return true;
    }
    return false;
}

HttpResponse App::server_error(const std::string& text, const std::string& what, const char* where) const {
    Json j;
    j["detail"] = text;
    if (m_config.plants.has(plant::debug_traceback)) {
        // Debug mode, as the original's debug=True: the internals leak.
        j["traceback"] = std::string("Traceback (most recent call last):\n  in ") + where +
                         " (reference/csmp/app.cpp)\n  store " + (m_store ? m_store->path() : std::string("(none)")) +
                         "\n" + what;
    }
    return json_response(500, j);
}

HttpResponse App::http(const HttpRequest& r, std::uint64_t now_us) {
    auto q = r.target.find('?');
    std::string path = r.target.substr(0, q);
    std::string query = q == std::string::npos ? "" : r.target.substr(q + 1);
    try {
        return route(r, path, query, now_us);
    } catch (const std::exception& e) {
        return server_error("Internal server error", e.what(), "App::route");
    }
}

HttpResponse App::route(const HttpRequest& r, const std::string& path, const std::string&, std::uint64_t now_us) {
    const std::uint64_t now_s = now_us / 1'000'000;
    const bool debug = m_config.plants.has(plant::debug_traceback);
    auto redirect = [&](const std::string& to) {
        HttpResponse res;
        res.status = 307;
        res.body.clear();
        res.content_type.clear();
        auto host = r.headers.find("host");
        auto q = r.target.find('?');
        std::string url = (host != r.headers.end() ? "http://" + host->second : std::string()) + to +
                          (q == std::string::npos ? "" : r.target.substr(q));
        res.headers.emplace_back("location", url);
        return res;
    };
    auto method_is = [&](const char* m) { return r.method == m; };
    const HttpResponse not_allowed = detail(405, "Method Not Allowed");

    bool is_public = path == "/" || starts_with(path, "/health") || starts_with(path, "/handshake") ||
                     starts_with(path, "/docs") || starts_with(path, "/openapi.json") ||
                     starts_with(path, "/favicon.ico");
    if (is_public) {
        if (path == "/") {
            if (!method_is("GET")) return not_allowed;
            Json j;
            j["message"] = "Welcome to CSMP Backend!";
            j["version"] = kProtocolVersion;
            j["environment"] = debug ? "development" : "production";
            j["endpoints"] = {{"health", "/health"},       {"handshake", "/handshake"},
                              {"chat_http", "/chat/send"}, {"chat_ws", "/ws/chat"},
                              {"call_ws", "/ws/call"},     {"call_history", "/call/history"}};
            j["docs"] = "/docs";
            j["debug"] = debug;
            return json_response(200, j);
        }
        if (path == "/health") return method_is("GET") ? redirect("/health/") : not_allowed;
        if (path == "/health/") {
            if (!method_is("GET")) return not_allowed;
            Json j;
            j["status"] = "ok";
            j["app_name"] = "CSMP Backend";
            j["version"] = kProtocolVersion;
            j["debug"] = debug;
            return json_response(200, j);
        }
        if (path == "/handshake") return method_is("POST") ? redirect("/handshake/") : not_allowed;
        if (path == "/handshake/") {
            if (!method_is("POST")) return not_allowed;
            HttpResponse err;
            auto body = json_body(r, err);
            if (!body) return err;
            const std::string* client_id = string_field(*body, "client_id", err);
            if (!client_id) return err;
            if (client_id->empty() || client_id->size() > m_config.max_identity_bytes)
                return unprocessable("string_length", Json::array({"body", "client_id"}),
                                     "client_id must be 1 to " + std::to_string(m_config.max_identity_bytes) +
                                         " bytes",
                                     *client_id);
            std::string sid = new_session_id();
            if (!add_session(sid, *client_id, now_s)) return detail(503, "Too many sessions");
            Json j;
            j["session_id"] = sid;
            j["client_id"] = *client_id;
            j["protocol_version"] = kProtocolVersion;
            j["expires_in"] = m_config.session_ttl_s;
            return json_response(200, j);
        }
        if (path == "/handshake/register") {
            if (!method_is("POST")) return not_allowed;
            HttpResponse err;
            auto body = json_body(r, err);
            if (!body) return err;
            const std::string* user = string_field(*body, "user_id", err);
            if (!user) return err;
            std::string u = *user;
            auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
            while (!u.empty() && ws(u.back())) u.pop_back();
            std::size_t lead = 0;
            while (lead < u.size() && ws(u[lead])) ++lead;
            u.erase(0, lead);
            if (u.empty()) return detail(400, "user_id required");
            if (u.size() > m_config.max_identity_bytes) return detail(400, "user_id too long");
            if (m_registered.count(u)) return detail(409, "User already exists");
            if (m_registered.size() >= m_config.max_registered) return detail(503, "Too many users");
            m_registered.insert(u);
            Json j;
            j["status"] = "ok";
            j["user_id"] = u;
            return json_response(200, j);
        }
        if (debug && (path == "/docs" || path == "/openapi.json")) {
            Json j;
            j["openapi"] = "3.1.0";
            j["info"] = {{"title", "CSMP Backend"}, {"version", kProtocolVersion}};
            return json_response(200, j);
        }
        return detail(404, "Not Found");
    }

    // The session guard.
    std::string sid;
    if (auto h = r.headers.find("x-session-id"); h != r.headers.end())
        sid = h->second;
    else if (auto qp = query_param(r.target, "session_id"))
        sid = *qp;
    std::string identity;
    switch (lookup(sid, now_s, identity)) {
        case Lookup::missing:
            return detail_code(401, "Identity verification required. Please login.", "SESSION_MISSING");
        case Lookup::not_found:
            return detail_code(401, "Session has expired or server was restarted. Please re-login.",
                               "SESSION_NOT_FOUND");
        case Lookup::ok: break;
    }

    if (path == "/chat/send") {
        if (!method_is("POST")) return not_allowed;
        HttpResponse err;
        auto body = json_body(r, err);
        if (!body) return err;
        const std::string* message = string_field(*body, "message", err);
        if (!message) return err;
        std::string room = "general";
        if (body->contains("room_id")) {
            const std::string* rm = string_field(*body, "room_id", err);
            if (!rm) return err;
            room = *rm;
        }
        auto n = code_points(*message);
        if (!n || *n == 0 || *n > m_config.max_message_chars)
            return unprocessable("string_length", Json::array({"body", "message"}),
                                 "message must be 1 to " + std::to_string(m_config.max_message_chars) + " characters",
                                 *message);
        if (room.empty() || room.size() > m_config.max_identity_bytes || !room_member(identity, room))
            return detail(403, "Not a member of this room");
        if (!m_store) return server_error("Internal server error while saving message", "no history store", "chat_send");
        StoredMessage m;
        try {
            m = m_store->append(identity, sid, room, *message, now_us);
        } catch (const StoreError& e) {
            return server_error("Internal server error while saving message", e.what(), "chat_send");
        }
        Json j;
        j["status"] = "sent";
        j["client_id"] = identity;
        j["message"] = *message;
        j["id"] = m.id;
        return json_response(200, j);
    }
    if (starts_with(path, "/history/")) {
        if (!method_is("GET")) return not_allowed;
        std::string room = percent_decode(std::string_view(path).substr(9), false);
        if (room.empty() || room.find('/') != std::string::npos) return detail(404, "Not Found");
        std::size_t limit = 50;
        if (auto l = query_param(r.target, "limit")) {
            char* end = nullptr;
            long long v = std::strtoll(l->c_str(), &end, 10);
            if (l->empty() || *end || v < 1 || static_cast<unsigned long long>(v) > m_config.max_history_limit)
                return unprocessable("int_parsing", Json::array({"query", "limit"}),
                                     "limit must be an integer from 1 to " + std::to_string(m_config.max_history_limit),
                                     *l);
            limit = static_cast<std::size_t>(v);
        }
        if (!room_member(identity, room)) return detail(403, "Not a member of this room");
        if (!m_store) return server_error("History load failed", "no history store", "history");
        std::vector<StoredMessage> rows;
        try {
            rows = m_store->recent(room, limit);
        } catch (const StoreError& e) {
            return server_error("History load failed", e.what(), "history");
        }
        Json arr = Json::array();
        for (const auto& m : rows) {
            Json j;
            j["id"] = m.id;
            j["from"] = m.client_id;
            j["message"] = m.message;
            j["status"] = m.status;
            j["timestamp"] = iso_time(m.created_at);
            j["room_id"] = m.room_id;
            arr.push_back(std::move(j));
        }
        return json_response(200, arr);
    }
    if (path == "/call/call/history" || path == "/call/history") {
        if (!method_is("GET")) return not_allowed;
        Json calls = Json::array();
        for (const Call& c : m_calls.history(identity, 100)) {
            Json j;
            j["call_id"] = c.id;
            j["caller_id"] = c.caller;
            j["callee_id"] = c.callee;
            j["call_type"] = c.call_type;
            j["status"] = call_state_name(c.state);
            j["started_at"] = iso_time(sql_time(c.started_ms * 1000));
            j["ended_at"] = c.ended_ms ? Json(iso_time(sql_time(c.ended_ms * 1000))) : Json(nullptr);
            calls.push_back(std::move(j));
        }
        Json j;
        j["count"] = calls.size();
        j["calls"] = std::move(calls);
        return json_response(200, j);
    }
    return detail(404, "Not Found");
}

Admission App::admit_chat(const std::string& target, std::uint64_t now_us) {
    Admission a;
    a.refusal = detail(403, "Forbidden");
    a.refusal.status = 403;
    auto sid = query_param(target, "session_id");
    auto room = query_param(target, "room_id");
    if (!sid || !room || sid->empty() || room->empty() || room->size() > m_config.max_identity_bytes) return a;
    if (lookup(*sid, now_us / 1'000'000, a.client_id) != Lookup::ok) return a;
    if (!room_member(a.client_id, *room)) return a;
    auto it = m_rooms.find(*room);
    if (it == m_rooms.end() && m_rooms.size() >= m_config.max_rooms) return a;
    if (it != m_rooms.end() && it->second.size() >= m_config.max_sockets_per_room) return a;
    a.ok = true;
    a.session_id = *sid;
    a.room = *room;
    return a;
}

Effects App::chat_opened(ConnId conn, const Admission& a) {
    ChatSocket s;
    s.session_id = a.session_id;
    s.client_id = a.client_id;
    s.room = a.room;
    s.bucket.tokens = m_config.chat_burst;
    m_chat[conn] = std::move(s);
    m_rooms[a.room].insert(conn);
    return {};
}

void App::chat_closed(ConnId conn) {
    auto it = m_chat.find(conn);
    if (it == m_chat.end()) return;
    auto room = m_rooms.find(it->second.room);
    if (room != m_rooms.end()) {
        room->second.erase(conn);
        if (room->second.empty()) m_rooms.erase(room);
    }
    m_chat.erase(it);
}

bool App::take(Bucket& b, double rate, double burst, std::uint64_t now_us) const {
    if (b.at_us != 0 && now_us > b.at_us) b.tokens = std::min(burst, b.tokens + rate * double(now_us - b.at_us) / 1e6);
    b.at_us = now_us;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
}

std::vector<ConnId> App::room_sockets(const std::string& room) const {
    auto it = m_rooms.find(room);
    if (it == m_rooms.end()) return {};
    return {it->second.begin(), it->second.end()};
}

Effects App::chat_text(ConnId conn, const std::string& text, std::uint64_t now_us) {
    Effects fx;
    auto it = m_chat.find(conn);
    if (it == m_chat.end()) return fx;
    ChatSocket& s = it->second;
    auto error = [&](const std::string& d, const std::string& code) {
        fx.send.emplace_back(conn, ws_dump(error_message(d, code)));
        return fx;
    };
    if (!take(s.bucket, m_config.chat_rate, m_config.chat_burst, now_us))
        return error("too many messages; slow down", "rate_limited");
    // The session may have expired since the upgrade.
    std::string identity;
    if (lookup(s.session_id, now_us / 1'000'000, identity) != Lookup::ok) {
        fx.send.emplace_back(conn, ws_dump(error_message("session expired", "session_expired")));
        fx.close.emplace_back(conn, 1008);
        return fx;
    }
    std::string message;
    if (!text.empty() && text.front() == '{') {
        Json j = Json::parse(text, nullptr, false);
        if (j.is_discarded() || !j.is_object()) return error("not valid JSON", "bad_json");
        auto type = j.find("type");
        if (type == j.end() || !type->is_string() || type->get_ref<const std::string&>() != "chat")
            return error("only messages of type 'chat' are handled here", "unknown_type");
        auto m = j.find("message");
        if (m == j.end() || !m->is_string()) return error("a chat message needs 'message', a string", "bad_message");
        message = m->get<std::string>();
    } else {
        // Any other text is the message itself, as the original.
        message = text;
    }
    auto n = code_points(message);
    if (!n || *n == 0 || *n > m_config.max_message_chars)
        return error("a message is 1 to " + std::to_string(m_config.max_message_chars) + " characters", "bad_message");
    if (!m_store) return error("history store unavailable", "store_failed");
    StoredMessage stored;
    try {
        stored = m_store->append(s.client_id, s.session_id, s.room, message, now_us);
    } catch (const StoreError& e) {
        std::string d = "could not store the message";
        if (m_config.plants.has(plant::debug_traceback)) d += ": " + std::string(e.what());
        return error(d, "store_failed");
    }
    Json out;
    out["type"] = "chat";
    out["from"] = s.client_id;
    out["room_id"] = s.room;
    out["message"] = message;
    out["timestamp"] = iso_time(stored.created_at);
    std::string frame = ws_dump(out);
    for (ConnId c : room_sockets(s.room)) fx.send.emplace_back(c, frame);
    return fx;
}

Admission App::admit_call(const std::string& target, std::uint64_t now_us) {
    Admission a;
    a.refusal = detail(403, "Forbidden");
    auto sid = query_param(target, "session_id");
    if (!sid || sid->empty()) return a;
    if (lookup(*sid, now_us / 1'000'000, a.client_id) != Lookup::ok) return a;
    auto held = m_call_identity.find(a.client_id);
    if (held != m_call_identity.end() && !m_config.plants.has(plant::call_hijack)) {
        // Another session's socket holds this identity's calls.
        auto c = m_call_conns.find(held->second);
        if (c != m_call_conns.end() && c->second.session_id != *sid) return a;
    }
    a.ok = true;
    a.session_id = *sid;
    return a;
}

Effects App::call_opened(ConnId conn, const Admission& a) {
    Effects fx;
    auto held = m_call_identity.find(a.client_id);
    if (held != m_call_identity.end() && held->second != conn) {
        // The same session opened a new socket (or, planted, anyone did):
        // the newest takes over and the old one is closed.
        m_call_conns.erase(held->second);
        fx.close.emplace_back(held->second, 1000);
    }
    CallSocket s;
    s.session_id = a.session_id;
    s.client_id = a.client_id;
    s.bucket.tokens = m_config.call_burst;
    m_call_conns[conn] = std::move(s);
    m_call_identity[a.client_id] = conn;
    return fx;
}

Effects App::deliver_calls(const std::vector<CallOut>& outs) const {
    Effects fx;
    for (const auto& o : outs) {
        auto it = m_call_identity.find(o.to);
        if (it != m_call_identity.end()) fx.send.emplace_back(it->second, ws_dump(o.message));
    }
    return fx;
}

Effects App::call_text(ConnId conn, const std::string& text, std::uint64_t now_us) {
    auto it = m_call_conns.find(conn);
    if (it == m_call_conns.end()) return {};
    CallSocket& s = it->second;
    if (!take(s.bucket, m_config.call_rate, m_config.call_burst, now_us)) {
        Effects fx;
        fx.send.emplace_back(conn, ws_dump(error_message("too many call events; slow down", "rate_limited")));
        return fx;
    }
    Json j = Json::parse(text, nullptr, false);
    if (j.is_discarded()) {
        Effects fx;
        fx.send.emplace_back(conn, ws_dump(error_message("not valid JSON", "bad_json")));
        return fx;
    }
    // Errors go to the sender's socket even when another socket holds the
    // identity (planted takeovers).
    Effects fx;
    for (auto& o : m_calls.event(s.client_id, j, now_us / 1000)) {
        if (o.message.value("type", "") == "error" && o.to == s.client_id) {
            fx.send.emplace_back(conn, ws_dump(o.message));
            continue;
        }
        auto to = m_call_identity.find(o.to);
        if (to != m_call_identity.end()) fx.send.emplace_back(to->second, ws_dump(o.message));
    }
    return fx;
}

Effects App::call_closed(ConnId conn, std::uint64_t now_us) {
    auto it = m_call_conns.find(conn);
    if (it == m_call_conns.end()) return {};
    std::string identity = it->second.client_id;
    m_call_conns.erase(it);
    auto held = m_call_identity.find(identity);
    if (held == m_call_identity.end() || held->second != conn) return {};
    m_call_identity.erase(held);
    return deliver_calls(m_calls.offline(identity, now_us / 1000));
}

Effects App::tick(std::uint64_t now_us) {
    drop_expired(now_us / 1'000'000);
    return deliver_calls(m_calls.tick(now_us / 1000));
}

}  // namespace msglab::csmp
