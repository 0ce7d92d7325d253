// SOCP's server logic (the sans-I/O App: joining, linking, gossip, routing,
// the duplicate cache, heartbeats, the public channel) driven through several
// links by any sequence of events: users and rogue servers on inbound links,
// the introducer's link the App dials, time passing. What App answers is
// checked after every event.
//
// Keys are small so that the run is fast: the server signs with RSA-1024,
// users have RSA-1024 keys and App is configured to require 1024 bits (512
// under socp.weak-rsa); the "weak" user key is RSA-512.
//
// The first byte chooses the plants (bit i: kPlants[i]). A plant's own
// invariant is checked only while it is off, unless MSGLAB_FUZZ_PLANTS names
// it (`msglab fuzz --plant`): then a run with it on must break it.
//
// Then at most 48 records, one opcode byte (% 14) and its operands:
//   0  open an inbound link
//   1  close link c                                     (c)
//   2  USER_HELLO on c: user u, key k, sig s            (c, u, k, s)
//   3  MSG_DIRECT on c: from f, to t, sig s, marker m   (c, f, t, s, m)
//   4  MSG_PUBLIC_CHANNEL or FILE_* on c                (c, which, to)
//   5  SERVER_ANNOUNCE / SERVER_HELLO_LINK on c: rogue r, sig s (c, r, s)
//   6  USER_ADVERTISE on c: user u, server r, sig s     (c, u, r, s)
//   7  USER_REMOVE, HEARTBEAT or SERVER_DELIVER on c    (c, which, u, s, m)
//   8  SERVER_HELLO_JOIN or SERVER_WELCOME on c         (c, which)
//   9  raw text on c                                    (c, n, n % 512 bytes)
//   10 a text App sent before, sent back on c           (c, index)
//   11 time passes: x * 100 ms                          (x)
//   12 the oldest pending dial opens or fails           (which)
//   13 the links App asked to close are closed
// Signature modes s % 3: none, good (the sender's key), garbage.
//
// Invariants (always): every text App sends goes to an open link and is an
// envelope; what App signs as itself verifies with its key; App's link count
// is the harness's. Per plant (while off):
//   socp.weak-rsa          no USER_HELLO with the 512-bit key is acknowledged
//   socp.dual-login        a user id is acknowledged on one open link at a time
//   socp.no-dedup          no link gets two USER_DELIVER with one (ts, sender, ciphertext)
//   socp.unsigned-advertise a user never lives at a rogue server because of an
//                          unsigned USER_ADVERTISE
//   socp.any-signature     a SERVER_DELIVER with a garbage signature is never delivered,
//                          and a badly signed USER_ADVERTISE moves nobody
//   socp.hidden-command    no ACK for "__debug__"
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "fuzz_common.hpp"
#include "socp/app.hpp"
#include "socp/wire.hpp"

using namespace msglab;
using namespace msglab::socp;

