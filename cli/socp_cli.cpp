// msglab serve socp / msglab connect socp.
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <iostream>

#include "cli/cli.hpp"
#include "cli/printable.hpp"
#include "cli/serve_loop.hpp"
#include "core/address.hpp"
#include "socp/client.hpp"
#include "socp/keys.hpp"
#include "socp/server.hpp"

namespace msglab::cli {

namespace asio = boost::asio;

namespace {

std::string show(const std::string& s) { return printable(to_bytes(s)); }

std::chrono::milliseconds ms_of(double s) { return std::chrono::milliseconds(static_cast<long long>(s * 1000)); }

std::string clock_text() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    localtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    return buf;
}

double seconds_option(const po::variables_map& vm, const char* name, double min, double max) {
    double v = vm[name].as<double>();
    if (!(v >= min && v <= max))
        throw UsageError(std::string("--") + name + " must be " + std::to_string(min) + " to " + std::to_string(max) +
                         " seconds");
    return v;
}

// --key FILE (made there when missing), --cached-key NAME, else a fresh key
// for this run.
crypto::RsaPrivateKey key_option(const po::variables_map& vm, std::size_t bits, Rng& rng) {
    auto progress = [](const std::string& line) { say(std::cerr, line); };
    if (vm.count("key") && vm.count("cached-key")) throw UsageError("--key and --cached-key exclude each other");
    if (vm.count("key")) return socp::load_or_make_key(vm["key"].as<std::string>(), bits, rng, progress);
    if (vm.count("cached-key")) {
        try {
            // Cached keys are RSA-4096 unless named weak-*: socp.weak-rsa still
            // admits weak keys from others with a full-size key of its own.
            std::string name = vm["cached-key"].as<std::string>();
            return socp::cached_key(name, name.rfind("weak", 0) == 0 ? socp::kWeakBits : socp::kRequiredBits, rng,
                                    progress);
        } catch (const std::invalid_argument& e) {
            throw UsageError(std::string("--cached-key: ") + e.what());
        }
    }
    say(std::cerr, "making an RSA-" + std::to_string(bits) +
                       " key for this run (takes a few seconds; --key FILE keeps one across runs)");
    return crypto::RsaPrivateKey::generate(rng, bits);
}

void check_key_size(const crypto::RsaPrivateKey& key, const PlantSet& plants, const std::string& what) {
    std::size_t bits = key.public_key().bits();
    if (bits < socp::kRequiredBits && !plants.has(socp::plant::weak_rsa))
        throw UsageError(what + " is RSA-" + std::to_string(bits) + "; SOCP v1.3 requires RSA-4096");
}

const char* kHelp =
    "Commands:\n"
    "  /list                 the users online, sorted\n"
    "  /tell USER TEXT       a direct message, end-to-end encrypted and signed\n"
    "  /all TEXT             a message to the public channel\n"
    "  /file USER|public PATH  send a file\n"
    "  /quit                 leave\n"
    "A line without a command goes to the public channel.\n";

// What a user sees of an event.
void print_event(const socp::Event& ev) {
    using K = socp::Event::Kind;
    std::string mark = ev.verified ? "" : " [signature NOT verified]";
    if (!ev.key_matches) mark += " [sender key differs from the directory's]";
    switch (ev.kind) {
        case K::direct: say(std::cout, "[dm] <" + show(ev.from) + "> " + show(ev.text) + mark); break;
        case K::public_message:
            say(std::cout, "[public] <" + show(ev.from) + "> " + show(ev.text) + mark +
                               (ev.encrypted ? "" : " [sent unencrypted]"));
            break;
        case K::file: say(std::cout, "[file] from " + show(ev.from) + " saved to " + show(ev.text) + mark); break;
        case K::joined: say(std::cout, "+ " + show(ev.from) + " is online"); break;
        case K::left: say(std::cout, "- " + show(ev.from) + " left"); break;
        case K::error: say(std::cerr, "! " + show(ev.text)); break;
        case K::ack:
        case K::other: break;
    }
}

}  // namespace

