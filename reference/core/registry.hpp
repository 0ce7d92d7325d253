// The protocol registry and the plant registry (the backdoor catalogue).
// Each protocol folder registers itself once, from reference/registry.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/address.hpp"
#include "core/findings.hpp"
#include "core/session_model.hpp"
#include "core/stream_codec.hpp"

namespace msglab {

// A check a scenario runs with `probe: {check: NAME}`: for protocols whose
// properties take several connections and channels to show (sessions used
// across HTTP requests and WebSockets), written in code against the live
// target and reported like any scenario step.
struct ProbeContext {
    HostPort target;
    std::chrono::milliseconds timeout{3000};
    // Files the server under test was told to write (`msglab serve` options
    // in ProtocolInfo::server_files), by key; empty when unknown.
    std::map<std::string, std::string> server_files;
};

struct ProbeResult {
    enum class Verdict {
        held,         // the target behaved as a correct endpoint must
        broken,       // it did not: the scenario FAILs
        unreachable,  // no connection at all
        error,        // the check could not be carried out
    };
    Verdict verdict = Verdict::error;
    std::string observed;  // what the target did, in words
    std::vector<std::pair<std::string, std::string>> evidence;
};

struct Probe {
    std::string name;     // "unissued-session"
    std::string summary;  // what it checks
    std::function<ProbeResult(const ProbeContext&)> run;
};

// A file `msglab serve <id>` writes where it is told by an option (a
// database): the audit puts it in the run's folder and gives its path to the
// probes under `key`.
struct ServerFile {
    std::string key;       // "db"
    std::string option;    // "--db"
    std::string filename;  // "history.db"
};

struct ProtocolInfo {
    std::string id;         // "secmsg"
    std::string name;       // "SecMsg (SegMSG v0.1)"
    std::string transport;  // "tcp", "http+ws", ...
    std::uint16_t default_port = 0;
    std::string summary;
    std::string spec;                          // where the wire format is described
    std::vector<std::string> keylog_labels;    // labels its endpoints write
    std::vector<std::string> design_findings;  // codes the wire format itself forces
    std::vector<std::string> field_paths;      // named fields for mutation

    // Quick test of a stream's first bytes from the client (a heuristic).
    std::function<bool(ByteView)> detect;
    // A codec for one stream; `keys` may be null.
    std::function<std::unique_ptr<StreamCodec>(const KeyLog* keys)> make_codec;
    // A client for re-wrapped replays; null when the protocol has none yet.
    std::function<std::unique_ptr<LiveClient>(const Clock&, Rng&)> make_live_client;
    // For fuzzing a live endpoint (`msglab fuzz --target`): the endpoint's
    // session machine and what the named fields mean; empty when the protocol
    // has none yet.
    SessionModel session_model;
    FuzzFields fuzz_fields;
    // Options `msglab serve <id>` needs so that its endpoint answers what a
    // hunt sends (SecMsg's --echo); the audit passes them.
    std::vector<std::string> hunt_serve_options;
    std::vector<Probe> probes;
    std::vector<ServerFile> server_files;
};

// A named, documented, switchable flaw in a reference endpoint; off by default.
struct PlantInfo {
    std::string id;  // "<protocol>.<name>"
    std::string protocol;
    int cwe = 0;
    Severity severity = Severity::medium;
    std::string summary;
    std::string description;
    std::vector<std::string> detected_by;  // finding codes that should report it
};

class Registry {
public:
    // The process-wide registry with every built-in protocol registered
    // (link msglab_protocols).
    static const Registry& builtin();

    void add_protocol(ProtocolInfo info);
    void add_plant(PlantInfo info);

    const std::vector<ProtocolInfo>& protocols() const { return m_protocols; }
    const std::vector<PlantInfo>& plants() const { return m_plants; }
    const ProtocolInfo* protocol(std::string_view id) const;
    const PlantInfo* plant(std::string_view id) const;
    std::vector<const PlantInfo*> plants_of(std::string_view protocol) const;

private:
    std::vector<ProtocolInfo> m_protocols;
    std::vector<PlantInfo> m_plants;
};

// Both defined in reference/registry.cpp (library msglab_protocols), one
// line per protocol.
void register_builtin_protocols(Registry& registry);

// The plants switched on for one endpoint.
class PlantSet {
public:
    PlantSet() = default;
    // Throws std::invalid_argument naming the bad id when an id is unknown or
    // belongs to another protocol.
    static PlantSet parse(const std::vector<std::string>& ids, std::string_view protocol,
                          const Registry& registry = Registry::builtin());

    bool has(std::string_view id) const { return m_ids.count(std::string(id)) != 0; }
    bool empty() const { return m_ids.empty(); }
    const std::set<std::string>& ids() const { return m_ids; }
    // For tests and fuzzers that switch plants on directly.
    void enable(std::string id) { m_ids.insert(std::move(id)); }

private:
    std::set<std::string> m_ids;
};

}  // namespace msglab
