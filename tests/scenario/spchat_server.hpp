// An SP-SimpleChat reference server on loopback (an ephemeral port) with the
// given plants, for scenario and hunt tests.
#pragma once

#include <utility>

#include <boost/asio.hpp>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/io_thread.hpp"
#include "core/registry.hpp"
#include "spchat/server.hpp"

namespace msglab::test {

struct SpchatServer {
    explicit SpchatServer(const std::vector<std::string>& plants = {}) {
        spchat::ServerOptions o;
        o.port = 0;
        o.app.plants = PlantSet::parse(plants, "spchat");
        server = std::make_unique<spchat::Server>(loop.io, o);
        std::promise<void> started;
        boost::asio::post(loop.io, [&] {
            server->start();
            started.set_value();
        });
        started.get_future().wait();
    }
    ~SpchatServer() {
        server->stop();
        loop.stop();  // endpoints go after the thread stops (core/io_thread.hpp)
        server.reset();
    }
    HostPort target() const { return {"127.0.0.1", server->port()}; }

    IoThread loop;
    std::unique_ptr<spchat::Server> server;
};

}  // namespace msglab::test
