// tshark with the plugin just built, for the dissector tests: running it
// (also as root), reading `-T fields` output, and files it can read.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include <pcap/pcap.h>

#include <map>
#include <memory>

#include "replay/pcap_io.hpp"
#include "replay/synth.hpp"
#include "support.hpp"

namespace msglab::test {

using Frames = std::vector<std::uint64_t>;
using Row = std::vector<std::string>;

inline std::uint64_t now_seconds() { return static_cast<std::uint64_t>(std::time(nullptr)); }

inline std::vector<std::string> split(std::string_view s, char sep) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (;;) {
        std::size_t at = s.find(sep, start);
        if (at == std::string_view::npos) {
            out.emplace_back(s.substr(start));
            return out;
        }
        out.emplace_back(s.substr(start, at - start));
        start = at + 1;
    }
}

// tshark reads captures and key logs as another user when run as root (in a
// user namespace): folders must be traversable and files readable by all.
inline void make_world_readable(const fs::path& p) {
    using P = fs::perms;
    if (fs::is_directory(p))
        fs::permissions(p, P::owner_all | P::group_read | P::group_exec | P::others_read | P::others_exec);
    else
        fs::permissions(p, P::owner_read | P::owner_write | P::group_read | P::others_read);
}

// A TempDir tshark can read from whatever user it runs as.
struct ReadableTempDir : TempDir {
    ReadableTempDir() { make_world_readable(path()); }
};

inline bool have_tshark() {
    return run_command("command -v tshark >/dev/null 2>&1 && echo found").output == "found\n";
}

// Skips the test case when tshark is missing.
#define REQUIRE_TSHARK()                                                                   \
    do {                                                                                   \
        if (!msglab::test::have_tshark()) MSGLAB_SKIP("tshark is not installed: run `make deps` first"); \
    } while (0)

struct TsharkResult {
    int exit_code = -1;
    std::vector<std::string> lines;  // standard output, one entry per line
    std::string errors;              // standard error, for failure messages only
};

// Runs tshark with the plugin from `plugin_dir`. As root, tshark ignores
// WIRESHARK_PLUGIN_DIR, so it runs in a user namespace (unshare -U) where it
// is not root. MSGLAB_KEYLOGFILE is cleared so only -o gives a key log, and
// HOME is an empty folder so no personal preference or plugin takes part.
inline TsharkResult run_tshark(const std::vector<std::string>& args, const fs::path& plugin_dir = MSGLAB_PLUGIN_DIR) {
    TempDir scratch;
    make_world_readable(scratch.path());
    const fs::path err = scratch / "stderr";
    std::string cmd = "env -u MSGLAB_KEYLOGFILE -u XDG_CONFIG_HOME HOME=" + shell_quote(scratch.path().string()) +
                      " WIRESHARK_PLUGIN_DIR=" + shell_quote(plugin_dir.string());
    if (geteuid() == 0) cmd += " unshare -U";
    cmd += " tshark";
    for (const auto& a : args) cmd += " " + shell_quote(a);
    cmd += " </dev/null 2>" + shell_quote(err.string());
    CommandResult r = run_command(cmd);
    TsharkResult t;
    t.exit_code = r.exit_code;
    t.errors = read_file(err);
    if (!r.output.empty()) {
        t.lines = split(r.output, '\n');
        if (t.lines.back().empty()) t.lines.pop_back();
    }
    return t;
}

// Two-pass dissection of `pcap`: the given fields of every frame, or of the
// frames the display filter `filter` selects; one row per frame, one column
// per field (empty when the frame has none; several occurrences joined by ',').
inline std::vector<Row> fields(const fs::path& pcap, const std::vector<std::string>& names,
                               const std::vector<std::string>& extra = {}, const std::string& filter = "") {
    std::vector<std::string> args = {"-r", pcap.string(), "-2", "-T", "fields"};
    if (!filter.empty()) args.insert(args.end(), {"-Y", filter});
    for (const auto& n : names) args.insert(args.end(), {"-e", n});
    args.insert(args.end(), extra.begin(), extra.end());
    TsharkResult r = run_tshark(args);
    INFO("filter '" << filter << "', tshark stderr: " << r.errors);
    REQUIRE(r.exit_code == 0);
    std::vector<Row> rows;
    for (const auto& l : r.lines) {
        rows.push_back(split(l, '\t'));
        REQUIRE(rows.back().size() == names.size());
    }
    return rows;
}

