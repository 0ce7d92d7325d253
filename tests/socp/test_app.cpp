// The SOCP server's logic on an in-memory network (mesh_sim.hpp): bootstrap,
// gossip, routing, the duplicate cache, heartbeats, failures and rejoins,
// the public channel, the errors, and every plant.
#include <catch2/catch.hpp>

#include "mesh_sim.hpp"

using namespace msglab;
using namespace msglab::socp;
using namespace msglab::socp::test;

namespace {

const std::string U1 = "11111111-1111-4111-8111-111111111111";
const std::string U2 = "22222222-2222-4222-8222-222222222222";
const std::string U3 = "33333333-3333-4333-8333-333333333333";

bool has(const std::vector<std::string>& v, const std::string& x) { return std::find(v.begin(), v.end(), x) != v.end(); }

// A, B and C: B and C join through A.
void three(Mesh& m, PlantSet plants = {}) {
    m.add_server("1", "server-a", {}, plants);
    m.add_server("2", "server-b", {"1"}, plants);
    m.add_server("3", "server-c", {"1"}, plants);
}

std::vector<std::string> errors(const SimUser& u) {
    std::vector<std::string> out;
    for (const auto& e : u.of_type("ERROR")) out.push_back(string_field(e.payload, "code").value_or("?"));
    return out;
}

PlantSet with(const char* id) {
    PlantSet p;
    p.enable(id);
    return p;
}

}  // namespace

TEST_CASE("socp mesh: introducer bootstrap links every server to every other", "[app]") {
    Mesh m;
    three(m);
    for (const char* s : {"1", "2", "3"}) {
        INFO(s);
        CHECK(m.server(s).joined());
        CHECK(m.server(s).linked_servers().size() == 2);
    }
    CHECK(has(m.server("2").linked_servers(), m.server("3").id()));
    CHECK(has(m.server("3").linked_servers(), m.server("2").id()));
}

TEST_CASE("socp mesh: presence gossip, direct messages across servers, one delivery each", "[app]") {
    Mesh m;
    three(m);
    SimUser& a = m.login(U1, "user-1", "1");
    SimUser& c = m.login(U2, "user-2", "3");
    CHECK(a.last("ACK"));
    for (const char* s : {"1", "2", "3"}) {
        auto loc = m.server(s).user_locations();
        CHECK(loc.at(U1) == (std::string(s) == "1" ? "local" : m.server("1").id()));
        CHECK(loc.at(U2) == (std::string(s) == "3" ? "local" : m.server("3").id()));
    }
    // The newcomer learnt the directory, with keys.
    bool a_knows_c = false;
    for (const auto& ad : a.of_type("USER_ADVERTISE"))
        if (string_field(ad.payload, "user_id") == U2 && string_field(ad.payload["meta"], "pubkey")) a_knows_c = true;
    CHECK(a_knows_c);

    Envelope d = m.dm(a, c, "hello across the mesh");
    m.user_send(a, d);
    auto got = c.of_type("USER_DELIVER");
    REQUIRE(got.size() == 1);
    CHECK(got[0].from == m.server("3").id());
    CHECK(got[0].to == U2);
    CHECK(got[0].ts == d.ts);
    CHECK(string_field(got[0].payload, "sender") == U1);
    CHECK(string_field(got[0].payload, "ciphertext") == string_field(d.payload, "ciphertext"));
    CHECK(m.open_dm(c, got[0]) == "hello across the mesh");
    // The content signature survives the hops.
    auto ct = *string_field(got[0].payload, "ciphertext");
    CHECK(verify_content(key("user-1").public_key(), dm_content(ct, U1, U2, got[0].ts),
                         *string_field(got[0].payload, "content_sig")));
    // The delivering server signed it.
    CHECK(verify_payload(key("server-c").public_key(), got[0].payload, *got[0].sig));

    // The same frame again is a duplicate.
    m.user_send(a, d, false);
    CHECK(c.of_type("USER_DELIVER").size() == 1);
    CHECK(errors(a).empty());
}

TEST_CASE("socp mesh: no-dedup delivers a replayed frame again", "[app][plant]") {
    Mesh m;
    three(m, with(plant::no_dedup));
    SimUser& a = m.login(U1, "user-1", "1");
    SimUser& c = m.login(U2, "user-2", "3");
    Envelope d = m.dm(a, c, "twice");
    m.user_send(a, d);
    m.user_send(a, d);
    CHECK(c.of_type("USER_DELIVER").size() == 2);
}

