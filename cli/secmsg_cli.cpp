// msglab serve secmsg / msglab connect secmsg.
#include <unistd.h>

#include <condition_variable>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include "cli/cli.hpp"
#include "cli/serve_loop.hpp"
#include "cli/printable.hpp"
#include "core/address.hpp"
#include "secmsg/endpoint.hpp"

namespace msglab::cli {

namespace asio = boost::asio;

namespace {

secmsg::SessionConfig session_config(const po::variables_map& vm) {
    secmsg::SessionConfig c;
    c.limits.max_payload = vm["max-payload"].as<std::uint32_t>();
    c.freshness_window = vm["window"].as<std::uint64_t>();
    c.plants = plants_option(vm, "secmsg");
    return c;
}

std::unique_ptr<KeyLogWriter> open_keylog(const po::variables_map& vm) {
    std::optional<std::string> opt;
    if (vm.count("keylog")) opt = vm["keylog"].as<std::string>();
    auto path = KeyLogWriter::path_from(opt);
    return path ? std::make_unique<KeyLogWriter>(*path) : nullptr;
}

std::string plants_text(const PlantSet& plants) {
    if (plants.empty()) return "none (clean)";
    std::string s;
    for (const auto& p : plants.ids()) s += (s.empty() ? "" : ", ") + p;
    return s;
}


}  // namespace

int secmsg_serve(const po::variables_map& vm) {
    auto listen = listen_option(vm, secmsg::kDefaultPort);
    auto addr = asio::ip::make_address(listen.host);

    raise_fd_limit();
    auto keylog = open_keylog(vm);
    secmsg::Server::Options opts;
    opts.session = session_config(vm);
    opts.keylog = keylog.get();
    opts.echo = vm.count("echo") != 0;
    opts.max_connections = vm["max-connections"].as<std::size_t>();
    std::size_t received = 0, sessions = 0, rejected = 0;
    opts.callbacks.on_established = [&](std::uint64_t, const std::string& peer) {
        ++sessions;
        say(std::cout, "+ " + peer + " handshake complete");
    };
    opts.callbacks.on_message = [&](std::uint64_t, const std::string& peer, ByteView text) {
        ++received;
        say(std::cout, peer + " > " + printable(text));
    };
    opts.callbacks.on_closed = [&](std::uint64_t, const std::string& peer, const std::string& reason) {
        if (reason.empty()) {
            say(std::cout, "- " + peer + " disconnected");
        } else {
            ++rejected;
            say(std::cout, "- " + peer + " closed: " + reason);
        }
    };

    asio::io_context io;
    secmsg::Server server(io, asio::ip::tcp::endpoint(addr, listen.port), opts);
    ServeLoop loop(io, vm, [&] { server.stop(); });
    HostPort shown{listen.host, server.port()};
    say(std::cout, "secmsg listening on " + shown.to_string() + "; plants: " + plants_text(opts.session.plants) +
                       (keylog ? "; key log: " + keylog->path() : "") + (opts.echo ? "; echo on" : ""));
    loop.run();
    say(std::cout, "stopped: " + std::to_string(sessions) + " session(s), " + std::to_string(received) +
                       " message(s) received, " + std::to_string(rejected) + " connection(s) closed on bad input");
    return kOk;
}

int secmsg_connect(const po::variables_map& vm) {
    std::string err;
    auto target = parse_host_port(vm["target"].as<std::string>(), secmsg::kDefaultPort, err);
    if (!target) throw UsageError(err);
    auto keylog = open_keylog(vm);
    double wait_s = vm["wait"].as<double>();
    double timeout_s = vm["timeout"].as<double>();
    if (wait_s < 0 || timeout_s <= 0) throw UsageError("--wait and --timeout must be positive");

    std::mutex m;
    std::condition_variable cv;
    bool established = false, closed = false;
    std::string close_reason;
    auto last_activity = std::chrono::steady_clock::now();

    secmsg::EndpointOptions opts;
    opts.session = session_config(vm);
    opts.keylog = keylog.get();
    opts.handshake_timeout = std::chrono::milliseconds(static_cast<long>(timeout_s * 1000));
    opts.callbacks.on_established = [&](std::uint64_t, const std::string& peer) {
        say(std::cerr, "connected to " + peer + " (secmsg, plants: " + plants_text(opts.session.plants) + ")");
        std::lock_guard<std::mutex> lock(m);
        established = true;
        last_activity = std::chrono::steady_clock::now();
        cv.notify_all();
    };
    opts.callbacks.on_message = [&](std::uint64_t, const std::string&, ByteView text) {
        say(std::cout, "< " + printable(text));
        std::lock_guard<std::mutex> lock(m);
        last_activity = std::chrono::steady_clock::now();
        cv.notify_all();
    };
    opts.callbacks.on_closed = [&](std::uint64_t, const std::string&, const std::string& reason) {
        std::lock_guard<std::mutex> lock(m);
        closed = true;
        close_reason = reason;
        cv.notify_all();
    };

    asio::io_context io;
    auto guard = asio::make_work_guard(io);
    secmsg::Client client(io, opts);
    client.connect(target->host, target->port);
    std::thread io_thread([&] { io.run(); });
    auto finish = [&](int rc) {
        client.close();
        {
            std::unique_lock<std::mutex> lock(m);
            cv.wait_for(lock, std::chrono::seconds(2), [&] { return closed; });
        }
        guard.reset();
        io.stop();
        io_thread.join();
        return rc;
    };

    {
        std::unique_lock<std::mutex> lock(m);
        cv.wait_for(lock, std::chrono::milliseconds(static_cast<long>(timeout_s * 1000)),
                    [&] { return established || closed; });
        if (!established) {
            std::string why = closed ? close_reason : "no handshake within the timeout";
            lock.unlock();
            say(std::cerr, "msglab connect secmsg: " + target->to_string() + ": " + why);
            return finish(kFailure);
        }
    }

    auto send_line = [&](const std::string& text) { client.send(to_bytes(text)); };
    if (vm.count("send")) {
        for (const auto& text : vm["send"].as<std::vector<std::string>>()) send_line(text);
    } else {
        bool tty = isatty(STDIN_FILENO);
        if (tty) say(std::cerr, "type a message and press Enter; /quit to leave");
        std::string line;
        while (std::getline(std::cin, line)) {
            if (line == "/quit") break;
            {
                std::lock_guard<std::mutex> lock(m);
                if (closed) break;
            }
            if (!line.empty()) send_line(line);
        }
    }
    // Wait for replies until the peer has been quiet for --wait seconds.
    {
        std::unique_lock<std::mutex> lock(m);
        auto quiet = std::chrono::milliseconds(static_cast<long>(wait_s * 1000));
        last_activity = std::chrono::steady_clock::now();
        while (!closed) {
            auto until = last_activity + quiet;
            if (std::chrono::steady_clock::now() >= until) break;
            cv.wait_until(lock, until);
        }
        if (closed && !close_reason.empty()) {
            std::string why = close_reason;
            lock.unlock();
            say(std::cerr, "msglab connect secmsg: connection closed: " + why);
            return finish(kFailure);
        }
    }
    return finish(kOk);
}

}  // namespace msglab::cli
