// msglab hunt: every technique against one live endpoint while the traffic
// is captured — the protocol's scenarios, replay mutations against a fresh
// session, a short network fuzz — then the capture decoded and analysed.
// Everything lands in one folder that `msglab report` turns into reports.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/findings.hpp"
#include "scenario/runner.hpp"

namespace msglab::scenario {

struct HuntOptions {
    std::string protocol;
    HostPort target;
    std::string out;            // the folder: findings.jsonl, capture.pcap, keys.log, run.json, traces/, netfuzz/
    double fuzz_seconds = 10;   // the network fuzz's share
    std::string iface;          // capture interface; default "lo" for loopback targets, else "any"
    bool capture = true;
    std::string library_root;   // scenarios/<protocol>/ lives here
    std::vector<std::string> plants;  // what the target is known to carry (the audit knows), for run.json
    std::string command;        // as typed, for run.json
    std::uint64_t seed = 1;
    std::map<std::string, std::string> server_files;  // for the scenarios' checks (RunOptions)
    std::function<void(const std::string&)> progress;  // one line per phase and result
};

struct TechniqueSummary {
    std::string name;  // scenario, replay, fuzz, capture
    std::uint64_t runs = 0;
    std::vector<std::string> codes;  // finding codes it reported
};

struct HuntResult {
    std::vector<Finding> findings;
    std::vector<TechniqueSummary> techniques;
    bool unreachable = false;
    std::string stop_reason;     // the target was not there or not healthy
    std::string capture_note;    // why there is no capture, when there is none
    double seconds = 0;
};

// Throws std::runtime_error for what stops it before it starts (unknown
// protocol, an output folder that cannot be made).
HuntResult run_hunt(const HuntOptions& options);

// The capture analysis alone: findings a capture shows by itself (a
// duplicate answered, a reflection answered, a weak DH value answered, a bad
// MAC answered, a late handshake answered, equal keystreams, plaintext
// hashes in clear). Frames are the capture's, `pcap_name` goes into the evidence.
std::vector<Finding> analyse_capture(const std::string& pcap, const std::string& keylog, const std::string& protocol,
                                     const std::string& target, const std::string& pcap_name, std::uint64_t* messages);

}  // namespace msglab::scenario
