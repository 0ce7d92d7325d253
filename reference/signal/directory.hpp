// The Signal-style server's key directory (PROTOCOLS.md section 5.3): one
// record per username with the identity key, the signing key, the signed
// prekey and its signature, all as the standard base64 text the clients send.
//
// The original keeps them in a TinyDB JSON file that it empties at every
// start. msglab keeps them in a SQLite file (WAL mode) that survives a
// restart: put() returns once its transaction has committed. ":memory:" is
// an in-memory directory for tests and fuzzing.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

struct sqlite3;

namespace msglab::signal {

class DirectoryError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct KeyRecord {
    std::string username;
    std::string ik;        // b64(32)
    std::string sik;       // b64(32)
    std::string spk;       // b64(32)
    std::string spk_sign;  // b64(64)
    bool operator==(const KeyRecord& o) const {
        return username == o.username && ik == o.ik && sik == o.sik && spk == o.spk && spk_sign == o.spk_sign;
    }
};

class Directory {
public:
    // Opens or creates the file and its table. Throws DirectoryError with the
    // reason (unreadable, not a database, a table of another shape).
    explicit Directory(const std::string& path);
    ~Directory();
    Directory(const Directory&) = delete;
    Directory& operator=(const Directory&) = delete;

    std::optional<KeyRecord> find(const std::string& username);
    // Inserts or replaces the record of r.username. Throws DirectoryError.
    void put(const KeyRecord& r);
    std::size_t size();
    std::vector<std::string> usernames();
    const std::string& path() const { return m_path; }

private:
    std::string m_path;
    sqlite3* m_db = nullptr;
};

}  // namespace msglab::signal
