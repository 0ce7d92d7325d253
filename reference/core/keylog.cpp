#include "core/keylog.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace msglab {

static bool valid_label(std::string_view s) {
    if (s.empty() || s.size() > 64) return false;
    for (char c : s)
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
}

std::optional<KeyLogEntry> parse_keylog_line(std::string_view line) {
    if (line.size() > kKeyLogMaxLine) return std::nullopt;
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n' || line.back() == ' ' || line.back() == '\t'))
        line.remove_suffix(1);
    std::vector<std::string_view> parts;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
        std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
        if (i > start) parts.push_back(line.substr(start, i - start));
    }
    if (parts.size() != 3 || !valid_label(parts[0])) return std::nullopt;
    KeyLogEntry e;
    e.label = std::string(parts[0]);
    if (!unhex(parts[1], e.session_id) || !unhex(parts[2], e.secret)) return std::nullopt;
    if (e.session_id.empty() || e.secret.empty()) return std::nullopt;
    return e;
}

std::string format_keylog_line(std::string_view label, ByteView session_id, ByteView secret) {
    std::string s(label);
    s += ' ';
    s += hex(session_id);
    s += ' ';
    s += hex(secret);
    s += '\n';
    return s;
}

KeyLogWriter::KeyLogWriter(const std::string& path) : m_path(path) {
    m_file = std::fopen(path.c_str(), "a");
    if (!m_file) throw std::runtime_error("cannot open key log " + path + ": " + std::strerror(errno));
}

KeyLogWriter::~KeyLogWriter() {
    if (m_file) std::fclose(m_file);
}

std::optional<std::string> KeyLogWriter::path_from(const std::optional<std::string>& option) {
    if (option && !option->empty()) return option;
    if (const char* env = std::getenv(kKeyLogEnv); env && *env) return std::string(env);
    return std::nullopt;
}

void KeyLogWriter::write(std::string_view label, ByteView session_id, ByteView secret) {
    std::string line = format_keylog_line(label, session_id, secret);
    std::lock_guard<std::mutex> lock(m_mutex);
    std::fwrite(line.data(), 1, line.size(), m_file);
    std::fflush(m_file);
}

KeyLog KeyLog::parse(std::istream& in) {
    KeyLog log;
    std::string line;
    bool overlong = false;
    auto finish_line = [&] {
        std::string_view v(line);
        while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
        if (overlong) {
            ++log.m_junk;
        } else if (!v.empty() && v.front() != '#' && v != "\r") {
            if (auto e = parse_keylog_line(v))
                log.add(std::move(*e));
            else
                ++log.m_junk;
        }
        line.clear();
        overlong = false;
    };
    // Lines are read with a bound, so a file of junk cannot exhaust memory.
    for (std::istreambuf_iterator<char> it(in), end; it != end; ++it) {
        char c = *it;
        if (c == '\n') {
            finish_line();
        } else if (line.size() < kKeyLogMaxLine) {
            line.push_back(c);
        } else {
            overlong = true;
        }
    }
    if (!line.empty() || overlong) finish_line();
    return log;
}

KeyLog KeyLog::load(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read key log " + path + ": " + std::strerror(errno));
    return parse(in);
}

void KeyLog::add(KeyLogEntry entry) {
    auto key = std::make_pair(entry.label, entry.session_id);
    auto it = m_index.find(key);
    if (it != m_index.end()) {
        m_entries[it->second] = std::move(entry);  // the last line for a session wins
        return;
    }
    m_index.emplace(std::move(key), m_entries.size());
    m_entries.push_back(std::move(entry));
}

std::optional<Bytes> KeyLog::find(std::string_view label, ByteView session_id) const {
    auto it = m_index.find(std::make_pair(std::string(label), Bytes(session_id.begin(), session_id.end())));
    if (it == m_index.end()) return std::nullopt;
    return m_entries[it->second].secret;
}

}  // namespace msglab
