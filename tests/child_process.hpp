// A child process read line by line with time limits, for tests that run
// the msglab command (servers on ephemeral ports) or other programs.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "support.hpp"

extern char** environ;

namespace msglab::test {

using Steady = std::chrono::steady_clock;

// A child process (no shell) whose standard output and error arrive on one
// pipe, read line by line with a time limit. Killed on destruction if it is
// still running.
class ChildProcess {
public:
    explicit ChildProcess(const std::vector<std::string>& argv) {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
        posix_spawn_file_actions_adddup2(&fa, fds[1], STDERR_FILENO);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        int rc = posix_spawn(&m_pid, args[0], &fa, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        ::close(fds[1]);
        m_fd = fds[0];
        INFO("cannot start " << argv[0]);
        REQUIRE(rc == 0);
    }
    ~ChildProcess() {
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            int status;
            ::waitpid(m_pid, &status, 0);
        }
        if (m_fd >= 0) ::close(m_fd);
    }
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    // The next line (without its newline); nullopt at the end of output or
    // when no whole line came within `limit`.
    std::optional<std::string> line(std::chrono::milliseconds limit = std::chrono::seconds(20)) {
        auto until = Steady::now() + limit;
        for (;;) {
            if (auto nl = m_buffer.find('\n'); nl != std::string::npos) {
                std::string l = m_buffer.substr(0, nl);
                m_buffer.erase(0, nl + 1);
                m_all += l + "\n";
                return l;
            }
            if (m_eof || !fill(until)) return std::nullopt;
        }
    }

    void signal(int sig) {
        if (m_pid > 0) ::kill(m_pid, sig);
    }

    // Everything left until the process exits (killed after `limit`), and
    // its exit status (-1 when it did not exit normally).
    std::pair<std::string, int> finish(std::chrono::milliseconds limit = std::chrono::seconds(30)) {
        auto until = Steady::now() + limit;
        while (!m_eof && fill(until)) {
        }
        if (!m_eof) ::kill(m_pid, SIGKILL);
        int status = 0;
        ::waitpid(m_pid, &status, 0);
        m_pid = -1;
        std::string rest = m_buffer;
        m_all += rest;
        m_buffer.clear();
        return {rest, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
    }

    // Every line read so far (for failure messages).
    const std::string& all() const { return m_all; }

private:
    // Reads what is there; false on timeout.
    bool fill(Steady::time_point until) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Steady::now()).count();
        if (left <= 0) return false;
        pollfd p{m_fd, POLLIN, 0};
        int n = ::poll(&p, 1, static_cast<int>(left));
        if (n <= 0) return n < 0 && errno == EINTR;
        char buf[4096];
        ssize_t got = ::read(m_fd, buf, sizeof buf);
        if (got <= 0) {
            m_eof = true;
            return true;
        }
        m_buffer.append(buf, static_cast<std::size_t>(got));
        return true;
    }

    pid_t m_pid = -1;
    int m_fd = -1;
    bool m_eof = false;
    std::string m_buffer, m_all;
};

// The port in "... listening on 127.0.0.1:PORT ...".
inline std::string listening_port(const std::string& first_line) {
    std::smatch m;
    INFO("first line: " << first_line);
    REQUIRE(std::regex_search(first_line, m, std::regex(R"(listening on 127\.0\.0\.1:(\d+))")));
    return m[1];
}

}  // namespace msglab::test
