// CSMP's chat history (PROTOCOLS.md section 1.7): a SQLite file with the
// original's `chat_messages` table, each message AES-256-GCM encrypted.
//
// Clean: one key, HKDF-SHA256(IKM = the configured secret, salt
// "msglab csmp history", info "chat_messages v1"), a random 12-byte nonce per
// row and the row's room, sender and time as associated data, so a row moved
// to another room or sender no longer opens. The session id column holds the
// first 16 bytes of SHA-256(session id) in hex, never the bearer value.
//
// Plant csmp.hardcoded-secret, as the original: the key is
// HKDF-SHA256(IKM = "dev_secret_key_32_chars_long_!!!", salt = session id,
// info = "general") with no associated data, and the session id is stored in
// clear beside the ciphertext, so anyone with the file reads every message.
//
// The database runs in WAL mode; append() returns once its transaction has
// committed, so a message acknowledged to a client survives the server
// process being killed. (synchronous=NORMAL: a power cut may lose the last
// transactions, a killed process does not.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "core/clock.hpp"

struct sqlite3;

namespace msglab::csmp {

class StoreError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct StoredMessage {
    std::int64_t id = 0;
    std::string client_id;
    std::string session_column;  // what the row's session_id column holds
    std::string room_id;
    std::string message;
    std::string status = "sent";
    std::string created_at;  // "YYYY-MM-DD HH:MM:SS.ffffff", UTC, as SQLAlchemy writes it
};

struct StoreOptions {
    std::string path;
    Bytes secret;                   // clean key source; at least 16 bytes
    bool hardcoded_secret = false;  // plant csmp.hardcoded-secret
};

// The original's at-rest key for one session (section 1.7's test vector).
Bytes original_key(std::string_view session_id);
// The clean key from a configured secret.
Bytes history_key(ByteView secret);
// "YYYY-MM-DD HH:MM:SS.ffffff" for a Unix time in microseconds.
std::string sql_time(std::uint64_t unix_us);
// Python's datetime.isoformat() of the same time: 'T', and the fraction
// left out when it is zero.
std::string iso_time(const std::string& sql_time_text);

class HistoryStore {
public:
    // Creates the file and table when missing. Throws StoreError with the
    // reason (unreadable file, not a database, written with another key
    // scheme or another secret).
    HistoryStore(StoreOptions options, Rng& rng);
    ~HistoryStore();
    HistoryStore(const HistoryStore&) = delete;
    HistoryStore& operator=(const HistoryStore&) = delete;

    // Encrypts and commits one message; returns its row. Throws StoreError.
    StoredMessage append(const std::string& client_id, const std::string& session_id, const std::string& room_id,
                         const std::string& message, std::uint64_t unix_us);
    // The newest `limit` messages of a room, oldest first. A row that does
    // not open is an error (StoreError), never skipped in silence.
    std::vector<StoredMessage> recent(const std::string& room_id, std::size_t limit);
    std::size_t count();
    const std::string& path() const { return m_options.path; }

private:
    Bytes key_for(const std::string& session_id) const;
    Bytes aad_for(const std::string& room, const std::string& client, const std::string& created) const;

    StoreOptions m_options;
    Rng& m_rng;
    Bytes m_key;  // clean mode
    sqlite3* m_db = nullptr;
};

}  // namespace msglab::csmp
