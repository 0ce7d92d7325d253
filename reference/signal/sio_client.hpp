// A Socket.IO v5 client over Engine.IO v4 on Boost.Beast (PROTOCOLS.md
// sections 5.1 and 5.2), as python-socketio's Client behaves by default:
// an HTTP long-polling handshake, then at once an upgrade to a WebSocket on
// a new TCP connection with the sid ("2probe" / "3probe" / "5"), then
// CONNECT to "/" ("40") on the WebSocket. Polling only and WebSocket only
// are options. The client answers the server's pings ("2" -> "3") and
// considers the server gone when no ping came within ping_interval +
// ping_timeout.
//
// Threading: the client runs its own io thread. connect(), call(), emit(),
// send_raw(), close() and the accessors are for one caller thread; event
// handlers and on_disconnect run on the io thread (they must not call
// call(), which would wait on the thread that has to deliver its ack; emit()
// and send_raw() are fine there).
#pragma once

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "signal/eio.hpp"

namespace msglab::signal {

class SioError : public std::runtime_error {
public:
    enum class Kind {
        connect,       // the server could not be reached, refused the handshake, or CONNECT failed
        timeout,       // call(): no ack in time
        disconnected,  // not connected, or the connection ended while waiting
        protocol,      // the server broke the protocol
        usage,         // a bad argument
    };
    SioError(Kind kind, const std::string& what) : std::runtime_error(what), m_kind(kind) {}
    Kind kind() const { return m_kind; }

private:
    Kind m_kind;
};

enum class SioTransports {
    polling_then_websocket,  // python-socketio's default
    polling,
    websocket,
};

struct SioClientOptions {
    SioTransports transports = SioTransports::polling_then_websocket;
    std::string path = "/socket.io/";
    std::chrono::milliseconds connect_timeout{10'000};  // TCP, handshake, upgrade and CONNECT together
    std::chrono::milliseconds request_timeout{10'000};  // one POST; a GET waits ping_interval + this
    // The CONNECT payload (an object), e.g. {"token": ...}; nothing by default.
    std::optional<Json> auth;
    std::size_t max_payload = kDefaultMaxPayload;  // a body or WebSocket message received
    std::size_t max_pending_calls = 1'024;
    std::size_t max_queued_packets = 4'096;        // not yet sent; past it the client disconnects
    // Off: pings go unanswered (tests of the server's ping timeout).
    bool answer_pings = true;
    std::string user_agent = "msglab-signal";
};

class SioClient {
public:
    // The handler of a server event: its arguments (after the name); the
    // value returned is the ack when the server asked for one: an array is
    // the ack's arguments, null an empty ack ("43N[]"), any other value the
    // one argument, as python-socketio answers a handler's return value.
    using EventHandler = std::function<Json(const Json& args)>;

    SioClient();
    ~SioClient();  // close()
    SioClient(const SioClient&) = delete;
    SioClient& operator=(const SioClient&) = delete;

    // Connects and CONNECTs to "/". Throws SioError(connect) on failure,
    // with the server's CONNECT_ERROR message when there was one.
    void connect(const std::string& host, std::uint16_t port, SioClientOptions options = {});

    // Emits `event` with `args` (an array of arguments; another value is the
    // one argument) and waits for the ack: its argument array. Throws
    // SioError(timeout) or SioError(disconnected).
    Json call(const std::string& event, const Json& args = Json::array(),
              std::chrono::milliseconds timeout = std::chrono::seconds(60));
    // Emits without asking for an ack. Throws SioError(disconnected).
    void emit(const std::string& event, const Json& args = Json::array());
    // Handlers are kept by name; register them before connect() to see the
    // first events. "*" catches events without a handler of their own (its
    // args are then the whole array, the name first).
    void on(const std::string& event, EventHandler handler);
    // Once, when a connection that succeeded ends: "client disconnect",
    // "server disconnect", "ping timeout", "transport close", "transport
    // error", "protocol error", "slow peer".
    void on_disconnect(std::function<void(const std::string& reason)> handler);

    // Any Socket.IO packet text, sent as an Engine.IO message ("4" + text);
    // and any Engine.IO packet text. For tests and attack scenarios.
    void send_raw(const std::string& sio_text);
    void send_eio_raw(const std::string& eio_text);

    // Sends DISCONNECT and CLOSE, then closes the transport. Idempotent.
    void close();

    bool connected() const;
    std::string sid() const;        // the Socket.IO sid; empty before connect
    std::string eio_sid() const;    // the Engine.IO sid
    std::string transport() const;  // "polling" or "websocket"
    EioOpen handshake() const;      // the server's open packet
    std::string disconnect_reason() const;  // empty while connected

    struct Impl;

private:
    std::shared_ptr<Impl> m_impl;
};

}  // namespace msglab::signal
