#include "signal/directory.hpp"

#include <sqlite3.h>

#include <memory>

namespace msglab::signal {

namespace {

[[noreturn]] void fail(sqlite3* db, const std::string& what) {
    throw DirectoryError(what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

void exec(sqlite3* db, const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string msg = err ? err : "unknown error";
        sqlite3_free(err);
        throw DirectoryError(std::string("key directory: ") + msg);
    }
}

struct Stmt {
    sqlite3_stmt* s = nullptr;
    Stmt(sqlite3* db, const char* sql) {
        if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) fail(db, "key directory: prepare");
    }
    ~Stmt() { sqlite3_finalize(s); }
    void text(int i, const std::string& v) {
        sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    }
    std::string column(int i) {
        auto p = sqlite3_column_text(s, i);
        return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(s, i)))
                 : std::string();
    }
};

}  // namespace

Directory::Directory(const std::string& path) : m_path(path) {
    if (sqlite3_open_v2(path.c_str(), &m_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
        std::string msg = m_db ? sqlite3_errmsg(m_db) : "out of memory";
        sqlite3_close(m_db);
        m_db = nullptr;
        throw DirectoryError("cannot open key directory " + path + ": " + msg);
    }
    try {
        sqlite3_busy_timeout(m_db, 5000);
        if (path != ":memory:") exec(m_db, "PRAGMA journal_mode=WAL");
        exec(m_db, "PRAGMA synchronous=NORMAL");
        exec(m_db,
             "CREATE TABLE IF NOT EXISTS user_keys (username TEXT PRIMARY KEY NOT NULL, ik TEXT NOT NULL, "
             "sik TEXT NOT NULL, spk TEXT NOT NULL, spk_sign TEXT NOT NULL)");
        // A file of another shape is refused here rather than at the first
        // registration.
        Stmt check(m_db, "SELECT username, ik, sik, spk, spk_sign FROM user_keys LIMIT 0");
    } catch (const DirectoryError& e) {
        sqlite3_close(m_db);
        m_db = nullptr;
        throw DirectoryError(std::string(e.what()) + " (file " + path + ")");
    }
}

Directory::~Directory() { sqlite3_close(m_db); }

std::optional<KeyRecord> Directory::find(const std::string& username) {
    Stmt q(m_db, "SELECT ik, sik, spk, spk_sign FROM user_keys WHERE username = ?1");
    q.text(1, username);
    int rc = sqlite3_step(q.s);
    if (rc == SQLITE_DONE) return std::nullopt;
    if (rc != SQLITE_ROW) fail(m_db, "key directory: lookup");
    return KeyRecord{username, q.column(0), q.column(1), q.column(2), q.column(3)};
}

void Directory::put(const KeyRecord& r) {
    Stmt q(m_db,
           "INSERT INTO user_keys (username, ik, sik, spk, spk_sign) VALUES (?1, ?2, ?3, ?4, ?5) "
           "ON CONFLICT(username) DO UPDATE SET ik = excluded.ik, sik = excluded.sik, spk = excluded.spk, "
           "spk_sign = excluded.spk_sign");
    q.text(1, r.username);
    q.text(2, r.ik);
    q.text(3, r.sik);
    q.text(4, r.spk);
    q.text(5, r.spk_sign);
    if (sqlite3_step(q.s) != SQLITE_DONE) fail(m_db, "key directory: write");
}

std::size_t Directory::size() {
    Stmt q(m_db, "SELECT COUNT(*) FROM user_keys");
    if (sqlite3_step(q.s) != SQLITE_ROW) fail(m_db, "key directory: count");
    return static_cast<std::size_t>(sqlite3_column_int64(q.s, 0));
}

std::vector<std::string> Directory::usernames() {
    Stmt q(m_db, "SELECT username FROM user_keys ORDER BY username");
    std::vector<std::string> out;
    int rc;
    while ((rc = sqlite3_step(q.s)) == SQLITE_ROW) out.push_back(q.column(0));
    if (rc != SQLITE_DONE) fail(m_db, "key directory: list");
    return out;
}

}  // namespace msglab::signal
