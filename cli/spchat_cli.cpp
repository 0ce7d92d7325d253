// msglab serve spchat / msglab connect spchat.
#include <poll.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "cli/cli.hpp"
#include "cli/printable.hpp"
#include "cli/serve_loop.hpp"
#include "core/address.hpp"
#include "spchat/client.hpp"
#include "spchat/files.hpp"
#include "spchat/server.hpp"

namespace msglab::cli {

namespace asio = boost::asio;
using Json = spchat::Json;

namespace {

std::string show(const std::string& s) { return printable(to_bytes(s)); }

std::chrono::milliseconds ms_of(double s) { return std::chrono::milliseconds(static_cast<long long>(s * 1000)); }

std::pair<std::string, std::string> split_eq(const std::string& s, const char* option) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0) throw UsageError(std::string(option) + " expects NAME=VALUE, got '" + s + "'");
    return {s.substr(0, eq), s.substr(eq + 1)};
}

std::string human_size(std::uint64_t n) {
    char buf[64];
    if (n >= 1024 * 1024) std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(n) / (1024.0 * 1024.0));
    else if (n >= 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(n) / 1024.0);
    else std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(n));
    return buf;
}

// One chat session: the connection, the files coming in, what to print.
class Chat {
public:
    Chat(spchat::Client& c, spchat::FileReceiver& files, std::string nick)
        : m_c(c), m_files(files), m_nick(std::move(nick)) {}

    std::string room;  // the room joined last
    std::size_t completed = 0, failed = 0, who_lists = 0, errors = 0;

    // Prints a message from the server; file frames go to the receiver.
    void show_message(const Json& m) {
        const std::string type = spchat::string_field(m, "type").value_or("");
        auto field = [&](const char* k) { return show(spchat::string_field(m, k).value_or("")); };
        if (type == "MSG") {
            say(std::cout, "[" + field("room") + "] <" + field("nick") + "> " + field("text"));
        } else if (type == "INFO") {
            say(std::cout, "* " + field("text"));
        } else if (type == "ERROR") {
            std::string code = spchat::string_field(m, "code").value_or("");
            say(std::cout, "! " + field("text") + (code.empty() ? "" : " (" + show(code) + ")"));
            ++errors;
        } else if (type == "WHO_LIST") {
            std::string list;
            if (m.contains("members") && m["members"].is_array())
                for (const auto& e : m["members"])
                    if (e.is_string()) list += (list.empty() ? "" : ", ") + show(e.get<std::string>());
            say(std::cout, "members of " + field("room") + ": " + list);
            ++who_lists;
        } else if (type == "PONG") {
            m_pong = std::chrono::steady_clock::now();
        } else if (type.rfind("FILE_", 0) == 0) {
            file_event(m_files.handle(m));
        } else {
            say(std::cout, "< " + show(m.dump()));
        }
    }

    void file_event(const spchat::FileEvent& e) {
        using K = spchat::FileEvent::Kind;
        const auto& o = e.offer;
        switch (e.kind) {
            case K::offered:
                say(std::cout, "file offer " + o.file_id + ": '" + show(o.name) + "' (" + human_size(o.size) + ") from " +
                                   show(o.from) + "; /accept " + o.file_id.substr(0, 8) + " to take it");
                break;
            case K::started:
                say(std::cout, "receiving '" + show(o.name) + "' (" + human_size(o.size) + ") from " + show(o.from) +
                                   " into " + e.path.string());
                break;
            case K::progress: {
                // A line per 10% for large files.
                if (o.size >= 1024 * 1024) {
                    const auto pct = e.received * 10 / std::max<std::uint64_t>(o.size, 1);
                    const auto before = (e.received - std::min<std::uint64_t>(e.received, spchat::kChunkSize)) * 10 /
                                        std::max<std::uint64_t>(o.size, 1);
                    if (pct != before) say(std::cerr, "  " + std::to_string(pct * 10) + "% of '" + show(o.name) + "'");
                }
                break;
            }
            case K::completed:
                ++completed;
                say(std::cout, "received '" + show(o.name) + "' from " + show(o.from) + ": " + e.path.string() + " (" +
                                   std::to_string(e.received) + " bytes, SHA-256 " + o.sha256 + " checked)");
                break;
            case K::failed:
                ++failed;
                say(std::cout, "file '" + show(o.name) + "' failed: " + e.detail);
                break;
            case K::ignored: break;
        }
    }

    // Takes in whatever arrived without waiting.
    void poll_in() {
        if (!m_c.pump() && !m_c.has_queued()) return;
        drain(std::chrono::milliseconds(0));
    }

