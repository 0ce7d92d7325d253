#include "spchat/probes.hpp"

#include <thread>

#include "core/crypto.hpp"
#include "spchat/app.hpp"
#include "spchat/client.hpp"
#include "spchat/files.hpp"

namespace msglab::spchat {

namespace {

using namespace std::chrono_literals;
using Verdict = ProbeResult::Verdict;
using ms = std::chrono::milliseconds;

std::string fresh(const char* role) { return std::string("p") + role + hex(SystemRng::instance().bytes(4)); }

std::string shorten(const std::string& s, std::size_t n = 160) { return s.size() <= n ? s : s.substr(0, n) + "..."; }

ProbeResult result(Verdict v, std::string observed, std::vector<std::pair<std::string, std::string>> evidence = {}) {
    return {v, std::move(observed), std::move(evidence)};
}

struct ProbeError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

Client connect(const ProbeContext& ctx) {
    Client c;
    c.connect(ctx.target.host, ctx.target.port, ctx.timeout);
    return c;
}

std::string text_of(const Json& m) {
    auto t = string_field(m, "text");
    return t ? *t : m.dump();
}

// HELLO as `nick`; the INFO that must answer it, else a ProbeError.
void must_hello(Client& c, const std::string& nick, const ProbeContext& ctx) {
    auto r = hello(c, nick, ctx.timeout);
    if (!r) throw ProbeError("no answer to HELLO " + nick);
    if ((*r)["type"] != "INFO") throw ProbeError("HELLO " + nick + " answered " + shorten(r->dump()));
}

Json join_msg(const std::string& room, const std::optional<std::string>& password = std::nullopt) {
    Json j;
    j["type"] = "JOIN";
    j["room"] = room;
    if (password) j["password"] = *password;
    return j;
}

void must_join(Client& c, const std::string& room, const ProbeContext& ctx,
               const std::optional<std::string>& password = std::nullopt) {
    c.send(join_msg(room, password));
    auto r = c.receive(ctx.timeout);
    if (r.status != Client::Status::message || r.message["type"] != "INFO")
        throw ProbeError("JOIN " + room + " was not accepted: " +
                         (r.status == Client::Status::message ? shorten(r.message.dump()) : r.detail));
}

Json chat(const std::string& room, const std::string& text) {
    Json j;
    j["type"] = "MSG";
    j["room"] = room;
    j["text"] = text;
    return j;
}

// Every message that arrives within `wait`, or up to the first for which
// `stop` holds.
std::vector<Json> drain(Client& c, ms wait, const std::function<bool(const Json&)>& stop = nullptr) {
    std::vector<Json> out;
    const auto end = std::chrono::steady_clock::now() + wait;
    for (;;) {
        auto left = std::chrono::duration_cast<ms>(end - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        auto r = c.receive(left);
        if (r.status != Client::Status::message) break;
        out.push_back(std::move(r.message));
        if (stop && stop(out.back())) break;
    }
    return out;
}

// How long the absence of a relay is waited for: a server on loopback relays
// within milliseconds.
constexpr ms kQuiet{800};

// Two fresh clients that said HELLO, in a fresh room of their own when
// `join` (the join announcements already read).
struct Pair {
    Client a, b;
    std::string na, nb, room;
};

Pair pair(const ProbeContext& ctx, bool join) {
    Pair p{connect(ctx), connect(ctx), fresh("a"), fresh("b"), fresh("room")};
    must_hello(p.a, p.na, ctx);
    must_hello(p.b, p.nb, ctx);
    if (join) {
        must_join(p.a, p.room, ctx);
        must_join(p.b, p.room, ctx);
        drain(p.a, 200ms);
    }
    return p;
}

ProbeResult guarded(const ProbeContext& ctx, const std::function<ProbeResult(const ProbeContext&)>& body) {
    try {
        return body(ctx);
    } catch (const ProbeError& e) {
        return result(Verdict::error, e.what());
    } catch (const std::exception& e) {
        std::string what = e.what();
        return result(what.rfind("cannot connect", 0) == 0 ? Verdict::unreachable : Verdict::error, what);
    }
}

ProbeResult health(const ProbeContext& ctx) {
    Client c = connect(ctx);
    const std::string nick = fresh("h");
    auto r = hello(c, nick, ctx.timeout);
    if (!r) return result(Verdict::broken, "no answer to HELLO");
    if ((*r)["type"] != "INFO" || text_of(*r) != "hello " + nick)
        return result(Verdict::broken, "HELLO answered " + shorten(r->dump()), {{"expected", "INFO hello " + nick}});
    const std::string room = fresh("room");
    c.send(join_msg(room));
    auto j = c.receive(ctx.timeout);
    if (j.status != Client::Status::message || j.message["type"] != "INFO" ||
        text_of(j.message).rfind(nick + " joined " + room, 0) != 0)
        return result(Verdict::broken, "JOIN answered " + (j.status == Client::Status::message ? shorten(j.message.dump()) : j.detail));
    c.send(Json{{"type", "PING"}});
    if (!c.expect("PONG", ctx.timeout)) return result(Verdict::broken, "no PONG to PING");
    return result(Verdict::held, "HELLO, JOIN and PING answered as the protocol says");
}

ProbeResult room_acl(const ProbeContext& ctx) {
    Client owner = connect(ctx), intruder = connect(ctx);
    const std::string a = fresh("owner"), m = fresh("intruder"), room = fresh("private"), pw = fresh("pw");
    must_hello(owner, a, ctx);
    must_hello(intruder, m, ctx);
    must_join(owner, room, ctx, pw);
    intruder.send(join_msg(room));
    auto r = intruder.receive(ctx.timeout);
    if (r.status != Client::Status::message) return result(Verdict::error, "no answer to the JOIN without a password: " + r.detail);
    if (r.message["type"] == "ERROR")
        return result(Verdict::held, "JOIN without the room's password refused: " + text_of(r.message));
    // Admitted: show that it reads the room.
    drain(owner, 200ms);
    const std::string secret = "for members only " + fresh("s");
    owner.send(chat(room, secret));
    bool read = false;
    for (const auto& msg : drain(intruder, ctx.timeout, [&](const Json& m) { return text_of(m) == secret; }))
        if (text_of(msg) == secret) read = true;
    return result(Verdict::broken,
                  std::string("a client without the password joined the protected room") +
                      (read ? " and read its messages" : ""),
                  {{"room", room}, {"answer", shorten(r.message.dump())}});
}

ProbeResult magic_trigger(const ProbeContext& ctx) {
    Pair p = pair(ctx, true);
    Client &a = p.a, &b = p.b;
    const std::string &na = p.na, &room = p.room;
    for (const char* trigger : {"BACKDOOR", "backdoor"}) {
        a.send(chat(room, trigger));
        for (const auto& msg : drain(a, kQuiet)) {
            return result(Verdict::broken, "the text '" + std::string(trigger) + "' got a reply only its sender saw",
                          {{"reply", shorten(msg.dump())}});
        }
        bool relayed = false;
        for (const auto& msg : drain(b, ctx.timeout, [&](const Json& m) { return text_of(m) == trigger; }))
            if (text_of(msg) == trigger && string_field(msg, "nick") == na) relayed = true;
        if (!relayed)
            return result(Verdict::broken, "the text '" + std::string(trigger) + "' was not relayed to the room");
    }
    return result(Verdict::held, "\"BACKDOOR\" was relayed like any text, with no hidden reply");
}

ProbeResult nick_release(const ProbeContext& ctx) {
    const std::string first = fresh("n"), second = fresh("n");
    {
        Client a = connect(ctx);
        must_hello(a, first, ctx);
        must_hello(a, second, ctx);  // a rename
        Client b = connect(ctx);
        auto r = hello(b, first, ctx.timeout);
        if (!r || (*r)["type"] != "INFO")
            return result(Verdict::broken, "after its holder renamed itself, the nick '" + first + "' is still taken",
                          {{"answer", r ? shorten(r->dump()) : "none"}});
        b.send(Json{{"type", "QUIT"}});
        drain(b, 200ms);
    }
    // `a` closed: both its nicks must be free.
    std::this_thread::sleep_for(200ms);
    for (const auto& nick : {first, second}) {
        Client c = connect(ctx);
        auto r = hello(c, nick, ctx.timeout);
        if (!r || (*r)["type"] != "INFO")
            return result(Verdict::broken, "after its connection closed, the nick '" + nick + "' is still taken",
                          {{"answer", r ? shorten(r->dump()) : "none"}});
    }
    return result(Verdict::held, "nicks are released on a rename and when their connection closes");
}

ProbeResult oversized_frame(const ProbeContext& ctx) {
    Client c = connect(ctx);
    const std::uint32_t n = 0x7FFFFFF0;
    Bytes header = {static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
                    static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n), '{'};
    c.send_raw(header);
    auto r = c.receive(std::max<ms>(ctx.timeout, 1500ms));
    if (r.status == Client::Status::timeout)
        return result(Verdict::broken, "a length prefix of " + std::to_string(n) + " bytes was accepted: the server waits for them",
                      {{"length", std::to_string(n)}});
    if (r.status == Client::Status::message && r.message["type"] != "ERROR")
        return result(Verdict::broken, "a 2 GiB length prefix was answered with " + shorten(r.message.dump()));
    // It must still serve others.
    Client d = connect(ctx);
    auto h = hello(d, fresh("after"), ctx.timeout);
    if (!h) return result(Verdict::broken, "the server stopped answering after a 2 GiB length prefix");
    return result(Verdict::held, r.status == Client::Status::message ? "refused at once: " + text_of(r.message)
                                                                   : "the connection was closed at once");
}

ProbeResult file_from(const ProbeContext& ctx) {
    Pair p = pair(ctx, false);
    Client &a = p.a, &b = p.b;
    const std::string &na = p.na, &nb = p.nb, victim = fresh("victim");
    Json start;
    start["type"] = "FILE_START";
    start["from"] = victim;
    start["to"] = nb;
    start["ts"] = 0;
    start["payload"] = Json{{"file_id", uuid4(SystemRng::instance())}, {"name", "invoice.pdf"}, {"size", 1},
                            {"sha256", std::string(64, '0')}, {"mode", "dm"}, {"aead", "AES-256-EAX"},
                            {"kdf", "HKDF-SHA256"}, {"file_nonce_b64", b64url(Bytes(16, 1))}};
    start["sig"] = "";
    a.send(start);
    for (const auto& msg : drain(b, kQuiet))
        if (msg["type"] == "FILE_START")
            return result(Verdict::broken, "a FILE_START from '" + na + "' claiming to be from '" + victim + "' was relayed",
                          {{"relayed", shorten(msg.dump())}});
    return result(Verdict::held, "a FILE_START with someone else's \"from\" was not relayed");
}

ProbeResult claim_identity(const ProbeContext& ctx) {
    Client c = connect(ctx);
    const std::string nick = fresh("anyone");
    auto r = hello(c, nick, ctx.timeout);
    if (r && (*r)["type"] == "INFO")
        return result(Verdict::broken, "HELLO " + nick + " was accepted with no proof of any kind",
                      {{"answer", shorten(r->dump())}});
    return result(Verdict::held, "HELLO without proof was refused");
}

ProbeResult plaintext_chat(const ProbeContext& ctx) {
    Pair p = pair(ctx, true);
    Client &a = p.a, &b = p.b;
    const std::string &room = p.room;
    const std::string secret = "meet at the usual place " + fresh("t");
    a.send(chat(room, secret));
    for (const auto& msg : drain(b, ctx.timeout, [&](const Json& m) { return text_of(m) == secret; }))
        if (text_of(msg) == secret)
            return result(Verdict::broken, "the chat line crossed the wire as JSON text, readable by anyone on the path",
                          {{"seen", shorten(msg.dump())}});
    return result(Verdict::held, "the chat line was not seen in clear");
}

ProbeResult file_key(const ProbeContext& ctx) {
    Pair p = pair(ctx, false);
    Client &a = p.a, &b = p.b;
    const std::string &na = p.na, &nb = p.nb;
    // A small file, sent as the original client does.
    auto dir = std::filesystem::temp_directory_path() / ("msglab-probe-" + fresh("f"));
    std::filesystem::create_directories(dir);
    const std::string content = "quarterly numbers " + fresh("c");
    {
        std::ofstream f(dir / "report.txt", std::ios::binary);
        f << content;
    }
    FileSender s(dir / "report.txt", na, nb, "dm", SystemRng::instance());
    std::error_code ec;
    a.send(s.start());
    while (auto chunk = s.next_chunk()) a.send(*chunk);
    a.send(s.end());
    std::filesystem::remove_all(dir, ec);
    // Read what reached b with nothing but the frames themselves.
    Bytes key;
    std::string recovered;
    for (const auto& msg : drain(b, ctx.timeout, [](const Json& m) { return m["type"] == "FILE_END"; })) {
        if (msg["type"] == "FILE_START") {
            auto offer = read_offer(msg);
            if (offer) key = spchat::file_key(zero_session_key(), offer->second);
        } else if (msg["type"] == "FILE_CHUNK" && !key.empty()) {
            const Json& pl = msg["payload"];
            auto nonce = from_b64url(string_field(pl, "nonce_b64").value_or(""));
            auto ct = from_b64url(string_field(pl, "ciphertext").value_or(""));
            auto tag = from_b64url(string_field(pl, "tag_b64").value_or(""));
            if (!nonce || !ct || !tag) continue;
            ct->insert(ct->end(), tag->begin(), tag->end());
            if (auto p = open_chunk(key, *nonce, *ct)) recovered += std::string(p->begin(), p->end());
        }
    }
    if (recovered == content)
        return result(Verdict::broken,
                      "the file was read from its frames alone: its keys derive from an all-zero session key and the "
                      "nonce in FILE_START",
                      {{"recovered", recovered}});
    return result(Verdict::held, "the file could not be read from its frames");
}

}  // namespace

std::vector<Probe> probes() {
    auto make = [](const char* name, const char* summary, ProbeResult (*fn)(const ProbeContext&)) {
        return Probe{name, summary, [fn](const ProbeContext& ctx) { return guarded(ctx, fn); }};
    };
    return {
        make("health", "HELLO, JOIN and PING are answered with the protocol's texts", health),
        make("room-acl", "a room created with a password refuses a JOIN without it", room_acl),
        make("magic-trigger", "\"BACKDOOR\" is relayed like any text, with no hidden reply", magic_trigger),
        make("nick-release", "a nick is free again after a rename and after its connection closes", nick_release),
        make("oversized-frame", "a length prefix of 2 GiB is refused at once", oversized_frame),
        make("file-from", "a FILE_* frame whose \"from\" is not the sender's nick is not relayed", file_from),
        make("claim-identity", "HELLO asks for proof of the claimed nick", claim_identity),
        make("plaintext-chat", "a chat line does not cross the wire in clear", plaintext_chat),
        make("file-key", "a file transfer cannot be read from its frames alone", file_key),
    };
}

}  // namespace msglab::spchat
