// A Signal-style relay on loopback (an ephemeral port, an in-memory key
// directory) with the given plants, and the echo bot the client checks talk
// to, running the same plants, for scenario and hunt tests.
#pragma once

#include <utility>

#include <boost/asio.hpp>
#include <memory>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/io_thread.hpp"
#include "core/registry.hpp"
#include "signal/client.hpp"
#include "signal/probes.hpp"
#include "signal/server.hpp"

namespace msglab::test {

struct SignalServer {
    explicit SignalServer(const std::vector<std::string>& plants = {}) {
        signal::ServerOptions o;
        o.sio.port = 0;
        o.db_path = ":memory:";
        o.relay_timeout = std::chrono::seconds(5);
        o.app.plants = PlantSet::parse(plants, "signal");
        server = std::make_unique<signal::Server>(loop.io, o);
        server->start();
        signal::BotOptions b;
        b.client.port = server->port();
        b.client.user = signal::kDefaultBot;
        b.client.chat.plants = o.app.plants;
        b.greet_after = std::chrono::milliseconds(300);
        bot = std::make_unique<signal::Bot>(b, signal::Identity::generate(SystemRng::instance()),
                                            SystemRng::instance());
        bot->start();
    }
    ~SignalServer() {
        bot->stop();
        server->stop();
        loop.stop();  // endpoints go after the thread stops (core/io_thread.hpp)
        server.reset();
    }
    HostPort target() const { return {"127.0.0.1", server->port()}; }

    IoThread loop;
    std::unique_ptr<signal::Server> server;
    std::unique_ptr<signal::Bot> bot;
};

}  // namespace msglab::test
