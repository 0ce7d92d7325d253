#include "csmp/store.hpp"

#include <sqlite3.h>

#include <cstdio>
#include <ctime>

#include "core/crypto.hpp"

namespace msglab::csmp {

namespace {

constexpr std::string_view kOriginalIkm = "dev_secret_key_32_chars_long_!!!";
constexpr std::string_view kSchemeClean = "msglab-hkdf-secret-v1";
constexpr std::string_view kSchemeOriginal = "original-hardcoded";
constexpr std::string_view kCheckPlain = "msglab csmp key check";

// One prepared statement, finalized on every path.
class Statement {
public:
    Statement(sqlite3* db, const char* sql) : m_db(db) {
        if (sqlite3_prepare_v2(db, sql, -1, &m_stmt, nullptr) != SQLITE_OK)
            throw StoreError(std::string("database: ") + sqlite3_errmsg(db));
    }
    ~Statement() { sqlite3_finalize(m_stmt); }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    Statement& bind(int i, std::string_view text) {
        check(sqlite3_bind_text(m_stmt, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT));
        return *this;
    }
    Statement& bind(int i, std::int64_t v) {
        check(sqlite3_bind_int64(m_stmt, i, v));
        return *this;
    }
    // True while there is a row.
    bool step() {
        int rc = sqlite3_step(m_stmt);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        throw StoreError(std::string("database: ") + sqlite3_errmsg(m_db));
    }
    std::string text(int col) const {
        const unsigned char* p = sqlite3_column_text(m_stmt, col);
        return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(m_stmt, col)))
                 : std::string();
    }
    std::int64_t integer(int col) const { return sqlite3_column_int64(m_stmt, col); }

private:
    void check(int rc) {
        if (rc != SQLITE_OK) throw StoreError(std::string("database: ") + sqlite3_errmsg(m_db));
    }
    sqlite3* m_db;
    sqlite3_stmt* m_stmt = nullptr;
};

void exec(sqlite3* db, const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string what = err ? err : sqlite3_errmsg(db);
        sqlite3_free(err);
        throw StoreError("database: " + what);
    }
}

std::optional<std::string> meta(sqlite3* db, const char* key) {
    Statement s(db, "SELECT value FROM msglab_meta WHERE key = ?");
    s.bind(1, key);
    if (!s.step()) return std::nullopt;
    return s.text(0);
}

void set_meta(sqlite3* db, const char* key, const std::string& value) {
    Statement s(db, "INSERT OR REPLACE INTO msglab_meta(key, value) VALUES(?, ?)");
    s.bind(1, key).bind(2, value);
    s.step();
}

}  // namespace

Bytes original_key(std::string_view session_id) {
    return crypto::hkdf_sha256(as_bytes(kOriginalIkm), as_bytes(session_id), as_bytes("general"), 32);
}

Bytes history_key(ByteView secret) {
    return crypto::hkdf_sha256(secret, as_bytes("msglab csmp history"), as_bytes("chat_messages v1"), 32);
}

