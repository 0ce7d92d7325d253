// A Socket.IO v5 server over Engine.IO v4 on Boost.Beast (PROTOCOLS.md
// sections 5.1 and 5.2), the transport of the Signal-style relay server: the
// original is python-socketio's AsyncServer on aiohttp.
//
// Transports, on one path (default /socket.io/):
//   - HTTP long-polling: GET ?EIO=4&transport=polling opens a session and
//     answers the open packet; GET with the sid waits until packets are
//     queued (the pings every ping_interval bound the wait) and answers them
//     as one payload; POST with the sid delivers a payload and is answered
//     "OK". A second GET while one waits, or an unknown sid, is answered 400
//     with a JSON string ("Invalid session <sid>"), as python-engineio does.
//   - WebSocket directly (?EIO=4&transport=websocket, no sid: the open
//     packet is the first message), or as the upgrade of a polling session
//     (with its sid): "2probe" -> "3probe", a noop is queued to release the
//     waiting GET, then "5" moves the session to the WebSocket, where every
//     packet still queued goes out (so a client that does not poll during
//     the upgrade, as python-engineio's, sees the noop there).
// The server pings ("2") every ping_interval and closes a session whose
// client has not answered ("3") within ping_timeout.
//
// Socket.IO: CONNECT to "/" is answered 40{"sid":"<socket sid>"}; any other
// namespace gets CONNECT_ERROR {"message":"Unable to connect"}. Events go to
// the handler with an Ack when the client asked for one; server-to-client
// emits may ask for an ack, with a timeout.
//
// Bounds: TCP connections, HTTP head bytes, body bytes (max_payload; a
// larger POST is answered 413 and the connection closed), packets per
// payload, WebSocket message bytes, JSON nesting, pending acks per socket
// (an emit past the bound gets nullopt at once), packets queued per session
// (past the bound the session is closed: a reader too slow). Hostile input
// never throws out of the server: an HTTP request that does not parse is
// answered 400 and its connection closed; a bad sid, version, transport or
// polling payload is answered 400 (the session, if any, carries on); a
// malformed packet on a session is logged and dropped.
//
// Threading: one io_context thread runs everything, and every handler is
// called on it. start(), stop(), emit() and disconnect() may be called from
// any thread (they post, or run at once when called on the io thread);
// connected_sids(), remote_of() and sessions() are for the io thread, or
// for any thread while it is not running; port() from any thread.
#pragma once

#include <utility>  // Boost 1.74 Asio uses std::exchange without including it

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "signal/eio.hpp"

namespace msglab::signal {

struct SioServerOptions {
    std::string host = "127.0.0.1";  // the original binds aiohttp's default 0.0.0.0
    std::uint16_t port = 8080;       // 0: any free port
    std::string path = "/socket.io/";  // also matched without its trailing '/'
    std::chrono::milliseconds ping_interval{25'000};
    std::chrono::milliseconds ping_timeout{20'000};
    std::size_t max_payload = kDefaultMaxPayload;  // an HTTP body, a WebSocket message, a packet
    // Put maxPayload in the open packet (the v4 spec does; python-engineio
    // 4.9 in the capture does not).
    bool advertise_max_payload = false;
    bool allow_polling = true;
    bool allow_websocket = true;
    std::size_t max_connections = 10'000;    // TCP connections; more are closed at once
    std::size_t max_http_head = 16 * 1024;   // request line and fields
    std::size_t max_queued_packets = 4'096;  // per session, not yet written
    std::size_t max_pending_acks = 1'024;    // per socket, server-to-client calls in flight
    std::chrono::milliseconds http_idle_timeout{30'000};  // a keep-alive connection between requests
    // One line per connection, packet-level event and disconnection, like
    // python-socketio's logger; may be empty.
    std::function<void(const std::string&)> on_log;
};

// The answer to an event that asked for one. reply() takes the ack's
// arguments: an array (several arguments, as a Python handler returning a
// tuple) or any other value as the one argument. It may be called from any
// thread, and once: later calls are ignored. When the last reference goes
// without a reply, the ack is sent empty ("43N[]"), as python-socketio
// answers a handler that returns None.
class SioAck {
public:
    ~SioAck();
    SioAck(const SioAck&) = delete;
    SioAck& operator=(const SioAck&) = delete;

    void reply(const Json& args);
    bool replied() const;
    std::uint64_t id() const { return m_id; }

    struct Sender;
    SioAck(std::shared_ptr<Sender> sender, std::string sid, std::uint64_t id);

private:
    std::shared_ptr<Sender> m_sender;
    std::string m_sid;
    std::uint64_t m_id;
    std::shared_ptr<std::atomic<bool>> m_done;
};

struct SioHandler {
    // A client connected to "/": its Socket.IO sid and its address.
    std::function<void(const std::string& sid, const std::string& remote)> on_connect;
    // An event: its name, the arguments after the name (an array), and an
    // ack when the client asked for one (null otherwise).
    std::function<void(const std::string& sid, const std::string& event, const Json& args,
                        std::shared_ptr<SioAck> ack)>
        on_event;
    // The socket is gone: "client disconnect", "server disconnect", "ping
    // timeout", "transport close", "transport error", "slow reader",
    // "server stop".
    std::function<void(const std::string& sid, const std::string& reason)> on_disconnect;
};

// The ack of a server-to-client emit: the client's argument array, or
// nullopt on timeout, disconnection, or when it could not be sent.
using SioAckCallback = std::function<void(std::optional<Json> args)>;

class SioServer {
public:
    // Binds and listens at once; throws boost::system::system_error.
    SioServer(boost::asio::io_context& io, SioServerOptions options, SioHandler handler);
    ~SioServer();
    SioServer(const SioServer&) = delete;
    SioServer& operator=(const SioServer&) = delete;

    std::uint16_t port() const;
    void start();
    // Stops accepting and closes every session (handlers see "server stop").
    void stop();

    // Sends event `event` with `args` (an array of arguments; another value
    // is the one argument) to the socket `sid`. With `on_ack` the packet asks
    // for an ack; the callback runs once on the io thread.
    void emit(const std::string& sid, const std::string& event, const Json& args, SioAckCallback on_ack = {},
              std::chrono::milliseconds timeout = std::chrono::seconds(60));
    // Sends DISCONNECT and CLOSE, then closes the session ("server disconnect").
    void disconnect(const std::string& sid);

    // Io thread only (see above).
    std::vector<std::string> connected_sids() const;    // Socket.IO sids connected to "/"
    std::optional<std::string> remote_of(const std::string& sid) const;
    std::size_t sessions() const;                       // Engine.IO sessions, connected or not
    std::size_t connections() const;                    // TCP connections

    struct Impl;

private:
    std::shared_ptr<Impl> m_impl;
};

}  // namespace msglab::signal
