// msglab serve signal / msglab connect signal.
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "cli/cli.hpp"
#include "cli/printable.hpp"
#include "cli/serve_loop.hpp"
#include "core/address.hpp"
#include "signal/client.hpp"
#include "signal/probes.hpp"
#include "signal/server.hpp"

namespace msglab::cli {

namespace asio = boost::asio;
using signal::Json;

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

signal::SioTransports transport_option(const po::variables_map& vm) {
    auto t = vm["transport"].as<std::string>();
    if (t == "both") return signal::SioTransports::polling_then_websocket;
    if (t == "polling") return signal::SioTransports::polling;
    if (t == "websocket") return signal::SioTransports::websocket;
    throw UsageError("--transport must be both, polling or websocket");
}

// Plants a client has; the server's are refused with a clear word.
PlantSet client_plants(const po::variables_map& vm) {
    PlantSet plants = plants_option(vm, "signal");
    for (const auto& p : plants.ids())
        if (p != signal::plant::spk_sig_unchecked && p != signal::plant::state_before_mac &&
            p != signal::plant::ack_on_failure)
            throw UsageError("--plant " + p +
                             " is a server plant; the client has signal.spk-sig-unchecked, signal.state-before-mac "
                             "and signal.ack-on-failure");
    return plants;
}

// --identity FILE: the user's three private keys as JSON, made there once,
// so that the same name registers again after a server restart.
signal::Identity identity_option(const po::variables_map& vm, Rng& rng) {
    if (!vm.count("identity")) return signal::Identity::generate(rng);
    const auto path = vm["identity"].as<std::string>();
    if (std::filesystem::exists(path)) {
        std::ifstream in(path);
        Json j;
        try {
            j = Json::parse(in);
        } catch (const std::exception& e) {
            throw UsageError("--identity " + path + ": not JSON (" + e.what() + ")");
        }
        auto key = [&](const char* k) {
            Bytes b;
            if (!j.contains(k) || !j[k].is_string() || !unhex(j[k].get<std::string>(), b) || b.size() != 32)
                throw UsageError("--identity " + path + ": " + k + " is not 32 bytes of hex");
            signal::Key32 out{};
            std::copy(b.begin(), b.end(), out.begin());
            return out;
        };
        return signal::Identity::from_private(key("ik"), key("sik_seed"), key("spk"));
    }
    auto id = signal::Identity::generate(rng);
    Json j = Json::object();
    j["ik"] = hex(id.ik.private_key);
    j["sik_seed"] = hex(id.sik.seed);
    j["spk"] = hex(id.spk.private_key);
    {
        std::ofstream out(path);
        if (!out) throw UsageError("--identity: cannot write " + path);
        out << j.dump(2) << "\n";
    }
    std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    say(std::cerr, "made a new identity in " + path);
    return id;
}

const char* kHelp =
    "Commands:\n"
    "  /list                the users online\n"
    "  /start USER          open a session (X3DH) with USER\n"
    "  /msg USER TEXT       send TEXT to USER (opens a session first when needed)\n"
    "  /quit                leave\n"
    "A line without a command goes to the user of the last /msg or /start (or --to).\n";

void print_event(const signal::ChatEvent& e) {
    using K = signal::ChatEvent::Kind;
    switch (e.kind) {
        case K::session: say(std::cout, "* " + show(e.from) + " opened a session" +
                                            (e.detail.empty() ? "" : " (" + show(e.detail) + ")"));
            break;
        case K::message: say(std::cout, "<" + show(e.from) + "> " + show(e.text)); break;
        case K::refused: say(std::cerr, "! refused " + show(e.name) + ": " + show(e.detail)); break;
        case K::event: say(std::cout, "* event " + show(e.name) + " " + show(e.text)); break;
        case K::disconnected: say(std::cerr, "! disconnected: " + show(e.detail)); break;
    }
}

}  // namespace

