// Attack scenarios: a declarative YAML format (docs/scenarios.md), parsed,
// checked and written back. A run's trace is the scenario itself with what
// was sent and received recorded under each step's `trace:` key, so a trace
// is a valid scenario input again.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "core/findings.hpp"

namespace msglab::scenario {

// A scenario file that cannot be used, with where and why.
struct ScenarioError : std::runtime_error {
    ScenarioError(const std::string& file, int line, const std::string& what);
    std::string file;
    int line;  // 1-based; 0 when unknown
};

// A byte value for field overrides and field checks.
struct Value {
    enum class Kind {
        hex,         // "00ff..." (exactly the field's width)
        integer,     // {int: N}: big-endian in the field's width
        text,        // {text: "..."}: UTF-8 bytes
        zeros,       // {zeros: true}
        sha256,      // {sha256: "text"}: SHA-256 of the text
        sha256_of,   // {sha256_of: FIELD}: SHA-256 of another field of the same message
        same_as,     // {same_as: {step: NAME, field: F}}: that field of a named message
        std_cipher,  // {aes128_ctr: "text"}: standard AES-128-CTR, zero counter block, under the first
                     // 16 bytes of the session's key-log secret
    };
    Kind kind = Kind::hex;
    Bytes bytes;
    std::uint64_t integer = 0;
    std::string text;
    std::string step, field;
};

struct FieldValue {
    std::string field;  // a registry field path: "secmsg.hmac"
    Value value;
};

// One acceptable reaction of the target.
struct Reaction {
    enum class Kind { message, error, close, silence };
    Kind kind = Kind::message;
    std::string type;      // message: the decoded type ("REGULAR" matches "REGULAR_MESSAGE")
    std::string contains;  // message/error: text the plaintext or fields must contain
    std::string field;     // message: a field to check...
    std::optional<Value> equals, differs;  // ...against this value
};

struct Step {
    enum class Kind { connect, handshake, send, expect, replay, tamper, wait, reconnect, close, stall, alive, probe };
    Kind kind = Kind::connect;
    int line = 0;
    std::string as;  // names the message this step sent or received
    // send (stall: raw only); probe: the check's name
    std::string type;
    std::optional<std::string> text;
    std::optional<std::size_t> size;  // a text of this many 'A's
    std::optional<Bytes> raw;
    std::optional<std::int64_t> timestamp;  // absolute seconds
    std::optional<std::uint64_t> age;       // seconds in the past
    std::vector<FieldValue> fields;         // overrides after sealing (MACs are not recomputed)
    // expect
    std::vector<Reaction> any;
    std::optional<unsigned> timeout_ms;
    // replay, tamper
    std::string ref;
    std::string field;
    std::optional<Value> set;
    std::optional<Bytes> xor_mask;
    // wait
    unsigned ms = 0;
    // A run's record of this step (kept as given, written back as is).
    YAML::Node trace;
};

const char* step_name(Step::Kind kind);

enum class Outcome { pass, fail, xfail, xpass, error };
const char* outcome_name(Outcome o);

struct Scenario {
    std::string id, title, protocol;
    Severity severity = Severity::medium;
    int cwe = 0;
    std::string finding;  // the catalogue code a misbehaving target earns
    std::string description;
    std::vector<std::string> references;
    std::vector<std::string> covers;  // plant ids and design finding codes it is meant to reveal
    std::optional<std::string> xfail;  // why a failure is expected
    bool sanity = false;
    unsigned timeout_ms = 1000;  // default for expect
    std::vector<Step> steps;
    YAML::Node result;  // a trace's outcome record, kept as given
    std::string source;  // file it came from
};

constexpr std::size_t kMaxScenarioBytes = 8u << 20;

// Parses and checks a scenario (every key known, every value well-formed,
// every reference to an earlier named step, the finding code in the
// catalogue). Throws ScenarioError.
Scenario parse_scenario(const std::string& yaml_text, const std::string& source = "<input>");
Scenario load_scenario(const std::string& path);
// Writes the scenario back in the canonical form parse_scenario reads.
std::string to_yaml(const Scenario& s);

// Every *.yaml / *.yml file under `path` (a file or a folder), sorted.
std::vector<std::string> scenario_files(const std::string& path);

}  // namespace msglab::scenario
