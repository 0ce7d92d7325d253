// msglab capture | decode | replay.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli.hpp"
#include "cli/printable.hpp"
#include "core/address.hpp"
#include "core/registry.hpp"
#include "replay/capture.hpp"
#include "replay/extract.hpp"
#include "replay/replayer.hpp"

namespace msglab::cli {

namespace {

replay::LiveCapture* g_capture = nullptr;
extern "C" void stop_capture(int) {
    if (g_capture) g_capture->stop();
}

std::optional<KeyLog> load_keylog(const po::variables_map& vm) {
    std::optional<std::string> opt;
    if (vm.count("keylog")) opt = vm["keylog"].as<std::string>();
    auto path = KeyLogWriter::path_from(opt);
    if (!path) return std::nullopt;
    KeyLog log = KeyLog::load(*path);
    std::cerr << "key log " << *path << ": " << log.size() << " secret(s)"
              << (log.junk_lines() ? ", " + std::to_string(log.junk_lines()) + " unreadable line(s) skipped" : "")
              << "\n";
    return log;
}

void check_protocol(const po::variables_map& vm) {
    if (vm.count("protocol") && !Registry::builtin().protocol(vm["protocol"].as<std::string>()))
        throw UsageError("unknown protocol '" + vm["protocol"].as<std::string>() + "' (see 'msglab protocols')");
}

std::string json_text(ByteView b) {
    // Valid UTF-8 text as is; anything else as hex, so JSON stays lossless.
    std::size_t i = 0;
    while (i < b.size()) {
        std::uint8_t c = b[i];
        std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > b.size()) return {};
        for (std::size_t k = 1; k < n; ++k)
            if ((b[i + k] & 0xc0) != 0x80) return {};
        i += n;
    }
    return to_string(b);
}

}  // namespace

int cmd_capture(const std::string& name, const Args& args) {
    po::options_description opts("Options");
    opts.add_options()("iface,i", po::value<std::string>()->default_value("lo"), "interface to capture on")(
        "port,p", po::value<std::uint16_t>(), "capture TCP traffic to or from this port")(
        "filter,f", po::value<std::string>(), "a BPF filter (ANDed with --port)")(
        "out,o", po::value<std::string>()->required(), "the pcap file to write")(
        "duration,d", po::value<double>(), "stop after this many seconds")(
        "count,c", po::value<std::uint64_t>(), "stop after this many packets");
    po::positional_options_description pos;
    po::variables_map vm;
    if (!parse_options(name, "--out F.pcap [--iface lo] [--port P] [--filter BPF] [--duration S | --count N]",
                       "Captures live traffic with libpcap into a pcap file that Wireshark opens. Stops on Ctrl-C,\n"
                       "after --duration or after --count packets, and shows a running packet count.\n"
                       "Needs root (or CAP_NET_RAW and CAP_NET_ADMIN).",
                       opts, pos, args, vm))
        return kOk;
    replay::CaptureOptions o;
    o.iface = vm["iface"].as<std::string>();
    if (vm.count("port")) o.port = vm["port"].as<std::uint16_t>();
    if (vm.count("filter")) o.filter = vm["filter"].as<std::string>();
    o.out = vm["out"].as<std::string>();
    if (vm.count("duration")) {
        o.duration = vm["duration"].as<double>();
        if (*o.duration <= 0) throw UsageError("--duration must be positive");
    }
    if (vm.count("count")) o.count = vm["count"].as<std::uint64_t>();
    replay::LiveCapture cap(o);
    g_capture = &cap;
    std::signal(SIGINT, stop_capture);
    std::signal(SIGTERM, stop_capture);
    bool tty = isatty(STDERR_FILENO);
    std::cerr << "capturing on " << o.iface << (cap.filter().empty() ? "" : " (" + cap.filter() + ")") << " into "
              << o.out << "; Ctrl-C stops\n";
    std::uint64_t n = cap.run([&](std::uint64_t count) {
        if (tty) std::cerr << "\r" << count << " packets" << std::flush;
    });
    g_capture = nullptr;
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    std::cerr << (tty ? "\r" : "") << n << " packets written to " << o.out;
    if (auto d = cap.dropped()) std::cerr << " (" << d << " dropped by the kernel)";
    std::cerr << "\n";
    return kOk;
}

