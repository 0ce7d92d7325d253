// A CSMP client on Boost.Beast: the handshake and the HTTP routes, and the
// two WebSockets (chat and call), every wait bounded by a timeout.
#pragma once

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "csmp/calls.hpp"

namespace msglab::csmp {

class ClientError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct HttpReply {
    int status = 0;
    std::map<std::string, std::string> headers;  // names in lower case
    std::string body;
};

struct ClientOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8000;
    std::chrono::milliseconds timeout{10'000};  // connect, each request, each handshake
    bool deflate = true;                        // offer permessage-deflate
    std::string user_agent = "msglab-csmp";     // on the WebSocket upgrade
    std::size_t max_message = 1u << 20;         // one WebSocket message received
};

// One WebSocket. receive() waits at most its timeout; a message that
// arrives later is kept for the next call.
class WsClient {
public:
    ~WsClient();
    void send(const std::string& text);
    std::optional<std::string> receive(std::chrono::milliseconds timeout);
    // The next message whose JSON "type" is `type`, skipping others (kept
    // in `skipped` when given); nullopt on timeout or close.
    std::optional<Json> receive_type(const std::string& type, std::chrono::milliseconds timeout,
                                     std::deque<Json>* skipped = nullptr);
    bool closed() const;
    std::string close_reason() const;
    void close();

    struct Impl;
    explicit WsClient(std::unique_ptr<Impl> impl);

private:
    std::unique_ptr<Impl> m_impl;
};

class Client {
public:
    explicit Client(ClientOptions options);

    // One request on its own connection. Throws ClientError when the server
    // cannot be reached or does not answer in time.
    HttpReply request(const std::string& method, const std::string& target, const std::string& body = "",
                      const std::map<std::string, std::string>& headers = {});
    // POST /handshake/: the session id. Throws ClientError on any other answer.
    std::string handshake(const std::string& client_id);
    void use_session(std::string session_id) { m_session = std::move(session_id); }
    const std::string& session() const { return m_session; }

    // GET /history/<room> with the session header; the JSON array.
    Json history(const std::string& room, std::size_t limit = 50);
    Json call_history();

    // The upgrade; throws ClientError with the HTTP status when refused.
    std::unique_ptr<WsClient> open_chat(const std::string& room);
    std::unique_ptr<WsClient> open_call();
    // Any upgrade target, with extra request headers: the status on refusal.
    std::unique_ptr<WsClient> open(const std::string& target, int* refused_status = nullptr,
                                   const std::map<std::string, std::string>& headers = {});

private:
    ClientOptions m_options;
    std::string m_session;
};

std::string url_encode(const std::string& s);

}  // namespace msglab::csmp