std::string sql_time(std::uint64_t unix_us) {
    std::time_t secs = static_cast<std::time_t>(unix_us / 1'000'000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%06u", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                  tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<unsigned>(unix_us % 1'000'000));
    return buf;
}

std::string iso_time(const std::string& t) {
    std::string out = t;
    if (out.size() > 10 && out[10] == ' ') out[10] = 'T';
    if (out.size() == 26 && out.compare(19, 7, ".000000") == 0) out.resize(19);
    return out;
}

HistoryStore::HistoryStore(StoreOptions options, Rng& rng) : m_options(std::move(options)), m_rng(rng) {
    if (!m_options.hardcoded_secret && m_options.secret.size() < 16)
        throw StoreError("the history secret must be at least 16 bytes");
    if (sqlite3_open_v2(m_options.path.c_str(), &m_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
        std::string why = m_db ? sqlite3_errmsg(m_db) : "out of memory";
        sqlite3_close(m_db);
        m_db = nullptr;
        throw StoreError("cannot open " + m_options.path + ": " + why);
    }
    try {
        sqlite3_busy_timeout(m_db, 5000);
        exec(m_db, "PRAGMA journal_mode=WAL");
        exec(m_db, "PRAGMA synchronous=NORMAL");
        exec(m_db,
             "CREATE TABLE IF NOT EXISTS chat_messages ("
             " id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,"
             " client_id VARCHAR NOT NULL,"
             " recipient_id VARCHAR,"
             " session_id VARCHAR NOT NULL,"
             " room_id VARCHAR NOT NULL,"
             " message_type VARCHAR DEFAULT 'text',"
             " ciphertext TEXT NOT NULL,"
             " nonce VARCHAR NOT NULL,"
             " status VARCHAR DEFAULT 'sent',"
             " created_at DATETIME);"
             "CREATE INDEX IF NOT EXISTS ix_chat_messages_id ON chat_messages (id);"
             "CREATE INDEX IF NOT EXISTS ix_chat_messages_client_id ON chat_messages (client_id);"
             "CREATE INDEX IF NOT EXISTS ix_chat_messages_session_id ON chat_messages (session_id);"
             "CREATE INDEX IF NOT EXISTS ix_chat_messages_room_id ON chat_messages (room_id);"
             "CREATE INDEX IF NOT EXISTS ix_room_id_created_at ON chat_messages (room_id, created_at);"
             "CREATE TABLE IF NOT EXISTS msglab_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);");
        std::string scheme(m_options.hardcoded_secret ? kSchemeOriginal : kSchemeClean);
        auto stored = meta(m_db, "key_scheme");
        if (stored && *stored != scheme)
            throw StoreError(m_options.path + " was written with key scheme '" + *stored + "', not '" + scheme + "'");
        if (!m_options.hardcoded_secret) {
            m_key = history_key(m_options.secret);
            if (auto check = meta(m_db, "key_check")) {
                Bytes blob;
                if (!unhex(*check, blob) || blob.size() < 12 ||
                    !crypto::aes_gcm_decrypt(m_key, ByteView(blob).first(12), {}, ByteView(blob).subspan(12)))
                    throw StoreError(m_options.path + " was written under another secret");
            } else {
                Bytes nonce = m_rng.bytes(12);
                Bytes blob = nonce;
                Bytes ct = crypto::aes_gcm_encrypt(m_key, nonce, {}, as_bytes(kCheckPlain));
                blob.insert(blob.end(), ct.begin(), ct.end());
                set_meta(m_db, "key_check", hex(blob));
            }
        }
        if (!stored) set_meta(m_db, "key_scheme", scheme);
    } catch (...) {
        sqlite3_close(m_db);
        m_db = nullptr;
        throw;
    }
}

HistoryStore::~HistoryStore() { sqlite3_close(m_db); }

Bytes HistoryStore::key_for(const std::string& session_id) const {
    return m_options.hardcoded_secret ? original_key(session_id) : m_key;
}

Bytes HistoryStore::aad_for(const std::string& room, const std::string& client, const std::string& created) const {
    if (m_options.hardcoded_secret) return {};
    std::string aad = room;
    aad.push_back('\0');
    aad += client;
    aad.push_back('\0');
    aad += created;
    return to_bytes(aad);
}

StoredMessage HistoryStore::append(const std::string& client_id, const std::string& session_id,
                                   const std::string& room_id, const std::string& message, std::uint64_t unix_us) {
    StoredMessage m;
    m.client_id = client_id;
    m.room_id = room_id;
    m.message = message;
    m.created_at = sql_time(unix_us);
    if (m_options.hardcoded_secret) {
        m.session_column = session_id;
    } else {
        auto digest = crypto::sha256(as_bytes(session_id));
        m.session_column = hex(ByteView(digest).first(16));
    }
    Bytes nonce = m_rng.bytes(12);
    Bytes ct = crypto::aes_gcm_encrypt(key_for(session_id), nonce, aad_for(room_id, client_id, m.created_at),
                                       as_bytes(message));
    Statement s(m_db,
                "INSERT INTO chat_messages (client_id, session_id, room_id, message_type, ciphertext, nonce, status, "
                "created_at) VALUES (?, ?, ?, 'text', ?, ?, 'sent', ?)");
    s.bind(1, client_id).bind(2, m.session_column).bind(3, room_id).bind(4, hex(ct)).bind(5, hex(nonce));
    s.bind(6, m.created_at);
    s.step();  // autocommit: durable in the WAL when this returns
    m.id = sqlite3_last_insert_rowid(m_db);
    return m;
}

std::vector<StoredMessage> HistoryStore::recent(const std::string& room_id, std::size_t limit) {
    Statement s(m_db,
                "SELECT id, client_id, session_id, room_id, ciphertext, nonce, status, created_at FROM "
                "(SELECT * FROM chat_messages WHERE room_id = ? ORDER BY created_at DESC, id DESC LIMIT ?) "
                "ORDER BY created_at ASC, id ASC");
    s.bind(1, room_id).bind(2, static_cast<std::int64_t>(limit));
    std::vector<StoredMessage> out;
    while (s.step()) {
        StoredMessage m;
        m.id = s.integer(0);
        m.client_id = s.text(1);
        m.session_column = s.text(2);
        m.room_id = s.text(3);
        m.status = s.text(6);
        m.created_at = s.text(7);
        Bytes ct, nonce;
        if (!unhex(s.text(4), ct) || !unhex(s.text(5), nonce) || nonce.size() != 12)
            throw StoreError("message " + std::to_string(m.id) + " is not stored as hex");
        // The original's key is salted with the session that wrote the row,
        // which the row itself holds in clear.
        auto pt = crypto::aes_gcm_decrypt(key_for(m.session_column), nonce, aad_for(m.room_id, m.client_id, m.created_at),
                                          ct);
        if (!pt) throw StoreError("message " + std::to_string(m.id) + " does not open under the history key");
        m.message = to_string(*pt);
        out.push_back(std::move(m));
    }
    return out;
}

std::size_t HistoryStore::count() {
    Statement s(m_db, "SELECT COUNT(*) FROM chat_messages");
    s.step();
    return static_cast<std::size_t>(s.integer(0));
}

}  // namespace msglab::csmp
