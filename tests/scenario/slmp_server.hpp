// An SLMP reference server on loopback (an ephemeral port), with the given
// plants, for scenario and hunt tests. With slmp.crash-on-bad-input it stops
// serving at the first bad input, as the original's process dies.
#pragma once

#include <utility>

#include <boost/asio.hpp>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/io_thread.hpp"
#include "core/registry.hpp"
#include "slmp/endpoint.hpp"

namespace msglab::test {

struct SlmpServer {
    explicit SlmpServer(const std::vector<std::string>& plants = {}) {
        slmp::Server::Options so;
        so.session.plants = PlantSet::parse(plants, "slmp");
        so.callbacks.on_fatal = [this](const std::string&) { died = true; };
        server = std::make_unique<slmp::Server>(
            loop.io, boost::asio::ip::tcp::endpoint{boost::asio::ip::make_address("127.0.0.1"), 0}, so);
    }
    ~SlmpServer() {
        server->stop();
        loop.stop();  // endpoints go after the thread stops (core/io_thread.hpp)
        server.reset();
    }
    HostPort target() const { return {"127.0.0.1", server->port()}; }
    IoThread loop;
    std::unique_ptr<slmp::Server> server;
    std::atomic<bool> died{false};
};

}  // namespace msglab::test
