// SOCP v1.3 on loopback: direct messages per second across two servers, and
// how fast a three-server mesh routes around a server that dies or hangs,
// and takes it back.
//
// Throughput: servers A and B (each on its own Asio thread, B joined through
// A), alice on A sends N direct messages to bob on B through socp::Client:
// each is RSA-OAEP encrypted, signed twice by alice (content_sig and the link
// sig), re-signed by A (SERVER_DELIVER) and by B (USER_DELIVER), decrypted
// and verified by bob on his own thread. Timed from the first send to bob's
// last message; every message must arrive once, decrypt and verify. Beside
// it, the same run measures the RSA-4096 operations that bound it (PSS sign,
// OAEP decrypt, PSS verify on one core).
//
// Mesh: A, B and C (heartbeat 1 s, dead after 3 s), a user on each. B is
// killed (its sockets close): the time until A and C dropped B and its user,
// and the latency of a DM from A's user to C's user sent right after. Then B
// restarts and joins again: the time until a DM reaches its new user. Then B
// hangs (its thread stops, its sockets stay open): the time until A and C
// declare it dead by the heartbeat rule.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/post.hpp>

#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "core/io_thread.hpp"
#include "socp/client.hpp"
#include "socp/keys.hpp"
#include "socp/server.hpp"

using namespace msglab;
using namespace msglab::socp;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;