// The frames that match the display filter `filter` (an expert abbrev, say).
inline Frames frames_where(const fs::path& pcap, const std::string& filter,
                           const std::vector<std::string>& extra = {}) {
    Frames out;
    for (const auto& row : fields(pcap, {"frame.number"}, extra, filter)) out.push_back(std::stoull(row[0]));
    return out;
}

// The rows of the frames `filter` matches, keyed by frame number.
inline std::map<std::uint64_t, Row> rows_by_frame(const fs::path& pcap, const std::vector<std::string>& names,
                                                  const std::vector<std::string>& extra, const std::string& filter) {
    std::vector<std::string> with_frame = {"frame.number"};
    with_frame.insert(with_frame.end(), names.begin(), names.end());
    std::map<std::uint64_t, Row> out;
    for (auto& row : fields(pcap, with_frame, extra, filter)) {
        std::uint64_t frame = std::stoull(row[0]);
        row.erase(row.begin());
        out[frame] = row;
    }
    return out;
}

// Each of the expert infos `names`, from one tshark run: name -> the frames
// that carry it.
inline std::map<std::string, Frames> experts_by_name(const fs::path& pcap, const std::vector<std::string>& experts,
                                                     const std::vector<std::string>& extra) {
    std::vector<std::string> names = {"frame.number"};
    names.insert(names.end(), experts.begin(), experts.end());
    std::map<std::string, Frames> out;
    for (const auto& row : fields(pcap, names, extra)) {
        for (std::size_t i = 1; i < row.size(); ++i)
            if (!row[i].empty()) out[names[i]].push_back(std::stoull(row[0]));
    }
    return out;
}

constexpr std::uint32_t kSynthClientIp = 0x0a000001;  // 10.0.0.1
constexpr std::uint32_t kSynthServerIp = 0x0a000002;  // 10.0.0.2

// A pcap of TCP connections between 10.0.0.1 and 10.0.0.2, one frame per
// segment, each 1 ms after the last.
class SynthCapture {
public:
    SynthCapture(const fs::path& path, std::uint64_t start_sec)
        : m_path(path), m_writer(path.string(), DLT_EN10MB), m_sec(start_sec) {}

    // The three-way handshake of a new connection; returns its index.
    std::size_t connect(std::uint16_t client_port, std::uint16_t server_port) {
        m_conns.push_back(std::make_unique<replay::SynthTcp>(kSynthClientIp, client_port, kSynthServerIp, server_port));
        replay::SynthTcp& tcp = *m_conns.back();
        put(tcp.handshake_syn());
        put(tcp.handshake_syn_ack());
        put(tcp.handshake_ack());
        return m_conns.size() - 1;
    }

    // One segment; returns its frame number.
    std::uint64_t send(std::size_t conn, bool to_server, ByteView data) {
        return put(m_conns.at(conn)->data(to_server, data));
    }
    std::uint64_t send(std::size_t conn, bool to_server, std::string_view text) {
        return send(conn, to_server, as_bytes(text));
    }

    // `data` in segments of the given sizes; returns their frame numbers.
    Frames send_split(std::size_t conn, bool to_server, ByteView data, const std::vector<std::size_t>& sizes) {
        Frames out;
        std::size_t at = 0;
        for (std::size_t n : sizes) {
            out.push_back(send(conn, to_server, data.subspan(at, n)));
            at += n;
        }
        REQUIRE(at == data.size());
        return out;
    }

    void close(std::size_t conn) {
        put(m_conns.at(conn)->fin(true));
        put(m_conns.at(conn)->fin(false));
    }

    void finish() {
        m_writer.flush();
        make_world_readable(m_path);
    }

    const fs::path& path() const { return m_path; }

private:
    std::uint64_t put(const replay::SynthFrame& f) {
        m_usec += 1000;
        if (m_usec >= 1000000) {
            m_usec -= 1000000;
            ++m_sec;
        }
        m_writer.write(f.frame, m_sec, m_usec);
        return m_writer.frames();
    }

    fs::path m_path;
    replay::PcapWriter m_writer;
    std::vector<std::unique_ptr<replay::SynthTcp>> m_conns;
    std::uint64_t m_sec;
    std::uint32_t m_usec = 0;
};

}  // namespace msglab::test
