// The key log, like SSLKEYLOGFILE: one line per secret,
//   LABEL <session-id-hex> <secret-hex>
// written by endpoints when asked (--keylog FILE or MSGLAB_KEYLOGFILE) and read
// by decode, replay and the dissector.
#pragma once

#include <cstddef>
#include <cstdio>
#include <istream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/bytes.hpp"

namespace msglab {

constexpr const char* kKeyLogEnv = "MSGLAB_KEYLOGFILE";
// Lines longer than this are junk, not secrets.
constexpr std::size_t kKeyLogMaxLine = 8192;

struct KeyLogEntry {
    std::string label;
    Bytes session_id;
    Bytes secret;
};

// Parses one line; nullopt for comments, blank lines and junk.
std::optional<KeyLogEntry> parse_keylog_line(std::string_view line);
std::string format_keylog_line(std::string_view label, ByteView session_id, ByteView secret);

class KeyLogWriter {
public:
    // Appends to `path`; throws std::runtime_error when it cannot be opened.
    explicit KeyLogWriter(const std::string& path);
    ~KeyLogWriter();
    KeyLogWriter(const KeyLogWriter&) = delete;
    KeyLogWriter& operator=(const KeyLogWriter&) = delete;

    // The path from an explicit option, else from MSGLAB_KEYLOGFILE, else none.
    static std::optional<std::string> path_from(const std::optional<std::string>& option);

    // Thread-safe; each line is flushed at once so a crash loses nothing.
    void write(std::string_view label, ByteView session_id, ByteView secret);
    const std::string& path() const { return m_path; }

private:
    std::string m_path;
    std::FILE* m_file = nullptr;
    std::mutex m_mutex;
};

class KeyLog {
public:
    static KeyLog parse(std::istream& in);
    // Throws std::runtime_error when the file cannot be read.
    static KeyLog load(const std::string& path);

    void add(KeyLogEntry entry);
    std::optional<Bytes> find(std::string_view label, ByteView session_id) const;
    std::size_t size() const { return m_entries.size(); }
    std::size_t junk_lines() const { return m_junk; }
    const std::vector<KeyLogEntry>& entries() const { return m_entries; }

private:
    std::vector<KeyLogEntry> m_entries;
    std::map<std::pair<std::string, Bytes>, std::size_t> m_index;
    std::size_t m_junk = 0;
};

}  // namespace msglab
