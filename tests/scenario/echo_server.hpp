// A SecMsg reference server with echo on loopback (an ephemeral port), with
// the given plants, for scenario and hunt tests.
#pragma once

#include <utility>

#include <boost/asio.hpp>
#include <memory>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/io_thread.hpp"
#include "core/registry.hpp"
#include "secmsg/endpoint.hpp"

namespace msglab::test {

struct EchoServer {
    explicit EchoServer(const std::vector<std::string>& plants = {}, std::size_t max_payload = 0) {
        secmsg::Server::Options so;
        if (max_payload) so.session.limits.max_payload = max_payload;
        so.echo = true;
        so.session.plants = PlantSet::parse(plants, "secmsg");
        server = std::make_unique<secmsg::Server>(
            loop.io, boost::asio::ip::tcp::endpoint{boost::asio::ip::make_address("127.0.0.1"), 0}, so);
    }
    ~EchoServer() {
        server->stop();
        loop.stop();  // endpoints go after the thread stops (core/io_thread.hpp)
        server.reset();
    }
    HostPort target() const { return {"127.0.0.1", server->port()}; }
    IoThread loop;
    std::unique_ptr<secmsg::Server> server;
};

}  // namespace msglab::test
