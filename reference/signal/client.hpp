// The Signal-style chat client (`msglab connect signal`): Chat's sessions
// (chat.hpp) over the Socket.IO client (sio_client.hpp), and the echo bot
// that `msglab serve signal --bot NAME` and `msglab connect signal --echo`
// run, which the scenarios talk to when they check a client's behaviour.
//
// Threading: the Socket.IO client's io thread answers incoming
// x3dh_message and ratchet_msg events (acks as chat.hpp decides) and queues
// what they brought; one caller thread calls the rest. Chat is guarded by a
// mutex shared by both.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "core/keylog.hpp"
#include "signal/app.hpp"
#include "signal/chat.hpp"
#include "signal/sio_client.hpp"

namespace msglab::signal {

class ClientError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct ClientOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = kDefaultPort;
    std::string user;
    SioTransports transports = SioTransports::polling_then_websocket;
    std::chrono::milliseconds timeout{10'000};  // connecting, and each call's ack
    ChatOptions chat;
    std::optional<std::string> keylog_path;  // SIGNAL_X3DH_SK and SIGNAL_MESSAGE_KEY lines
};

// What reached the client.
struct ChatEvent {
    enum class Kind {
        session,       // a partner opened an X3DH session with us
        message,       // a decrypted message
        refused,       // an x3dh_message or ratchet_msg that did not verify
        event,         // any other server event (pingi, ...): `text` is its JSON arguments
        disconnected,  // the connection ended: `detail` says why
    };
    Kind kind = Kind::event;
    std::string from;
    std::string text;
    std::string detail;
    std::string name;  // the Socket.IO event's name
};

// 43N's answer to a send.
enum class Delivery {
    delivered,  // the recipient acked true
    refused,    // an ack that is not truthy (offline, refused, failed)
    queued,     // waiting for the partner's first message (chat.hpp)
};

class ChatClient {
public:
    ChatClient(ClientOptions options, Identity identity, Rng& rng);
    ~ChatClient();
    ChatClient(const ChatClient&) = delete;
    ChatClient& operator=(const ChatClient&) = delete;

    // Connects and registers the username. Throws ClientError (unreachable,
    // or the server refused the registration: its ack is not true).
    void connect();
    void close();
    bool connected() const;

    std::vector<std::string> users();
    // request_prekey, X3DH and (once acked) the opening message. Throws
    // ClientError with the reason (no bundle, a bad signature, refused).
    void start(const std::string& peer);
    // Throws ClientError when there is no session with `peer`.
    Delivery send(const std::string& peer, const std::string& text);
    // The next thing that reached the client, waiting up to `timeout`.
    std::optional<ChatEvent> next(std::chrono::milliseconds timeout);

    bool has_session(const std::string& peer);
    const std::string& user() const { return m_options.user; }
    SioClient& sio() { return m_sio; }
    // Runs `f` on the Chat under its lock (tests, probes).
    template <class F>
    auto with_chat(F f) {
        std::lock_guard<std::mutex> lock(m_mutex);
        return f(m_chat);
    }

private:
    Json call(const std::string& event, const Json& args);
    void push(ChatEvent e);

    ClientOptions m_options;
    Chat m_chat;
    SioClient m_sio;
    std::unique_ptr<KeyLogWriter> m_keylog;
    std::mutex m_mutex;  // m_chat
    std::mutex m_queue_mutex;
    std::condition_variable m_queue_cv;
    std::deque<ChatEvent> m_queue;
    static constexpr std::size_t kMaxQueue = 10'000;
};

// Truthiness of an ack's first argument, as Python's.
bool ack_true(const Json& ack_args);

// The echo bot: greets every user that comes online by opening a session
// and saying hello, and answers every message with "echo: " and the text.
// Runs on its own thread until stop() or destruction.
struct BotOptions {
    ClientOptions client;
    std::chrono::milliseconds poll{500};  // how often it asks for the online users
    // A user is greeted once it has been online this long without opening a
    // session itself (so the two sides do not open sessions at once).
    std::chrono::milliseconds greet_after{1'000};
    std::function<void(const std::string&)> on_log;
};

class Bot {
public:
    Bot(BotOptions options, Identity identity, Rng& rng);
    ~Bot();
    // Connects and registers (throws ClientError), then starts its thread.
    void start();
    void stop();
    std::size_t echoed() const { return m_echoed.load(); }

private:
    void run();
    void log(const std::string& line);

    BotOptions m_options;
    ChatClient m_client;
    std::set<std::string> m_greeted;
    std::map<std::string, std::chrono::steady_clock::time_point> m_seen;
    std::atomic<bool> m_stop{false};
    std::atomic<std::size_t> m_echoed{0};
    std::thread m_thread;
};

}  // namespace msglab::signal
