// Findings: typed codes from one catalogue, carried as JSON lines between
// every producer (scenarios, replay, fuzzing, capture analysis) and reports.
#pragma once

#include <cstdint>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace msglab {

enum class Severity { info, low, medium, high, critical };
const char* severity_name(Severity s);
std::optional<Severity> parse_severity(std::string_view s);

enum class Confidence { tentative, firm, certain };
const char* confidence_name(Confidence c);
std::optional<Confidence> parse_confidence(std::string_view s);

// One entry of the catalogue of finding codes.
struct FindingCode {
    std::string_view code;
    int cwe;
    Severity severity;
    std::string_view title;
    std::string_view meaning;
    std::string_view remediation;
};
const std::vector<FindingCode>& finding_catalogue();
const FindingCode* find_finding_code(std::string_view code);

struct Evidence {
    std::string pcap;                  // capture file, when there is one
    std::vector<std::uint64_t> frames; // frame numbers in that capture
    std::string bytes_hex;             // an excerpt of the bytes concerned
    std::string detail;                // what was observed, in words
    std::string reproducer;            // a file that reproduces it (a fuzz input, a trace)
};

struct Finding {
    std::string code;
    int cwe = 0;
    Severity severity = Severity::info;
    Confidence confidence = Confidence::firm;
    std::string protocol;
    std::string target;      // host:port or a file
    std::string session_id;  // as the key log names it, when known
    std::string technique;   // scenario, replay, fuzz, capture, ...
    std::string title;
    Evidence evidence;
    std::string remediation;
    std::string reproduce;   // a command that reproduces it
    std::string time;        // ISO 8601 UTC

    // A finding with the catalogue's CWE, severity, title and remediation.
    // Throws std::invalid_argument for a code not in the catalogue.
    static Finding make(std::string_view code, std::string protocol, std::string target, std::string technique);
};

std::string to_json_line(const Finding& f);  // one line, no trailing newline
// Throws std::invalid_argument with the reason when the line is not a finding.
Finding finding_from_json(std::string_view line);

class FindingWriter {
public:
    explicit FindingWriter(std::ostream& out) : m_out(out) {}
    void write(const Finding& f);
    std::size_t count() const { return m_count; }

private:
    std::ostream& m_out;
    std::size_t m_count = 0;
};

struct FindingReadResult {
    std::vector<Finding> findings;
    std::vector<std::string> errors;  // "line N: reason" for each bad line
};
FindingReadResult read_findings(std::istream& in);

std::string utc_timestamp_now();

}  // namespace msglab
