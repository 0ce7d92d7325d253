// A SOCP v1.3 user client (PROTOCOLS.md section 2.8): USER_HELLO, the
// directory learnt from USER_ADVERTISE / USER_REMOVE, direct messages
// end-to-end encrypted with RSA-OAEP-SHA256 and signed with PSS
// (content_sig), the public channel under the group key its server wraps for
// it, and files. Single-threaded: every wait is bounded by a timeout, and
// frames that arrive while waiting become events for next().
//
// Choices (see reference/socp/README.md): frames are signed (the optional
// link sig), keys are sent as DER SPKI unless told otherwise, a text longer
// than one RSA block is sent as several MSG_DIRECT, and a public message
// that does not open under any group key but is base64 of UTF-8 text is
// shown as the cohort implementation's unencrypted form.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/keylog.hpp"
#include "socp/wire.hpp"

namespace msglab::csmp {
class WsClient;
}

namespace msglab::socp {

class ClientError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct ClientOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = kDefaultPort;
    std::string user;  // the user id (a UUID v4 by convention)
    std::chrono::milliseconds timeout{10'000};
    bool deflate = true;
    KeyEncoding key_encoding = KeyEncoding::der;
    Json meta = Json::object();
    std::string downloads;                     // where received files go; empty: files are refused
    std::size_t max_file = 64 * 1024 * 1024;  // bytes
    KeyLogWriter* keylog = nullptr;           // SOCP_PRIVATE_KEY is written at login
};

struct Event {
    enum class Kind { direct, public_message, file, joined, left, error, ack, other };
    Kind kind = Kind::other;
    std::string type;  // the envelope's type
    std::string from;  // the sending user (direct, public, file), the user (joined, left)
    std::string text;  // the plaintext; an error's "CODE: detail"; a file's saved path
    bool verified = false;           // content_sig (or a file's link sig) checked with the sender's key
    bool key_matches = true;         // sender_pub is the key the directory holds for the sender
    bool encrypted = true;           // false: a public message in the unencrypted form
    std::int64_t ts = 0;
};

class Client {
public:
    Client(ClientOptions options, crypto::RsaPrivateKey key, Rng& rng);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Opens the WebSocket only (probes that play a server start here).
    // Throws ClientError when the server cannot be reached.
    void open();
    // Opens the WebSocket (unless open) and sends USER_HELLO; waits for the server's ACK
    // or its USER_ADVERTISE of this user. Throws ClientError on an ERROR
    // (NAME_IN_USE, BAD_KEY, ...), a closed socket or a timeout.
    void login();
    const std::string& user() const { return m_options.user; }
    std::string public_key_text() const { return m_pub_text; }

    // Users the directory holds, sorted (this user included).
    std::vector<std::string> online() const;
    bool knows(const std::string& user) const { return m_directory.count(user) != 0; }
    // Processes frames (kept as events) until `user` is known.
    bool wait_for_user(const std::string& user, std::chrono::milliseconds timeout);
    bool wait_for_group_key(std::chrono::milliseconds timeout);
    std::optional<std::uint64_t> group_version() const;

    // /tell: one MSG_DIRECT per RSA block. Throws ClientError for a user not
    // in the directory.
    void tell(const std::string& to, std::string_view text);
    // /all: MSG_PUBLIC_CHANNEL; false when it went unencrypted (no group key).
    bool all(std::string_view text);
    // /file: FILE_START, FILE_CHUNK..., FILE_END to a user (each chunk one
    // RSA block), or to "public" (chunks under the group key). Throws
    // ClientError when the file cannot be read or the user is unknown.
    void send_file(const std::string& to, const std::string& path,
                   const std::function<void(std::uint64_t done, std::uint64_t total)>& progress = {});

    // The next event, waiting at most `timeout`.
    std::optional<Event> next(std::chrono::milliseconds timeout);

    // For probes: any envelope (signed with this user's key when `sign`),
    // any text, and the raw next message.
    void send_envelope(Envelope e, bool sign);
    void send_text(const std::string& text);
    std::optional<std::string> receive_text(std::chrono::milliseconds timeout);
    bool closed() const;
    // Why the WebSocket closed ("closed by the server (code 1009)", ...).
    std::string close_reason() const;
    void close();

private:
    struct FileIn {
        std::string from, name, sha256, mode;
        std::uint64_t size = 0;
        std::map<std::int64_t, Bytes> chunks;
        std::uint64_t received = 0;
        bool verified = true;
    };

    void pump(std::chrono::milliseconds timeout);
    void handle(const std::string& text);
    void on_file(const Envelope& e);
    void push(Event ev) { m_events.push_back(std::move(ev)); }
    std::int64_t now() const;

    ClientOptions m_options;
    crypto::RsaPrivateKey m_key;
    std::string m_pub_text;
    Rng& m_rng;
    std::unique_ptr<csmp::WsClient> m_ws;
    std::map<std::string, std::string> m_directory;  // user -> key text
    std::map<std::uint64_t, std::vector<Bytes>> m_group_keys;
    std::map<std::uint64_t, std::set<std::string>> m_group_members;  // who each version was wrapped for
    std::map<std::string, FileIn> m_files;
    std::deque<Event> m_events;
    bool m_logged_in = false;
    std::optional<std::string> m_login_error;
};

}  // namespace msglab::socp