void signal_serve_options(po::options_description& o) {
    o.add_options()("listen", po::value<std::string>()->default_value("127.0.0.1:8080"),
                    "address to listen on, HOST:PORT (port 0 picks a free one)")(
        "db", po::value<std::string>()->default_value("signal-keys.db"),
        "the key directory, a SQLite file kept across restarts (':memory:' for none)")(
        "bot", po::value<std::string>(),
        "also run an echo bot registered as this name (it greets every user and echoes messages; the scenarios "
        "that check a client talk to one named msglab-bot)")(
        "ping-interval", po::value<double>()->default_value(25.0), "seconds between Engine.IO pings")(
        "ping-timeout", po::value<double>()->default_value(20.0), "seconds a client has to answer a ping")(
        "relay-timeout", po::value<double>()->default_value(60.0),
        "seconds a relayed message waits for the recipient's ack")(
        "max-payload", po::value<std::size_t>()->default_value(1'000'000),
        "largest HTTP body or WebSocket message accepted, in bytes")(
        "max-connections", po::value<std::size_t>()->default_value(10000), "concurrent TCP connections at most")(
        "quiet,q", "print only the start and stop lines")(
        "duration", po::value<double>(), "stop after this many seconds (default: until Ctrl-C)")(
        "plant", po::value<std::vector<std::string>>()->composing(),
        "switch on a plant from 'msglab plants' (repeatable); off by default; the client plants apply to --bot");
}

void signal_connect_options(po::options_description& o) {
    o.add_options()("user", po::value<std::string>(), "the username to register (required)")(
        "identity", po::value<std::string>(),
        "keep the user's private keys in this JSON file (made when missing), to register again after a restart")(
        "keylog", po::value<std::string>(),
        "append SIGNAL_X3DH_SK and SIGNAL_MESSAGE_KEY lines here, for decode and Wireshark (else "
        "$MSGLAB_KEYLOGFILE)")(
        "transport", po::value<std::string>()->default_value("both"),
        "both (long-polling, then the upgrade to WebSocket), polling or websocket")(
        "to", po::value<std::string>(), "the user --send goes to")(
        "send", po::value<std::vector<std::string>>()->composing(), "send this message to --to (repeatable)")(
        "list", "print the users online")(
        "wait-for", po::value<std::vector<std::string>>()->composing(),
        "before sending, wait until this user is online (repeatable)")(
        "expect", po::value<std::size_t>()->default_value(0),
        "stay until this many messages arrived (or --wait ends); exit 1 when fewer came")(
        "echo", "run as the echo bot: greet every user that comes online and echo messages, until Ctrl-C")(
        "wait", po::value<double>()->default_value(1.0), "seconds to stay for messages after the last send")(
        "timeout", po::value<double>()->default_value(10.0), "seconds for the connection and each acknowledgement")(
        "plant", po::value<std::vector<std::string>>()->composing(),
        "a client plant: signal.spk-sig-unchecked, signal.state-before-mac, signal.ack-on-failure");
}

int signal_serve(const po::variables_map& vm) {
    auto listen = listen_option(vm, signal::kDefaultPort);
    signal::ServerOptions opts;
    opts.sio.host = listen.host;
    opts.sio.port = listen.port;
    opts.app.plants = plants_option(vm, "signal");
    opts.db_path = vm["db"].as<std::string>();
    const double pi = seconds_option(vm, "ping-interval", 0.05, 3600),
                 pt = seconds_option(vm, "ping-timeout", 0.05, 3600),
                 rt = seconds_option(vm, "relay-timeout", 0.05, 3600);
    opts.sio.ping_interval = ms_of(pi);
    opts.sio.ping_timeout = ms_of(pt);
    opts.relay_timeout = ms_of(rt);
    opts.sio.max_payload = vm["max-payload"].as<std::size_t>();
    if (opts.sio.max_payload < 1024 || opts.sio.max_payload > (64u << 20))
        throw UsageError("--max-payload must be 1024 to 67108864 bytes");
    opts.sio.max_connections = vm["max-connections"].as<std::size_t>();
    if (opts.sio.max_connections < 1) throw UsageError("--max-connections must be at least 1");
    const bool quiet = vm.count("quiet") != 0;
    if (!quiet) opts.on_log = [](const std::string& line) { say(std::cout, clock_text() + " " + line); };

    raise_fd_limit();
    asio::io_context io;
    std::unique_ptr<signal::Server> server;
    try {
        server = std::make_unique<signal::Server>(io, opts);
    } catch (const signal::DirectoryError& e) {
        say(std::cerr, std::string("msglab serve signal: ") + e.what());
        return kFailure;
    } catch (const std::exception& e) {
        say(std::cerr, "msglab serve signal: cannot listen on " + listen.to_string() + ": " + e.what());
        return kFailure;
    }
    server->start();
    std::thread io_thread([&] { io.run(); });
    ServeLoop loop(io, vm, [&] { server->stop(); });
    std::string plant_list;
    for (const auto& p : opts.app.plants.ids()) plant_list += (plant_list.empty() ? "" : ", ") + p;
    HostPort shown{listen.host, server->port()};
    say(std::cout, "signal server listening on " + shown.to_string() + "; key directory: " + opts.db_path + " (" +
                       std::to_string(server->directory().size()) + " user(s)); plants: " +
                       (plant_list.empty() ? "none (clean)" : plant_list));

    std::unique_ptr<signal::Bot> bot;
    if (vm.count("bot")) {
        signal::BotOptions bo;
        bo.client.host = listen.host == "0.0.0.0" || listen.host == "::" ? "127.0.0.1" : listen.host;
        bo.client.port = server->port();
        bo.client.user = vm["bot"].as<std::string>();
        bo.client.chat.plants = opts.app.plants;
        if (!quiet) bo.on_log = [](const std::string& line) { say(std::cout, clock_text() + " " + line); };
        bot = std::make_unique<signal::Bot>(bo, signal::Identity::generate(SystemRng::instance()),
                                            SystemRng::instance());
        try {
            bot->start();
            say(std::cout, "echo bot " + show(bo.client.user) + " online");
        } catch (const signal::ClientError& e) {
            say(std::cerr, std::string("msglab serve signal: the bot could not start: ") + e.what());
            loop.stop();
            io_thread.join();
            return kFailure;
        }
    }
    io_thread.join();  // ServeLoop stops the io_context
    if (bot) bot->stop();
    say(std::cout, "stopped: " + std::to_string(server->directory().size()) + " user(s) in the key directory" +
                       (bot ? ", " + std::to_string(bot->echoed()) + " message(s) echoed" : ""));
    return kOk;
}