int cmd_decode(const std::string& name, const Args& args) {
    po::options_description opts("Options");
    opts.add_options()("pcap", po::value<std::string>()->required(), "the capture file")(
        "protocol,p", po::value<std::string>(), "decode every TCP stream as this protocol (default: by port and heuristics)")(
        "keylog,k", po::value<std::string>(), "a key log, to show plaintexts (else $MSGLAB_KEYLOGFILE)")(
        "stream,s", po::value<std::uint64_t>(), "only this stream (numbered as tshark's tcp.stream)")(
        "json", "one JSON object per line instead of text");
    po::positional_options_description pos;
    pos.add("pcap", 1);
    po::variables_map vm;
    if (!parse_options(name, "F.pcap [--protocol ID] [--keylog F] [--json]",
                       "Decodes every message of every recognised TCP stream in a capture, one line each: frames,\n"
                       "time, stream, direction, protocol, message type, key fields, and the plaintext when the\n"
                       "key log has the session. Malformed streams are reported and decoding goes on.",
                       opts, pos, args, vm))
        return kOk;
    check_protocol(vm);
    auto keylog = load_keylog(vm);
    bool json = vm.count("json") != 0;
    std::optional<std::uint64_t> only;
    if (vm.count("stream")) only = vm["stream"].as<std::uint64_t>();
    replay::ExtractOptions eo;
    if (vm.count("protocol")) eo.protocol = vm["protocol"].as<std::string>();
    eo.keylog = keylog ? &*keylog : nullptr;
    std::optional<double> t0;
    std::uint64_t problems = 0;
    std::ostringstream line;
    replay::MessageExtractor ex(
        Registry::builtin(), eo,
        [&](const replay::ExtractedMessage& m) {
            if (only && m.stream != *only) return;
            if (!t0) t0 = m.time;
            const auto& d = m.decoded;
            if (json) {
                nlohmann::json j = {{"frames", {m.first_frame, m.last_frame}},
                                    {"time", m.time},
                                    {"stream", m.stream},
                                    {"index", m.index},
                                    {"from", peer_name(m.from)},
                                    {"src", m.src.to_string()},
                                    {"dst", m.dst.to_string()},
                                    {"protocol", m.protocol},
                                    {"type", d.type},
                                    {"length", m.bytes.size()}};
                nlohmann::json fields = nlohmann::json::object();
                for (const auto& f : d.fields) fields[f.name] = f.value;
                j["fields"] = fields;
                if (!d.session_id.empty()) j["session_id"] = d.session_id;
                if (d.plaintext) {
                    std::string text = json_text(*d.plaintext);
                    if (!text.empty() || d.plaintext->empty()) j["plaintext"] = text;
                    j["plaintext_hex"] = hex(*d.plaintext);
                }
                j["anomalies"] = d.anomalies;
                std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
                return;
            }
            line.str("");
            std::string frames = m.first_frame == m.last_frame
                                     ? std::to_string(m.first_frame)
                                     : std::to_string(m.first_frame) + "-" + std::to_string(m.last_frame);
            line << std::setw(9) << frames << " " << std::fixed << std::setprecision(6) << std::setw(11)
                 << (m.time - *t0) << "  s" << m.stream << "  "
                 // The client on the left; the arrow shows which way the message went.
                 << (m.from == Peer::client ? m.src.to_string() + " -> " + m.dst.to_string()
                                            : m.dst.to_string() + " <- " + m.src.to_string())
                 << "  " << m.protocol << "  "
                 << d.type;
            for (const auto& f : d.fields) {
                auto dot = f.name.find('.');
                line << " " << (dot == std::string::npos ? f.name : f.name.substr(dot + 1)) << "=" << f.value;
            }
            if (!d.session_id.empty()) line << " session=" << d.session_id;
            if (d.plaintext) {
                // A line stays a line: long plaintexts (file chunks) are cut;
                // --json has them whole.
                constexpr std::size_t kShown = 160;
                const Bytes& p = *d.plaintext;
                if (p.size() <= kShown) line << "  \"" << printable(p) << "\"";
                else line << "  \"" << printable(ByteView(p.data(), kShown)) << "\"... (" << p.size() << " bytes)";
            }
            for (const auto& a : d.anomalies) line << "  [!] " << a;
            std::cout << line.str() << "\n";
        },
        [&](const replay::StreamProblem& p) {
            if (only && p.stream != *only) return;
            ++problems;
            std::cerr << "stream " << p.stream << (p.from ? std::string(" (") + peer_name(*p.from) + ")" : "")
                      << ", frame " << p.frame << ": " << p.what << "\n";
        });
    replay::TcpReassembler r(ex);
    std::string path = vm["pcap"].as<std::string>();
    std::uint64_t frames = replay::reassemble_file(path, r);
    const auto& st = r.stats();
    std::cerr << path << ": " << frames << " frames, " << st.streams << " TCP stream(s), " << ex.streams_matched()
              << " of a known protocol, " << ex.messages() << " message(s)";
    if (st.gaps) std::cerr << ", " << st.gaps << " gap(s) (" << st.gap_bytes << " bytes missing)";
    if (st.malformed) std::cerr << ", " << st.malformed << " malformed frame(s)";
    if (problems) std::cerr << ", " << problems << " problem(s) reported above";
    std::cerr << "\n";
    return kOk;
}