void socp_serve_options(po::options_description& o) {
    o.add_options()("listen", po::value<std::string>()->default_value("127.0.0.1:8765"),
                    "address to listen on for users and servers, HOST:PORT (port 0 picks a free one)")(
        "introducer", po::value<std::vector<std::string>>()->composing(),
        "HOST:PORT of a server to join the mesh through (repeatable, tried in order); none: a new mesh")(
        "key", po::value<std::string>(), "the server's RSA private key (PEM); made and saved there when missing")(
        "cached-key", po::value<std::string>(),
        "use the key NAME from the key cache ($MSGLAB_SOCP_KEY_CACHE or ~/.cache/msglab/socp-keys), made once")(
        "id", po::value<std::string>(), "the server's id (default: a new UUID v4; the introducer may reassign it)")(
        "advertise", po::value<std::string>(), "the host other servers are told to dial (default: the --listen host)")(
        "heartbeat", po::value<double>()->default_value(15.0), "seconds between HEARTBEATs on each server link")(
        "dead-after", po::value<double>()->default_value(45.0),
        "seconds without any frame before a server is declared dead and redialled")(
        "max-message", po::value<std::size_t>()->default_value(socp::Limits{}.max_message),
        "largest WebSocket message accepted, in bytes")(
        "max-connections", po::value<std::size_t>()->default_value(10000), "concurrent links at most")(
        "no-deflate", "refuse permessage-deflate")(
        "quiet,q", "print only the start and stop lines, not the mesh's events")(
        "duration", po::value<double>(), "stop after this many seconds (default: until Ctrl-C)")(
        "plant", po::value<std::vector<std::string>>()->composing(),
        "switch on a plant from 'msglab plants' (repeatable); off by default");
}

void socp_connect_options(po::options_description& o) {
    o.add_options()("user", po::value<std::string>(), "the user id (default: a new UUID v4)")(
        "key", po::value<std::string>(), "the user's RSA private key (PEM); made and saved there when missing")(
        "cached-key", po::value<std::string>(),
        "use the key NAME from the key cache ($MSGLAB_SOCP_KEY_CACHE or ~/.cache/msglab/socp-keys), made once")(
        "keylog", po::value<std::string>(),
        "append the private key to this key log as SOCP_PRIVATE_KEY, for decode and Wireshark "
        "(else $MSGLAB_KEYLOGFILE)")(
        "key-encoding", po::value<std::string>()->default_value("der"),
        "how the public key is sent: der (base64url DER SPKI) or pem (base64url PEM text)")(
        "to", po::value<std::string>(), "the user --tell and --file go to (--file: 'public' for the channel)")(
        "tell", po::value<std::vector<std::string>>()->composing(), "send this direct message to --to (repeatable)")(
        "all", po::value<std::vector<std::string>>()->composing(), "send this to the public channel (repeatable)")(
        "file", po::value<std::vector<std::string>>()->composing(), "send this file to --to (repeatable)")(
        "list", "print the users online")(
        "wait-for", po::value<std::vector<std::string>>()->composing(),
        "before sending, wait until this user is online (repeatable)")(
        "expect", po::value<std::size_t>()->default_value(0),
        "stay until this many messages or files arrived (or --wait ends); exit 1 when fewer came")(
        "downloads", po::value<std::string>()->default_value("downloads"), "folder received files are written to")(
        "wait", po::value<double>()->default_value(1.0), "seconds to stay for messages after the last send")(
        "timeout", po::value<double>()->default_value(10.0), "seconds for the connection, login and --wait-for")(
        "plant", po::value<std::vector<std::string>>()->composing(),
        "socp.weak-rsa makes an RSA-1024 key instead of RSA-4096");
}

