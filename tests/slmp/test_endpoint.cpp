// The SLMP server and client over real loopback sockets, in process.
#include <sys/socket.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "core/io_thread.hpp"
#include "core/keylog.hpp"
#include "slmp/endpoint.hpp"
#include "slmp_support.hpp"

using namespace msglab;
using namespace msglab::slmp;
using namespace msglab::test;
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

ClientConfig as_user(std::string user) {
    ClientConfig c;
    c.user = std::move(user);
    return c;
}

// An SLMP server on an ephemeral loopback port, on its own thread, recording
// what its callbacks report.
struct SlmpServer {
    IoThread loop;
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::pair<std::string, std::string>> requests;  // user, message
    std::vector<std::string> closed;                            // reasons ("" for a normal end)
    std::size_t key_exchanges = 0;
    std::optional<std::string> fatal;
    std::unique_ptr<Server> server;

    explicit SlmpServer(const std::vector<std::string>& plants = {}, KeyLogWriter* keylog = nullptr,
                        std::chrono::milliseconds deadline = 10s) {
        Server::Options o;
        o.session.plants = PlantSet::parse(plants, "slmp");
        o.keylog = keylog;
        o.deadline = deadline;
        o.callbacks.on_key_exchanged = [this](const std::string&, const std::string&) {
            std::lock_guard<std::mutex> l(m);
            ++key_exchanges;
            cv.notify_all();
        };
        o.callbacks.on_request = [this](const std::string&, const std::string& user, const std::string& message) {
            std::lock_guard<std::mutex> l(m);
            requests.emplace_back(user, message);
            cv.notify_all();
        };
        o.callbacks.on_closed = [this](const std::string&, const std::string& reason) {
            std::lock_guard<std::mutex> l(m);
            closed.push_back(reason);
            cv.notify_all();
        };
        o.callbacks.on_fatal = [this](const std::string& reason) {
            std::lock_guard<std::mutex> l(m);
            fatal = reason;
            cv.notify_all();
        };
        server = std::make_unique<Server>(loop.io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0), o);
        m_port = server->port();
    }
    ~SlmpServer() {
        server->stop();
        loop.stop();  // endpoints go after the thread stops (core/io_thread.hpp)
        server.reset();
    }
    // Kept from the start: the acceptor is gone once the server stops.
    std::uint16_t port() const { return m_port; }

    template <class Pred>
    bool wait(Pred pred, std::chrono::seconds limit = 30s) {
        std::unique_lock<std::mutex> l(m);
        return cv.wait_for(l, limit, pred);
    }
    bool closed_with(const std::string& text) {
        std::lock_guard<std::mutex> l(m);
        return std::any_of(closed.begin(), closed.end(),
                           [&](const std::string& r) { return r.find(text) != std::string::npos; });
    }

private:
    std::uint16_t m_port = 0;
};

// A client that stops half way: it sends its key and reads the server's.
struct KeyedRawClient {
    RawClient raw;
    ClientSession session;
    explicit KeyedRawClient(std::uint16_t port, const std::string& user = "amir")
        : raw(port), session(as_user(user), SystemClock::instance(), SystemRng::instance()) {
        raw.send(session.start());
        auto until = Steady::now() + 30s;
        while (!session.established() && !raw.closed() && Steady::now() < until) {
            if (auto got = raw.receive(1000ms)) session.feed(*got);
        }
        REQUIRE(session.established());
    }
    // Sends a request and reads until the reply; the reply's text.
    std::string ask(const std::string& message) {
        raw.send(session.request(message));
        auto until = Steady::now() + 30s;
        while (!raw.closed() && Steady::now() < until) {
            auto got = raw.receive(1000ms);
            if (!got) continue;
            Output out = session.feed(*got);
            for (const auto& e : out.events)
                if (e.kind == Event::Kind::reply) return e.message;
        }
        return "(no reply)";
    }
};

}  // namespace

TEST_CASE("SLMP server: 50 clients exchange at once, each with its own key", "[endpoint]") {
    constexpr int kClients = 50;
    TempDir dir;
    std::string keylog = (dir / "keys.log").string();
    std::vector<ExchangeResult> results(kClients);
    {
        KeyLogWriter log(keylog);
        SlmpServer s({}, &log);
        std::vector<std::thread> threads;
        for (int i = 0; i < kClients; ++i)
            threads.emplace_back([&, i] {
                results[i] = exchange("127.0.0.1", s.port(), as_user("user" + std::to_string(i)),
                                      "message " + std::to_string(i), 60s);
            });
        for (auto& t : threads) t.join();
        REQUIRE(s.wait([&] { return s.closed.size() == kClients; }));
        std::lock_guard<std::mutex> l(s.m);
        CHECK(s.key_exchanges == kClients);
        std::set<std::pair<std::string, std::string>> got(s.requests.begin(), s.requests.end()), want;
        for (int i = 0; i < kClients; ++i) want.emplace("user" + std::to_string(i), "message " + std::to_string(i));
        CHECK(s.requests.size() == kClients);
        CHECK(got == want);
        for (const auto& r : s.closed) CHECK(r.empty());
    }
    auto log = KeyLog::load(keylog);
    CHECK(log.size() == kClients);
    std::set<std::string> ids;
    for (int i = 0; i < kClients; ++i) {
        INFO("client " << i << ": " << results[i].error);
        REQUIRE(results[i].ok);
        CHECK(results[i].reply == "Message received: message " + std::to_string(i));
        REQUIRE(results[i].session_id.size() == 16);
        ids.insert(results[i].session_id);
        auto k = log.find(kKeyLogLabel, unhex(results[i].session_id));
        REQUIRE(k);
        CHECK(k->size() == 32);
    }
    CHECK(ids.size() == kClients);  // a fresh server key for every connection
}

