// A CSMP reference server on loopback (an ephemeral port) with its history in
// a temporary SQLite file, with the given plants, for scenario and hunt
// tests. files() gives the server's files for the checks that read them.
#pragma once

#include <utility>

#include <boost/asio.hpp>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/io_thread.hpp"
#include "core/registry.hpp"
#include "csmp/server.hpp"
#include "support.hpp"

namespace msglab::test {

struct CsmpServer {
    explicit CsmpServer(const std::vector<std::string>& plants = {}) {
        csmp::ServerOptions o;
        o.port = 0;
        o.app.plants = PlantSet::parse(plants, "csmp");
        bool hardcoded = o.app.plants.has(csmp::plant::hardcoded_secret);
        db = (dir / "history.db").string();
        store = std::make_unique<csmp::HistoryStore>(
            csmp::StoreOptions{db, hardcoded ? Bytes{} : to_bytes("scenario test secret, 16+"), hardcoded},
            SystemRng::instance());
        server = std::make_unique<csmp::Server>(loop.io, o, store.get(), SystemRng::instance());
        std::promise<void> started;
        boost::asio::post(loop.io, [&] {
            server->start();
            started.set_value();
        });
        started.get_future().wait();
    }
    ~CsmpServer() {
        std::promise<void> stopped;
        boost::asio::post(loop.io, [&] {
            server->stop();
            stopped.set_value();
        });
        stopped.get_future().wait_for(std::chrono::seconds(5));
        loop.stop();  // endpoints go after the thread stops (core/io_thread.hpp)
        server.reset();
    }
    HostPort target() const { return {"127.0.0.1", server->port()}; }
    std::map<std::string, std::string> files() const { return {{"db", db}}; }

    TempDir dir;
    std::string db;
    std::unique_ptr<csmp::HistoryStore> store;
    IoThread loop;
    std::unique_ptr<csmp::Server> server;
};

}  // namespace msglab::test
