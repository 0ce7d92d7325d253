#include "scenario/hunt.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/crypto.hpp"
#include "core/keylog.hpp"
#include "replay/capture.hpp"
#include "replay/extract.hpp"
#include "replay/netfuzz.hpp"
#include "replay/pcap_io.hpp"
#include "replay/replayer.hpp"
#include "replay/synth.hpp"
#include "replay/tcp_connection.hpp"
#include "scenario/suite.hpp"

namespace msglab::scenario {

namespace fs = std::filesystem;

namespace {

bool loopback(const std::string& host) {
    return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

// A live session of our own with the target (handshake, three messages),
// written as a capture: the source the replay mutations work from.
bool record_session(const ProtocolInfo& p, const HostPort& target, const std::string& path, KeyLogWriter& keys) {
    if (!p.make_live_client) return false;
    SystemRng rng;
    auto client = p.make_live_client(SystemClock::instance(), rng);
    replay::TcpConnection conn(target, 5);
    replay::SynthTcp synth(0x7f000001, 40000, 0x7f000001, target.port);
    replay::PcapWriter out(path, 1);
    auto now = [&] {
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
        synth.set_time(static_cast<std::uint64_t>(us / 1000000), static_cast<std::uint32_t>(us % 1000000));
    };
    auto put = [&](const replay::SynthFrame& f) { out.write(f.frame, f.ts_sec, f.ts_usec); };
    now();
    put(synth.handshake_syn());
    put(synth.handshake_syn_ack());
    put(synth.handshake_ack());
    auto send = [&](const Bytes& b) {
        now();
        put(synth.data(true, b));
        conn.send(b);
    };
    auto receive = [&](double seconds, auto done) {
        Bytes got = conn.receive(seconds, [&](const Bytes& b) { return !b.empty(); });
        while (!got.empty()) {
            now();
            put(synth.data(false, got));
            auto fed = client->feed(got);
            for (const auto& b : fed.to_send) send(b);
            if (done()) break;
            got = conn.receive(seconds, [&](const Bytes& b) { return !b.empty(); });
        }
    };
    for (const auto& b : client->start()) send(b);
    receive(5, [&] { return client->established(); });
    if (!client->established()) return false;
    if (auto e = client->keylog_entry()) keys.write(e->label, e->session_id, e->secret);
    for (const char* text : {"first message", "second message", "third message"}) {
        if (conn.closed()) break;  // SLMP: one request per connection
        send(client->seal(to_bytes(text), std::nullopt));
        receive(0.5, [] { return true; });
    }
    now();
    put(synth.fin(true));
    return true;
}

void add(std::vector<Finding>& all, TechniqueSummary& t, Finding f) {
    if (std::find(t.codes.begin(), t.codes.end(), f.code) == t.codes.end()) t.codes.push_back(f.code);
    all.push_back(std::move(f));
}

}  // namespace

std::vector<Finding> analyse_capture(const std::string& pcap, const std::string& keylog_path, const std::string& protocol,
                                     const std::string& target, const std::string& pcap_name, std::uint64_t* count) {
    KeyLog keys;
    if (fs::exists(keylog_path)) keys = KeyLog::load(keylog_path);
    replay::ExtractOptions eo;
    eo.protocol = protocol;
    eo.keylog = &keys;
    std::vector<replay::StreamProblem> problems;
    auto messages = replay::extract_file(pcap, Registry::builtin(), eo, &problems);
    if (count) *count = messages.size();
    const ProtocolInfo* p = Registry::builtin().protocol(protocol);
    auto codec = p->make_codec(nullptr);

    std::map<std::uint64_t, std::vector<const replay::ExtractedMessage*>> streams;
    for (const auto& m : messages) streams[m.stream].push_back(&m);

    std::map<std::string, Finding> first;  // one finding per code, counting occurrences
    std::map<std::string, int> seen;
    auto report = [&](const std::string& code, std::vector<std::uint64_t> frames, const Bytes& bytes,
                      const std::string& detail) {
        if (++seen[code] > 1) return;
        Finding f = Finding::make(code, protocol, target, "capture");
        f.evidence.pcap = pcap_name;
        f.evidence.frames = std::move(frames);
        f.evidence.bytes_hex = hex(ByteView(bytes.data(), std::min<std::size_t>(bytes.size(), 64)));
        f.evidence.detail = detail;
        f.reproduce = "msglab decode " + pcap_name + " --keylog keys.log";
        f.time = utc_timestamp_now();
        first.emplace(code, std::move(f));
    };
    auto field = [&](const Bytes& b, const std::string& name) -> std::optional<Bytes> {
        auto span = codec->locate(b, name);
        if (!span || span->offset + span->length > b.size()) return std::nullopt;
        return Bytes(b.begin() + static_cast<std::ptrdiff_t>(span->offset),
                     b.begin() + static_cast<std::ptrdiff_t>(span->offset + span->length));
    };

    // Across connections: authenticated messages seen before (a whole
    // session replayed), and the target's key shares (a static key).
    std::map<Bytes, const replay::ExtractedMessage*> earlier_auth, server_shares;
    const std::string& share_field = p->fuzz_fields.key_share;
    for (const auto& stream : streams) {
        const std::uint64_t id = stream.first;
        const auto& list = stream.second;  // named, not bound: lambdas below capture it
        // The target answered message i: its next message comes before our next one.
        auto answered = [&](std::size_t i) -> const replay::ExtractedMessage* {
            for (std::size_t j = i + 1; j < list.size(); ++j) {
                if (list[j]->from == Peer::client) return nullptr;
                return list[j];
            }
            return nullptr;
        };
        std::string opening_type, answer_type;
        for (const auto* m : list) {
            if (opening_type.empty() && m->from == Peer::client) opening_type = m->decoded.type;
            if (answer_type.empty() && m->from == Peer::server) answer_type = m->decoded.type;
        }
        bool established = false;
        std::vector<const replay::ExtractedMessage*> with_plaintext;
        for (std::size_t i = 0; i < list.size(); ++i) {
            const auto* m = list[i];
            // Encrypted content that opened with no key log at all: its keys
            // derive from what the capture itself carries.
            if (m->decoded.plaintext && m->decoded.authenticated && p->keylog_labels.empty())
                report("KEY_FROM_PUBLIC_DATA", {m->last_frame}, m->bytes,
                       "stream " + std::to_string(id) + ": a " + m->decoded.type +
                           " decrypted from the capture alone, without any key log");
            if (m->from == Peer::server) {
                for (const auto& a : m->decoded.anomalies)
                    if (a.find("hidden reply") != std::string::npos)
                        report("HIDDEN_TRIGGER", {m->last_frame}, m->bytes,
                               "stream " + std::to_string(id) + ": the target sent " + a);
                if (m->decoded.type == answer_type) {
                    established = true;
                    if (auto share = share_field.empty() ? std::nullopt : field(m->bytes, share_field)) {
                        auto [it, fresh] = server_shares.emplace(*share, m);
                        if (!fresh && it->second->stream != m->stream)
                            report("STATIC_KEY_REUSE", {it->second->last_frame, m->last_frame}, *share,
                                   "streams " + std::to_string(it->second->stream) + " and " + std::to_string(id) +
                                       ": the target sent the same key share (" + share_field + ") in both");
                    }
                }
                if (m->decoded.plaintext) with_plaintext.push_back(m);
                continue;
            }
            if (m->decoded.plaintext) with_plaintext.push_back(m);
            const auto* reply = answered(i);
            auto frames = [&](std::vector<std::uint64_t> f) {
                if (reply) f.push_back(reply->last_frame);
                return f;
            };
            for (const auto& a : m->decoded.anomalies) {
                if (!reply) continue;
                if (a.find("weak DH") != std::string::npos && reply->decoded.type == answer_type)
                    report("WEAK_DH_PUBLIC_ACCEPTED", frames({m->last_frame}), m->bytes,
                           "stream " + std::to_string(id) + ": " + a + ", answered with " + reply->decoded.type);
                if (a.rfind("weak key:", 0) == 0 && reply->decoded.type != "ERROR" && reply->decoded.type != "WS_CLOSE")
                    report("WEAK_KEY_ACCEPTED", frames({m->last_frame}), m->bytes,
                           "stream " + std::to_string(id) + ": " + a.substr(10) + ", answered with " +
                               reply->decoded.type);
                if ((a == "HMAC mismatch" || a.find("zero HMAC") != std::string::npos) && reply->decoded.plaintext)
                    report("MAC_NOT_VERIFIED", frames({m->last_frame}), m->bytes,
                           "stream " + std::to_string(id) + ": a message with " + a + " was answered");
            }
            if (!reply) continue;
            // A late handshake: the opening type again inside a keyed session,
            // answered in kind (only protocols with session keys have one).
            if (!p->keylog_labels.empty() && established && i > 0 && m->decoded.type == opening_type && reply->decoded.type == answer_type)
                report("LATE_HANDSHAKE_ACCEPTED", frames({m->last_frame}), m->bytes,
                       "stream " + std::to_string(id) + ": " + opening_type + " inside an established session was answered with " + answer_type);
            if (!m->decoded.authenticated) continue;
            auto [prior, first_time] = earlier_auth.emplace(m->bytes, m);
            if (!first_time && prior->second->stream != m->stream) {
                report("REPLAY_ACCEPTED", frames({prior->second->last_frame, m->last_frame}), m->bytes,
                       "stream " + std::to_string(id) + ": a message first sent in stream " +
                           std::to_string(prior->second->stream) + " was sent again on a new connection and answered");
                continue;
            }
            for (std::size_t k = 0; k < i; ++k) {
                if (list[k]->bytes != m->bytes) continue;
                bool reflection = list[k]->from == Peer::server;
                report(reflection ? "REFLECTION_ACCEPTED" : "REPLAY_ACCEPTED", frames({list[k]->last_frame, m->last_frame}),
                       m->bytes,
                       "stream " + std::to_string(id) + ": " +
                           (reflection ? "the target's own message sent back to it" : "a message sent again") +
                           " was answered");
                break;
            }
        }
        // Design findings a capture shows with the key log.
        const std::string hash_field = protocol + ".original_hash", payload_field = protocol + ".payload";
        for (std::size_t a = 0; a < with_plaintext.size(); ++a) {
            const auto* x = with_plaintext[a];
            if (auto h = field(x->bytes, hash_field)) {
                auto d = crypto::sha256(*x->decoded.plaintext);
                if (Bytes(d.begin(), d.end()) == *h)
                    report("PLAINTEXT_HASH_EXPOSED", {x->last_frame}, *h,
                           "the " + hash_field + " field is SHA-256 of the plaintext, in clear");
            }
            for (std::size_t b = a + 1; b < with_plaintext.size(); ++b) {
                const auto* y = with_plaintext[b];
                auto cx = field(x->bytes, payload_field), cy = field(y->bytes, payload_field);
                if (!cx || !cy) continue;
                std::size_t n = std::min({cx->size(), cy->size(), x->decoded.plaintext->size(), y->decoded.plaintext->size()});
                if (n < 4) continue;
                bool same = true;
                for (std::size_t k = 0; k < n && same; ++k)
                    same = ((*cx)[k] ^ (*cy)[k]) == ((*x->decoded.plaintext)[k] ^ (*y->decoded.plaintext)[k]);
                if (same)
                    report("KEYSTREAM_REUSE", {x->last_frame, y->last_frame}, *cx,
                           "two messages of one session: ciphertext xor ciphertext = plaintext xor plaintext (" +
                               std::to_string(n) + " bytes): one keystream");
            }
        }
    }
    std::vector<Finding> out;
    for (auto& [code, f] : first) {
        if (seen[code] > 1) f.evidence.detail += " (" + std::to_string(seen[code]) + " occurrences)";
        out.push_back(std::move(f));
    }
    return out;
}

HuntResult run_hunt(const HuntOptions& o) {
    auto start = std::chrono::steady_clock::now();
    std::string started = utc_timestamp_now();
    const ProtocolInfo* p = Registry::builtin().protocol(o.protocol);
    if (!p) throw std::runtime_error("unknown protocol '" + o.protocol + "' (see 'msglab protocols')");
    fs::path out = o.out;
    fs::create_directories(out / "traces");
    auto say = [&](const std::string& line) {
        if (o.progress) o.progress(line);
    };
    HuntResult result;
    KeyLogWriter keys((out / "keys.log").string());

    // 1. Capture, for the whole hunt.
    std::unique_ptr<replay::LiveCapture> capture;
    std::thread capture_thread;
    fs::path pcap = out / "capture.pcap";
    if (o.capture) {
        replay::CaptureOptions co;
        co.iface = !o.iface.empty() ? o.iface : loopback(o.target.host) ? "lo" : "any";
        co.port = o.target.port;
        co.out = pcap.string();
        try {
            capture = std::make_unique<replay::LiveCapture>(co);
            capture_thread = std::thread([&] { capture->run(); });
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            say("capture: " + co.iface + ", filter '" + capture->filter() + "' into " + pcap.string());
        } catch (const replay::CaptureError& e) {
            result.capture_note = e.what();
            say("capture: not available (" + result.capture_note + "); continuing without capture analysis");
        }
    }
    auto stop_capture = [&] {
        if (!capture) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the last packets
        capture->stop();
        capture_thread.join();
    };

    // 2. Scenarios.
    TechniqueSummary scen{"scenario", 0, {}};
    std::vector<Scenario> library;
    for (const auto& f : scenario_files((fs::path(o.library_root) / o.protocol).string())) library.push_back(load_scenario(f));
    RunOptions ro;
    ro.target = o.target;
    ro.keylog = &keys;
    ro.server_files = o.server_files;
    nlohmann::json scenario_rows = nlohmann::json::array();
    auto suite = run_suite(library, ro, o.library_root, true, [&](const RunResult& r, const std::string& label) {
        fs::path trace = out / "traces" / (label + ".yaml");
        std::ofstream(trace) << to_yaml(r.trace);
        say(std::string("scenario: ") + outcome_name(r.outcome) + "  " + label);
        scenario_rows.push_back(scenario_row(r, label, "traces/" + label + ".yaml"));
    });
    scen.runs = suite.results.size();
    if (suite.unreachable || suite.unhealthy) {
        stop_capture();
        result.unreachable = suite.unreachable;
        result.stop_reason = suite.stop_reason;
        return result;
    }
    for (const auto& r : suite.results)
        if (r.finding) add(result.findings, scen, *r.finding);
    result.techniques.push_back(scen);

    // 3. Replay mutations against a fresh session, from a session recorded now.
    TechniqueSummary rep{"replay", 0, {}};
    fs::path source = out / "replay-source.pcap";
    try {
        if (record_session(*p, o.target, source.string(), keys)) {
            KeyLog kl = KeyLog::load((out / "keys.log").string());
            {
                // The recorded session as it was, on a fresh connection (no re-wrap):
                // a target that accepts it has no session freshness at all.
                replay::ReplayOptions r;
                r.pcap = source.string();
                r.target = o.target;
                r.protocol = o.protocol;
                r.seed = o.seed;
                r.mutations.push_back(*replay::parse_mutation("verbatim"));
                r.command_line = "msglab replay " + source.string() + " --target " + o.target.to_string();
                auto rr = replay::run_replay(r, Registry::builtin());
                ++rep.runs;
                for (auto& f : rr.findings) add(result.findings, rep, f);
                say("replay: whole session as captured: " + std::to_string(rr.findings.size()) + " finding(s)");
            }
            for (const char* spec : {"verbatim", "duplicate", "reflect"}) {
                replay::ReplayOptions r;
                r.pcap = source.string();
                r.target = o.target;
                r.protocol = o.protocol;
                r.rewrap = true;
                r.keylog = &kl;
                r.seed = o.seed;
                r.mutations.push_back(*replay::parse_mutation(spec));
                r.command_line = "msglab replay " + source.string() + " --target " + o.target.to_string() +
                                 " --rewrap --keylog " + (out / "keys.log").string() + " --mutate " + spec;
                auto rr = replay::run_replay(r, Registry::builtin());
                ++rep.runs;
                for (auto& f : rr.findings) add(result.findings, rep, f);
                say("replay: " + std::string(spec) + ": " + std::to_string(rr.findings.size()) + " finding(s)");
            }
        } else {
            say("replay: could not record a session to replay from");
        }
    } catch (const std::exception& e) {
        say(std::string("replay: stopped: ") + e.what());
    }
    result.techniques.push_back(rep);

    // 4. A short network fuzz.
    TechniqueSummary fz{"fuzz", 0, {}};
    if (o.fuzz_seconds > 0) {
        replay::NetFuzzOptions no;
        no.target = o.target;
        no.seconds = o.fuzz_seconds;
        no.seed = o.seed;
        no.out_dir = (out / "netfuzz").string();
        no.command = "msglab fuzz --protocol " + o.protocol + " --target " + o.target.to_string();
        try {
            auto nr = replay::run_netfuzz(no, *p);
            replay::write_netfuzz_outputs(no, *p, nr);
            fz.runs = nr.stats.iterations;
            for (auto& ff : nr.findings) add(result.findings, fz, ff.finding);
            say("fuzz: " + std::to_string(nr.stats.iterations) + " iterations, " + std::to_string(nr.findings.size()) +
                " finding(s)" + (nr.target_alive ? "" : "; the target went down"));
        } catch (const std::exception& e) {
            say(std::string("fuzz: stopped: ") + e.what());
        }
    }
    result.techniques.push_back(fz);

    // 5. The capture, decoded and analysed.
    stop_capture();
    TechniqueSummary cap{"capture", 0, {}};
    if (capture && fs::exists(pcap)) {
        std::uint64_t n = 0;
        for (auto& f : analyse_capture(pcap.string(), (out / "keys.log").string(), o.protocol, o.target.to_string(),
                                       "capture.pcap", &n))
            add(result.findings, cap, f);
        cap.runs = 1;
        say("capture: " + std::to_string(n) + " messages decoded, " + std::to_string(cap.codes.size()) + " finding(s)");
    }
    result.techniques.push_back(cap);

    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    {
        std::ofstream f(out / "findings.jsonl");
        FindingWriter w(f);
        for (const auto& x : result.findings) w.write(x);
    }
    nlohmann::json techniques = nlohmann::json::array();
    for (const auto& t : result.techniques) {
        std::size_t n = std::count_if(result.findings.begin(), result.findings.end(),
                                      [&](const Finding& f) { return f.technique == t.name; });
        techniques.push_back({{"name", t.name}, {"runs", t.runs}, {"findings", n}, {"codes", t.codes}});
    }
    nlohmann::json run = {{"tool", "msglab"},
                          {"protocol", o.protocol},
                          {"target", o.target.to_string()},
                          {"command", o.command},
                          {"started", started},
                          {"duration_s", result.seconds},
                          {"plants", o.plants},
                          {"techniques", techniques},
                          {"scenarios", scenario_rows}};
    if (!result.capture_note.empty()) run["capture_note"] = result.capture_note;
    std::ofstream(out / "run.json") << run.dump(2) << "\n";
    return result;
}

}  // namespace msglab::scenario
