// msglab serve slmp / msglab connect slmp.
#include <unistd.h>

#include <iostream>
#include <mutex>

#include "cli/cli.hpp"
#include "cli/serve_loop.hpp"
#include "cli/printable.hpp"
#include "core/address.hpp"
#include "slmp/endpoint.hpp"

namespace msglab::cli {

namespace asio = boost::asio;

namespace {


std::unique_ptr<KeyLogWriter> keylog_of(const po::variables_map& vm) {
    std::optional<std::string> opt;
    if (vm.count("keylog")) opt = vm["keylog"].as<std::string>();
    auto path = KeyLogWriter::path_from(opt);
    return path ? std::make_unique<KeyLogWriter>(*path) : nullptr;
}

}  // namespace

void slmp_serve_options(po::options_description& o) {
    o.add_options()("listen", po::value<std::string>()->default_value("127.0.0.1:9999"),
                    "address to listen on, HOST:PORT (port 0 picks a free one)")(
        "secret", po::value<std::string>()->default_value(slmp::kDefaultSecret),
        "the shared secret behind the tokens SHA-256(user || secret); the default is the original's")(
        "ttl", po::value<std::uint64_t>()->default_value(300), "seconds a Fernet token stays valid")(
        "max-payload", po::value<std::size_t>()->default_value(8192),
        "largest request plaintext taken, in bytes (an original client sends at most 703)")(
        "deadline", po::value<double>()->default_value(10.0), "seconds a client has for the whole exchange")(
        "max-connections", po::value<std::size_t>()->default_value(10000), "concurrent clients at most")(
        "duration", po::value<double>(), "stop after this many seconds (default: until Ctrl-C)")(
        "plant", po::value<std::vector<std::string>>()->composing(),
        "switch on a plant from 'msglab plants' (repeatable); off by default")(
        "keylog", po::value<std::string>(), "append session keys to this key log (else $MSGLAB_KEYLOGFILE)");
}

void slmp_connect_options(po::options_description& o) {
    o.add_options()("user", po::value<std::string>()->default_value(slmp::kDefaultUser), "the user name to send as")(
        "secret", po::value<std::string>()->default_value(slmp::kDefaultSecret),
        "the shared secret the token is derived from; the default is the original's")(
        "send", po::value<std::vector<std::string>>()->composing(),
        "send this message (repeatable: one connection each, SLMP carries one request per connection); "
        "without it, each line read from the terminal is sent")(
        "timeout", po::value<double>()->default_value(10.0), "seconds to wait for each exchange")(
        "keylog", po::value<std::string>(), "append session keys to this key log (else $MSGLAB_KEYLOGFILE)");
}

int slmp_serve(const po::variables_map& vm) {
    auto listen = listen_option(vm, slmp::kDefaultPort);
    auto addr = asio::ip::make_address(listen.host);
    double deadline = vm["deadline"].as<double>();
    if (deadline <= 0 || deadline > 86400) throw UsageError("--deadline must be above 0 and at most 86400 seconds");
    std::size_t max_payload = vm["max-payload"].as<std::size_t>();
    if (max_payload < 1 || max_payload > (16u << 20)) throw UsageError("--max-payload must be 1 to 16777216 bytes");

    slmp::Server::Options opts;
    opts.session.secret = vm["secret"].as<std::string>();
    opts.session.ttl = vm["ttl"].as<std::uint64_t>();
    opts.session.max_plaintext = max_payload;
    opts.session.plants = plants_option(vm, "slmp");
    raise_fd_limit();
    auto keylog = keylog_of(vm);
    opts.keylog = keylog.get();
    opts.deadline = std::chrono::milliseconds(static_cast<long>(deadline * 1000));
    opts.max_connections = vm["max-connections"].as<std::size_t>();
    std::size_t requests = 0, refused = 0;
    std::string fatal;
    opts.callbacks.on_key_exchanged = [&](const std::string& peer, const std::string& sid) {
        say(std::cout, "+ " + peer + " keys exchanged (session " + sid + ")");
    };
    opts.callbacks.on_request = [&](const std::string& peer, const std::string& user, const std::string& message) {
        ++requests;
        say(std::cout, peer + " " + printable(to_bytes(user)) + " > " + printable(to_bytes(message)));
    };
    opts.callbacks.on_closed = [&](const std::string& peer, const std::string& reason) {
        if (reason.empty()) return say(std::cout, "- " + peer + " done");
        ++refused;
        say(std::cout, "- " + peer + " closed: " + reason);
    };

    asio::io_context io;
    std::unique_ptr<ServeLoop> loop;
    // The crash plant: the server stops on the first bad input and the
    // process exits with an error, as the original dies of its exception.
    opts.callbacks.on_fatal = [&](const std::string& reason) {
        fatal = reason;
        if (loop) loop->stop();
    };
    slmp::Server server(io, asio::ip::tcp::endpoint(addr, listen.port), opts);
    loop = std::make_unique<ServeLoop>(io, vm, [&] { server.stop(); });
    std::string plant_list;
    for (const auto& p : opts.session.plants.ids()) plant_list += (plant_list.empty() ? "" : ", ") + p;
    HostPort shown{listen.host, server.port()};
    say(std::cout, "slmp listening on " + shown.to_string() + "; plants: " + (plant_list.empty() ? "none (clean)" : plant_list) +
                       (keylog ? "; key log: " + keylog->path() : "") +
                       (opts.session.secret == slmp::kDefaultSecret ? "; secret: the original's default" : "; secret: custom"));
    loop->run();
    if (!fatal.empty()) {
        say(std::cerr, "msglab serve slmp: fatal (slmp.crash-on-bad-input): " + fatal + "; the server dies after " +
                           std::to_string(requests) + " request(s), as the original does");
        return kFailure;
    }
    say(std::cout, "stopped: " + std::to_string(requests) + " request(s) answered, " + std::to_string(refused) +
                       " connection(s) closed on bad input");
    return kOk;
}

int slmp_connect(const po::variables_map& vm) {
    std::string err;
    auto target = parse_host_port(vm["target"].as<std::string>(), slmp::kDefaultPort, err);
    if (!target) throw UsageError(err);
    double timeout = vm["timeout"].as<double>();
    if (timeout <= 0 || timeout > 3600) throw UsageError("--timeout must be above 0 and at most 3600 seconds");
    slmp::ClientConfig cfg;
    cfg.user = vm["user"].as<std::string>();
    cfg.secret = vm["secret"].as<std::string>();
    if (cfg.user.find(';') != std::string::npos) throw UsageError("--user: a ';' would break the request's three fields");
    auto keylog = keylog_of(vm);
    auto ms = std::chrono::milliseconds(static_cast<long>(timeout * 1000));
    int rc = kOk;
    auto one = [&](const std::string& message) {
        auto r = slmp::exchange(target->host, target->port, cfg, message, ms, keylog.get());
        if (r.ok) {
            say(std::cout, "< " + printable(to_bytes(r.reply)));
        } else {
            say(std::cerr, "msglab connect slmp: " + target->to_string() + ": " + r.error);
            rc = kFailure;
        }
        return r.ok;
    };
    if (vm.count("send")) {
        for (const auto& m : vm["send"].as<std::vector<std::string>>())
            if (!one(m)) break;
        return rc;
    }
    if (isatty(STDIN_FILENO)) say(std::cerr, "type a message and press Enter (one connection each); /quit to leave");
    std::string line;
    while (std::getline(std::cin, line)) {
        if (line == "/quit") break;
        if (!line.empty()) one(line);
    }
    return rc;
}

}  // namespace msglab::cli