int socp_serve(const po::variables_map& vm) {
    auto listen = listen_option(vm, socp::kDefaultPort);
    socp::ServerOptions opts;
    opts.host = listen.host;
    opts.port = listen.port;
    opts.app.plants = plants_option(vm, "socp");
    if (vm.count("introducer"))
        for (const auto& i : vm["introducer"].as<std::vector<std::string>>()) {
            std::string err;
            auto hp = parse_host_port(i, std::nullopt, err);
            if (!hp) throw UsageError("--introducer: " + err);
            opts.app.introducers.push_back(socp::Endpoint{hp->host, hp->port});
        }
    if (vm.count("advertise")) opts.advertise_host = vm["advertise"].as<std::string>();
    double hb = seconds_option(vm, "heartbeat", 0.05, 3600), dead = seconds_option(vm, "dead-after", 0.1, 86400);
    if (dead <= hb) throw UsageError("--dead-after must be longer than --heartbeat");
    opts.app.heartbeat_ms = ms_of(hb).count();
    opts.app.dead_after_ms = ms_of(dead).count();
    opts.app.redial_max_ms = std::min<std::int64_t>(opts.app.redial_max_ms, opts.app.dead_after_ms);
    opts.app.redial_min_ms = std::min<std::int64_t>(opts.app.redial_min_ms, opts.app.heartbeat_ms);
    opts.app.limits.max_message = vm["max-message"].as<std::size_t>();
    if (opts.app.limits.max_message < 4096 || opts.app.limits.max_message > (64u << 20))
        throw UsageError("--max-message must be 4096 to 67108864 bytes");
    opts.max_connections = vm["max-connections"].as<std::size_t>();
    if (opts.max_connections < 1) throw UsageError("--max-connections must be at least 1");
    opts.permessage_deflate = !vm.count("no-deflate");
    if (!vm.count("quiet")) opts.on_log = [](const std::string& line) { say(std::cout, clock_text() + " " + line); };

    SystemRng rng;
    std::string id = vm.count("id") ? vm["id"].as<std::string>() : uuid4(rng);
    if (id.empty() || id.size() > 128) throw UsageError("--id must be 1 to 128 characters");
    std::size_t bits = opts.app.plants.has(socp::plant::weak_rsa) ? socp::kWeakBits : socp::kRequiredBits;
    crypto::RsaPrivateKey key = [&] {
        try {
            return key_option(vm, bits, rng);
        } catch (const std::runtime_error& e) {
            throw UsageError(e.what());
        }
    }();
    check_key_size(key, opts.app.plants, "--key");

    raise_fd_limit();
    asio::io_context io;
    std::unique_ptr<socp::Server> server;
    try {
        server = std::make_unique<socp::Server>(io, opts, std::move(key), id, rng);
    } catch (const std::exception& e) {
        say(std::cerr, "msglab serve socp: cannot listen on " + listen.to_string() + ": " + e.what());
        return kFailure;
    }
    server->start();
    ServeLoop loop(io, vm, [&] { server->stop(); });
    std::string plant_list, intro;
    for (const auto& p : opts.app.plants.ids()) plant_list += (plant_list.empty() ? "" : ", ") + p;
    for (const auto& i : opts.app.introducers) intro += (intro.empty() ? "" : ", ") + i.text();
    HostPort shown{listen.host, server->port()};
    say(std::cout, "socp server " + id + " listening on " + shown.to_string() +
                       "; introducers: " + (intro.empty() ? "none (a new mesh)" : intro) +
                       "; plants: " + (plant_list.empty() ? "none (clean)" : plant_list));
    loop.run();
    const auto& app = server->app();
    say(std::cout, "stopped: " + std::to_string(app.local_users().size()) + " local user(s), " +
                       std::to_string(app.linked_servers().size()) + " linked server(s), " +
                       std::to_string(app.user_locations().size()) + " user(s) known");
    return kOk;
}