    // Prints what arrives for up to `wait` (returns early once `until` holds).
    bool drain(std::chrono::milliseconds wait, const std::function<bool()>& until = nullptr) {
        const auto end = std::chrono::steady_clock::now() + wait;
        for (;;) {
            if (until && until()) return true;
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
            if (left.count() < 0) left = std::chrono::milliseconds(0);
            auto r = m_c.receive(std::min(left, std::chrono::milliseconds(200)));
            if (r.status == spchat::Client::Status::message) {
                show_message(r.message);
                continue;
            }
            if (r.status == spchat::Client::Status::closed) {
                m_closed = r.detail;
                return until && until();
            }
            if (r.status == spchat::Client::Status::bad_frame) say(std::cerr, "! " + r.detail);
            if (left.count() == 0) return until && until();
        }
    }

    // The answer to a request: the next INFO or ERROR (others are printed).
    std::optional<Json> answer(std::chrono::milliseconds timeout) {
        const auto end = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            auto r = m_c.receive(left);
            if (r.status == spchat::Client::Status::closed) {
                m_closed = r.detail;
                return std::nullopt;
            }
            if (r.status != spchat::Client::Status::message) continue;
            const std::string t = spchat::string_field(r.message, "type").value_or("");
            show_message(r.message);
            if (t == "INFO" || t == "ERROR") return r.message;
        }
    }

    void join(const std::string& r, const std::optional<std::string>& password) {
        Json j;
        j["type"] = "JOIN";
        j["room"] = r;
        if (password) j["password"] = *password;
        m_c.send(j);
        room = r;
    }

    void say_text(const std::string& text) {
        Json j;
        j["type"] = "MSG";
        if (!room.empty()) j["room"] = room;
        j["text"] = text;
        m_c.send(j);
    }

    // `to` is "dm:NICK" or a room (the room joined last when empty).
    void send_file(const std::string& path, std::string to, std::chrono::milliseconds send_wait) {
        std::string mode = "public";
        if (to.rfind("dm:", 0) == 0) {
            mode = "dm";
            to = to.substr(3);
        } else if (to.empty()) {
            to = room;
        }
        if (to.empty()) throw std::runtime_error("no destination: give dm:NICK or a room, or join a room first");
        spchat::FileSender s(path, m_nick, to, mode, SystemRng::instance());
        say(std::cout, "sending '" + show(std::filesystem::path(path).filename().string()) + "' (" + human_size(s.size()) +
                           ", " + std::to_string(s.chunks()) + " chunks) to " + show(to) + " as file " + s.file_id());
        m_c.send(s.start());
        if (send_wait.count() > 0) drain(send_wait);
        std::uint64_t sent = 0, last_pct = 0;
        while (auto chunk = s.next_chunk()) {
            m_c.send(*chunk);
            sent += spchat::kChunkSize;
            if (s.size() >= 1024 * 1024) {
                auto pct = std::min<std::uint64_t>(sent, s.size()) * 10 / s.size();
                if (pct != last_pct) say(std::cerr, "  " + std::to_string(pct * 10) + "% sent");
                last_pct = pct;
            }
            poll_in();
        }
        m_c.send(s.end());
        say(std::cout, "sent file " + s.file_id() + " (SHA-256 " + s.sha256_hex() + ")");
    }

    const std::optional<std::string>& closed() const { return m_closed; }
    std::chrono::steady_clock::time_point last_pong() const { return m_pong; }

private:
    spchat::Client& m_c;
    spchat::FileReceiver& m_files;
    std::string m_nick;
    std::optional<std::string> m_closed;
    std::chrono::steady_clock::time_point m_pong = std::chrono::steady_clock::now();
};

const char* kHelp =
    "commands:\n"
    "  /join ROOM [PASSWORD]     join a room (a new room with a password is protected by it)\n"
    "  /msg TEXT                 say TEXT in the room (plain lines do the same)\n"
    "  /who                      list the room's members\n"
    "  /leave                    leave the room\n"
    "  /send [dm:NICK|ROOM] PATH send a file to a nick or a room (default: the room)\n"
    "  /accept ID                accept a file offer (its id or first characters)\n"
    "  /quit                     leave\n";

}  // namespace