namespace {

const char* const kPlants[] = {plant::weak_rsa,  plant::unsigned_advertise, plant::no_dedup,
                               plant::any_signature, plant::dual_login,     plant::hidden_command};
namespace bit {
enum { weak_rsa, unsigned_advertise, no_dedup, any_signature, dual_login, hidden_command };
}
constexpr int kPlantCount = 6;

const char* const kUsers[] = {"alice", "bob", "carol", "dave"};
const char* const kRogues[] = {"rogue-1", "rogue-2"};

// Botan makes no key under 1024 bits: the weak key is a fixed RSA-512 test
// key (public, for this fuzzer only).
const char* const kWeakPem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEA8lFHn+VlGZwQqwiW\n"
    "9qTsndapolpe3Y+/Ck1YmP51uH8btsCvh6mDBLq+f87047wHUGsCMuUpdlaJuE7b\n"
    "6Vd/vwIDAQABAkA/gb3b0islAxn7OU0XZzH8S/45ZqXmO34+HPdTYZ1ItMTnwla4\n"
    "l37SA8y6a9yQ03ael01d6zsaPrWUulk48iLBAiEA+3KtolZx2DnQV2cPFB2TRlz8\n"
    "qCAOmtcaeRrJ+BjdZPMCIQD2tElyJD9OmcBUwsV/ScujeA15HcyGq7o4JoXBTlcd\n"
    "BQIhAOHhRfvUPhbo8LDjgtcmLlwCQnHhwlz0qPJrz02RQKljAiBDPSP/bg2rGJCp\n"
    "CWTWqoBMD35skkiaM9fPUgCGjRmFGQIgF/MWn6RtDZxDewPg2mbOIFHePaR2UbYS\n"
    "UlyUjOsl0Ms=\n"
    "-----END PRIVATE KEY-----\n";

struct Keys {
    DeterministicRng rng{0x50C9};
    crypto::RsaPrivateKey server = crypto::RsaPrivateKey::generate(rng, 1024);
    std::vector<crypto::RsaPrivateKey> users;  // 0..2: 1024 bits; 3: 512 bits (weak)
    std::vector<crypto::RsaPrivateKey> rogues;
    std::vector<std::string> user_text, rogue_text;
    Keys() {
        for (int i = 0; i < 3; ++i) users.push_back(crypto::RsaPrivateKey::generate(rng, 1024));
        users.push_back(crypto::RsaPrivateKey::from_pem(kWeakPem).value());
        for (int i = 0; i < 2; ++i) rogues.push_back(crypto::RsaPrivateKey::generate(rng, 1024));
        for (const auto& k : users) user_text.push_back(encode_key(k.public_key()));
        for (const auto& k : rogues) rogue_text.push_back(encode_key(k.public_key()));
    }
};

const Keys& keys() {
    static const Keys k;
    return k;
}

struct Link {
    bool closing = false;
    std::optional<std::size_t> user_key;  // the key its USER_HELLO used
    std::string said;                     // the id of its last USER_HELLO / announcement
};

struct Harness {
    std::uint8_t on = 0, hunted = 0;
    DeterministicRng rng{7};
    std::optional<App> app;
    std::map<LinkId, Link> open;
    std::vector<std::uint64_t> dials;  // pending tokens
    LinkId next = 1;
    std::int64_t now = 1'800'000'000'000;
    std::vector<std::string> sent;                               // texts App sent (for replays)
    std::map<std::string, LinkId> acked;                         // user -> the link its hello was acknowledged on
    std::set<std::pair<std::string, std::string>> good_adverts;  // (user, server) signed properly
    std::set<std::string> forged_markers;                        // SERVER_DELIVER ciphertexts with garbage sigs
    std::set<std::tuple<LinkId, std::int64_t, std::string, std::string>> delivered;
    std::map<std::pair<std::string, std::string>, int> bad_advert;  // (user, server) -> 1 unsigned, 2 garbage

    bool planted(int i) const { return on & (1u << i); }
    bool checked(int i) const { return !planted(i) || (hunted & (1u << i)); }

    LinkId pick(std::uint8_t b) const {
        std::vector<LinkId> ids;
        for (const auto& [id, l] : open)
            if (!l.closing) ids.push_back(id);
        return ids.empty() ? 0 : ids[b % ids.size()];
    }

