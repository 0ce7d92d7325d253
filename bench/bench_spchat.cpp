// SP-SimpleChat on loopback: chat messages per second fanned out to a room,
// and the throughput of a file transfer relayed between two clients.
//
// Relay: an in-process server on one Asio thread; N receiving clients and one
// sender say HELLO and JOIN one room (no echo to a sender in this protocol,
// so the sender is a member beside the N). The sender sends MSGs as fast as
// the server takes them while every receiver reads; it keeps at most a
// window of messages ahead of the slowest receiver. Every receiver must get
// every message exactly once and in order (checked by its sequence number);
// a message counts once all N have it.
//
// File: alice sends a 10 MiB file to bob by nick (FileSender: 32 KiB chunks
// under AES-256-EAX, base64url in JSON), the server relays each frame, and
// bob takes them on his own thread with a FileReceiver (auto-accept) that
// opens the chunks, writes the file and checks its size and SHA-256. Timed
// from FILE_START to bob's completed file.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.hpp"
#include "core/crypto.hpp"
#include "core/io_thread.hpp"
#include "spchat/client.hpp"
#include "spchat/files.hpp"
#include "spchat/server.hpp"

using namespace msglab;
using namespace msglab::spchat;
using namespace std::chrono_literals;
using Steady = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

double seconds_since(Steady::time_point t0) { return std::chrono::duration<double>(Steady::now() - t0).count(); }

void raise_fd_limit() {
    rlimit r{};
    if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
        r.rlim_cur = r.rlim_max;
        setrlimit(RLIMIT_NOFILE, &r);
    }
}

[[noreturn]] void fail(const std::string& why) {
    std::fprintf(stderr, "bench_spchat: %s\n", why.c_str());
    std::exit(1);
}

Json message(const char* type) {
    Json j;
    j["type"] = type;
    return j;
}

// HELLO and JOIN; the INFO for each.
void enter(Client& c, const std::string& nick, const std::string& room) {
    auto h = hello(c, nick, 5s);
    if (!h || (*h)["type"] != "INFO") fail(nick + ": no INFO for HELLO");
    Json j = message("JOIN");
    j["room"] = room;
    c.send(j);
    // Members already in the room hear of this one; this one only gets its INFO.
    if (!c.expect("INFO", 5s)) fail(nick + ": no INFO for JOIN");
}

// A server on any free port of 127.0.0.1, on its own Asio thread.
struct LoopbackServer {
    IoThread loop;
    Server server;

    LoopbackServer() : server(loop.io, options()) {
        boost::asio::post(loop.io, [this] { server.start(); });
    }
    ~LoopbackServer() {
        server.stop();
        loop.stop();  // the thread ends before the server goes, and the server before the io_context
    }
    static ServerOptions options() {
        ServerOptions o;
        o.port = 0;
        return o;
    }
    std::uint16_t port() const { return server.port(); }
};

struct RelayFigures {
    std::size_t messages = 0;
    double seconds = 0;
};

RelayFigures relay(std::size_t receivers, std::size_t messages) {
    LoopbackServer s;
    Client sender;
    sender.connect("127.0.0.1", s.port(), 5s);
    std::vector<Client> members(receivers);
    for (std::size_t i = 0; i < receivers; ++i) {
        members[i].connect("127.0.0.1", s.port(), 5s);
        enter(members[i], "m" + std::to_string(i), "bench");
    }
    enter(sender, "sender", "bench");
    // The announcements of later joins are read and dropped here.
    for (auto& m : members) {
        while (m.pump() && m.has_queued()) {
            auto r = m.receive(0ms);
            if (r.status != Client::Status::message || r.message["nick"] != "server")
                fail("unexpected message before the run");
        }
    }

    std::vector<std::size_t> got(receivers, 0);
    const std::size_t window = 256;
    std::size_t sent = 0;
    const auto t0 = Steady::now();
    for (;;) {
        const std::size_t slowest = *std::min_element(got.begin(), got.end());
        if (slowest == messages) break;
        while (sent < messages && sent < slowest + window) {
            Json j = message("MSG");
            j["room"] = "bench";
            j["text"] = "benchmark message " + std::to_string(sent);
            sender.send(j);
            ++sent;
        }
        for (std::size_t i = 0; i < receivers; ++i) {
            if (got[i] < sent && !members[i].has_queued() && !members[i].pump())
                fail("member " + std::to_string(i) + ": closed");
            while (got[i] < sent && members[i].has_queued()) {
                auto r = members[i].receive(0ms);
                if (r.status != Client::Status::message) fail("member " + std::to_string(i) + ": " + r.detail);
                const Json& m = r.message;
                // Exactly once, in order: the next number, from the sender.
                if (m["type"] == "MSG" && m["nick"] == "server") continue;  // a late announcement
                if (m["type"] != "MSG" || m["nick"] != "sender" || m["room"] != "bench" ||
                    m["text"] != "benchmark message " + std::to_string(got[i]))
                    fail("member " + std::to_string(i) + " got " + m.dump() + " where message " +
                         std::to_string(got[i]) + " was due");
                ++got[i];
            }
        }
        if (seconds_since(t0) > 60) fail("relay: stopped after 60 s with " + std::to_string(slowest) + " of " +
                                         std::to_string(messages) + " messages everywhere");
    }
    RelayFigures f{messages, seconds_since(t0)};
    // Nothing more arrives: no duplicate behind the last one.
    std::this_thread::sleep_for(50ms);
    for (std::size_t i = 0; i < receivers; ++i) {
        members[i].pump();
        while (members[i].has_queued()) {
            auto r = members[i].receive(0ms);
            if (r.status == Client::Status::message && r.message["nick"] == "sender")
                fail("member " + std::to_string(i) + " got a message twice or more: " + r.message.dump());
        }
    }
    return f;
}