void spchat_serve_options(po::options_description& o) {
    o.add_options()("listen", po::value<std::string>()->default_value("127.0.0.1:9000"),
                    "address to listen on, HOST:PORT (port 0 picks a free one)")(
        "room", po::value<std::vector<std::string>>()->composing(),
        "NAME=PASSWORD: a room protected by a password from the start (repeatable)")(
        "room-members", po::value<std::vector<std::string>>()->composing(),
        "NAME=NICK,NICK,...: a room only these nicks may join (repeatable)")(
        "max-frame", po::value<std::size_t>()->default_value(spchat::kDefaultMaxFrame),
        "largest frame accepted, in bytes; a larger length prefix closes the connection")(
        "max-connections", po::value<std::size_t>()->default_value(10000), "concurrent connections at most")(
        "idle-timeout", po::value<double>()->default_value(300.0), "seconds without any byte before a connection is closed")(
        "frame-timeout", po::value<double>()->default_value(30.0), "seconds a started frame may take to arrive whole")(
        "verbose,v", "print each connection, disconnection and refusal")(
        "duration", po::value<double>(), "stop after this many seconds (default: until Ctrl-C)")(
        "plant", po::value<std::vector<std::string>>()->composing(),
        "switch on a plant from 'msglab plants' (repeatable); off by default");
}

void spchat_connect_options(po::options_description& o) {
    o.add_options()("nick", po::value<std::string>()->default_value("msglab"), "the nick to say HELLO with")(
        "room", po::value<std::string>(), "join this room after HELLO")(
        "password", po::value<std::string>(), "the room's password (protects a room this JOIN creates)")(
        "send", po::value<std::vector<std::string>>()->composing(),
        "say this in the room (repeatable, needs --room); without --send or --send-file, lines from the terminal "
        "are sent, and /help lists the commands")(
        "send-file", po::value<std::vector<std::string>>()->composing(), "send this file (repeatable) to --to")(
        "to", po::value<std::string>(), "where --send-file goes: dm:NICK or a room (default: --room)")(
        "who", "print the room's members")(
        "auto-accept", "accept every file offer at once (else only /accept in the terminal takes one)")(
        "downloads", po::value<std::string>()->default_value("downloads"), "folder received files are written to")(
        "max-file-size", po::value<std::uint64_t>()->default_value(spchat::kDefaultMaxFileSize),
        "largest file accepted, in bytes")(
        "expect-files", po::value<std::size_t>()->default_value(0),
        "with --auto-accept: stay until this many files arrived whole (or --wait ends); exit 1 if any failed")(
        "send-wait", po::value<double>()->default_value(2.0),
        "seconds between FILE_START and the chunks, for a receiver to accept (the original's default)")(
        "wait", po::value<double>()->default_value(1.0), "seconds to stay for messages after the last send")(
        "timeout", po::value<double>()->default_value(10.0), "seconds for the connection and each answer");
}

int spchat_serve(const po::variables_map& vm) {
    auto listen = listen_option(vm, spchat::kDefaultPort);
    spchat::ServerOptions opts;
    opts.host = listen.host;
    opts.port = listen.port;
    opts.app.plants = plants_option(vm, "spchat");
    if (vm.count("room"))
        for (const auto& r : vm["room"].as<std::vector<std::string>>()) {
            auto [name, pw] = split_eq(r, "--room");
            if (pw.empty()) throw UsageError("--room " + name + ": the password is empty");
            opts.app.rooms[name].password = pw;
        }
    if (vm.count("room-members"))
        for (const auto& r : vm["room-members"].as<std::vector<std::string>>()) {
            auto [name, list] = split_eq(r, "--room-members");
            std::set<std::string> nicks;
            std::size_t start = 0;
            while (start <= list.size()) {
                auto comma = list.find(',', start);
                std::string nick = spchat::lower(spchat::strip(list.substr(start, comma - start)));
                if (!nick.empty()) nicks.insert(nick);
                if (comma == std::string::npos) break;
                start = comma + 1;
            }
            if (nicks.empty()) throw UsageError("--room-members " + name + ": no nicks");
            opts.app.rooms[name].members = nicks;
        }
    opts.app.max_frame = vm["max-frame"].as<std::size_t>();
    if (opts.app.max_frame < 64 || opts.app.max_frame > 0xFFFFFFFFull)
        throw UsageError("--max-frame must be 64 to 4294967295 bytes");
    opts.max_connections = vm["max-connections"].as<std::size_t>();
    if (opts.max_connections < 1) throw UsageError("--max-connections must be at least 1");
    double idle = vm["idle-timeout"].as<double>(), frame = vm["frame-timeout"].as<double>();
    if (idle <= 0 || idle > 86400) throw UsageError("--idle-timeout must be above 0 and at most 86400 seconds");
    if (frame <= 0 || frame > 86400) throw UsageError("--frame-timeout must be above 0 and at most 86400 seconds");
    opts.idle_timeout = ms_of(idle);
    opts.frame_timeout = ms_of(frame);
    if (vm.count("verbose"))
        opts.on_event = [](const std::string& peer, const std::string& what) { say(std::cout, peer + ": " + what); };

    raise_fd_limit();
    asio::io_context io;
    std::unique_ptr<spchat::Server> server;
    try {
        server = std::make_unique<spchat::Server>(io, opts);
    } catch (const std::exception& e) {
        say(std::cerr, "msglab serve spchat: cannot listen on " + listen.to_string() + ": " + e.what());
        return kFailure;
    }
    server->start();
    ServeLoop loop(io, vm, [&] { server->stop(); });
    std::string plant_list;
    for (const auto& p : opts.app.plants.ids()) plant_list += (plant_list.empty() ? "" : ", ") + p;
    HostPort shown{listen.host, server->port()};
    say(std::cout, "spchat listening on " + shown.to_string() + "; plants: " +
                       (plant_list.empty() ? "none (clean)" : plant_list) + "; " +
                       std::to_string(opts.app.rooms.size()) + " configured room(s)");
    loop.run();
    say(std::cout, "stopped: " + std::to_string(server->app().connections()) + " connection(s), " +
                       std::to_string(server->app().rooms()) + " room(s)");
    return kOk;
}