    void apply(const Effects& fx) {
        const auto& server_key = keys().server;
        for (const auto& [to, text] : fx.send) {
            FUZZ_CHECK(open.count(to) == 1);
            FUZZ_CHECK(text != nullptr);
            auto e = parse_envelope(*text);
            FUZZ_CHECK(e.ok());
            if (e->from == app->id() && e->sig && !e->sig->empty())
                FUZZ_CHECK(verify_payload(server_key.public_key(), e->payload, *e->sig).has_value());
            if (sent.size() < 64) sent.push_back(*text);
            if (e->type == "ACK" && string_field(e->payload, "msg_ref") == std::optional<std::string>("USER_HELLO")) {
                Link& l = open.at(to);
                if (checked(bit::weak_rsa)) FUZZ_CHECK(l.user_key != std::optional<std::size_t>(3));
                auto prev = acked.find(e->to);
                if (checked(bit::dual_login) && prev != acked.end() && prev->second != to)
                    FUZZ_CHECK(open.count(prev->second) == 0 || open.at(prev->second).closing);
                acked[e->to] = to;
            }
            if (e->type == "ACK" && checked(bit::hidden_command))
                FUZZ_CHECK(string_field(e->payload, "msg_ref") != std::optional<std::string>(kDebugRecipient));
            if (e->type == "USER_DELIVER") {
                auto ct = string_field(e->payload, "ciphertext").value_or("");
                auto key = std::make_tuple(to, e->ts, string_field(e->payload, "sender").value_or(""), ct);
                if (checked(bit::no_dedup)) FUZZ_CHECK(delivered.count(key) == 0);
                delivered.insert(key);
                if (checked(bit::any_signature)) FUZZ_CHECK(forged_markers.count(ct) == 0);
            }
        }
        for (LinkId id : fx.close) {
            FUZZ_CHECK(open.count(id) == 1);
            open.at(id).closing = true;
        }
        for (const auto& d : fx.dial)
            if (dials.size() < 8) dials.push_back(d.token);
        check_state();
    }

    void check_state() {
        FUZZ_CHECK(app->links() == open.size());
        for (const auto& [user, where] : app->user_locations()) {
            auto bad = bad_advert.find({user, where});
            if (bad == bad_advert.end() || good_adverts.count({user, where})) continue;
            if (bad->second == 1 && checked(bit::unsigned_advertise)) FUZZ_CHECK(false && "an unsigned advertise moved a user");
            if (bad->second == 2 && checked(bit::unsigned_advertise) && checked(bit::any_signature))
                FUZZ_CHECK(false && "a badly signed advertise moved a user");
        }
    }

    void closed(LinkId id) {
        if (!open.count(id)) return;
        open.erase(id);
        apply(app->closed(id, now));
    }

