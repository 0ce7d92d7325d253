// Shared helpers for msglab's Catch2 tests.
#pragma once

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "core/bytes.hpp"

namespace msglab::test {

namespace fs = std::filesystem;

// Marks the running test case as skipped: ctest matches this text
// (SKIP_REGULAR_EXPRESSION) and reports the test as skipped, never passed.
#define MSGLAB_SKIP(reason)                                               \
    do {                                                                  \
        std::cout << "MSGLAB-SKIPPED: " << (reason) << std::endl;         \
        return;                                                           \
    } while (0)

// ../shared/vectors beside the project, or $MSGLAB_VECTORS_DIR.
inline std::optional<fs::path> vectors_dir() {
    fs::path p;
    if (const char* env = std::getenv("MSGLAB_VECTORS_DIR"); env && *env)
        p = env;
    else
        p = MSGLAB_DEFAULT_VECTORS_DIR;
    if (!fs::is_directory(p)) return std::nullopt;
    return p;
}

// ../shared/captures beside the project, or $MSGLAB_CAPTURES_DIR.
inline std::optional<fs::path> captures_dir() {
    fs::path p;
    if (const char* env = std::getenv("MSGLAB_CAPTURES_DIR"); env && *env)
        p = env;
    else
        p = MSGLAB_DEFAULT_CAPTURES_DIR;
    if (!fs::is_directory(p)) return std::nullopt;
    return p;
}

inline nlohmann::json load_json(const fs::path& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    return nlohmann::json::parse(in);
}

inline Bytes hex_field(const nlohmann::json& j, const char* key) { return unhex(j.at(key).get<std::string>()); }

// A fresh empty folder under the system temp dir, removed at scope exit.
class TempDir {
public:
    TempDir() {
        std::random_device rd;
        m_path = fs::temp_directory_path() / ("msglab-test-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(m_path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(m_path, ec);
    }
    const fs::path& path() const { return m_path; }
    fs::path operator/(const std::string& name) const { return m_path / name; }

private:
    fs::path m_path;
};

struct CommandResult {
    int exit_code = -1;
    std::string output;  // standard output only
};

// A single-quoted shell word, whatever `s` holds.
inline std::string shell_quote(std::string_view s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    return out + "'";
}

// Runs a shell command and captures its standard output.
inline CommandResult run_command(const std::string& command) {
    CommandResult r;
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) return r;
    char buf[4096];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
    int status = pclose(pipe);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

inline std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_file(const fs::path& p, const std::string& data) {
    std::ofstream out(p, std::ios::binary);
    out << data;
}

// The independent implementation: Debian's python3-cryptography is only
// visible to /usr/bin/python3.
constexpr const char* kSystemPython = "/usr/bin/python3";

}  // namespace msglab::test