namespace {

double seconds_since(Steady::time_point t0) { return std::chrono::duration<double>(Steady::now() - t0).count(); }

[[noreturn]] void fail(const std::string& why) {
    std::fprintf(stderr, "bench_socp: %s\n", why.c_str());
    std::exit(1);
}

crypto::RsaPrivateKey key(const std::string& name) {
    return load_key_file(std::string(MSGLAB_SOCP_KEYS) + "/" + name + ".pem");
}

// A server on its own thread.
struct Node {
    std::unique_ptr<IoThread> loop = std::make_unique<IoThread>();
    std::unique_ptr<Server> server;
    Node(const std::string& key_name, std::vector<Endpoint> introducers, std::int64_t hb, std::int64_t dead) {
        ServerOptions o;
        o.port = 0;
        o.app.introducers = std::move(introducers);
        o.app.heartbeat_ms = hb;
        o.app.dead_after_ms = dead;
        o.app.redial_min_ms = 200;
        o.app.redial_max_ms = 1000;
        server = std::make_unique<Server>(loop->io, o, key(key_name), uuid4(SystemRng::instance()), SystemRng::instance());
        server->start();
    }
    ~Node() { kill(); }
    Endpoint endpoint() const { return Endpoint{"127.0.0.1", server->port()}; }
    // Runs `f` on the server's thread.
    template <class F>
    auto query(F f) {
        std::promise<decltype(f(server->app()))> p;
        boost::asio::post(loop->io, [&] { p.set_value(f(server->app())); });
        return p.get_future().get();
    }
    std::size_t linked() { return query([](App& a) { return a.linked_servers().size(); }); }
    bool knows(const std::string& user) { return query([&](App& a) { return a.user_locations().count(user) != 0; }); }
    // The process dies: every socket closes.
    void kill() {
        if (!server) return;
        server->stop();  // posted: let it run (the sockets close) before the loop stops
        if (!hung) {
            std::promise<void> done;
            boost::asio::post(loop->io, [&] { done.set_value(); });
            if (done.get_future().wait_for(5s) != std::future_status::ready) fail("a server did not stop");
        }
        loop->stop();
        server.reset();
    }
    // The process hangs: nothing runs, the sockets stay open.
    void hang() {
        hung = true;
        loop->stop();
    }
    bool hung = false;
};

std::unique_ptr<Client> user(const Node& n, const std::string& id, const std::string& key_name) {
    ClientOptions o;
    o.port = n.server->port();
    o.user = id;
    o.timeout = 10s;
    auto c = std::make_unique<Client>(o, key(key_name), SystemRng::instance());
    c->login();
    return c;
}

bool wait_until(const std::function<bool()>& f, std::chrono::milliseconds limit) {
    auto until = Steady::now() + limit;
    while (Steady::now() < until) {
        if (f()) return true;
        std::this_thread::sleep_for(5ms);
    }
    return f();
}

// Seconds until `c` gets a direct message with `text`.
double dm_latency(Client& from, Client& to, const std::string& text) {
    auto t0 = Steady::now();
    from.tell(to.user(), text);
    while (seconds_since(t0) < 10) {
        auto ev = to.next(100ms);
        if (ev && ev->kind == Event::Kind::direct && ev->text == text) return seconds_since(t0);
    }
    fail("the direct message '" + text + "' did not arrive");
}

void bound() {
    SystemRng& rng = SystemRng::instance();
    auto k = key("user-1");
    auto pub = k.public_key();
    Bytes msg = rng.bytes(200);
    auto t0 = Steady::now();
    int n = 0;
    Bytes sig;
    while (seconds_since(t0) < 1.0) sig = k.pss_sign(msg, rng), ++n;
    double sign = n / seconds_since(t0);
    Bytes ct = pub.oaep_encrypt(msg, rng);
    t0 = Steady::now();
    n = 0;
    while (seconds_since(t0) < 1.0) (void)k.oaep_decrypt(ct, rng), ++n;
    double decrypt = n / seconds_since(t0);
    t0 = Steady::now();
    n = 0;
    while (seconds_since(t0) < 0.5) (void)pub.pss_verify(msg, sig), ++n;
    double verify = n / seconds_since(t0);
    std::printf("RSA-4096 on one core: PSS sign %.0f/s, OAEP decrypt %.0f/s, PSS verify %.0f/s\n", sign, decrypt, verify);
    // Per DM: alice signs twice, A and B sign once each, bob decrypts once.
    std::printf("  bound for one DM chain: alice's two signatures = %.0f DMs/s; bob's decryption = %.0f DMs/s\n",
                sign / 2, decrypt);
}

void throughput(int n) {
    Node a("server-a", {}, 15'000, 45'000);
    Node b("server-b", {a.endpoint()}, 15'000, 45'000);
    auto alice = user(a, "11111111-1111-4111-8111-111111111111", "user-1");
    auto bob = user(b, "22222222-2222-4222-8222-222222222222", "user-2");
    if (!alice->wait_for_user(bob->user(), 10s)) fail("bob never appeared in alice's directory");
    std::atomic<int> got{0}, bad{0};
    std::vector<char> seen(static_cast<std::size_t>(n), 0);
    Steady::time_point last;
    std::thread reader([&] {
        auto until = Steady::now() + 120s;
        while (got < n && Steady::now() < until) {
            auto ev = bob->next(200ms);
            if (!ev || ev->kind != Event::Kind::direct) continue;
            int i = std::atoi(ev->text.c_str() + 3);
            if (ev->text.rfind("dm ", 0) != 0 || i < 0 || i >= n || seen[static_cast<std::size_t>(i)] || !ev->verified) {
                ++bad;
                continue;
            }
            seen[static_cast<std::size_t>(i)] = 1;
            ++got;
            last = Steady::now();
        }
    });
    auto t0 = Steady::now();
    for (int i = 0; i < n; ++i) alice->tell(bob->user(), "dm " + std::to_string(i));
    double sent = seconds_since(t0);
    reader.join();
    if (got != n || bad) fail(std::to_string(got) + " of " + std::to_string(n) + " DMs arrived, " + std::to_string(bad) + " bad");
    double total = std::chrono::duration<double>(last - t0).count();
    std::printf("direct messages across two servers: %d in %.2f s = %.0f DMs/s (alice done sending after %.2f s); "
                "every one delivered once, decrypted and verified\n",
                n, total, n / total, sent);
}

void mesh() {
    const std::int64_t hb = 1000, dead = 3000;
    auto a = std::make_unique<Node>("server-a", std::vector<Endpoint>{}, hb, dead);
    auto b = std::make_unique<Node>("server-b", std::vector<Endpoint>{a->endpoint()}, hb, dead);
    auto c = std::make_unique<Node>("server-c", std::vector<Endpoint>{a->endpoint()}, hb, dead);
    if (!wait_until([&] { return a->linked() == 2 && b->linked() == 2 && c->linked() == 2; }, 10s))
        fail("the three servers did not link");
    const std::string u1 = "11111111-1111-4111-8111-111111111111", u2 = "22222222-2222-4222-8222-222222222222",
                      u3 = "33333333-3333-4333-8333-333333333333";
    auto alice = user(*a, u1, "user-1");
    auto carol = user(*c, u2, "user-2");
    auto bert = user(*b, u3, "user-3");
    if (!alice->wait_for_user(u2, 10s) || !alice->wait_for_user(u3, 10s)) fail("presence did not spread");

    auto t0 = Steady::now();
    b->kill();
    double latency = dm_latency(*alice, *carol, "right after the kill");
    if (!wait_until([&] { return a->linked() == 1 && c->linked() == 1 && !a->knows(u3) && !c->knows(u3); }, 10s))
        fail("the survivors did not drop the killed server");
    double dropped = seconds_since(t0);
    std::printf("mesh of 3, one server killed: the survivors dropped it and its user %.3f s after the kill; "
                "a DM between the survivors' users sent at once arrived in %.3f s\n",
                dropped, latency);

    t0 = Steady::now();
    b = std::make_unique<Node>("server-b", std::vector<Endpoint>{a->endpoint()}, hb, dead);
    if (!wait_until([&] { return b->linked() == 2; }, 10s)) fail("the restarted server did not link to both");
    auto bert2 = user(*b, u3, "user-3");
    if (!alice->wait_for_user(u3, 10s)) fail("the restarted server's user never reached alice");
    double back = dm_latency(*alice, *bert2, "welcome back");
    std::printf("  restarted and joined again through the introducer: its new user got a DM %.3f s after the "
                "restart (that DM took %.3f s)\n",
                seconds_since(t0), back);

    t0 = Steady::now();
    b->hang();
    if (!wait_until([&] { return a->linked() == 1 && c->linked() == 1; }, 15s))
        fail("the hung server was not declared dead");
    double hung = seconds_since(t0);
    double latency2 = dm_latency(*alice, *carol, "after the hang");
    std::printf("  one server hung (sockets open, nothing answered): declared dead %.2f s after it stopped "
                "(heartbeat %.0f s, dead after %.0f s); the survivors' DM then took %.3f s\n",
                hung, hb / 1000.0, dead / 1000.0, latency2);
    (void)bert;
}

}  // namespace

int main(int argc, char** argv) {
    int n = argc > 1 ? std::atoi(argv[1]) : 300;
    if (n <= 0) fail("usage: bench_socp [MESSAGES]");
    bound();
    throughput(n);
    mesh();
    return 0;
}
