// CSMP on loopback: chat messages per second relayed to a room of 100
// clients, and idle WebSocket connections held per GiB of server memory.
//
// Relay: an in-process server on one Asio thread with its history in a
// temporary SQLite file (WAL); 100 clients join one open room; one of them
// sends messages as fast as the server takes them while every client reads.
// A message counts once all 100 sockets have it (it was stored first). The
// sender keeps at most a window of messages ahead of the slowest reader.
//
// Idle connections: `msglab serve csmp` in its own process (its memory is
// read from /proc); the benchmark opens N chat WebSockets with raw sockets
// (upgrade, then nothing; 500 per room) and reads the server's resident memory before and
// after. Connections per GiB = 2^30 / (RSS growth / N).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "core/io_thread.hpp"
#include "csmp/client.hpp"
#include "csmp/server.hpp"

extern char** environ;

using namespace msglab;
using namespace msglab::csmp;
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

struct RelayFigures {
    std::size_t messages = 0;
    double seconds = 0;
};

RelayFigures relay(std::size_t clients, std::size_t messages) {
    fs::path db = fs::temp_directory_path() / ("msglab-bench-csmp-" + std::to_string(getpid()) + ".db");
    for (const char* ext : {"", "-wal", "-shm"}) fs::remove(db.string() + ext);
    HistoryStore store({db.string(), to_bytes("benchmark secret, 16+ bytes"), false}, SystemRng::instance());
    ServerOptions o;
    o.port = 0;
    o.app.chat_rate = 1e6;
    o.app.chat_burst = 1e6;
    IoThread loop;
    Server server(loop.io, o, &store, SystemRng::instance());
    boost::asio::post(loop.io, [&] { server.start(); });
    StopOnExit stop{loop};

    ClientOptions co;
    co.port = server.port();
    Client c(co);
    c.handshake("bench");
    std::vector<std::unique_ptr<WsClient>> sockets;
    for (std::size_t i = 0; i < clients; ++i) sockets.push_back(c.open_chat("general"));
    std::vector<std::size_t> got(clients, 0);
    const std::size_t window = 64;
    std::size_t sent = 0;
    auto t0 = Steady::now();
    while (true) {
        std::size_t slowest = *std::min_element(got.begin(), got.end());
        if (slowest == messages) break;
        while (sent < messages && sent < slowest + window) {
            sockets[0]->send(R"({"type":"chat","message":"benchmark message )" + std::to_string(sent) + R"("})");
            ++sent;
        }
        for (std::size_t i = 0; i < clients; ++i)
            while (got[i] < sent && sockets[i]->receive(0ms)) ++got[i];
        if (seconds_since(t0) > 120) {
            std::fprintf(stderr, "relay: stopped after 120 s with %zu of %zu messages everywhere\n", slowest, messages);
            messages = slowest;
            break;
        }
    }
    RelayFigures f{messages, seconds_since(t0)};
    boost::asio::post(loop.io, [&] { server.stop(); });
    for (auto& s : sockets) s->close();
    for (const char* ext : {"", "-wal", "-shm"}) fs::remove(db.string() + ext);
    return f;
}

long rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    return -1;
}

int connect_loopback(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        if (fd >= 0) ::close(fd);
        return -1;
    }
    return fd;
}

// An upgrade to /ws/chat; true once the 101 arrived. Rooms hold at most
// 1,000 sockets: the connections are spread over the identity's pair rooms.
bool upgrade(int fd, const std::string& sid, std::size_t i) {
    std::string req = "GET /ws/chat?session_id=" + sid + "&room_id=room_idle_z" + std::to_string(i / 500) +
                      " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return false;
    std::string got;
    char buf[1024];
    while (got.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return false;
        got.append(buf, static_cast<std::size_t>(n));
    }
    return got.rfind("HTTP/1.1 101", 0) == 0;
}

struct IdleFigures {
    std::size_t connections = 0;
    long rss_before_kib = 0, rss_after_kib = 0;
};

IdleFigures idle(const std::string& msglab, std::size_t n) {
    fs::path dir = fs::temp_directory_path() / ("msglab-bench-idle-" + std::to_string(getpid()));
    fs::create_directories(dir);
    int fds[2];
    if (pipe(fds) != 0) return {};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    std::string db = (dir / "h.db").string();
    std::vector<std::string> argv = {msglab, "serve", "csmp", "--listen", "127.0.0.1:0", "--db", db,
                                     "--max-connections", std::to_string(n + 100)};
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    pid_t pid = -1;
    if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) != 0) {
        std::fprintf(stderr, "idle: cannot start %s\n", msglab.c_str());
        return {};
    }
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    std::string first;
    char ch;
    while (::read(fds[0], &ch, 1) == 1 && ch != '\n') first.push_back(ch);
    std::smatch m;
    IdleFigures f;
    if (std::regex_search(first, m, std::regex(R"(listening on 127\.0\.0\.1:(\d+))"))) {
        auto port = static_cast<std::uint16_t>(std::stoi(m[1]));
        ClientOptions co;
        co.port = port;
        Client c(co);
        std::string sid = c.handshake("idle");
        std::this_thread::sleep_for(200ms);
        f.rss_before_kib = rss_kib(pid);
        std::vector<int> open;
        for (std::size_t i = 0; i < n; ++i) {
            int fd = connect_loopback(port);
            if (fd < 0 || !upgrade(fd, sid, i)) {
                if (fd >= 0) ::close(fd);
                std::fprintf(stderr, "idle: connection %zu refused; stopping there\n", i);
                break;
            }
            open.push_back(fd);
        }
        std::this_thread::sleep_for(500ms);
        f.connections = open.size();
        f.rss_after_kib = rss_kib(pid);
        for (int fd : open) ::close(fd);
    }
    ::kill(pid, SIGTERM);
    int status;
    ::waitpid(pid, &status, 0);
    ::close(fds[0]);
    fs::remove_all(dir);
    return f;
}

}  // namespace

int main(int argc, char** argv) {
    raise_fd_limit();
    std::string msglab = argc > 1 ? argv[1] : MSGLAB_BINARY;
    std::printf("CSMP on loopback (server: one Asio thread; history: SQLite WAL, AES-256-GCM per message)\n\n");
    for (std::size_t clients : {10, 100}) {
        RelayFigures r = relay(clients, clients == 100 ? 2000 : 5000);
        double per_s = r.messages / r.seconds;
        std::printf("relay to a room of %3zu clients: %6.0f messages/s stored and relayed (%8.0f deliveries/s; %zu messages in %.2f s)\n",
                    clients, per_s, per_s * clients, r.messages, r.seconds);
    }
    IdleFigures f = idle(msglab, 5000);
    if (f.connections > 0 && f.rss_after_kib > f.rss_before_kib) {
        double per_conn = double(f.rss_after_kib - f.rss_before_kib) * 1024.0 / double(f.connections);
        std::printf("idle WebSockets: %zu held; server memory %ld -> %ld KiB: %.1f KiB each, %.0f connections per GiB\n",
                    f.connections, f.rss_before_kib, f.rss_after_kib, per_conn / 1024.0, double(1u << 30) / per_conn);
    } else {
        std::printf("idle WebSockets: not measured (see the messages above)\n");
    }
    return 0;
}