TEST_CASE("socp mesh: the public channel reaches every other user once, under the group key", "[app]") {
    Mesh m;
    three(m);
    SimUser& a = m.login(U1, "user-1", "1");
    SimUser& b = m.login(U3, "user-3", "2");
    SimUser& c = m.login(U2, "user-2", "3");
    // The last admission wrapped a key for all three.
    auto updated = c.last("PUBLIC_CHANNEL_UPDATED");
    REQUIRE(updated);
    auto wraps = updated->payload["wraps"];
    CHECK(wraps.size() == 3);
    std::optional<Bytes> group;
    for (const auto& w : wraps)
        if (w["member_id"] == U1) group = decrypt_with(key("user-1"), w["wrapped_key"].get<std::string>(), m.rng);
    REQUIRE(group);
    CHECK(group->size() == 32);
    std::string ct = group_encrypt(*group, "to everyone", m.rng);
    Envelope pub = m.user_envelope(a, "MSG_PUBLIC_CHANNEL", "public", Json::object());
    pub.payload = Json{{"ciphertext", ct}, {"key_version", updated->payload["version"]}};
    m.user_send(a, pub);
    CHECK(a.of_type("MSG_PUBLIC_CHANNEL").empty());
    REQUIRE(b.of_type("MSG_PUBLIC_CHANNEL").size() == 1);
    REQUIRE(c.of_type("MSG_PUBLIC_CHANNEL").size() == 1);
    for (SimUser* u : {&b, &c}) {
        auto w = u->last("PUBLIC_CHANNEL_UPDATED")->payload["wraps"];
        for (const auto& x : w)
            if (x["member_id"] == u->id) {
                auto k = decrypt_with(key(u->key_name), x["wrapped_key"].get<std::string>(), m.rng);
                REQUIRE(k);
                CHECK(group_decrypt(*k, *string_field(u->last("MSG_PUBLIC_CHANNEL")->payload, "ciphertext")) ==
                      std::optional<std::string>("to everyone"));
            }
    }
}

TEST_CASE("socp mesh: a killed server's users vanish, the others keep talking, a restart rejoins", "[app]") {
    Mesh m;
    three(m);
    SimUser& a = m.login(U1, "user-1", "1");
    SimUser& b = m.login(U3, "user-3", "2");
    SimUser& c = m.login(U2, "user-2", "3");
    (void)b;
    m.kill("2");
    CHECK(m.server("1").linked_servers().size() == 1);
    CHECK_FALSE(m.server("1").user_locations().count(U3));
    bool told = false;
    for (const auto& rm : a.of_type("USER_REMOVE"))
        if (string_field(rm.payload, "user_id") == U3) told = true;
    CHECK(told);
    m.user_send(a, m.dm(a, c, "still here"));
    REQUIRE(c.of_type("USER_DELIVER").size() == 1);
    // A DM to the vanished user is refused.
    Envelope lost = m.user_envelope(a, "MSG_DIRECT", U3, Json{{"ciphertext", "AA"}});
    m.user_send(a, lost);
    CHECK(errors(a) == std::vector<std::string>{"USER_NOT_FOUND"});

    // The survivors redial the dead address for a while; then B restarts
    // (a new process, a new id) through C while A is its first introducer.
    m.advance(1500);
    m.add_server("2", "server-b", {"1", "3"});
    CHECK(m.server("2").joined());
    CHECK(m.server("2").linked_servers().size() == 2);
    SimUser& b2 = m.login(U3, "user-3", "2");
    m.user_send(b2, m.dm(b2, a, "back again"));
    REQUIRE(a.of_type("USER_DELIVER").size() == 1);
    CHECK(m.open_dm(a, a.of_type("USER_DELIVER")[0]) == "back again");
    m.advance(5000);  // heartbeats flow; nobody is declared dead
    CHECK(m.server("1").linked_servers().size() == 2);
}

