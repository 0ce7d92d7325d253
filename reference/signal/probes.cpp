#include "signal/probes.hpp"

#include <cstdlib>
#include <thread>

#include "signal/client.hpp"

namespace msglab::signal {

namespace {

using namespace std::chrono_literals;
using Verdict = ProbeResult::Verdict;
using ms = std::chrono::milliseconds;

struct Unreachable : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct ProbeError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

ProbeResult result(Verdict v, std::string observed, std::vector<std::pair<std::string, std::string>> evidence = {}) {
    return {v, std::move(observed), std::move(evidence)};
}

std::string fresh(const std::string& prefix) {
    return prefix + "-" + hex(SystemRng::instance().bytes(4));
}

std::unique_ptr<ChatClient> client(const ProbeContext& ctx, const std::string& name,
                                   std::optional<Identity> id = std::nullopt) {
    ClientOptions o;
    o.host = ctx.target.host;
    o.port = ctx.target.port;
    o.user = name;
    o.timeout = ctx.timeout;
    return std::make_unique<ChatClient>(o, id ? *id : Identity::generate(SystemRng::instance()),
                                        SystemRng::instance());
}

// Connected and registered, or the probe ends (unreachable or error).
std::unique_ptr<ChatClient> registered(const ProbeContext& ctx, const std::string& name,
                                       std::optional<Identity> id = std::nullopt) {
    auto c = client(ctx, name, std::move(id));
    try {
        c->connect();
    } catch (const ClientError& e) {
        if (!c->connected()) throw Unreachable(e.what());
        throw ProbeError(std::string("registering ") + name + ": " + e.what());
    }
    return c;
}

std::optional<ChatEvent> wait_for(ChatClient& c, ms wait, const std::function<bool(const ChatEvent&)>& want) {
    auto end = std::chrono::steady_clock::now() + wait;
    for (;;) {
        auto left = std::chrono::duration_cast<ms>(end - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        auto e = c.next(std::min(left, ms(100)));
        if (e && want(*e)) return e;
    }
}

Json call(ChatClient& c, const std::string& event, const Json& args, ms timeout) {
    try {
        return c.sio().call(event, args, timeout);
    } catch (const SioError& e) {
        if (e.kind() == SioError::Kind::timeout) return Json();  // no ack
        throw ProbeError(event + ": " + e.what());
    }
}

Json prekey_of(ChatClient& c, const std::string& name, ms timeout) {
    Json q = Json::object();
    q["username"] = name;
    return call(c, "request_prekey", Json::array({q}), timeout);
}

// The bot must be online for the checks of a client's behaviour.
void need_bot(ChatClient& c) {
    auto users = c.users();
    if (std::find(users.begin(), users.end(), bot_name()) == users.end())
        throw ProbeError("no chat bot named " + bot_name() +
                         " is online (run `msglab serve signal --bot " + bot_name() +
                         "`, or `msglab connect signal HOST:PORT --user " + bot_name() + " --echo`)");
}

ProbeResult guarded(const ProbeContext& ctx, ProbeResult (*f)(const ProbeContext&)) {
    try {
        return f(ctx);
    } catch (const Unreachable& e) {
        return result(Verdict::unreachable, e.what());
    } catch (const ProbeError& e) {
        return result(Verdict::error, e.what());
    } catch (const ClientError& e) {
        return result(Verdict::error, e.what());
    } catch (const SioError& e) {
        return result(Verdict::error, e.what());
    }
}

ProbeResult health(const ProbeContext& ctx) {
    auto a = registered(ctx, fresh("probe-a"));
    auto b = registered(ctx, fresh("probe-b"));
    a->start(b->user());
    if (a->send(b->user(), "ping") != Delivery::delivered)
        return result(Verdict::broken, "a ratchet message to a registered user was not acked true");
    auto m = wait_for(*b, ctx.timeout, [](const ChatEvent& e) { return e.kind == ChatEvent::Kind::message; });
    if (!m || m->text != "ping") return result(Verdict::broken, "the message did not arrive decrypted");
    if (b->send(a->user(), "pong") != Delivery::delivered)
        return result(Verdict::broken, "the answer (a new DH ratchet step) was not acked true");
    auto r = wait_for(*a, ctx.timeout, [](const ChatEvent& e) { return e.kind == ChatEvent::Kind::message; });
    if (!r || r->text != "pong") return result(Verdict::broken, "the answer did not arrive decrypted");
    return result(Verdict::held, "registration, X3DH and ratchet messages both ways work");
}

ProbeResult name_takeover(const ProbeContext& ctx) {
    const auto name = fresh("probe-victim");
    auto victim = registered(ctx, name);
    auto thief = client(ctx, name);
    bool accepted = false;
    std::string detail;
    try {
        thief->connect();
        accepted = true;
    } catch (const ClientError& e) {
        if (!thief->connected()) throw Unreachable(e.what());
        detail = e.what();
    }
    auto bundle = prekey_of(*victim, name, ctx.timeout);
    const auto thief_bundle = bundle_json(thief->with_chat([](Chat& c) { return c.identity().bundle(); }));
    const bool substituted = bundle.is_array() && bundle.size() == 2 && bundle[1] == thief_bundle;
    if (accepted || substituted)
        return result(Verdict::broken,
                      "a second connection registered " + name + " while its owner was online" +
                          (substituted ? ", and the directory now hands out the newcomer's keys" : ""),
                      {{"bundle after", bundle.dump()}});
    return result(Verdict::held, "the second registration was refused and the bundle is the owner's",
                  {{"refusal", detail}});
}

ProbeResult from_spoof(const ProbeContext& ctx) {
    auto a = registered(ctx, fresh("probe-a"));
    auto b = registered(ctx, fresh("probe-b"));
    const auto spoofed = fresh("probe-nobody");
    auto bundle = prekey_of(*a, b->user(), ctx.timeout);
    auto x = a->with_chat([&](Chat& c) { return c.initiate(b->user(), bundle); });
    if (!x) throw ProbeError("cannot start X3DH with " + b->user() + ": " + x.error());
    auto forged = *x;
    forged["from"] = spoofed;
    auto ack1 = call(*a, "x3dh_message", Json::array({forged}), ctx.timeout);
    auto r = Json::parse(R"({"username":"","cipher":"","header":{"dh":"","pn":"","n":""},"hmac":"","from":""})");
    r["username"] = b->user();
    r["from"] = spoofed;
    auto ack2 = call(*a, "ratchet_msg", Json::array({r}), ctx.timeout);
    auto seen = wait_for(*b, 500ms, [&](const ChatEvent& e) { return e.from == spoofed; });
    if (seen || ack_true(ack1))
        return result(Verdict::broken,
                      "messages whose from named " + spoofed + " were relayed to " + b->user(),
                      {{"x3dh_message ack", ack1.dump()}, {"ratchet_msg ack", ack2.dump()},
                       {"recipient saw", seen ? seen->name + " from " + seen->from : "nothing"}});
    return result(Verdict::held, "both were refused and nothing reached the recipient",
                  {{"x3dh_message ack", ack1.dump()}, {"ratchet_msg ack", ack2.dump()}});
}

ProbeResult debug_broadcast(const ProbeContext& ctx) {
    auto a = registered(ctx, fresh("probe-a"));
    auto b = registered(ctx, fresh("probe-b"));
    auto ack = call(*a, "pongi", Json::array({"probe"}), 1000ms);
    auto seen = wait_for(*b, 700ms, [](const ChatEvent& e) { return e.name == "pingi"; });
    if (seen)
        return result(Verdict::broken, "pongi from one client made the server send pingi to another",
                      {{"pingi arguments", seen->text}, {"pongi ack", ack.dump()}});
    return result(Verdict::held, "nobody received pingi", {{"pongi ack", ack.is_null() ? "none" : ack.dump()}});
}

ProbeResult unsigned_prekey(const ProbeContext& ctx) {
    Identity bad = Identity::generate(SystemRng::instance());
    bad.spk_sig[5] ^= 0x40;
    auto good = registered(ctx, fresh("probe-good"));
    need_bot(*good);
    auto forged = registered(ctx, fresh("probe-badsig"), bad);
    auto is_bot_session = [](const ChatEvent& e) {
        return e.from == bot_name() && (e.kind == ChatEvent::Kind::session || e.kind == ChatEvent::Kind::refused);
    };
    const auto wait = std::max(ctx.timeout, ms(4000));
    auto greeted = wait_for(*good, wait, is_bot_session);
    if (!greeted) throw ProbeError("the bot " + bot_name() + " greets nobody (no x3dh_message to a good user)");
    auto used = wait_for(*forged, 1500ms, is_bot_session);
    if (used)
        return result(Verdict::broken,
                      "the bot sent an x3dh_message to a user whose spk_sig does not verify under its sik",
                      {{"user", forged->user()}});
    return result(Verdict::held, "the bot greeted a good user and left the one with a bad prekey signature alone");
}

// A session with the bot, with one message echoed.
void open_with_bot(const ProbeContext& ctx, ChatClient& u) {
    need_bot(u);
    u.start(bot_name());
    if (u.send(bot_name(), "one") != Delivery::delivered) throw ProbeError("the bot did not ack a genuine message");
    auto echo = wait_for(u, ctx.timeout, [](const ChatEvent& e) { return e.kind == ChatEvent::Kind::message; });
    if (!echo || echo->text != "echo: one") throw ProbeError("the bot did not echo a genuine message");
}

ProbeResult forged_ratchet(const ProbeContext& ctx) {
    auto u = registered(ctx, fresh("probe-u"));
    open_with_bot(ctx, *u);
    auto sealed = u->with_chat([](Chat& c) { return c.seal(bot_name(), "two"); });
    if (!sealed || !sealed->has_value()) throw ProbeError("cannot seal a message to the bot");
    const Json genuine = **sealed;
    auto fresh_dh = genuine;
    fresh_dh["header"]["dh"] = crypto::base64_encode(crypto::x25519_generate(SystemRng::instance()).public_key);
    auto jump = genuine;
    jump["header"]["n"] = crypto::base64_encode(encode_counter(9));
    auto ack1 = call(*u, "ratchet_msg", Json::array({fresh_dh}), ctx.timeout);
    auto ack2 = call(*u, "ratchet_msg", Json::array({jump}), ctx.timeout);
    auto ack3 = call(*u, "ratchet_msg", Json::array({genuine}), ctx.timeout);
    auto echo = wait_for(*u, ctx.timeout, [](const ChatEvent& e) { return e.kind == ChatEvent::Kind::message; });
    std::vector<std::pair<std::string, std::string>> ev{
        {"forged fresh dh ack", ack1.dump()}, {"forged n=9 ack", ack2.dump()}, {"genuine ack", ack3.dump()}};
    if (!ack_true(ack3) || !echo || echo->text != "echo: two")
        return result(Verdict::broken,
                      "after two forged messages the bot could not open the genuine next one: the forgeries "
                      "changed its ratchet",
                      ev);
    return result(Verdict::held, "the forgeries were refused and the genuine next message was opened and echoed", ev);
}

ProbeResult failed_x3dh_ack(const ProbeContext& ctx) {
    auto u = registered(ctx, fresh("probe-u"));
    need_bot(*u);
    auto bundle = prekey_of(*u, bot_name(), ctx.timeout);
    auto x = u->with_chat([&](Chat& c) { return c.initiate(bot_name(), bundle); });
    if (!x) throw ProbeError("cannot start X3DH with the bot: " + x.error());
    auto bad = *x;
    auto mac = crypto::base64_decode(bad["hmac"].get<std::string>());
    if (!mac || mac->empty()) throw ProbeError("our own x3dh_message has no MAC");
    (*mac)[0] ^= 1;
    bad["hmac"] = crypto::base64_encode(*mac);
    auto ack1 = call(*u, "x3dh_message", Json::array({bad}), ctx.timeout);
    auto r = Json::parse(R"({"username":"","cipher":"","header":{"dh":"","pn":"","n":""},"hmac":"","from":""})");
    r["username"] = bot_name();
    r["from"] = u->user();
    auto ack2 = call(*u, "ratchet_msg", Json::array({r}), ctx.timeout);
    std::vector<std::pair<std::string, std::string>> ev{{"bad-MAC x3dh_message ack", ack1.dump()},
                                                        {"sessionless ratchet_msg ack", ack2.dump()}};
    if (ack_true(ack1) || ack_true(ack2))
        return result(Verdict::broken, "the bot acked true a message that did not verify", ev);
    return result(Verdict::held, "the bot acked false both messages that did not verify", ev);
}

ProbeResult x3dh_replay(const ProbeContext& ctx) {
    auto u = registered(ctx, fresh("probe-u"));
    need_bot(*u);
    auto bundle = prekey_of(*u, bot_name(), ctx.timeout);
    auto x = u->with_chat([&](Chat& c) { return c.initiate(bot_name(), bundle); });
    if (!x) throw ProbeError("cannot start X3DH with the bot: " + x.error());
    auto ack1 = call(*u, "x3dh_message", Json::array({*x}), ctx.timeout);
    if (!ack_true(ack1)) throw ProbeError("the bot refused a genuine x3dh_message (ack " + ack1.dump() + ")");
    auto ack2 = call(*u, "x3dh_message", Json::array({*x}), ctx.timeout);
    if (ack_true(ack2))
        return result(Verdict::broken,
                      "the same x3dh_message was accepted twice: nothing one-time on the responder's side, so a "
                      "captured first message re-initialises the session",
                      {{"epk", (*x)["epk"].get<std::string>()}, {"second ack", ack2.dump()}});
    return result(Verdict::held, "the replayed x3dh_message was refused", {{"second ack", ack2.dump()}});
}

ProbeResult bundle_substitution(const ProbeContext& ctx) {
    auto u = registered(ctx, fresh("probe-u"));
    need_bot(*u);
    auto ack = prekey_of(*u, bot_name(), ctx.timeout);
    if (!ack_true(ack) || ack.size() < 2) throw ProbeError("no bundle for the bot");
    auto genuine = parse_bundle(ack[1]);
    if (!genuine) throw ProbeError("the bot's bundle does not parse: " + genuine.error());
    if (!genuine->signature_valid()) throw ProbeError("the bot's own bundle has a bad prekey signature");
    auto substitute = Identity::generate(SystemRng::instance()).bundle();
    if (!substitute.signature_valid()) throw ProbeError("our substitute bundle does not verify");
    return result(Verdict::broken,
                  "a bundle made by anyone passes every check a client can make: its spk_sig verifies under the "
                  "sik it carries itself, nothing binds sik to ik or to the name, and no safety numbers exist",
                  {{"genuine", ack[1].dump()}, {"substitute", bundle_json(substitute).dump()}});
}

}  // namespace

std::string bot_name() {
    const char* e = std::getenv("MSGLAB_SIGNAL_BOT");
    return e && *e ? e : kDefaultBot;
}

std::vector<Probe> probes() {
    auto p = [](const char* name, const char* summary, ProbeResult (*f)(const ProbeContext&)) {
        return Probe{name, summary, [f](const ProbeContext& ctx) { return guarded(ctx, f); }};
    };
    return {
        p("health", "two users: X3DH and ratchet messages both ways", health),
        p("name-takeover", "a name online cannot be registered from another connection", name_takeover),
        p("from-spoof", "x3dh_message and ratchet_msg in another user's name are refused", from_spoof),
        p("debug-broadcast", "pongi makes nobody receive pingi", debug_broadcast),
        p("unsigned-prekey", "the bot does not use a bundle whose spk_sig does not verify", unsigned_prekey),
        p("forged-ratchet", "forged ratchet messages leave the bot's session working", forged_ratchet),
        p("failed-x3dh-ack", "the bot acks false what did not verify", failed_x3dh_ack),
        p("x3dh-replay", "a replayed x3dh_message is refused (design: never)", x3dh_replay),
        p("bundle-substitution", "a client can tell a substituted bundle (design: never)", bundle_substitution),
    };
}

}  // namespace msglab::signal
