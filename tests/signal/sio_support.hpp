// Helpers for the Socket.IO tests: a thread-safe log of what handlers saw,
// and msglab's server on 127.0.0.1 with a free port and handlers that
// answer the events the tests send.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/io_thread.hpp"
#include "signal/sio_server.hpp"

namespace msglab::signal::test {

using namespace std::chrono_literals;

// Lines from any thread; waits for one that contains a text.
class Recorder {
public:
    void add(const std::string& line) {
        {
            std::lock_guard<std::mutex> lock(m_mu);
            m_lines.push_back(line);
        }
        m_cv.notify_all();
    }
    bool wait_for(const std::string& needle, std::chrono::milliseconds limit = 5s) {
        std::unique_lock<std::mutex> lock(m_mu);
        return m_cv.wait_for(lock, limit, [&] { return count_locked(needle) > 0; });
    }
    std::size_t count(const std::string& needle) {
        std::lock_guard<std::mutex> lock(m_mu);
        return count_locked(needle);
    }
    std::string all() {
        std::lock_guard<std::mutex> lock(m_mu);
        std::string out;
        for (const auto& l : m_lines) out += l + "\n";
        return out;
    }

private:
    std::size_t count_locked(const std::string& needle) const {
        std::size_t n = 0;
        for (const auto& l : m_lines)
            if (l.find(needle) != std::string::npos) ++n;
        return n;
    }
    std::mutex m_mu;
    std::condition_variable m_cv;
    std::vector<std::string> m_lines;
};

// The server the tests run: events
//   "sum" a b      -> ack [a+b, "sum", [a, b]]   (several arguments)
//   "echo" args... -> ack with the same arguments
//   "hold"         -> the ack is kept; the test replies from its own thread
//   "drop"         -> the ack is dropped unanswered: sent empty
//   "ask_back" n   -> the server calls the client's "question" with n and
//                     acks what the client answered (a relay, as Signal's)
//   "please_call"  -> the server emits "notice" ("hello", 2), calls the
//                     client's "question" with "q", records the answer, acks [true]
// Every connect, event, ack and disconnect is recorded.
struct TestServer {
    IoThread loop;
    Recorder rec;
    std::mutex held_mu;
    std::vector<std::shared_ptr<SioAck>> held;
    std::unique_ptr<SioServer> server;
    StopOnExit stop_loop{loop};

    explicit TestServer(SioServerOptions o = {}) {
        o.host = "127.0.0.1";
        o.port = 0;
        auto user_log = o.on_log;
        o.on_log = [this, user_log](const std::string& l) {
            rec.add("log: " + l);
            if (user_log) user_log(l);
        };
        SioHandler h;
        h.on_connect = [this](const std::string& sid, const std::string& remote) {
            rec.add("connect " + sid + " " + remote);
        };
        h.on_disconnect = [this](const std::string& sid, const std::string& reason) {
            rec.add("disconnect " + sid + " " + reason);
        };
        h.on_event = [this](const std::string& sid, const std::string& event, const Json& args,
                            std::shared_ptr<SioAck> ack) {
            rec.add("event " + event + " " + dump_json(args) + (ack ? " ack" : " noack"));
            if (event == "sum" && ack) {
                long a = args.at(0).get<long>(), b = args.at(1).get<long>();
                ack->reply(Json::array({a + b, "sum", Json::array({a, b})}));
            } else if (event == "echo" && ack) {
                ack->reply(args);
            } else if (event == "hold" && ack) {
                {
                    std::lock_guard<std::mutex> lock(held_mu);
                    held.push_back(ack);
                }
                rec.add("held");
            } else if (event == "please_call" && ack) {
                server->emit(sid, "notice", Json::array({"hello", 2}));
                server->emit(sid, "question", Json::array({"q"}), [this, ack](std::optional<Json> answer) {
                    rec.add(std::string("answer ") + (answer ? dump_json(*answer) : "none"));
                    ack->reply(Json::array({true}));
                });
            } else if (event == "ask_back" && ack) {
                server->emit(sid, "question", args, [this, ack](std::optional<Json> answer) {
                    rec.add(std::string("answer ") + (answer ? dump_json(*answer) : "none"));
                    ack->reply(answer ? *answer : Json::array({false}));
                });
            }
        };
        server = std::make_unique<SioServer>(loop.io, std::move(o), std::move(h));
        server->start();
    }
    std::uint16_t port() const { return server->port(); }

    // The last Socket.IO sid that connected.
    // The server's log line about a connection can come before the
    // handler's "connect" record: wait for the record itself.
    std::string last_sid() {
        std::string all;
        std::size_t start = std::string::npos;
        for (int i = 0; i < 500 && start == std::string::npos; ++i) {
            all = rec.all();
            auto at = all.rfind("\nconnect ");
            start = at == std::string::npos ? (all.rfind("connect ", 0) == 0 ? 0 : std::string::npos) : at + 1;
            if (start == std::string::npos) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        REQUIRE(start != std::string::npos);
        std::size_t sp = all.find(' ', start + 8);
        return all.substr(start + 8, sp - start - 8);
    }

    // Runs `f` on the io thread and waits for it.
    template <class F>
    auto on_io(F f) {
        std::promise<decltype(f())> p;
        auto fut = p.get_future();
        boost::asio::post(loop.io, [&] {
            if constexpr (std::is_void_v<decltype(f())>) {
                f();
                p.set_value();
            } else {
                p.set_value(f());
            }
        });
        return fut.get();
    }
};

}  // namespace msglab::signal::test