TEST_CASE("socp mesh: an introducer that is down is skipped, and a killed introducer does not stop the mesh", "[app]") {
    Mesh m;
    m.add_server("1", "server-a");
    m.add_server("2", "server-b", {"9", "1"});  // 9 does not exist
    CHECK(m.server("2").joined());
    m.add_server("3", "server-c", {"1"});
    SimUser& b = m.login(U1, "user-1", "2");
    SimUser& c = m.login(U2, "user-2", "3");
    m.kill("1");
    m.user_send(b, m.dm(b, c, "no introducer needed"));
    CHECK(c.of_type("USER_DELIVER").size() == 1);
    m.add_server("4", "server-d", {"1", "2"});
    CHECK(m.server("4").joined());
    CHECK(m.server("4").linked_servers().size() == 2);
}

TEST_CASE("socp mesh: a hung server is declared dead after the dead-after time", "[app]") {
    Mesh m;
    three(m);
    m.login(U3, "user-3", "2");
    m.freeze("2");
    m.advance(2000);
    CHECK(m.server("1").linked_servers().size() == 2);  // not yet: 3 s
    m.advance(2000);
    CHECK(m.server("1").linked_servers().size() == 1);
    CHECK_FALSE(m.server("1").user_locations().count(U3));
    bool logged = false;
    for (const auto& l : m.logs)
        if (l.find("is dead") != std::string::npos) logged = true;
    CHECK(logged);
}

TEST_CASE("socp server: user errors answered, the link kept", "[app]") {
    Mesh m;
    m.add_server("1", "server-a");
    SimUser& a = m.login(U1, "user-1", "1");
    SimUser& b = m.login(U2, "user-2", "1");
    // from is not the connection's user
    Envelope spoof = m.dm(a, b, "x");
    spoof.from = U3;
    m.user_send(a, spoof);
    CHECK(errors(a) == std::vector<std::string>{"INVALID_SIG"});
    // a bad link signature
    Envelope bad = m.dm(a, b, "y");
    bad.sig = sign_payload(key("user-5"), bad.payload, m.rng);
    m.user_send(a, bad, false);
    CHECK(errors(a).back() == "INVALID_SIG");
    // unknown recipient, unknown type, malformed JSON
    m.user_send(a, m.user_envelope(a, "MSG_DIRECT", "nobody", Json{{"ciphertext", "AA"}}));
    CHECK(errors(a).back() == "USER_NOT_FOUND");
    m.user_send(a, m.user_envelope(a, "SERVER_DELIVER", U2, Json::object()));
    CHECK(errors(a).back() == "UNKNOWN_TYPE");
    m.user_send_text(a, "{not json");
    CHECK(errors(a).back() == "UNKNOWN_TYPE");
    CHECK(a.open);
    CHECK(b.of_type("USER_DELIVER").empty());
    // A frame older than the duplicate cache remembers could be a forgotten replay.
    Envelope old = m.dm(a, b, "from long ago");
    old.ts = m.now - 11 * 60 * 1000;
    m.user_send(a, old);
    CHECK(errors(a).back() == "TIMEOUT");
    CHECK(b.of_type("USER_DELIVER").empty());
    // The hidden recipient means nothing on a clean server.
    m.user_send(a, m.user_envelope(a, "MSG_DIRECT", kDebugRecipient, Json{{"ciphertext", "AA"}}));
    CHECK(errors(a).back() == "USER_NOT_FOUND");
}

TEST_CASE("socp server: the first frame must identify the peer", "[app]") {
    Mesh m;
    m.add_server("1", "server-a");
    SimUser& u = m.connect_user(U1, "user-1", "1");
    m.user_send(u, m.user_envelope(u, "MSG_DIRECT", U2, Json::object()));
    CHECK(errors(u) == std::vector<std::string>{"UNKNOWN_TYPE"});
    CHECK_FALSE(u.open);
    // A link that never speaks is closed after the join timeout.
    SimUser& quiet = m.connect_user(U2, "user-2", "1");
    m.advance(2500);
    CHECK_FALSE(quiet.open);
}

TEST_CASE("socp server: weak keys are refused, and accepted by socp.weak-rsa", "[app][plant]") {
    for (bool planted : {false, true}) {
        Mesh m;
        m.add_server("1", "server-a", {}, planted ? with(plant::weak_rsa) : PlantSet{});
        SimUser& u = m.connect_user(U1, "weak-1", "1");
        m.hello(u);
        if (planted) {
            CHECK(u.last("ACK"));
            CHECK(m.server("1").local_users() == std::vector<std::string>{U1});
        } else {
            CHECK(errors(u) == std::vector<std::string>{"BAD_KEY"});
            CHECK_FALSE(u.open);
        }
    }
}

