// msglab serve csmp / msglab connect csmp.
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>

#include <atomic>
#include <csignal>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include "cli/cli.hpp"
#include "cli/serve_loop.hpp"
#include "cli/printable.hpp"
#include "core/address.hpp"
#include "csmp/client.hpp"
#include "csmp/server.hpp"

namespace msglab::cli {

namespace asio = boost::asio;

namespace {


std::string show(const std::string& s) { return printable(to_bytes(s)); }

// The history secret: --secret-file, else $MSGLAB_CSMP_SECRET, else a key
// file beside the database (created with 32 random bytes, mode 0600).
Bytes history_secret(const po::variables_map& vm, const std::string& db, std::string& where) {
    auto read_file = [](const std::string& path) {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw UsageError("cannot read the secret file " + path);
        std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
        if (s.size() < 16) throw UsageError("the secret in " + path + " is shorter than 16 bytes");
        return to_bytes(s);
    };
    if (vm.count("secret-file")) {
        where = vm["secret-file"].as<std::string>();
        return read_file(where);
    }
    if (const char* env = std::getenv("MSGLAB_CSMP_SECRET"); env && *env) {
        if (std::strlen(env) < 16) throw UsageError("$MSGLAB_CSMP_SECRET is shorter than 16 bytes");
        where = "$MSGLAB_CSMP_SECRET";
        return to_bytes(env);
    }
    where = db + ".key";
    if (access(where.c_str(), F_OK) == 0) return read_file(where);
    Bytes secret = SystemRng::instance().bytes(32);
    std::string text = hex(secret);
    mode_t old = umask(077);
    std::ofstream out(where, std::ios::binary);
    umask(old);
    if (!out || !(out << text << "\n")) throw UsageError("cannot write a new secret to " + where);
    where += " (new)";
    return to_bytes(text);
}

}  // namespace

void csmp_serve_options(po::options_description& o) {
    o.add_options()("listen", po::value<std::string>()->default_value("127.0.0.1:8000"),
                    "address to listen on, HOST:PORT (port 0 picks a free one)")(
        "db", po::value<std::string>()->default_value("csmp-history.db"), "the SQLite history file (created if missing)")(
        "secret-file", po::value<std::string>(),
        "file holding the secret the history key is derived from (else $MSGLAB_CSMP_SECRET, else DB.key, "
        "created with a random secret)")(
        "open-room", po::value<std::vector<std::string>>()->composing(),
        "a room anyone with a session may join (repeatable; default: general). room_<a>_<b> admits a and b")(
        "session-ttl", po::value<std::uint64_t>()->default_value(1800), "seconds a session lives after its last use")(
        "max-sessions", po::value<std::size_t>()->default_value(100000), "sessions held at most")(
        "max-connections", po::value<std::size_t>()->default_value(20000), "concurrent connections at most")(
        "ring-timeout", po::value<double>()->default_value(30.0), "seconds a call rings before it is missed")(
        "chat-rate", po::value<double>()->default_value(20.0), "chat messages per second per socket (burst: twice)")(
        "no-deflate", "refuse permessage-deflate")(
        "duration", po::value<double>(), "stop after this many seconds (default: until Ctrl-C)")(
        "plant", po::value<std::vector<std::string>>()->composing(),
        "switch on a plant from 'msglab plants' (repeatable); off by default");
}

void csmp_connect_options(po::options_description& o) {
    o.add_options()("user", po::value<std::string>()->default_value("alice"), "the client id to claim in the handshake")(
        "session", po::value<std::string>(), "use this session id instead of a handshake")(
        "room", po::value<std::string>(), "chat room (default: room_<you>_<peer> with --peer, else general)")(
        "peer", po::value<std::string>(), "the other person, for the default room name")(
        "send", po::value<std::vector<std::string>>()->composing(),
        "send this chat message and wait for the server's relay (repeatable); without --send, --history, --call or "
        "--answer, each line read from the terminal is sent")(
        "history", "print the room's history")(
        "call", po::value<std::string>(), "call this user: init, offer, wait for the answer, hang up after --hold")(
        "answer", "wait for an incoming call and answer it")(
        "call-history", "print this identity's calls")(
        "hold", po::value<double>()->default_value(1.0), "seconds a connected call is held before hanging up")(
        "wait", po::value<double>()->default_value(30.0), "seconds to wait for a call, an answer or more chat")(
        "timeout", po::value<double>()->default_value(10.0), "seconds for the connection and each request");
}

int csmp_serve(const po::variables_map& vm) {
    auto listen = listen_option(vm, csmp::kDefaultPort);
    csmp::ServerOptions opts;
    opts.host = listen.host;
    opts.port = listen.port;
    opts.app.plants = plants_option(vm, "csmp");
    if (vm.count("open-room")) {
        opts.app.open_rooms.clear();
        for (const auto& r : vm["open-room"].as<std::vector<std::string>>()) opts.app.open_rooms.insert(r);
    }
    opts.app.session_ttl_s = vm["session-ttl"].as<std::uint64_t>();
    if (opts.app.session_ttl_s < 1 || opts.app.session_ttl_s > 30 * 86400)
        throw UsageError("--session-ttl must be 1 to 2592000 seconds");
    opts.app.max_sessions = vm["max-sessions"].as<std::size_t>();
    if (opts.app.max_sessions < 1) throw UsageError("--max-sessions must be at least 1");
    opts.max_connections = vm["max-connections"].as<std::size_t>();
    double ring = vm["ring-timeout"].as<double>();
    if (ring <= 0 || ring > 3600) throw UsageError("--ring-timeout must be above 0 and at most 3600 seconds");
    opts.app.calls.ring_timeout_ms = static_cast<std::uint64_t>(ring * 1000);
    double rate = vm["chat-rate"].as<double>();
    if (rate <= 0 || rate > 1e6) throw UsageError("--chat-rate must be above 0 and at most 1000000");
    opts.app.chat_rate = rate;
    opts.app.chat_burst = 2 * rate;
    opts.permessage_deflate = !vm.count("no-deflate");

    std::string db = vm["db"].as<std::string>();
    csmp::StoreOptions store_opts;
    store_opts.path = db;
    store_opts.hardcoded_secret = opts.app.plants.has(csmp::plant::hardcoded_secret);
    std::string secret_from = "the original's hard-coded secret";
    if (!store_opts.hardcoded_secret) store_opts.secret = history_secret(vm, db, secret_from);
    std::unique_ptr<csmp::HistoryStore> store;
    try {
        store = std::make_unique<csmp::HistoryStore>(store_opts, SystemRng::instance());
    } catch (const csmp::StoreError& e) {
        say(std::cerr, std::string("msglab serve csmp: ") + e.what());
        return kFailure;
    }
    raise_fd_limit();
    asio::io_context io;
    std::unique_ptr<csmp::Server> server;
    try {
        server = std::make_unique<csmp::Server>(io, opts, store.get(), SystemRng::instance());
    } catch (const std::exception& e) {
        say(std::cerr, "msglab serve csmp: cannot listen on " + listen.to_string() + ": " + e.what());
        return kFailure;
    }
    server->start();
    ServeLoop loop(io, vm, [&] { server->stop(); });
    std::string plant_list;
    for (const auto& p : opts.app.plants.ids()) plant_list += (plant_list.empty() ? "" : ", ") + p;
    HostPort shown{listen.host, server->port()};
    say(std::cout, "csmp listening on " + shown.to_string() + "; plants: " +
                       (plant_list.empty() ? "none (clean)" : plant_list) + "; history: " + db + " (" +
                       std::to_string(store->count()) + " messages; key from " + secret_from + ")");
    loop.run();
    say(std::cout, "stopped: " + std::to_string(server->app().sessions()) + " session(s) live, " +
                       std::to_string(store->count()) + " message(s) in the history");
    return kOk;
}

int csmp_connect(const po::variables_map& vm) {
    std::string err;
    auto target = parse_host_port(vm["target"].as<std::string>(), csmp::kDefaultPort, err);
    if (!target) throw UsageError(err);
    double timeout = vm["timeout"].as<double>(), wait = vm["wait"].as<double>(), hold = vm["hold"].as<double>();
    if (timeout <= 0 || timeout > 3600) throw UsageError("--timeout must be above 0 and at most 3600 seconds");
    if (wait < 0 || wait > 86400) throw UsageError("--wait must be 0 to 86400 seconds");
    if (hold < 0 || hold > 86400) throw UsageError("--hold must be 0 to 86400 seconds");
    auto ms = [](double s) { return std::chrono::milliseconds(static_cast<long>(s * 1000)); };
    std::string user = vm["user"].as<std::string>();
    std::string room = vm.count("room") ? vm["room"].as<std::string>() : "general";
    if (!vm.count("room") && vm.count("peer")) {
        std::string a = user, b = vm["peer"].as<std::string>();
        if (b < a) std::swap(a, b);
        room = "room_" + a + "_" + b;
    }
    csmp::ClientOptions co;
    co.host = target->host;
    co.port = target->port;
    co.timeout = ms(timeout);
    csmp::Client client(co);
    const std::string name = "msglab connect csmp: ";
    try {
        if (vm.count("session")) {
            client.use_session(vm["session"].as<std::string>());
        } else {
            client.handshake(user);
            say(std::cout, "session " + client.session() + " as " + show(user));
        }
        bool acted = false;
        if (vm.count("history")) {
            acted = true;
            for (const auto& m : client.history(room))
                say(std::cout, "[" + m.value("timestamp", "") + "] " + show(m.value("from", "")) + ": " +
                                   show(m.value("message", "")));
        }
        if (vm.count("call-history")) {
            acted = true;
            say(std::cout, client.call_history().dump());
        }
        if (vm.count("send")) {
            acted = true;
            auto ws = client.open_chat(room);
            for (const auto& text : vm["send"].as<std::vector<std::string>>()) {
                csmp::Json m;
                m["type"] = "chat";
                m["message"] = text;
                ws->send(m.dump());
                // The server relays to the whole room, the sender included:
                // that relay is the acknowledgement (sent after it is stored).
                std::deque<csmp::Json> others;
                auto got = ws->receive_type("chat", co.timeout, &others);
                while (got && !(got->value("from", "") == user && got->value("message", "") == text)) {
                    say(std::cout, show(got->value("from", "")) + ": " + show(got->value("message", "")));
                    got = ws->receive_type("chat", co.timeout, &others);
                }
                for (const auto& o : others)
                    if (o.value("type", "") == "error")
                        throw csmp::ClientError("the server refused the message: " + o.value("detail", ""));
                if (!got) throw csmp::ClientError("no acknowledgement for the message (" + ws->close_reason() + ")");
                say(std::cout, "> " + show(user) + ": " + show(text) + "  [" + got->value("timestamp", "") + "]");
            }
            ws->close();
        }
        if (vm.count("call")) {
            acted = true;
            std::string callee = vm["call"].as<std::string>();
            auto ws = client.open_call();
            csmp::Json init;
            init["type"] = "call:init";
            init["to"] = callee;
            init["call_type"] = "voice";
            ws->send(init.dump());
            auto ack = ws->receive_type("call:ack", co.timeout);
            if (!ack) throw csmp::ClientError("no call:ack (" + ws->close_reason() + ")");
            std::string id = ack->value("call_id", "");
            say(std::cout, "calling " + show(callee) + " (call " + id + ")");
            csmp::Json offer;
            offer["type"] = "call:offer";
            offer["to"] = callee;
            offer["call_id"] = id;
            offer["sdp"] = {{"type", "offer"}, {"sdp", "v=0\r\no=msglab 0 0 IN IP4 127.0.0.1\r\n"}};
            ws->send(offer.dump());
            std::deque<csmp::Json> other;
            auto answer = ws->receive_type("call:answer", ms(wait), &other);
            for (const auto& o : other)
                if (o.value("type", "") == "call:end")
                    throw csmp::ClientError("the call ended before an answer (" + o.value("reason", "hung up") + ")");
            if (!answer) throw csmp::ClientError("no answer within " + std::to_string(wait) + " s");
            say(std::cout, "connected (call " + id + ")");
            std::this_thread::sleep_for(ms(hold));
            csmp::Json end;
            end["type"] = "call:end";
            end["to"] = callee;
            end["call_id"] = id;
            ws->send(end.dump());
            say(std::cout, "hung up (call " + id + ")");
            ws->close();
        }
        if (vm.count("answer")) {
            acted = true;
            auto ws = client.open_call();
            say(std::cout, "waiting for a call");
            auto incoming = ws->receive_type("call:incoming", ms(wait));
            if (!incoming) throw csmp::ClientError("no call within " + std::to_string(wait) + " s");
            std::string id = incoming->value("call_id", ""), caller = incoming->value("from", "");
            say(std::cout, "incoming call from " + show(caller) + " (call " + id + ")");
            auto offer = ws->receive_type("call:offer", ms(wait));
            if (!offer) throw csmp::ClientError("no offer from the caller");
            csmp::Json answer;
            answer["type"] = "call:answer";
            answer["to"] = caller;
            answer["call_id"] = id;
            answer["sdp"] = {{"type", "answer"}, {"sdp", "v=0\r\no=msglab 0 0 IN IP4 127.0.0.1\r\n"}};
            ws->send(answer.dump());
            say(std::cout, "connected (call " + id + ")");
            auto end = ws->receive_type("call:end", ms(wait));
            say(std::cout, end ? "the caller hung up (call " + id + ")" : "still connected after --wait; leaving");
            ws->close();
        }
        if (acted) return kOk;

        // Interactive chat: lines from the terminal are sent, the room's
        // messages printed as they come.
        auto ws = client.open_chat(room);
        if (isatty(STDIN_FILENO)) say(std::cerr, "chatting in " + show(room) + "; type a message and press Enter, /quit to leave");
        std::mutex m;
        std::deque<std::string> lines;
        std::atomic<bool> eof{false};
        std::thread reader([&] {
            std::string line;
            while (std::getline(std::cin, line)) {
                std::lock_guard<std::mutex> lock(m);
                lines.push_back(line);
                if (line == "/quit") break;
            }
            eof = true;
        });
        reader.detach();
        bool quit = false;
        while (!quit && !ws->closed()) {
            if (auto msg = ws->receive(std::chrono::milliseconds(100))) {
                csmp::Json j = csmp::Json::parse(*msg, nullptr, false);
                if (j.is_object() && j.value("type", "") == "chat")
                    say(std::cout, show(j.value("from", "")) + ": " + show(j.value("message", "")));
                else
                    say(std::cout, "< " + show(*msg));
            }
            std::deque<std::string> batch;
            {
                std::lock_guard<std::mutex> lock(m);
                batch.swap(lines);
            }
            for (const auto& line : batch) {
                if (line == "/quit") quit = true;
                else if (!line.empty()) {
                    csmp::Json c;
                    c["type"] = "chat";
                    c["message"] = line;
                    ws->send(c.dump());
                }
            }
            if (eof && batch.empty()) {
                // The input ended: wait for what is still in flight, then leave.
                while (auto msg = ws->receive(std::chrono::milliseconds(500))) say(std::cout, "< " + show(*msg));
                break;
            }
        }
        if (ws->closed()) say(std::cerr, name + ws->close_reason());
        ws->close();
        return kOk;
    } catch (const csmp::ClientError& e) {
        say(std::cerr, name + target->to_string() + ": " + e.what());
        return kFailure;
    }
}

}  // namespace msglab::cli
