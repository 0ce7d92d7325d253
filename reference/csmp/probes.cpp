#include "csmp/probes.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <thread>

#include "core/crypto.hpp"
#include "csmp/client.hpp"
#include "csmp/store.hpp"

namespace msglab::csmp {

namespace {

using namespace std::chrono_literals;
using Verdict = ProbeResult::Verdict;

std::string random_hex(std::size_t bytes) { return hex(SystemRng::instance().bytes(bytes)); }
// A fresh identity per check, so checks never meet each other's state.
std::string fresh(const char* role) { return std::string("p") + role + random_hex(4); }

std::string pair_room(const std::string& a, const std::string& b) {
    return a < b ? "room_" + a + "_" + b : "room_" + b + "_" + a;
}

std::string shorten(const std::string& s, std::size_t n = 160) { return s.size() <= n ? s : s.substr(0, n) + "..."; }

ProbeResult result(Verdict v, std::string observed, std::vector<std::pair<std::string, std::string>> evidence = {}) {
    return {v, std::move(observed), std::move(evidence)};
}

Client client_for(const ProbeContext& ctx) {
    ClientOptions o;
    o.host = ctx.target.host;
    o.port = ctx.target.port;
    o.timeout = ctx.timeout;
    return Client(o);
}

// Runs a check; a target that cannot be reached at all is unreachable,
// anything else the client could not do is an error.
ProbeResult guarded(const ProbeContext& ctx, const std::function<ProbeResult(const ProbeContext&)>& body) {
    try {
        return body(ctx);
    } catch (const ClientError& e) {
        std::string what = e.what();
        bool down = what.rfind("cannot connect", 0) == 0 || what.rfind("cannot resolve", 0) == 0;
        return result(down ? Verdict::unreachable : Verdict::error, what);
    } catch (const std::exception& e) {
        return result(Verdict::error, e.what());
    }
}

// A chat message posted over HTTP with the client's session.
HttpReply post_chat(Client& c, const std::string& room, const std::string& text) {
    Json body;
    body["message"] = text;
    body["room_id"] = room;
    return c.request("POST", "/chat/send", body.dump(), {{"x-session-id", c.session()}});
}

bool upgrade_accepted(Client& c, const std::string& target, int& status,
                      const std::map<std::string, std::string>& headers = {}) {
    status = 0;
    try {
        auto ws = c.open(target, &status, headers);
        status = 101;
        ws->close();
        return true;
    } catch (const ClientError&) {
        return false;
    }
}

ProbeResult health(const ProbeContext& ctx) {
    Client c = client_for(ctx);
    auto r = c.request("GET", "/health/");
    Json j = Json::parse(r.body, nullptr, false);
    if (r.status != 200 || !j.is_object() || j.value("status", "") != "ok")
        return result(Verdict::broken, "GET /health/ answered " + std::to_string(r.status) + " " + shorten(r.body));
    std::string sid = c.handshake(fresh("h"));
    return result(Verdict::held, "healthy; a session was issued", {{"session_id", sid}});
}

ProbeResult unissued_session(const ProbeContext& ctx) {
    Client c = client_for(ctx);
    std::string sid = "never-issued-" + random_hex(8);
    auto r = c.request("GET", "/call/history", "", {{"x-session-id", sid}});
    std::vector<std::pair<std::string, std::string>> ev = {{"session_id", sid},
                                                           {"GET /call/history", std::to_string(r.status) + " " + shorten(r.body)}};
    if (r.status == 200)
        return result(Verdict::broken, "a session id the server never issued was accepted: GET /call/history answered 200 " +
                                           shorten(r.body),
                      ev);
    int status = 0;
    bool up = upgrade_accepted(c, "/ws/call?session_id=" + url_encode(sid), status);
    ev.emplace_back("upgrade /ws/call", std::to_string(status));
    if (up) return result(Verdict::broken, "a session id the server never issued opened /ws/call", ev);
    return result(Verdict::held, "refused: HTTP " + std::to_string(r.status) + ", upgrade " + std::to_string(status), ev);
}

ProbeResult room_acl(const ProbeContext& ctx) {
    std::string a = fresh("a"), b = fresh("b"), intruder = fresh("x");
    std::string room = pair_room(a, b), marker = "private " + random_hex(6);
    Client ca = client_for(ctx), cx = client_for(ctx);
    ca.handshake(a);
    auto sent = post_chat(ca, room, marker);
    if (sent.status != 200)
        return result(Verdict::error, "a member's own message to " + room + " was refused: HTTP " +
                                          std::to_string(sent.status) + " " + shorten(sent.body));
    cx.handshake(intruder);
    auto h = cx.request("GET", "/history/" + url_encode(room), "", {{"x-session-id", cx.session()}});
    std::vector<std::pair<std::string, std::string>> ev = {{"room", room},
                                                           {"intruder", intruder},
                                                           {"GET /history", std::to_string(h.status) + " " + shorten(h.body)}};
    if (h.status == 200 && h.body.find(marker) != std::string::npos)
        return result(Verdict::broken, intruder + " read the history of " + room + ", a room of two others", ev);
    int status = 0;
    bool joined = upgrade_accepted(cx, "/ws/chat?session_id=" + url_encode(cx.session()) + "&room_id=" + url_encode(room),
                                   status);
    ev.emplace_back("upgrade /ws/chat", std::to_string(status));
    if (joined) return result(Verdict::broken, intruder + " joined the socket of " + room + ", a room of two others", ev);
    return result(Verdict::held, "kept out: history HTTP " + std::to_string(h.status) + ", upgrade " + std::to_string(status), ev);
}

ProbeResult call_takeover(const ProbeContext& ctx) {
    std::string victim = fresh("v"), caller = fresh("c");
    Client first = client_for(ctx), second = client_for(ctx), cc = client_for(ctx);
    first.handshake(victim);
    auto ws_first = first.open_call();
    second.handshake(victim);  // another session claiming the same identity
    int status = 0;
    std::unique_ptr<WsClient> ws_second;
    try {
        ws_second = second.open(std::string("/ws/call?session_id=") + url_encode(second.session()), &status);
    } catch (const ClientError&) {
        return result(Verdict::held, "a second session's call socket for " + victim + " was refused (HTTP " +
                                         std::to_string(status) + ")",
                      {{"victim", victim}, {"upgrade", std::to_string(status)}});
    }
    cc.handshake(caller);
    auto ws_c = cc.open_call();
    Json init;
    init["type"] = "call:init";
    init["to"] = victim;
    ws_c->send(init.dump());
    auto at_second = ws_second->receive_type("call:incoming", ctx.timeout);
    std::vector<std::pair<std::string, std::string>> ev = {{"victim", victim}, {"caller", caller}};
    if (at_second) {
        ev.emplace_back("incoming at the second session", at_second->dump());
        return result(Verdict::broken, "a second session claiming " + victim + " took over its incoming calls", ev);
    }
    return result(Verdict::held, "the call rang at the first session's socket only", ev);
}

ProbeResult call_non_party(const ProbeContext& ctx) {
    std::string caller = fresh("c"), callee = fresh("e"), intruder = fresh("x");
    Client cc = client_for(ctx), ce = client_for(ctx), cx = client_for(ctx);
    cc.handshake(caller);
    ce.handshake(callee);
    cx.handshake(intruder);
    auto wc = cc.open_call();
    auto we = ce.open_call();
    auto wx = cx.open_call();
    Json init;
    init["type"] = "call:init";
    init["to"] = callee;
    wc->send(init.dump());
    auto ack = wc->receive_type("call:ack", ctx.timeout);
    if (!ack) return result(Verdict::error, "no call:ack for a call between two connected users");
    std::string id = ack->value("call_id", "");
    if (!we->receive_type("call:incoming", ctx.timeout)) return result(Verdict::error, "the callee was never rung");
    Json end;
    end["type"] = "call:end";
    end["to"] = callee;
    end["call_id"] = id;
    wx->send(end.dump());
    Json answer;
    answer["type"] = "call:answer";
    answer["to"] = caller;
    answer["call_id"] = id;
    answer["sdp"] = {{"type", "answer"}, {"sdp", "v=0"}};
    wx->send(answer.dump());
    std::vector<std::pair<std::string, std::string>> ev = {{"call_id", id}, {"intruder", intruder}};
    auto wait = std::min<std::chrono::milliseconds>(ctx.timeout, 1000ms);
    if (auto e = we->receive_type("call:end", wait)) {
        ev.emplace_back("callee received", e->dump());
        return result(Verdict::broken, intruder + ", no party to the call, ended it for the callee", ev);
    }
    if (auto a = wc->receive_type("call:answer", wait)) {
        ev.emplace_back("caller received", a->dump());
        return result(Verdict::broken, intruder + ", no party to the call, answered it to the caller", ev);
    }
    return result(Verdict::held, "events from a non-party reached neither party", ev);
}

ProbeResult session_id_random(const ProbeContext& ctx) {
    Client c = client_for(ctx);
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        std::string s = c.handshake(fresh("s"));
        s.erase(std::remove(s.begin(), s.end(), '-'), s.end());
        ids.push_back(s);
    }
    std::vector<std::pair<std::string, std::string>> ev = {{"ids", ids[0] + " " + ids[1] + " " + ids[2]}};
    for (std::size_t i = 1; i < ids.size(); ++i) {
        const std::string &x = ids[i - 1], &y = ids[i];
        std::size_t same = 0;
        for (std::size_t k = 0; k < std::min(x.size(), y.size()); ++k) same += x[k] == y[k];
        // Two random 32-digit ids agree in about 2 places; a counter in most.
        if (same >= 16)
            return result(Verdict::broken, "consecutive session ids agree in " + std::to_string(same) + " of " +
                                               std::to_string(x.size()) + " hex digits: " + x + ", " + y,
                          ev);
    }
    return result(Verdict::held, "three consecutive session ids share no structure", ev);
}

ProbeResult debug_mode(const ProbeContext& ctx) {
    Client c = client_for(ctx);
    std::vector<std::pair<std::string, std::string>> ev;
    for (const char* path : {"/health/", "/"}) {
        auto r = c.request("GET", path);
        Json j = Json::parse(r.body, nullptr, false);
        ev.emplace_back(std::string("GET ") + path, std::to_string(r.status) + " " + shorten(r.body));
        if (j.is_object() && j.value("debug", false) == true)
            return result(Verdict::broken, std::string("GET ") + path + " says debug mode is on", ev);
    }
    auto docs = c.request("GET", "/docs");
    ev.emplace_back("GET /docs", std::to_string(docs.status));
    if (docs.status == 200) return result(Verdict::broken, "the API documentation is public at /docs", ev);
    return result(Verdict::held, "no debug flag and no public API documentation", ev);
}

ProbeResult at_rest_key(const ProbeContext& ctx) {
    auto db = ctx.server_files.find("db");
    if (db == ctx.server_files.end())
        return result(Verdict::error,
                      "needs the server's database file (msglab scenario run --server-file db=PATH; the audit gives "
                      "it)");
    std::string a = fresh("a"), room = pair_room(a, fresh("b")), marker = "at rest " + random_hex(6);
    Client c = client_for(ctx);
    c.handshake(a);
    auto sent = post_chat(c, room, marker);
    if (sent.status != 200)
        return result(Verdict::error, "the message to store was refused: HTTP " + std::to_string(sent.status));
    sqlite3* handle = nullptr;
    if (sqlite3_open_v2(db->second.c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
        std::string why = handle ? sqlite3_errmsg(handle) : "out of memory";
        sqlite3_close(handle);
        return result(Verdict::error, "cannot open " + db->second + ": " + why);
    }
    std::unique_ptr<sqlite3, int (*)(sqlite3*)> guard(handle, sqlite3_close);
    sqlite3_busy_timeout(handle, 2000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(handle,
                           "SELECT session_id, ciphertext, nonce FROM chat_messages WHERE room_id = ? ORDER BY id DESC "
                           "LIMIT 20",
                           -1, &st, nullptr) != SQLITE_OK)
        return result(Verdict::error, std::string("not the history database: ") + sqlite3_errmsg(handle));
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(st, sqlite3_finalize);
    sqlite3_bind_text(st, 1, room.c_str(), static_cast<int>(room.size()), SQLITE_TRANSIENT);
    std::size_t rows = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        ++rows;
        auto text = [&](int col) {
            const unsigned char* p = sqlite3_column_text(st, col);
            return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
        };
        Bytes ct, nonce;
        if (!unhex(text(1), ct) || !unhex(text(2), nonce) || nonce.size() != 12) continue;
        auto pt = crypto::aes_gcm_decrypt(original_key(text(0)), nonce, {}, ct);
        if (pt && to_string(*pt) == marker)
            return result(Verdict::broken,
                          "the stored message opens with the original's hard-coded key and the session id kept in "
                          "its row",
                          {{"database", db->second}, {"session_id column", text(0)}, {"plaintext", marker}});
    }
    if (rows == 0) return result(Verdict::error, "the message sent was not found in " + db->second);
    return result(Verdict::held, "the stored message does not open under the original's hard-coded key",
                  {{"database", db->second}});
}

ProbeResult claim_identity(const ProbeContext& ctx) {
    Client c = client_for(ctx);
    std::string sid = c.handshake("admin");
    return result(Verdict::broken, "a session for 'admin' was issued on the client's word alone",
                  {{"session_id", sid}});
}

ProbeResult session_in_url(const ProbeContext& ctx) {
    std::string a = fresh("a"), room = pair_room(a, fresh("b"));
    Client c = client_for(ctx);
    c.handshake(a);
    int header_status = 0, query_status = 0;
    bool by_header = upgrade_accepted(c, "/ws/chat?room_id=" + url_encode(room), header_status,
                                      {{"x-session-id", c.session()}});
    std::vector<std::pair<std::string, std::string>> ev = {{"upgrade with the x-session-id header", std::to_string(header_status)}};
    if (by_header) return result(Verdict::held, "the upgrade takes the session from a header", ev);
    bool by_query = upgrade_accepted(c, "/ws/chat?session_id=" + url_encode(c.session()) + "&room_id=" + url_encode(room),
                                     query_status);
    ev.emplace_back("upgrade with ?session_id=", std::to_string(query_status));
    if (by_query)
        return result(Verdict::broken, "the WebSocket upgrade takes the session id only from its URL", ev);
    return result(Verdict::error, "neither form of the upgrade was accepted", ev);
}

}  // namespace

std::vector<Probe> probes() {
    auto make = [](const char* name, const char* summary, ProbeResult (*fn)(const ProbeContext&)) {
        return Probe{name, summary, [fn](const ProbeContext& ctx) { return guarded(ctx, fn); }};
    };
    return {
        make("health", "the health route answers and a session is issued", health),
        make("unissued-session", "a session id never issued is refused on HTTP and on the upgrade", unissued_session),
        make("room-acl", "a third party neither reads a pair's history nor joins its room", room_acl),
        make("call-takeover", "a second session claiming an identity does not take its calls", call_takeover),
        make("call-non-party", "call events from outside a call reach nobody", call_non_party),
        make("session-id-random", "consecutive session ids share no sequence", session_id_random),
        make("debug-mode", "no debug flag, no public API documentation", debug_mode),
        make("at-rest-key", "stored messages do not open under the original's hard-coded key", at_rest_key),
        make("claim-identity", "the handshake wants proof of the identity it is given", claim_identity),
        make("session-in-url", "the upgrade does not need the session id in its URL", session_in_url),
    };
}

}  // namespace msglab::csmp