TEST_CASE("socp server: a taken name is refused mesh-wide, and taken over with socp.dual-login", "[app][plant]") {
    for (bool planted : {false, true}) {
        Mesh m;
        m.add_server("1", "server-a", {}, planted ? with(plant::dual_login) : PlantSet{});
        m.add_server("2", "server-b", {"1"}, planted ? with(plant::dual_login) : PlantSet{});
        SimUser& victim = m.login(U1, "user-1", "1");
        SimUser& friend_ = m.login(U2, "user-2", "2");
        SimUser& local_thief = m.login(U1, "user-3", "1");
        SimUser& remote_thief = m.connect_user(U1, "user-4", "2");
        m.hello(remote_thief);
        if (!planted) {
            CHECK(errors(local_thief) == std::vector<std::string>{"NAME_IN_USE"});
            CHECK(errors(remote_thief) == std::vector<std::string>{"NAME_IN_USE"});
            m.user_send(friend_, m.dm(friend_, victim, "for the victim"));
            CHECK(victim.of_type("USER_DELIVER").size() == 1);
        } else {
            CHECK(local_thief.last("ACK"));
            // The newest login holds the name: messages for it go to the thief.
            m.user_send(friend_, m.dm(friend_, victim, "for the victim"));
            CHECK(victim.of_type("USER_DELIVER").empty());
            CHECK(remote_thief.of_type("USER_DELIVER").size() + local_thief.of_type("USER_DELIVER").size() == 1);
        }
    }
}

TEST_CASE("socp server: socp.hidden-command answers a magic recipient with the directory", "[app][plant]") {
    Mesh m;
    m.add_server("1", "server-a", {}, with(plant::hidden_command));
    SimUser& a = m.login(U1, "user-1", "1");
    m.login(U2, "user-2", "1");
    m.user_send(a, m.user_envelope(a, "MSG_DIRECT", kDebugRecipient, Json{{"ciphertext", "AA"}}));
    auto dump = a.last("ACK");
    REQUIRE(dump);
    CHECK(string_field(dump->payload, "msg_ref") == std::optional<std::string>(kDebugRecipient));
    CHECK(dump->payload["users"].size() == 2);
}

TEST_CASE("socp server: gossip signatures checked, and skipped by the signature plants", "[app][plant]") {
    // The rogue is a link that announces itself as a server (its own key),
    // then claims presence of a user with USER_ADVERTISE.
    struct Case {
        const char* plant;
        bool sign_bad;  // a garbage signature, else none at all
        bool hijacked;
    };
    const Case cases[] = {
        {nullptr, false, false},
        {nullptr, true, false},
        {plant::unsigned_advertise, false, true},
        {plant::unsigned_advertise, true, true},
        {plant::any_signature, true, true},
        {plant::any_signature, false, false},
    };
    for (const Case& k : cases) {
        INFO((k.plant ? k.plant : "clean") << (k.sign_bad ? " bad sig" : " no sig"));
        Mesh m;
        m.add_server("1", "server-a", {}, k.plant ? with(k.plant) : PlantSet{});
        SimUser& alice = m.login(U1, "user-1", "1");
        SimUser& rogue = m.connect_user("rogue-server", "server-d", "1");
        std::string rogue_key = encode_key(key("server-d").public_key());
        m.user_send(rogue, m.user_envelope(rogue, "SERVER_ANNOUNCE", "*",
                                           Json{{"host", "10.9.9.9"}, {"port", 1}, {"pubkey", rogue_key}}));
        REQUIRE(has(m.server("1").linked_servers(), "rogue-server"));
        Envelope ad = m.user_envelope(rogue, "USER_ADVERTISE", "*",
                                      Json{{"user_id", U2}, {"server_id", "rogue-server"}, {"meta", Json::object()}});
        if (k.sign_bad) ad.sig = sign_payload(key("user-8"), ad.payload, m.rng);
        m.user_send(rogue, ad, false);
        bool routed = m.server("1").user_locations().count(U2) != 0;
        CHECK(routed == k.hijacked);
        if (!k.hijacked) CHECK(errors(rogue).back() == "INVALID_SIG");
        (void)alice;
    }
}
