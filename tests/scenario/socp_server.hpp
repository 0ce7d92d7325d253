// A SOCP reference server on loopback (an ephemeral port) with the given
// plants and a cached test key, for scenario and hunt tests. The probes read
// their keys from the same cache (tests/fixtures/socp/keys).
#pragma once

#include <utility>

#include <boost/asio.hpp>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/io_thread.hpp"
#include "core/registry.hpp"
#include "socp/keys.hpp"
#include "socp/server.hpp"

namespace msglab::test {

struct SocpServer {
    explicit SocpServer(const std::vector<std::string>& plants = {}) {
        ::setenv("MSGLAB_SOCP_KEY_CACHE", MSGLAB_SOCP_KEYS, 1);
        socp::ServerOptions o;
        o.port = 0;
        o.app.plants = PlantSet::parse(plants, "socp");
        server = std::make_unique<socp::Server>(loop.io, o,
                                                socp::cached_key("server-a", socp::kRequiredBits, SystemRng::instance()),
                                                uuid4(SystemRng::instance()), SystemRng::instance());
        server->start();
    }
    ~SocpServer() {
        server->stop();
        loop.stop();  // endpoints go after the thread stops (core/io_thread.hpp)
        server.reset();
    }
    HostPort target() const { return {"127.0.0.1", server->port()}; }

    IoThread loop;
    std::unique_ptr<socp::Server> server;
};

}  // namespace msglab::test