int spchat_connect(const po::variables_map& vm) {
    std::string err;
    auto target = parse_host_port(vm["target"].as<std::string>(), spchat::kDefaultPort, err);
    if (!target) throw UsageError(err);
    const double timeout_s = vm["timeout"].as<double>(), wait_s = vm["wait"].as<double>(),
                 send_wait_s = vm["send-wait"].as<double>();
    if (timeout_s <= 0 || timeout_s > 3600) throw UsageError("--timeout must be above 0 and at most 3600 seconds");
    if (wait_s < 0 || wait_s > 86400) throw UsageError("--wait must be 0 to 86400 seconds");
    if (send_wait_s < 0 || send_wait_s > 3600) throw UsageError("--send-wait must be 0 to 3600 seconds");
    const auto timeout = ms_of(timeout_s);
    const std::string nick = vm["nick"].as<std::string>();
    if (spchat::strip(nick).empty()) throw UsageError("--nick is empty");
    const std::size_t expect_files = vm["expect-files"].as<std::size_t>();
    if (expect_files && !vm.count("auto-accept")) throw UsageError("--expect-files needs --auto-accept");
    if (vm.count("send") && !vm.count("room")) throw UsageError("--send needs --room");
    std::vector<std::string> files;
    if (vm.count("send-file")) files = vm["send-file"].as<std::vector<std::string>>();
    std::string to = vm.count("to") ? vm["to"].as<std::string>() : "";
    if (!files.empty() && to.empty() && !vm.count("room")) throw UsageError("--send-file needs --to or --room");
    for (const auto& f : files)
        if (!std::filesystem::is_regular_file(f)) throw UsageError("--send-file: '" + f + "' is not a readable file");

    const std::string name = "msglab connect spchat: ";
    spchat::Client client;
    spchat::FileReceiver::Options fo;
    fo.folder = vm["downloads"].as<std::string>();
    fo.auto_accept = vm.count("auto-accept") != 0;
    fo.max_size = vm["max-file-size"].as<std::uint64_t>();
    spchat::FileReceiver receiver(fo);
    try {
        client.connect(target->host, target->port, timeout);
        Chat chat(client, receiver, nick);
        {
            Json h;
            h["type"] = "HELLO";
            h["nick"] = nick;
            client.send(h);
            auto a = chat.answer(timeout);
            if (!a) throw std::runtime_error("no answer to HELLO" + (chat.closed() ? " (" + *chat.closed() + ")" : ""));
            if ((*a)["type"] == "ERROR") return kFailure;
        }
        if (vm.count("room")) {
            std::optional<std::string> pw;
            if (vm.count("password")) pw = vm["password"].as<std::string>();
            chat.join(vm["room"].as<std::string>(), pw);
            auto a = chat.answer(timeout);
            if (!a || (*a)["type"] == "ERROR") return kFailure;
        }
        bool acted = false;
        if (vm.count("who")) {
            acted = true;
            Json w;
            w["type"] = "WHO";
            client.send(w);
            // The list, or the ERROR that answers instead.
            const std::size_t lists = chat.who_lists, errors = chat.errors;
            chat.drain(timeout, [&] { return chat.who_lists > lists || chat.errors > errors; });
            if (chat.who_lists == lists) {
                say(std::cerr, name + "no member list for the room");
                return kFailure;
            }
        }
        if (vm.count("send")) {
            acted = true;
            for (const auto& text : vm["send"].as<std::vector<std::string>>()) chat.say_text(text);
        }
        for (const auto& f : files) {
            acted = true;
            chat.send_file(f, to, ms_of(send_wait_s));
        }
        if (expect_files) {
            acted = true;
            bool done = chat.drain(ms_of(wait_s), [&] { return chat.completed + chat.failed >= expect_files; });
            if (!done) {
                say(std::cerr, name + std::to_string(chat.completed) + " of " + std::to_string(expect_files) +
                                   " file(s) arrived within --wait");
                return kFailure;
            }
            return chat.failed ? kFailure : kOk;
        }
        if (acted) {
            // Stay a moment for answers (there is no echo of one's own MSG);
            // a PING makes sure everything sent was read.
            Json p;
            p["type"] = "PING";
            client.send(p);
            chat.drain(ms_of(wait_s));
            Json q;
            q["type"] = "QUIT";
            client.send(q);
            chat.drain(std::min(timeout, std::chrono::milliseconds(2000)),
                       [&] { return chat.closed().has_value(); });
            return kOk;
        }

        // Interactive: the terminal and the socket, one poll loop; a PING
        // every 20 s and no PONG for 60 s ends it, as the original client.
        if (isatty(STDIN_FILENO)) say(std::cerr, "connected as " + show(nick) + "; /help for commands");
        auto last_ping = std::chrono::steady_clock::now();
        std::string pending;
        bool quit = false, eof = false;
        while (!quit) {
            pollfd fds[2] = {{STDIN_FILENO, static_cast<short>(eof ? 0 : POLLIN), 0}, {client.fd(), POLLIN, 0}};
            ::poll(fds, 2, 500);
            if (fds[1].revents) chat.poll_in();
            if (chat.closed()) {
                say(std::cerr, name + *chat.closed());
                return kFailure;
            }
            auto now = std::chrono::steady_clock::now();
            if (now - last_ping > std::chrono::seconds(20)) {
                Json p;
                p["type"] = "PING";
                client.send(p);
                last_ping = now;
            }
            if (now - chat.last_pong() > std::chrono::seconds(60)) {
                say(std::cerr, name + "no PONG for 60 s; disconnecting");
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
                try {
                    if (line == "/quit") {
                        quit = true;
                        break;
                    } else if (line == "/help") {
                        std::cout << kHelp << std::flush;
                    } else if (line.rfind("/join ", 0) == 0) {
                        // "/join ROOM" or "/join ROOM PASSWORD".
                        std::string args = spchat::strip(line.substr(6)), room = args;
                        std::optional<std::string> pw;
                        if (auto sp = args.find(' '); sp != std::string::npos) {
                            room = args.substr(0, sp);
                            pw = spchat::strip(args.substr(sp + 1));
                        }
                        chat.join(room, pw);
                    } else if (line.rfind("/msg ", 0) == 0) {
                        chat.say_text(line.substr(5));
                    } else if (line == "/who") {
                        Json w;
                        w["type"] = "WHO";
                        client.send(w);
                    } else if (line == "/leave") {
                        Json l;
                        l["type"] = "LEAVE";
                        client.send(l);
                    } else if (line.rfind("/send ", 0) == 0) {
                        // "/send PATH" or "/send DEST PATH" (DEST: dm:NICK or a room).
                        std::string dest, path = spchat::strip(line.substr(6));
                        if (auto sp = path.find(' '); sp != std::string::npos &&
                                                      !std::filesystem::exists(path)) {
                            dest = path.substr(0, sp);
                            path = spchat::strip(path.substr(sp + 1));
                        }
                        chat.send_file(path, dest, ms_of(send_wait_s));
                    } else if (line.rfind("/accept ", 0) == 0) {
                        chat.file_event(receiver.accept(spchat::strip(line.substr(8))));
                    } else if (line[0] == '/') {
                        say(std::cerr, "unknown command " + show(line) + "; /help lists them");
                    } else {
                        chat.say_text(line);
                    }
                } catch (const std::runtime_error& e) {
                    say(std::cerr, std::string("! ") + e.what());
                }
            }
        }
        Json q;
        q["type"] = "QUIT";
        client.send(q);
        chat.drain(std::min(timeout, std::chrono::milliseconds(2000)), [&] { return chat.closed().has_value(); });
        return kOk;
    } catch (const std::exception& e) {
        say(std::cerr, name + target->to_string() + ": " + e.what());
        return kFailure;
    }
}

}  // namespace msglab::cli