    Envelope env(std::string type, std::string from, std::string to, Json payload) const {
        Envelope e;
        e.type = std::move(type);
        e.from = std::move(from);
        e.to = std::move(to);
        e.ts = now;
        e.payload = std::move(payload);
        return e;
    }
    void sign(Envelope& e, std::uint8_t mode, const crypto::RsaPrivateKey& key) {
        switch (mode % 3) {
            case 0: break;
            case 1:
                // PSS with a 32-byte salt needs more than RSA-512 offers.
                if (key.public_key().bits() >= 1024) e.sig = sign_payload(key, e.payload, rng);
                break;
            default: e.sig = b64url(rng.bytes(128)); break;
        }
    }
    void send(LinkId c, const std::string& text) {
        if (!c || !open.count(c) || open.at(c).closing) return;
        apply(app->message(c, text, now));
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const std::uint8_t hunted = plants_from_env(kPlants, kPlantCount, "socp");
    if (size == 0) return 0;
    const Keys& k = keys();
    Harness h;
    h.on = data[0] & ((1u << kPlantCount) - 1);
    h.hunted = hunted;
    AppConfig cfg;
    for (int i = 0; i < kPlantCount; ++i)
        if (h.planted(i)) cfg.plants.enable(kPlants[i]);
    cfg.self = Endpoint{"10.0.0.1", 8765};
    cfg.introducers = {Endpoint{"10.0.0.2", 8765}};
    cfg.min_key_bits = 1024;
    cfg.weak_key_bits = 512;
    cfg.heartbeat_ms = 1000;
    cfg.dead_after_ms = 3000;
    cfg.join_timeout_ms = 2000;
    cfg.seen_ttl_ms = 24LL * 3600 * 1000;
    cfg.max_users = 16;
    cfg.max_servers = 8;
    cfg.limits.max_message = 8192;
    cfg.limits.max_depth = 8;
    h.app.emplace(cfg, crypto::RsaPrivateKey::from_pem(k.server.pem()).value(), "server-under-test", h.rng);
    h.apply(h.app->start(h.now));

    Reader in(ByteView(data + 1, size - 1));
    auto byte = [&] { return in.u8(); };
    for (int steps = 0; in.remaining() > 0 && steps < 48; ++steps) {
        const std::uint8_t op = byte() % 14;
        switch (op) {
            case 0: {
                if (h.open.size() >= 8) break;
                LinkId c = h.next++;
                h.open.emplace(c, Link{});
                h.apply(h.app->opened(c, std::nullopt, h.now));
                break;
            }
            case 1: h.closed(h.pick(byte())); break;
            case 2: {
                LinkId c = h.pick(byte());
                std::string user = kUsers[byte() % 4];
                std::size_t key = byte() % 5;
                std::uint8_t s = byte();
                if (!c) break;
                std::string key_text = key < 4 ? k.user_text[key] : "bm90IGEga2V5";
                Envelope e = h.env("USER_HELLO", user, user, Json{{"client", "fuzz"}, {"pubkey", key_text}});
                h.sign(e, s, k.users[std::min<std::size_t>(key, 3)]);
                h.open.at(c).user_key = key;
                h.open.at(c).said = user;
                h.send(c, encode(e));
                break;
            }
            case 3: {
                LinkId c = h.pick(byte());
                std::uint8_t f = byte(), t = byte(), s = byte(), m = byte();
                if (!c) break;
                std::string from = f % 5 == 4 ? h.open.at(c).said : kUsers[f % 4];
                std::string to = t % 6 == 4 ? kDebugRecipient : t % 6 == 5 ? "nobody" : kUsers[t % 4];
                Envelope e = h.env("MSG_DIRECT", from.empty() ? "x" : from, to,
                                   Json{{"ciphertext", "ct-" + std::to_string(m)}, {"content_sig", ""}});
                h.sign(e, s, k.users[h.open.at(c).user_key.value_or(0) % 4]);
                h.send(c, encode(e));
                break;
            }
            case 4: {
                LinkId c = h.pick(byte());
                std::uint8_t which = byte(), to = byte();
                if (!c) break;
                const char* types[] = {"MSG_PUBLIC_CHANNEL", "FILE_START", "FILE_CHUNK", "FILE_END"};
                std::string from = h.open.at(c).said.empty() ? "alice" : h.open.at(c).said;
                Envelope e = h.env(types[which % 4], from, to % 3 == 0 ? "public" : kUsers[to % 4],
                                   Json{{"ciphertext", "pub"}, {"file_id", "f1"}, {"index", to % 4}});
                h.send(c, encode(e));
                break;
            }
            case 5: {
                LinkId c = h.pick(byte());
                std::uint8_t r = byte(), s = byte();
                if (!c) break;
                std::string rogue = kRogues[r % 2];
                Envelope e = h.env(r & 2 ? "SERVER_HELLO_LINK" : "SERVER_ANNOUNCE", rogue, "*",
                                   Json{{"host", "10.9.9." + std::to_string(r % 2)}, {"port", 1}, {"pubkey", k.rogue_text[r % 2]}});
                h.sign(e, s, k.rogues[r % 2]);
                h.open.at(c).said = rogue;
                h.send(c, encode(e));
                break;
            }
            case 6: {
                LinkId c = h.pick(byte());
                std::uint8_t u = byte(), r = byte(), s = byte();
                if (!c) break;
                std::string user = kUsers[u % 4], server = kRogues[r % 2];
                Envelope e = h.env("USER_ADVERTISE", server, "*",
                                   Json{{"user_id", user}, {"server_id", server}, {"meta", {{"pubkey", k.user_text[u % 3]}}}});
                h.sign(e, s, k.rogues[r % 2]);
                if (s % 3 == 1) h.good_adverts.insert({user, server});
                else h.bad_advert[{user, server}] = s % 3 == 0 ? 1 : 2;
                h.send(c, encode(e));
                break;
            }
            case 7: {
                LinkId c = h.pick(byte());
                std::uint8_t which = byte(), u = byte(), s = byte(), m = byte();
                if (!c) break;
                std::string rogue = h.open.at(c).said.empty() ? kRogues[0] : h.open.at(c).said;
                std::string user = kUsers[u % 4];
                Envelope e;
                if (which % 3 == 0) {
                    e = h.env("USER_REMOVE", rogue, "*", Json{{"user_id", user}, {"server_id", rogue}});
                } else if (which % 3 == 1) {
                    e = h.env("HEARTBEAT", rogue, h.app->id(), Json::object());
                } else {
                    // One ciphertext per record, so a garbage-signed one is never also sent well signed.
                    std::string ct = (s % 3 == 2 ? "forged-" : "sd-") + std::to_string(steps) + "-" + std::to_string(m);
                    e = h.env("SERVER_DELIVER", rogue, h.app->id(),
                              Json{{"user_id", user}, {"ciphertext", ct}, {"sender", "mallory"}, {"content_sig", ""}});
                    if (s % 3 == 2) h.forged_markers.insert(ct);
                }
                h.sign(e, s, k.rogues[rogue == kRogues[1] ? 1 : 0]);
                h.send(c, encode(e));
                break;
            }
            case 8: {
                LinkId c = h.pick(byte());
                std::uint8_t which = byte();
                if (!c) break;
                Envelope e;
                if (which & 1)
                    e = h.env("SERVER_HELLO_JOIN", kRogues[which >> 1 & 1], "10.0.0.1:8765",
                              Json{{"host", "10.9.9.9"}, {"port", 2}, {"pubkey", k.rogue_text[which >> 1 & 1]}});
                else
                    e = h.env("SERVER_WELCOME", kRogues[0], h.app->id(),
                              Json{{"assigned_id", "assigned"},
                                   {"servers", Json::array({{{"server_id", kRogues[0]}, {"host", "10.0.0.2"}, {"port", 8765},
                                                             {"pubkey", k.rogue_text[0]}}})},
                                   {"clients", Json::array({{{"user_id", "erin"}, {"server_id", kRogues[0]}, {"pubkey", k.user_text[0]}}})}});
                h.sign(e, which >> 2, k.rogues[0]);
                h.send(c, encode(e));
                break;
            }
            case 9: {
                LinkId c = h.pick(byte());
                std::size_t n = byte() % 512;
                ByteView raw = in.bytes(std::min(n, in.remaining()));
                h.send(c, std::string(raw.begin(), raw.end()));
                break;
            }
            case 10: {
                LinkId c = h.pick(byte());
                std::uint8_t i = byte();
                if (!h.sent.empty()) h.send(c, h.sent[i % h.sent.size()]);
                break;
            }
            case 11: {
                h.now += std::int64_t{byte()} * 100;
                h.apply(h.app->tick(h.now));
                break;
            }
            case 12: {
                std::uint8_t which = byte();
                if (h.dials.empty()) break;
                std::uint64_t token = h.dials.front();
                h.dials.erase(h.dials.begin());
                if (which & 1 && h.open.size() < 8) {
                    LinkId c = h.next++;
                    h.open.emplace(c, Link{});
                    h.apply(h.app->opened(c, token, h.now));
                } else {
                    h.apply(h.app->dial_failed(token, h.now));
                }
                break;
            }
            case 13: {
                std::vector<LinkId> closing;
                for (const auto& [id, l] : h.open)
                    if (l.closing) closing.push_back(id);
                for (LinkId id : closing) h.closed(id);
                break;
            }
        }
    }
    return 0;
}