struct FileFigures {
    std::uint64_t bytes = 0;
    double seconds = 0;
};

FileFigures file_transfer(std::uint64_t size) {
    const fs::path dir = fs::temp_directory_path() / ("msglab-bench-spchat-" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "downloads");
    const fs::path src = dir / "payload.bin";
    {
        Bytes data = SystemRng::instance().bytes(static_cast<std::size_t>(size));
        std::ofstream(src, std::ios::binary).write(reinterpret_cast<const char*>(data.data()),
                                                   static_cast<std::streamsize>(data.size()));
    }
    LoopbackServer s;
    Client alice, bob;
    alice.connect("127.0.0.1", s.port(), 5s);
    bob.connect("127.0.0.1", s.port(), 5s);
    enter(alice, "alice", "files");
    enter(bob, "bob", "files");

    FileReceiver::Options ro;
    ro.folder = dir / "downloads";
    ro.auto_accept = true;
    ro.max_size = size;
    FileSender sender(src, "alice", "bob", "dm", SystemRng::instance());

    FileEvent result;
    std::string problem;
    std::thread receiver([&] {
        FileReceiver files(ro);
        const auto deadline = Steady::now() + 120s;
        while (Steady::now() < deadline) {
            auto r = bob.receive(1s);
            if (r.status == Client::Status::timeout) continue;
            if (r.status != Client::Status::message) {
                problem = "bob: " + r.detail;
                break;
            }
            const std::string type = r.message["type"].get<std::string>();
            if (type.rfind("FILE_", 0) != 0) continue;  // the room's announcements
            FileEvent ev = files.handle(r.message);
            if (ev.kind == FileEvent::Kind::completed || ev.kind == FileEvent::Kind::failed) {
                result = ev;
                break;
            }
        }
        if (result.kind != FileEvent::Kind::completed && problem.empty())
            problem = "bob: " + (result.detail.empty() ? std::string("no file within 120 s") : result.detail);
    });

    const auto t0 = Steady::now();
    alice.send(sender.start());
    while (auto c = sender.next_chunk()) alice.send(*c);
    alice.send(sender.end());
    receiver.join();
    FileFigures f{size, seconds_since(t0)};
    if (!problem.empty()) fail(problem);
    // The file bob has is the one alice sent.
    auto read = [](const fs::path& p) {
        std::ifstream in(p, std::ios::binary);
        return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    };
    if (crypto::sha256(read(result.path)) != crypto::sha256(read(src))) fail("bob's file differs from alice's");
    fs::remove_all(dir);
    return f;
}

}  // namespace

int main() {
    raise_fd_limit();
    std::printf(
        "SP-SimpleChat on loopback (server: one Asio thread; clients: blocking sockets on the benchmark's thread)\n\n");
    for (std::size_t receivers : {10, 100}) {
        RelayFigures r = relay(receivers, receivers == 100 ? 20000 : 50000);
        double per_s = r.messages / r.seconds;
        std::printf("relay to a room of %3zu clients (and the sender): %7.0f messages/s relayed (%9.0f deliveries/s; "
                    "%zu messages in %.2f s, each to every member exactly once)\n",
                    receivers, per_s, per_s * receivers, r.messages, r.seconds);
    }
    FileFigures f = file_transfer(10ull << 20);
    std::printf(
        "file transfer, alice to bob through the server: %.1f MiB/s (%llu MiB in %.2f s: sealed, relayed, opened, "
        "written and checked)\n",
        double(f.bytes) / double(1 << 20) / f.seconds, static_cast<unsigned long long>(f.bytes >> 20), f.seconds);
    return 0;
}