int cmd_replay(const std::string& name, const Args& args) {
    po::options_description opts("Options");
    opts.add_options()("pcap", po::value<std::string>()->required(), "the capture file")(
        "target,t", po::value<std::string>()->required(), "HOST:PORT of the live endpoint")(
        "stream,s", po::value<std::uint64_t>(), "the stream to replay (default: the first of a known protocol)")(
        "protocol,p", po::value<std::string>(), "treat the capture as this protocol")(
        "mutate,m", po::value<std::vector<std::string>>()->composing(),
        "a mutation, repeatable, applied in order:\n"
        "  verbatim | reflect | drop[:index=I] | duplicate[:index=I]\n"
        "  reorder[:index=I,with=J] | truncate[:index=I,length=N]\n"
        "  flip:field=F[,index=I,bit=B] | set:field=F,value=HEX[,index=I]\n"
        "fields: 'msglab protocols --verbose'; a missing index is drawn from --seed")(
        "seed", po::value<std::uint64_t>(), "seed for every random choice (default: random; always printed)")(
        "rewrap", "run a fresh handshake and re-seal the captured plaintexts (needs the key log)")(
        "keylog,k", po::value<std::string>(), "key log of the captured session (else $MSGLAB_KEYLOGFILE)")(
        "findings", po::value<std::string>(), "append findings as JSON lines to this file (else to stdout)")(
        "wait", po::value<double>()->default_value(0.3), "seconds to watch the target after each message")(
        "timeout", po::value<double>()->default_value(5.0), "connect and handshake timeout, seconds");
    po::positional_options_description pos;
    pos.add("pcap", 1);
    po::variables_map vm;
    if (!parse_options(name, "F.pcap --target HOST:PORT [--stream N] [--mutate SPEC]... [--seed N] [--rewrap]",
                       "Opens a fresh connection to a live target and plays the client side of a captured session\n"
                       "at the application layer, with mutations. Records what the target did with each message\n"
                       "(answered, silent, closed) and reports findings as JSON lines, e.g. REPLAY_ACCEPTED when\n"
                       "a replayed authenticated message is taken.",
                       opts, pos, args, vm))
        return kOk;
    check_protocol(vm);
    replay::ReplayOptions o;
    o.pcap = vm["pcap"].as<std::string>();
    std::string err;
    auto target = parse_host_port(vm["target"].as<std::string>(), std::nullopt, err);
    if (!target) throw UsageError("--target: " + err);
    o.target = *target;
    if (vm.count("stream")) o.stream = vm["stream"].as<std::uint64_t>();
    if (vm.count("protocol")) o.protocol = vm["protocol"].as<std::string>();
    if (vm.count("mutate"))
        for (const auto& m : vm["mutate"].as<std::vector<std::string>>()) {
            auto spec = replay::parse_mutation(m);
            if (!spec) throw UsageError("--mutate " + m + ": " + spec.error());
            o.mutations.push_back(*spec);
        }
    o.seed = vm.count("seed") ? vm["seed"].as<std::uint64_t>() : SystemRng::instance().u64() >> 16;
    o.rewrap = vm.count("rewrap") != 0;
    auto keylog = load_keylog(vm);
    o.keylog = keylog ? &*keylog : nullptr;
    o.wait_seconds = vm["wait"].as<double>();
    o.connect_timeout = vm["timeout"].as<double>();
    if (o.wait_seconds < 0 || o.connect_timeout <= 0) throw UsageError("--wait and --timeout must be positive");
    std::ostringstream cmd;
    cmd << "msglab replay " << o.pcap << " --target " << o.target.to_string();
    if (o.stream) cmd << " --stream " << *o.stream;
    for (const auto& m : o.mutations) cmd << " --mutate " << m.text;
    if (o.rewrap) cmd << " --rewrap";
    cmd << " --seed " << o.seed;
    o.command_line = cmd.str();

    std::cerr << "seed: " << o.seed << "\n";
    auto r = replay::run_replay(o, Registry::builtin());
    std::cout << "replaying stream " << r.stream << " (" << r.protocol
              << (r.session_id.empty() ? "" : ", session " + r.session_id) << ") to " << o.target.to_string()
              << (o.rewrap ? " in a fresh session" : "") << "\n";
    for (const auto& l : r.mutation_log) std::cout << "  mutation " << l << "\n";
    for (std::size_t i = 0; i < r.outcomes.size(); ++i) {
        const auto& out = r.outcomes[i];
        std::cout << "  #" << i << " " << out.message.origin << ", " << out.message.bytes.size() << " B -> "
                  << replay::verdict_name(out.verdict);
        if (out.replies) {
            std::cout << " (";
            for (std::size_t k = 0; k < out.reply_types.size(); ++k) std::cout << (k ? ", " : "") << out.reply_types[k];
            std::cout << ")";
        }
        if (out.message.probe != replay::Probe::none) std::cout << "  [" << replay::probe_name(out.message.probe) << " probe]";
        std::cout << "\n";
    }
    std::cout << "findings: " << r.findings.size() << (r.target_closed ? "; the target closed the connection" : "")
              << "\n";
    if (vm.count("findings")) {
        std::ofstream f(vm["findings"].as<std::string>(), std::ios::app);
        if (!f) throw std::runtime_error("cannot write " + vm["findings"].as<std::string>());
        FindingWriter w(f);
        for (const auto& x : r.findings) w.write(x);
    } else {
        FindingWriter w(std::cout);
        for (const auto& x : r.findings) w.write(x);
    }
    if (r.live_key) {
        if (auto path = KeyLogWriter::path_from(std::nullopt)) {
            KeyLogWriter(*path).write(r.live_key->label, r.live_key->session_id, r.live_key->secret);
        }
    }
    return kOk;
}

}  // namespace msglab::cli