TEST_CASE("SLMP server: bad input closes only that connection", "[endpoint]") {
    SlmpServer s;
    KeyedRawClient good(s.port());

    RawClient junk(s.port());
    junk.send(as_bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    CHECK(junk.closed_within(30s));
    RawClient p384(s.port());
    p384.send(as_bytes(kP384Pem));
    CHECK(p384.closed_within(30s));
    // A token under another key, judged after the quiet gap.
    KeyedRawClient forger(s.port());
    DeterministicRng rng(9);
    std::string forged = fernet::encrypt(fernet::Key::generate(rng),
                                         as_bytes(auth_token("amir", kDefaultSecret) + ";amir;Hello SLMP!"),
                                         SystemClock::instance(), rng);
    REQUIRE(forged.size() == 204);
    forger.raw.send(as_bytes(forged));
    CHECK(forger.raw.closed_within(30s));

    REQUIRE(s.wait([&] { return s.closed.size() >= 3; }));
    CHECK(s.closed_with("bad key: "));
    CHECK(s.closed_with("not a P-256 key: the client's key is another EC curve"));
    CHECK(s.closed_with("token does not verify"));
    CHECK_FALSE(s.server->stopped());

    // Others proceed: a new client, and the one that was waiting all along.
    auto fresh = exchange("127.0.0.1", s.port(), as_user("user1"), "after the junk", 30s);
    INFO(fresh.error);
    CHECK(fresh.ok);
    CHECK(fresh.reply == "Message received: after the junk");
    CHECK(good.ask("still here") == "Message received: still here");
    std::lock_guard<std::mutex> l(s.m);
    CHECK(s.requests == std::vector<std::pair<std::string, std::string>>{{"user1", "after the junk"},
                                                                         {"amir", "still here"}});
    CHECK_FALSE(s.fatal);
}

TEST_CASE("SLMP server: a stalled client blocks nobody (clean) but everybody with slmp.serial-server",
          "[endpoint][plant]") {
    SECTION("clean") {
        // A deadline far beyond the client's timeout: only concurrency can let the exchange through.
        SlmpServer s({}, nullptr, 120s);
        KeyedRawClient stalled(s.port());
        RawClient silent(s.port());
        auto r = exchange("127.0.0.1", s.port(), as_user("amir"), "not blocked", 20s);
        INFO(r.error);
        CHECK(r.ok);
        CHECK(r.reply == "Message received: not blocked");
        // The stalled client still has its connection, and finishes when it likes.
        CHECK(stalled.ask("late but fine") == "Message received: late but fine");
    }
    SECTION("slmp.serial-server") {
        SlmpServer s({"slmp.serial-server"});
        auto stalled = std::make_unique<KeyedRawClient>(s.port());
        // The stalled client holds the only slot: nobody else gets a key.
        auto blocked = exchange("127.0.0.1", s.port(), as_user("amir"), "blocked", 2s);
        CHECK_FALSE(blocked.ok);
        CHECK(blocked.error == "no key from the server within the timeout");
        {
            std::lock_guard<std::mutex> l(s.m);
            CHECK(s.key_exchanges == 1);
        }
        // Once it leaves, the server serves again.
        stalled.reset();
        auto after = exchange("127.0.0.1", s.port(), as_user("amir"), "served", 30s);
        INFO(after.error);
        CHECK(after.ok);
        CHECK(after.reply == "Message received: served");
    }
}

TEST_CASE("SLMP server: slmp.crash-on-bad-input stops the whole server on one bad unit", "[endpoint][plant]") {
    SlmpServer s({"slmp.crash-on-bad-input"});
    KeyedRawClient bystander(s.port());
    auto before = exchange("127.0.0.1", s.port(), as_user("amir"), "before", 30s);
    CHECK(before.ok);

    RawClient junk(s.port());
    junk.send(as_bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    REQUIRE(s.wait([&] { return s.fatal.has_value(); }));
    {
        std::lock_guard<std::mutex> l(s.m);
        CHECK(s.fatal->rfind("bad key: ", 0) == 0);
    }
    CHECK(s.server->stopped());
    CHECK(junk.closed_within(30s));
    // Everyone goes with it: the client half way through, and new ones.
    CHECK(bystander.raw.closed_within(30s));
    auto after = exchange("127.0.0.1", s.port(), as_user("amir"), "after", 10s);
    CHECK_FALSE(after.ok);
    CHECK(after.error.find("cannot connect to 127.0.0.1:" + std::to_string(s.port())) == 0);
}

TEST_CASE("SLMP client: the timeout bounds the TCP connect too", "[endpoint]") {
    // A listener that never accepts, its queue filled: Linux drops further
    // SYNs, so a connect neither succeeds nor fails on its own.
    asio::io_context io;
    tcp::acceptor full(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    full.listen(0);
    std::vector<std::unique_ptr<tcp::socket>> fillers;
    for (int i = 0; i < 4; ++i) {
        auto s = std::make_unique<tcp::socket>(io);
        s->open(tcp::v4());
        s->non_blocking(true);
        auto ep = full.local_endpoint();
        (void)::connect(s->native_handle(), ep.data(), ep.size());  // in progress or queued
        fillers.push_back(std::move(s));
    }
    auto start = std::chrono::steady_clock::now();
    auto r = exchange("127.0.0.1", full.local_endpoint().port(), as_user("amir"), "hello", 700ms);
    auto took = std::chrono::steady_clock::now() - start;
    INFO(r.error);
    CHECK_FALSE(r.ok);
    CHECK(r.error.find("cannot connect to 127.0.0.1:") == 0);
    CHECK(r.error.find("timed out") != std::string::npos);
    // Within the timeout's reach, not the kernel's SYN retries (minutes).
    CHECK(took < 20s);
}
