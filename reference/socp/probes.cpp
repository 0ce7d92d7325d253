#include "socp/probes.hpp"

#include <iostream>

#include "socp/app.hpp"
#include "socp/client.hpp"
#include "socp/keys.hpp"
#include "socp/server.hpp"  // now_ms

namespace msglab::socp {

namespace {

using namespace std::chrono_literals;
using Verdict = ProbeResult::Verdict;
using ms = std::chrono::milliseconds;

struct ProbeError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

ProbeResult result(Verdict v, std::string observed, std::vector<std::pair<std::string, std::string>> evidence = {}) {
    return {v, std::move(observed), std::move(evidence)};
}

std::string shorten(const std::string& s, std::size_t n = 200) { return s.size() <= n ? s : s.substr(0, n) + "..."; }

ByteView bytes_of(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

crypto::RsaPrivateKey key(const std::string& name) {
    std::size_t bits = name.rfind("weak", 0) == 0 ? kWeakBits : kRequiredBits;
    return cached_key(name, bits, SystemRng::instance(),
                      [](const std::string& line) { std::cerr << "socp checks: " << line << std::endl; });
}

std::unique_ptr<Client> client(const ProbeContext& ctx, const std::string& id, const std::string& key_name) {
    ClientOptions o;
    o.host = ctx.target.host;
    o.port = ctx.target.port;
    o.user = id;
    o.timeout = ctx.timeout;
    return std::make_unique<Client>(o, key(key_name), SystemRng::instance());
}

std::unique_ptr<Client> logged_in(const ProbeContext& ctx, const std::string& id, const std::string& key_name) {
    auto c = client(ctx, id, key_name);
    try {
        c->login();
    } catch (const ClientError& e) {
        throw ProbeError(std::string("login of ") + id + " failed: " + e.what());
    }
    return c;
}

// Raw frames for `wait`, or up to the first for which `stop` holds.
std::vector<Envelope> collect(Client& c, ms wait, const std::function<bool(const Envelope&)>& stop = nullptr) {
    std::vector<Envelope> out;
    auto end = std::chrono::steady_clock::now() + wait;
    for (;;) {
        auto left = std::chrono::duration_cast<ms>(end - std::chrono::steady_clock::now());
        if (left.count() <= 0 || c.closed()) break;
        auto t = c.receive_text(left);
        if (!t) continue;
        auto e = parse_envelope(*t);
        if (!e) continue;
        out.push_back(*e);
        if (stop && stop(out.back())) break;
    }
    return out;
}

// Direct messages reaching `c` within `wait`, or up to `enough` of them.
std::vector<Event> directs(Client& c, ms wait, std::size_t enough = SIZE_MAX) {
    std::vector<Event> out;
    auto end = std::chrono::steady_clock::now() + wait;
    while (out.size() < enough) {
        auto left = std::chrono::duration_cast<ms>(end - std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        auto ev = c.next(left);
        if (ev && ev->kind == Event::Kind::direct) out.push_back(*ev);
    }
    return out;
}

Envelope direct(const std::string& from, const std::string& to, const crypto::RsaPublicKey& to_key,
                const crypto::RsaPrivateKey& from_key, const std::string& text) {
    Envelope e;
    e.type = "MSG_DIRECT";
    e.from = from;
    e.to = to;
    e.ts = now_ms();
    std::string ct = *encrypt_for(to_key, bytes_of(text), SystemRng::instance());
    e.payload = Json{{"ciphertext", ct},
                     {"sender_pub", encode_key(from_key.public_key())},
                     {"content_sig", sign_content(from_key, dm_content(ct, e.from, e.to, e.ts), SystemRng::instance())}};
    return e;
}

std::optional<std::string> error_code(const std::vector<Envelope>& frames) {
    for (const auto& f : frames)
        if (f.type == "ERROR") return string_field(f.payload, "code").value_or("?") + ": " +
                                      string_field(f.payload, "detail").value_or("");
    return std::nullopt;
}

// A rogue server on an ordinary connection: SERVER_ANNOUNCE with its own key.
struct Rogue {
    std::string id = "rogue-" + uuid4(SystemRng::instance());
    std::unique_ptr<Client> link;
    crypto::RsaPrivateKey signer = key("server-d");

    explicit Rogue(const ProbeContext& ctx) {
        link = client(ctx, id, "server-d");
        link->open();
        Envelope a;
        a.type = "SERVER_ANNOUNCE";
        a.from = id;
        a.to = "*";
        a.ts = now_ms();
        a.payload = Json{{"host", "192.0.2.1"}, {"port", 9}, {"pubkey", encode_key(signer.public_key())}};
        link->send_envelope(a, true);
        auto answer = collect(*link, 1500ms, [](const Envelope& e) { return e.type == "SERVER_ANNOUNCE" || e.type == "ERROR"; });
        if (auto err = error_code(answer)) throw ProbeError("the server refused a server announcement: " + *err);
        if (link->closed()) throw ProbeError("the server closed a connection that announced a server");
    }
    // USER_ADVERTISE claiming `user` lives here; sig: "good", "none" or "garbage".
    void advertise(const std::string& user, const crypto::RsaPublicKey& user_key, const std::string& sig) {
        Envelope e;
        e.type = "USER_ADVERTISE";
        e.from = id;
        e.to = "*";
        e.ts = now_ms();
        e.payload = Json{{"user_id", user}, {"server_id", id}, {"meta", Json{{"pubkey", encode_key(user_key)}}}};
        if (sig == "good") e.sig = sign_payload(signer, e.payload, SystemRng::instance());
        if (sig == "garbage") e.sig = b64url(SystemRng::instance().bytes(512));
        link->send_envelope(e, false);
    }
};

// The DM a real user sends to `victim` after a rogue claimed it: did the rogue get it?
ProbeResult hijack_check(const ProbeContext& ctx, Rogue& rogue, const std::string& victim, const char* how,
                         const char* held_text) {
    auto alice = logged_in(ctx, uuid4(SystemRng::instance()), "user-1");
    auto alice_key = key("user-1");
    auto victim_key = key("user-4");
    alice->send_envelope(direct(alice->user(), victim, victim_key.public_key(), alice_key, "for the victim only"), true);
    // A clean server answers the sender USER_NOT_FOUND at once; only then is
    // a short look at the rogue's link enough.
    auto delivered = [&](const Envelope& e) {
        return e.type == "SERVER_DELIVER" && string_field(e.payload, "user_id") == victim;
    };
    auto frames = collect(*rogue.link, 300ms, delivered);
    if (frames.empty() || !delivered(frames.back())) {
        auto answer = collect(*alice, ctx.timeout, [](const Envelope& e) { return e.type == "ERROR"; });
        auto more = collect(*rogue.link, error_code(answer) ? 200ms : 1000ms, delivered);
        frames.insert(frames.end(), more.begin(), more.end());
    }
    for (const auto& f : frames)
        if (f.type == "SERVER_DELIVER" && string_field(f.payload, "user_id") == victim)
            return result(Verdict::broken,
                          std::string("after ") + how + ", a direct message for " + victim +
                              " was routed to the rogue server",
                          {{"delivered", shorten(encode(f))}});
    auto err = error_code(frames);
    return result(Verdict::held, held_text, {{"rogue link", err ? *err : "no answer"}});
}

template <class F>
ProbeResult guarded(F&& f) {
    try {
        return f();
    } catch (const ProbeError& e) {
        return result(Verdict::error, e.what());
    } catch (const ClientError& e) {
        std::string what = e.what();
        bool unreachable = what.find("cannot reach") != std::string::npos;
        return result(unreachable ? Verdict::unreachable : Verdict::error, what);
    } catch (const std::exception& e) {
        return result(Verdict::error, e.what());
    }
}

ProbeResult health(const ProbeContext& ctx) {
    return guarded([&] {
        auto me = logged_in(ctx, uuid4(SystemRng::instance()), "user-1");
        me->tell(me->user(), "health check");
        auto got = directs(*me, ctx.timeout, 1);
        for (const auto& d : got)
            if (d.text == "health check" && d.verified)
                return result(Verdict::held, "USER_HELLO acknowledged; a DM to oneself came back decrypted and verified");
        return result(Verdict::broken, "a DM to oneself did not come back", {{"direct messages", std::to_string(got.size())}});
    });
}

ProbeResult weak_key(const ProbeContext& ctx) {
    return guarded([&] {
        auto c = client(ctx, uuid4(SystemRng::instance()), "weak-1");
        try {
            c->login();
        } catch (const ClientError& e) {
            std::string what = e.what();
            if (what.find("BAD_KEY") != std::string::npos)
                return result(Verdict::held, "an RSA-1024 key was refused with BAD_KEY", {{"answer", what}});
            throw;
        }
        return result(Verdict::broken, "an RSA-1024 key was accepted at login (SOCP v1.3 requires RSA-4096)");
    });
}

ProbeResult replay(const ProbeContext& ctx) {
    return guarded([&] {
        auto a = logged_in(ctx, uuid4(SystemRng::instance()), "user-1");
        auto b = logged_in(ctx, uuid4(SystemRng::instance()), "user-2");
        if (!a->wait_for_user(b->user(), ctx.timeout)) throw ProbeError("the second user never appeared in the directory");
        Envelope e = direct(a->user(), b->user(), key("user-2").public_key(), key("user-1"), "exactly once");
        e.sig = sign_payload(key("user-1"), e.payload, SystemRng::instance());
        std::string frame = encode(e);
        a->send_text(frame);
        a->send_text(frame);
        auto got = directs(*b, 800ms, 2);
        std::size_t n = 0;
        for (const auto& d : got) n += d.text == "exactly once";
        if (n >= 2)
            return result(Verdict::broken, "the same MSG_DIRECT sent twice was delivered " + std::to_string(n) + " times",
                          {{"frame", shorten(frame)}});
        if (n == 0) throw ProbeError("the direct message was not delivered at all");
        return result(Verdict::held, "the repeated MSG_DIRECT was dropped as a duplicate");
    });
}

ProbeResult dual_login(const ProbeContext& ctx) {
    return guarded([&] {
        std::string name = uuid4(SystemRng::instance());
        auto owner = logged_in(ctx, name, "user-1");
        auto thief = client(ctx, name, "user-3");
        try {
            thief->login();
        } catch (const ClientError& e) {
            std::string what = e.what();
            if (what.find("NAME_IN_USE") != std::string::npos)
                return result(Verdict::held, "a second login under a name in use was refused", {{"answer", what}});
            throw;
        }
        return result(Verdict::broken, "a second login (another key) under a name in use was accepted",
                      {{"name", name}});
    });
}

ProbeResult from_spoof(const ProbeContext& ctx) {
    return guarded([&] {
        auto a = logged_in(ctx, uuid4(SystemRng::instance()), "user-1");
        auto b = logged_in(ctx, uuid4(SystemRng::instance()), "user-2");
        if (!a->wait_for_user(b->user(), ctx.timeout)) throw ProbeError("the second user never appeared in the directory");
        std::string someone = uuid4(SystemRng::instance());
        Envelope e = direct(someone, b->user(), key("user-2").public_key(), key("user-1"), "in someone's name");
        a->send_envelope(e, true);
        auto got = directs(*b, 300ms, 1);
        if (got.empty()) {
            auto answer = collect(*a, ctx.timeout, [](const Envelope& f) { return f.type == "ERROR"; });
            got = directs(*b, error_code(answer) ? 200ms : 1000ms, 1);
        }
        for (const auto& d : got)
            if (d.text == "in someone's name" && d.from == someone)
                return result(Verdict::broken, "a MSG_DIRECT whose from named another user was delivered in that name",
                              {{"from", someone}});
        return result(Verdict::held, "a MSG_DIRECT whose from was not the sender was not delivered");
    });
}

ProbeResult unsigned_advertise(const ProbeContext& ctx) {
    return guarded([&] {
        Rogue rogue(ctx);
        std::string victim = uuid4(SystemRng::instance());
        rogue.advertise(victim, key("user-4").public_key(), "none");
        return hijack_check(ctx, rogue, victim, "an unsigned USER_ADVERTISE",
                            "an unsigned USER_ADVERTISE was not trusted: the victim's messages stayed away from the rogue");
    });
}

ProbeResult forged_signature(const ProbeContext& ctx) {
    return guarded([&] {
        Rogue rogue(ctx);
        auto bob = logged_in(ctx, uuid4(SystemRng::instance()), "user-2");
        std::string forger = uuid4(SystemRng::instance());
        Envelope e;
        e.type = "SERVER_DELIVER";
        e.from = rogue.id;
        e.to = "*";
        e.ts = now_ms();
        std::string ct = *encrypt_for(key("user-2").public_key(), bytes_of("forged delivery"), SystemRng::instance());
        e.payload = Json{{"user_id", bob->user()},
                         {"ciphertext", ct},
                         {"sender", forger},
                         {"sender_pub", encode_key(key("user-5").public_key())},
                         {"content_sig", sign_content(key("user-5"), dm_content(ct, forger, bob->user(), e.ts),
                                                      SystemRng::instance())}};
        e.sig = b64url(SystemRng::instance().bytes(512));  // does not verify with any key
        rogue.link->send_envelope(e, false);
        auto got = directs(*bob, 300ms, 1);
        if (got.empty()) {
            auto answer = collect(*rogue.link, ctx.timeout, [](const Envelope& f) { return f.type == "ERROR"; });
            got = directs(*bob, error_code(answer) ? 200ms : 1000ms, 1);
        }
        for (const auto& d : got)
            if (d.text == "forged delivery")
                return result(Verdict::broken, "a SERVER_DELIVER with a signature that verifies with no key was delivered",
                              {{"frame", shorten(encode(e))}});
        return result(Verdict::held, "a SERVER_DELIVER with a bad signature was dropped");
    });
}

ProbeResult hidden_command(const ProbeContext& ctx) {
    return guarded([&] {
        auto a = logged_in(ctx, uuid4(SystemRng::instance()), "user-1");
        for (const char* trigger : {kDebugRecipient, "__admin__", "admin", "server"}) {
            Envelope e;
            e.type = "MSG_DIRECT";
            e.from = a->user();
            e.to = trigger;
            e.ts = now_ms();
            e.payload = Json{{"ciphertext", b64url(bytes_of("status"))}};
            a->send_envelope(e, true);
            auto frames = collect(*a, 1000ms, [](const Envelope& f) { return f.type == "ERROR" || f.type == "ACK"; });
            for (const auto& f : frames)
                if (f.type == "ACK" || (f.type != "ERROR" && f.type != "USER_ADVERTISE" && f.type != "USER_REMOVE" &&
                                        f.type.rfind("PUBLIC_CHANNEL", 0) != 0))
                    return result(Verdict::broken,
                                  std::string("a MSG_DIRECT to '") + trigger + "' got a hidden answer (" + f.type + ")",
                                  {{"answer", shorten(encode(f), 400)}});
        }
        return result(Verdict::held, "no magic recipient got anything but USER_NOT_FOUND");
    });
}

ProbeResult open_mesh(const ProbeContext& ctx) {
    return guarded([&] {
        Rogue rogue(ctx);
        std::string victim = uuid4(SystemRng::instance());
        rogue.advertise(victim, key("user-4").public_key(), "good");
        return hijack_check(ctx, rogue, victim, "a stranger announced itself as a server and signed USER_ADVERTISE",
                            "a stranger's server announcement did not make its gossip trusted");
    });
}

ProbeResult key_directory(const ProbeContext& ctx) {
    return guarded([&] {
        auto a = logged_in(ctx, uuid4(SystemRng::instance()), "user-1");
        auto b = client(ctx, uuid4(SystemRng::instance()), "user-2");
        b->open();
        Envelope hello;
        hello.type = "USER_HELLO";
        hello.from = b->user();
        hello.to = b->user();
        hello.ts = now_ms();
        hello.payload = Json{{"client", "msglab-check"}, {"pubkey", b->public_key_text()}, {"enc_pubkey", b->public_key_text()}};
        b->send_envelope(hello, true);
        // What b is told about a: a USER_ADVERTISE signed by a server whose key b was never given.
        auto frames = collect(*b, ctx.timeout, [&](const Envelope& e) {
            return e.type == "USER_ADVERTISE" && string_field(e.payload, "user_id") == a->user();
        });
        for (const auto& f : frames)
            if (f.type == "USER_ADVERTISE" && string_field(f.payload, "user_id") == a->user())
                return result(Verdict::broken,
                              "a user's key reached another user in USER_ADVERTISE signed only by server " + f.from +
                                  ", whose key no user is ever given: the directory can substitute keys unseen",
                              {{"advertise", shorten(encode(f), 300)}});
        throw ProbeError("no USER_ADVERTISE of the first user reached the second");
    });
}

ProbeResult unbounded_ciphertext(const ProbeContext& ctx) {
    return guarded([&] {
        auto a = logged_in(ctx, uuid4(SystemRng::instance()), "user-1");
        auto b = logged_in(ctx, uuid4(SystemRng::instance()), "user-2");
        if (!a->wait_for_user(b->user(), ctx.timeout)) throw ProbeError("the second user never appeared in the directory");
        Envelope e;
        e.type = "MSG_DIRECT";
        e.from = a->user();
        e.to = b->user();
        e.ts = now_ms();
        std::string ct = b64url(SystemRng::instance().bytes(64 * 1024));
        e.payload = Json{{"ciphertext", ct}, {"sender_pub", a->public_key_text()}, {"content_sig", ""}};
        a->send_envelope(e, true);
        auto frames = collect(*b, 1500ms, [&](const Envelope& f) { return f.type == "USER_DELIVER"; });
        for (const auto& f : frames)
            if (f.type == "USER_DELIVER" && string_field(f.payload, "ciphertext") == ct)
                return result(Verdict::broken,
                              "a 64 KiB ciphertext (no RSA-4096 block is over 512 bytes) was relayed: the protocol "
                              "has no size or chunking rule a server could enforce",
                              {{"ciphertext bytes", std::to_string(ct.size())}});
        return result(Verdict::held, "a ciphertext no RSA block can be was not relayed");
    });
}

}  // namespace

std::vector<Probe> probes() {
    return {
        {"health", "USER_HELLO is acknowledged and a DM to oneself comes back", health},
        {"weak-key", "an RSA-1024 key is refused at login", weak_key},
        {"replay", "a MSG_DIRECT sent twice is delivered once", replay},
        {"dual-login", "a second login under a name in use is refused", dual_login},
        {"from-spoof", "a MSG_DIRECT whose from is not the sender is refused", from_spoof},
        {"unsigned-advertise", "USER_ADVERTISE without a signature is not trusted", unsigned_advertise},
        {"forged-signature", "a server frame whose signature does not verify is dropped", forged_signature},
        {"hidden-command", "no recipient id makes the server answer something else", hidden_command},
        {"open-mesh", "a stranger announcing itself as a server cannot claim a user (design)", open_mesh},
        {"key-directory", "a user can authenticate the keys its server hands it (design)", key_directory},
        {"unbounded-ciphertext", "a ciphertext no RSA-4096 block can be is not relayed (design)", unbounded_ciphertext},
    };
}

}  // namespace msglab::socp