int signal_connect(const po::variables_map& vm) {
    std::string err;
    auto target = parse_host_port(vm["target"].as<std::string>(), signal::kDefaultPort, err);
    if (!target) throw UsageError(err);
    if (!vm.count("user")) throw UsageError("--user is required: the username to register");
    const double timeout_s = seconds_option(vm, "timeout", 0.1, 3600), wait_s = seconds_option(vm, "wait", 0, 86400);
    std::vector<std::string> sends, waits;
    if (vm.count("send")) sends = vm["send"].as<std::vector<std::string>>();
    if (vm.count("wait-for")) waits = vm["wait-for"].as<std::vector<std::string>>();
    std::string to = vm.count("to") ? vm["to"].as<std::string>() : "";
    if (!sends.empty() && to.empty()) throw UsageError("--send needs --to");
    const std::size_t expect = vm["expect"].as<std::size_t>();

    signal::ClientOptions o;
    o.host = target->host;
    o.port = target->port;
    o.user = vm["user"].as<std::string>();
    if (!signal::username_ok(o.user)) throw UsageError("--user must be 1 to 64 bytes of printable UTF-8");
    o.transports = transport_option(vm);
    o.timeout = ms_of(timeout_s);
    o.chat.plants = client_plants(vm);
    std::optional<std::string> keylog_opt;
    if (vm.count("keylog")) keylog_opt = vm["keylog"].as<std::string>();
    o.keylog_path = KeyLogWriter::path_from(keylog_opt);
    SystemRng rng;
    auto id = identity_option(vm, rng);
    const std::string name = "msglab connect signal: ";

    if (vm.count("echo")) {
        signal::BotOptions bo;
        bo.client = o;
        bo.on_log = [](const std::string& line) { say(std::cout, clock_text() + " " + line); };
        std::unique_ptr<signal::Bot> bot;
        try {
            bot = std::make_unique<signal::Bot>(bo, id, rng);
            bot->start();
        } catch (const std::exception& e) {
            say(std::cerr, name + e.what());
            return kFailure;
        }
        say(std::cerr, "echo bot " + show(o.user) + " online at " + target->to_string() + "; Ctrl-C stops it");
        asio::io_context io;
        ServeLoop loop(io, vm, [&] { bot->stop(); });
        loop.run();
        return kOk;
    }

    std::unique_ptr<signal::ChatClient> client;
    try {
        client = std::make_unique<signal::ChatClient>(o, id, rng);
    } catch (const std::exception& e) {
        throw UsageError(e.what());  // the key log could not be opened
    }
    std::size_t received = 0;
    auto drain = [&](std::chrono::milliseconds d, const std::function<bool()>& done) {
        auto deadline = std::chrono::steady_clock::now() + d;
        do {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            auto ev = client->next(std::max(std::chrono::milliseconds(0), std::min(left, std::chrono::milliseconds(200))));
            if (ev) {
                print_event(*ev);
                if (ev->kind == signal::ChatEvent::Kind::message) ++received;
                if (ev->kind == signal::ChatEvent::Kind::disconnected) return;
            }
        } while (!(done && done()) && std::chrono::steady_clock::now() < deadline);
    };
    // Opens a session with `peer` unless there is one.
    auto ensure = [&](const std::string& peer) {
        if (!client->has_session(peer)) {
            client->start(peer);
            say(std::cerr, "session with " + show(peer) + " opened (X3DH)");
        }
    };
    auto send = [&](const std::string& peer, const std::string& text) {
        ensure(peer);
        switch (client->send(peer, text)) {
            case signal::Delivery::delivered: break;
            case signal::Delivery::refused: say(std::cerr, "! " + show(peer) + " did not accept the message"); break;
            case signal::Delivery::queued:
                say(std::cerr, "(queued until " + show(peer) + " writes: the responder's ratchet starts then)");
                break;
        }
    };
    try {
        client->connect();
        say(std::cerr, "registered as " + show(o.user) + " at " + target->to_string());
        for (const auto& w : waits) {
            auto deadline = std::chrono::steady_clock::now() + o.timeout;
            bool online = false;
            while (!online && std::chrono::steady_clock::now() < deadline) {
                auto users = client->users();
                online = std::find(users.begin(), users.end(), w) != users.end();
                if (!online) drain(std::chrono::milliseconds(200), {});
            }
            if (!online) {
                say(std::cerr, name + show(w) + " did not come online within --timeout");
                return kFailure;
            }
        }
        bool acted = false;
        if (vm.count("list")) {
            acted = true;
            for (const auto& u : client->users()) say(std::cout, show(u) + (u == o.user ? " (you)" : ""));
        }
        for (const auto& s : sends) {
            acted = true;
            send(to, s);
        }
        if (expect) {
            drain(ms_of(wait_s), [&] { return received >= expect; });
            if (received < expect) {
                say(std::cerr, name + std::to_string(received) + " of " + std::to_string(expect) +
                                   " message(s) arrived within --wait");
                return kFailure;
            }
            return kOk;
        }
        if (acted) {
            drain(ms_of(wait_s), {});
            return kOk;
        }

        // Interactive: the terminal and the socket in one loop.
        if (isatty(STDIN_FILENO)) say(std::cerr, "/help for commands");
        std::string pending, current = to;
        bool quit = false, eof = false;
        while (!quit) {
            pollfd fds[1] = {{STDIN_FILENO, static_cast<short>(eof ? 0 : POLLIN), 0}};
            ::poll(fds, 1, 100);
            drain(std::chrono::milliseconds(0), {});
            if (!client->connected()) {
                say(std::cerr, name + "the connection ended");
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
                        for (const auto& u : client->users()) say(std::cout, show(u) + (u == o.user ? " (you)" : ""));
                    } else if (line.rfind("/start ", 0) == 0) {
                        current = line.substr(7);
                        ensure(current);
                    } else if (line.rfind("/msg ", 0) == 0) {
                        std::string rest = line.substr(5), user = word(rest);
                        if (user.empty() || rest.empty()) throw UsageError("/msg USER TEXT");
                        current = user;
                        send(user, rest);
                    } else if (line[0] == '/') {
                        say(std::cerr, "! unknown command " + show(word(line)) + "; /help lists them");
                    } else if (current.empty()) {
                        say(std::cerr, "! to whom? /msg USER TEXT, or /start USER first");
                    } else {
                        send(current, line);
                    }
                } catch (const UsageError& e) {
                    say(std::cerr, std::string("! usage: ") + e.what());
                } catch (const signal::ClientError& e) {
                    say(std::cerr, std::string("! ") + e.what());
                }
            }
        }
        drain(std::chrono::milliseconds(200), {});
        return kOk;
    } catch (const signal::ClientError& e) {
        say(std::cerr, name + e.what());
        return kFailure;
    }
}

}  // namespace msglab::cli
