#include "cli/fuzz_campaign.hpp"
#include "report/text.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <regex>
#include <stdexcept>

namespace msglab::cli::fuzz {

namespace fs = std::filesystem;

const std::vector<TargetInfo>& targets() {
    static const std::vector<TargetInfo> list = {
        {"secmsg_codec", "secmsg", false, "SecMsg packet parser and serializer: framing, typed errors, round trips",
         10000},
        {"secmsg_session", "secmsg", true,
         "SecMsg sessions of both roles through a handshake and any sequence of sends, replays, reflections, "
         "tampering, clock jumps and injected handshakes (plants with --plant)",
         1000},
        // Whole units through Botan's X.509 key loader and Fernet (base64,
        // HMAC, AES) on every run, and two stream codecs for sealed inputs:
        // held to the stateful figure (about 2,700/s measured).
        {"slmp_codec", "slmp", false,
         "SLMP key and token framing, PEM key and request parsers with round trips, and the stream codec over "
         "both directions",
         1000},
        // A run that talks to the client makes its P-256 key and an ECDH
        // (Botan under ASan's allocator, about 1 ms): about 800/s measured,
        // held to 400.
        {"slmp_session", "slmp", true,
         "SLMP server and client sessions through keys, tokens sealed under the live session key, raw bytes, "
         "segmented units, quiet gaps, ends of input and clock jumps (plants with --plant)",
         400},
        {"csmp_http", "csmp", false,
         "CSMP's HTTP/1.1 framing (Content-Length, chunked, close-delimited) with every bound, and the "
         "incremental framer against the one-shot one",
         1000},
        {"csmp_ws", "csmp", false,
         "CSMP's WebSocket frames, reassembly and permessage-deflate (with and without context takeover), "
         "extension headers, and the stream codec after an upgrade",
         1000},
        // Each run makes an in-memory SQLite history and may store messages
        // under AES-GCM: held to the stateful figure.
        {"csmp_calls", "csmp", true,
         "CSMP's server logic: sessions, rooms, call sockets and the call state machine through any sequence of "
         "handshakes, upgrades, call events, raw frames, closes and timers (plants with --plant)",
         400},
        // nlohmann's JSON, instrumented, parsed and written back several
        // times per frame (libFuzzer's per-feature bookkeeping takes a third
        // of a run), and one run in four seals and opens a chunk: about 430/s
        // measured in `msglab fuzz` on two cores, held to 200.
        {"spchat_frame", "spchat", false,
         "SP-SimpleChat's BE32 framing in pieces against a one-shot cut, the message parser with round trips "
         "through both writers, and the stream codec on both directions (file chunks opened)",
         200},
        // Chunks sealed under the real keys, every file written, renamed and
        // read back in a temporary folder, the folder walked after every op:
        // about 155/s measured, held to 75.
        {"spchat_files", "spchat", true,
         "SP-SimpleChat's file receiver: FILE_START, FILE_CHUNK and FILE_END sequences (hostile names, ids, sizes, "
         "tampered or out-of-order chunks, manual accept), safe_name, base64 and the chunk cipher",
         75},
        // Up to 64 events per run, every frame App sends parsed again for the
        // invariants: about 310/s measured (csmp_calls: 350 alongside), held
        // to 150.
        {"spchat_app", "spchat", true,
         "SP-SimpleChat's server logic: connections, nicks, rooms with passwords and member lists, chat and file "
         "relay, raw and oversized frames, every combination of the plants (hunted with --plant)",
         150},
        // Envelopes of several KB parsed, written and re-parsed through
        // instrumented JSON; the stream codec inflates, decodes the RSA-4096
        // keys a message carries and checks its PSS signatures, twice per
        // run in pieces mode: 600 to 800/s measured, held to 250.
        {"socp_envelope", "socp", false,
         "SOCP's envelope parser with encode round trips, canonical forms and message ids, and the stream codec "
         "(HTTP upgrade, WebSocket frames, permessage-deflate, envelopes, keys and signatures) on bytes cut anywhere",
         250},
        // Most runs stop at base64 or JSON; those that reach an RSA
        // operation pay for it (OAEP under a 1024-bit key, PSS verification
        // under RSA-4096): 13,000 to 15,000/s measured, held to 5,000.
        {"socp_payload", "socp", false,
         "SOCP's payload cryptography: key decoding both encodings, base64url, transport and content signatures "
         "under a fixed key, RSA-OAEP and group-key ciphertexts, and the UTF-8 splitter",
         5000},
        // Up to 48 events per run against one server with RSA-1024 keys: every
        // frame App originates is signed, and each one it sends is parsed
        // and (when its own) verified again for the invariants: 43/s
        // measured (with ASan and UBSan), held to 20. Each plant is found
        // within seconds when hunted.
        {"socp_app", "socp", true,
         "SOCP's server logic: users, rogue servers and the introducer's link through logins, direct and public "
         "messages, announcements, signed, unsigned and forged gossip and deliveries, replays, raw text, dials and "
         "time, every combination of the plants (hunted with --plant)",
         20},
        // Most runs stop in JSON or base64; a message offered to a ratchet
        // pays for HKDF, HMAC, state copies and, when its dh is new, two DH
        // ratchet steps: about 8,000/s measured (ASan and UBSan, two shared
        // cores), held to 3,000.
        {"signal_ratchet", "signal", false,
         "Signal-style chat's event payloads (register_user, bundle, x3dh_message, ratchet_msg) with round trips "
         "in the original key order, pn/n counters, 32-byte PKCS#7, arbitrary messages to both ratchets and to "
         "X3DH, and the ratchet state format",
         3000},
        // Up to 64 ops per run, each delivery a state copy and compare, each
        // new chain two X25519 and a key: about 650/s measured, held to 300.
        // Each plant is found within seconds when hunted.
        {"signal_session", "signal", true,
         "Signal-style chat's Double Ratchets of both sides through sends, deliveries in any order, drops, "
         "forgeries, tampering, replays and state save/restore (plants with --plant)",
         300},
        // Text parsers and nlohmann's JSON (instrumented), each input parsed,
        // written and parsed again, twice under two depth bounds: about
        // 8,200/s measured (ASan and UBSan, 60 s, two shared cores), held
        // to 3,000.
        {"signal_eio", "signal", false,
         "Signal-style chat's transport: Engine.IO packets, polling payloads with the 0x1e separator and "
         "take_payload, Socket.IO packets (namespaces, ack ids, JSON under a depth bound) and the open packet, "
         "with round trips",
         3000},
        {"fernet", "core", false, "Fernet token parser and verification, and encrypt/decrypt round trips", 10000},
        {"keylog", "core", false, "key log line parser", 10000},
        {"pcap", "core", false, "pcap reader, TCP reassembly and message extraction", 10000},
        // A whole YAML document per run (yaml-cpp allocates per node), parsed
        // twice when accepted: a document parser, held to the stateful figure.
        {"scenario", "core", false, "scenario YAML checker, and round trips of the canonical form", 1000},
    };
    return list;
}

const TargetInfo* find_target(std::string_view name) {
    for (const auto& t : targets())
        if (t.name == name) return &t;
    return nullptr;
}

namespace {

// The unsigned number right after `key` in `line`, if any.
std::optional<std::uint64_t> number_after(std::string_view line, std::string_view key) {
    auto at = line.find(key);
    if (at == std::string_view::npos) return std::nullopt;
    std::size_t i = at + key.size();
    while (i < line.size() && line[i] == ' ') ++i;
    std::uint64_t v = 0;
    std::size_t digits = 0;
    while (i < line.size() && line[i] >= '0' && line[i] <= '9' && digits < 19) {
        v = v * 10 + static_cast<std::uint64_t>(line[i] - '0');
        ++i, ++digits;
    }
    if (digits == 0) return std::nullopt;
    return v;
}

}  // namespace

bool parse_status_line(std::string_view line, Status& status) {
    if (line.size() < 2 || line[0] != '#' || line[1] < '0' || line[1] > '9') return false;
    auto execs = number_after(line, "#");
    auto cov = number_after(line, " cov:");
    auto corp = number_after(line, " corp:");
    if (!execs || !cov || !corp) return false;
    Status s = status;
    s.executions = *execs;
    s.coverage = *cov;
    s.corpus = *corp;
    if (auto ft = number_after(line, " ft:")) s.features = *ft;
    // "exec/s: N" in plain mode, "exec/s N" in fork mode.
    if (auto e = number_after(line, " exec/s:")) s.exec_per_sec = *e;
    else if (auto e2 = number_after(line, " exec/s")) s.exec_per_sec = *e2;
    if (auto at = line.find("oom/timeout/crash:"); at != std::string_view::npos) {
        std::string_view rest = line.substr(at + 18);
        unsigned long long o = 0, t = 0, c = 0;
        std::string tmp(rest.substr(0, std::min<std::size_t>(rest.size(), 64)));
        if (std::sscanf(tmp.c_str(), " %llu/%llu/%llu", &o, &t, &c) == 3) {
            s.ooms = o, s.timeouts = t, s.crashes = c;
        }
    }
    status = s;
    return true;
}

namespace {

std::string clean_function(std::string f) {
    static const std::string anon = "(anonymous namespace)";
    for (std::size_t at; (at = f.find(anon)) != std::string::npos;) f.replace(at, anon.size(), "{anon}");
    if (auto paren = f.find('('); paren != std::string::npos) f.resize(paren);
    for (std::size_t at; (at = f.find("{anon}")) != std::string::npos;) f.replace(at, 6, "(anonymous namespace)");
    return f;
}

bool runtime_frame(const std::string& fn) {
    static const char* const prefixes[] = {"__asan", "__sanitizer", "__interceptor", "__ubsan", "__lsan", "fuzzer::",
                                           "__libc", "__GI", "abort", "raise", "_start", "std::", "__gnu_cxx::",
                                           "operator new", "operator delete", "malloc", "free", "calloc", "realloc",
                                           "__memcpy", "__memmove", "memcpy", "memmove", "memset", "__cxa", "main"};
    for (const char* p : prefixes)
        if (fn.rfind(p, 0) == 0) return true;
    return false;
}

std::string kind_from(std::string text) {
    // "heap-buffer-overflow on address ..." -> "heap-buffer-overflow"
    for (const char* stop : {" on ", " after ", " (", ":"}) {
        auto at = text.find(stop);
        if (at != std::string::npos) text.resize(at);
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    std::replace(text.begin(), text.end(), ' ', '-');
    return text;
}

}  // namespace

std::string CrashReport::signature() const {
    std::string s = kind;
    for (std::size_t i = 0; i < frames.size() && i < 3; ++i) s += " | " + frames[i];
    return s;
}

CrashReport parse_crash_report(std::string_view log) {
    CrashReport r;
    static const std::regex frame_re(R"(^\s*#(\d+) 0x[0-9a-fA-F]+ in (.+?)(?: (\S+?):(\d+)(?::\d+)?| \(.*\))?\s*$)");
    bool in_stack = false, stack_done = false;
    std::size_t pos = 0;
    while (pos < log.size()) {
        std::size_t nl = log.find('\n', pos);
        if (nl == std::string_view::npos) nl = log.size();
        std::string line(log.substr(pos, nl - pos));
        pos = nl + 1;
        if (r.kind.empty()) {
            if (auto at = line.find("ERROR: AddressSanitizer: "); at != std::string::npos) {
                r.kind = kind_from(line.substr(at + 25));
                r.summary = line.substr(at + 7);
            } else if ((at = line.find("ERROR: LeakSanitizer: ")) != std::string::npos) {
                r.kind = "memory-leak";
                r.summary = line.substr(at + 7);
            } else if ((at = line.find("ERROR: libFuzzer: ")) != std::string::npos) {
                r.kind = kind_from(line.substr(at + 18));
                r.summary = line.substr(at + 7);
            } else if ((at = line.find("fuzz invariant failed: ")) != std::string::npos) {
                r.kind = "invariant-failed";
                r.summary = line.substr(at);
            } else if ((at = line.find(": runtime error: ")) != std::string::npos) {
                r.kind = "undefined-behavior";
                r.summary = line;
            }
            continue;
        }
        // ASan's access line: "WRITE of size 1 at 0x... thread T0".
        if (!in_stack && (line.rfind("READ of size ", 0) == 0 || line.rfind("WRITE of size ", 0) == 0)) {
            auto at = line.find(" at ");
            r.summary += "; " + line.substr(0, at);
        }
        if (stack_done) continue;
        std::smatch m;
        if (std::regex_match(line, m, frame_re)) {
            in_stack = true;
            std::string fn = clean_function(m[2].str());
            if (runtime_frame(fn)) continue;
            std::string where = fn;
            if (m[3].matched) where += " " + fs::path(m[3].str()).filename().string() + ":" + m[4].str();
            r.frames.push_back(where);
        } else if (in_stack) {
            stack_done = true;  // the first stack is the crash's; later ones are allocation sites
        }
    }
    // The invariant check names its own place when the stack is unhelpful.
    if (r.kind == "invariant-failed" && r.frames.empty()) r.frames.push_back(r.summary);
    return r;
}

std::vector<std::string> list_artifacts(const std::string& dir) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        if (!e.is_regular_file()) continue;
        std::string name = e.path().filename().string();
        for (const char* p : {"crash-", "leak-", "timeout-", "oom-"})
            if (name.rfind(p, 0) == 0) out.push_back(e.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

std::atomic<bool>& interrupted() {
    static std::atomic<bool> flag{false};
    return flag;
}

int run_process(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                std::chrono::seconds limit, const std::function<void(const std::string&)>& on_line,
                bool* timed_out) {
    if (argv.empty()) throw std::invalid_argument("run_process: empty command");
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]), close(fds[1]);
        throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
        // Its own process group, so a time limit takes libFuzzer's fork-mode
        // children too.
        setpgid(0, 0);
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, STDIN_FILENO);
        for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
        std::vector<char*> cargv;
        for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
        cargv.push_back(nullptr);
        execvp(cargv[0], cargv.data());
        std::fprintf(stderr, "cannot run %s: %s\n", argv[0].c_str(), std::strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    close(fds[1]);
    auto deadline = std::chrono::steady_clock::now() + limit;
    bool killed = false, forwarded = false;
    std::string pending;
    char buf[4096];
    auto flush_lines = [&](bool all) {
        std::size_t start = 0;
        for (std::size_t i = 0; i < pending.size(); ++i) {
            if (pending[i] == '\n' || pending[i] == '\r') {
                if (i > start) on_line(pending.substr(start, i - start));
                start = i + 1;
            }
        }
        pending.erase(0, start);
        if (all && !pending.empty()) {
            on_line(pending);
            pending.clear();
        }
        // A line without an end that grows without bound is cut, not kept.
        if (pending.size() > 1 << 20) {
            on_line(pending);
            pending.clear();
        }
    };
    for (;;) {
        if (!forwarded && interrupted().load()) {
            kill(-pid, SIGINT);
            forwarded = true;
            deadline = std::min(deadline, std::chrono::steady_clock::now() + std::chrono::seconds(10));
        }
        if (!killed && std::chrono::steady_clock::now() > deadline) {
            kill(-pid, SIGKILL);
            killed = true;
        }
        pollfd p{fds[0], POLLIN, 0};
        int n = poll(&p, 1, 200);
        if (n > 0) {
            ssize_t got = read(fds[0], buf, sizeof buf);
            if (got > 0) {
                pending.append(buf, static_cast<std::size_t>(got));
                flush_lines(false);
                continue;
            }
            if (got == 0) break;  // every writer closed
            if (errno != EINTR && errno != EAGAIN) break;
        } else if (n < 0 && errno != EINTR) {
            break;
        }
    }
    flush_lines(true);
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (killed) kill(-pid, SIGKILL);  // stragglers of the group
    if (timed_out) *timed_out = killed;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}

std::string shell_command(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
    std::string out;
    for (const auto& [k, v] : env) out += k + "=" + report::shell_word(v) + " ";
    for (std::size_t i = 0; i < argv.size(); ++i) out += (i ? " " : "") + report::shell_word(argv[i]);
    return out;
}

}  // namespace msglab::cli::fuzz