int socp_connect(const po::variables_map& vm) {
    std::string err;
    auto target = parse_host_port(vm["target"].as<std::string>(), socp::kDefaultPort, err);
    if (!target) throw UsageError(err);
    const double timeout_s = seconds_option(vm, "timeout", 0.1, 3600), wait_s = seconds_option(vm, "wait", 0, 86400);
    PlantSet plants = plants_option(vm, "socp");
    for (const auto& p : plants.ids())
        if (p != socp::plant::weak_rsa) throw UsageError("--plant " + p + " is a server plant; the client has only socp.weak-rsa");
    std::string encoding = vm["key-encoding"].as<std::string>();
    if (encoding != "der" && encoding != "pem") throw UsageError("--key-encoding must be der or pem");
    std::vector<std::string> tells, alls, files, waits;
    if (vm.count("tell")) tells = vm["tell"].as<std::vector<std::string>>();
    if (vm.count("all")) alls = vm["all"].as<std::vector<std::string>>();
    if (vm.count("file")) files = vm["file"].as<std::vector<std::string>>();
    if (vm.count("wait-for")) waits = vm["wait-for"].as<std::vector<std::string>>();
    std::string to = vm.count("to") ? vm["to"].as<std::string>() : "";
    if ((!tells.empty() || !files.empty()) && to.empty()) throw UsageError("--tell and --file need --to");
    for (const auto& f : files)
        if (!std::filesystem::is_regular_file(f)) throw UsageError("--file: '" + f + "' is not a readable file");
    const std::size_t expect = vm["expect"].as<std::size_t>();

    SystemRng rng;
    std::unique_ptr<KeyLogWriter> keylog;
    std::optional<std::string> keylog_opt;
    if (vm.count("keylog")) keylog_opt = vm["keylog"].as<std::string>();
    if (auto path = KeyLogWriter::path_from(keylog_opt)) {
        try {
            keylog = std::make_unique<KeyLogWriter>(*path);
        } catch (const std::exception& e) {
            throw UsageError(e.what());
        }
    }
    std::size_t bits = plants.has(socp::plant::weak_rsa) ? socp::kWeakBits : socp::kRequiredBits;
    crypto::RsaPrivateKey key = [&] {
        try {
            return key_option(vm, bits, rng);
        } catch (const std::runtime_error& e) {
            throw UsageError(e.what());
        }
    }();
    check_key_size(key, plants, "--key");

    socp::ClientOptions o;
    o.host = target->host;
    o.port = target->port;
    o.user = vm.count("user") ? vm["user"].as<std::string>() : uuid4(rng);
    if (o.user.empty() || o.user.size() > 128) throw UsageError("--user must be 1 to 128 characters");
    o.timeout = ms_of(timeout_s);
    o.key_encoding = encoding == "pem" ? socp::KeyEncoding::pem : socp::KeyEncoding::der;
    o.downloads = vm["downloads"].as<std::string>();
    o.keylog = keylog.get();
    const std::string name = "msglab connect socp: ";
    socp::Client client(o, std::move(key), rng);
    std::size_t received = 0;
    auto drain = [&](std::chrono::milliseconds d, const std::function<bool()>& done) {
        auto deadline = std::chrono::steady_clock::now() + d;
        while (!(done && done()) && std::chrono::steady_clock::now() < deadline) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            auto ev = client.next(std::min(left, std::chrono::milliseconds(200)));
            if (ev) {
                print_event(*ev);
                using K = socp::Event::Kind;
                if (ev->kind == K::direct || ev->kind == K::public_message || ev->kind == K::file) ++received;
            }
            if (client.closed()) break;
        }
    };
    try {
        client.login();
        say(std::cerr, "logged in as " + show(o.user) + " at " + target->to_string());
        for (const auto& w : waits)
            if (!client.wait_for_user(w, o.timeout)) {
                say(std::cerr, name + show(w) + " did not come online within --timeout");
                return kFailure;
            }
        drain(std::chrono::milliseconds(0), {});
        bool acted = false;
        if (vm.count("list")) {
            acted = true;
            drain(std::chrono::milliseconds(300), {});
            for (const auto& u : client.online()) say(std::cout, show(u) + (u == o.user ? " (you)" : ""));
        }
        for (const auto& t : tells) {
            acted = true;
            client.tell(to, t);
        }
        if (!alls.empty()) client.wait_for_group_key(std::min(o.timeout, std::chrono::milliseconds(3000)));
        for (const auto& a : alls) {
            acted = true;
            if (!client.all(a)) say(std::cerr, name + "no public channel key from the server: sent unencrypted");
        }
        for (const auto& f : files) {
            acted = true;
            std::uint64_t last = 0;
            client.send_file(to, f, [&](std::uint64_t done, std::uint64_t total) {
                if (total >= (1u << 20) && (done - last >= (1u << 20) || done == total)) {
                    last = done;
                    say(std::cerr, "sending " + f + ": " + std::to_string(done * 100 / total) + "%");
                }
            });
            say(std::cerr, "sent " + f + " to " + show(to));
        }
        if (expect) {
            drain(ms_of(wait_s), [&] { return received >= expect; });
            if (received < expect) {
                say(std::cerr, name + std::to_string(received) + " of " + std::to_string(expect) +
                                   " message(s) arrived within --wait");
                client.close();
                return kFailure;
            }
            client.close();
            return kOk;
        }
        if (acted) {
            drain(ms_of(wait_s), {});
            client.close();
            return kOk;
        }

        // Interactive: the terminal and the socket in one loop.
        if (isatty(STDIN_FILENO)) say(std::cerr, "/help for commands");
        std::string pending;
        bool quit = false, eof = false;
        while (!quit) {
            pollfd fds[1] = {{STDIN_FILENO, static_cast<short>(eof ? 0 : POLLIN), 0}};
            ::poll(fds, 1, 100);
            drain(std::chrono::milliseconds(20), {});
            if (client.closed()) {
                say(std::cerr, name + "the server closed the connection");
                return kFailure;
            }
            if (!(fds[0].revents & (POLLIN | POLLHUP))) continue;
            char buf[4096];
            ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
            if (n <= 0) {
                eof = true;
                quit = true;
            } else {
                pending.append(buf, static_cast<std::size_t>(n));
            }
            std::size_t nl;
            while ((nl = pending.find('\n')) != std::string::npos || (eof && !pending.empty())) {
                std::string line = nl == std::string::npos ? pending : pending.substr(0, nl);
                pending.erase(0, nl == std::string::npos ? pending.size() : nl + 1);
                if (!line.empty() && line.back() == '\r') line.pop_back();
                if (line.empty()) continue;
                auto word = [](std::string& rest) {
                    auto sp = rest.find(' ');
                    std::string w = rest.substr(0, sp);
                    rest = sp == std::string::npos ? "" : rest.substr(sp + 1);
                    return w;
                };
                try {
                    if (line == "/quit") {
                        quit = true;
                        break;
                    } else if (line == "/help") {
                        std::cout << kHelp << std::flush;
                    } else if (line == "/list") {
                        for (const auto& u : client.online()) say(std::cout, show(u) + (u == o.user ? " (you)" : ""));
                    } else if (line.rfind("/tell ", 0) == 0) {
                        std::string rest = line.substr(6), user = word(rest);
                        if (user.empty() || rest.empty()) throw UsageError("/tell USER TEXT");
                        client.tell(user, rest);
                    } else if (line.rfind("/all ", 0) == 0) {
                        if (!client.all(line.substr(5))) say(std::cerr, "! no public channel key: sent unencrypted");
                    } else if (line.rfind("/file ", 0) == 0) {
                        std::string rest = line.substr(6), user = word(rest);
                        if (user.empty() || rest.empty()) throw UsageError("/file USER|public PATH");
                        client.send_file(user, rest);
                        say(std::cerr, "sent " + rest + " to " + show(user));
                    } else if (line[0] == '/') {
                        say(std::cerr, "! unknown command " + show(word(line)) + "; /help lists them");
                    } else if (!client.all(line)) {
                        say(std::cerr, "! no public channel key: sent unencrypted");
                    }
                } catch (const UsageError& e) {
                    say(std::cerr, std::string("! usage: ") + e.what());
                } catch (const socp::ClientError& e) {
                    say(std::cerr, std::string("! ") + e.what());
                }
            }
        }
        drain(std::chrono::milliseconds(200), {});
        client.close();
        return kOk;
    } catch (const socp::ClientError& e) {
        say(std::cerr, name + e.what());
        return kFailure;
    }
}

}  // namespace msglab::cli
