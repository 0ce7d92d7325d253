// junit.xml: what CI systems read. Two suites: the scenarios, one test case
// each (FAIL a failure, ERROR an error, XPASS a failure because an expected
// failure went away, XFAIL passing with a note), and the findings, each a
// failing test case, so a hunt that finds something turns the build red.
#include <sstream>

#include "report/report.hpp"
#include "report/text.hpp"

namespace msglab::report {

namespace {

std::string attr(std::string_view s) { return xml_escape(visible(s)); }
std::string body(std::string_view s) { return xml_escape(visible(s), false); }

// The JUnit schema's timestamp has no zone; run.json's is UTC.
std::string junit_timestamp(const std::string& iso) {
    if (iso.size() == 20 && iso[10] == 'T' && iso.back() == 'Z') return iso.substr(0, 19);
    return {};
}

struct Counts {
    std::size_t tests = 0, failures = 0, errors = 0;
    double time = 0;
};

Counts scenario_counts(const RunInfo& run) {
    Counts c;
    for (const auto& s : run.scenarios) {
        ++c.tests;
        if (s.outcome == Outcome::fail || s.outcome == Outcome::xpass) ++c.failures;
        if (s.outcome == Outcome::error) ++c.errors;
        c.time += s.duration_s.value_or(0);
    }
    return c;
}

std::string suite_open(std::string_view name, const Counts& c, const std::string& timestamp) {
    std::string out = "  <testsuite name=\"" + std::string(name) + "\" tests=\"" + std::to_string(c.tests) +
                      "\" failures=\"" + std::to_string(c.failures) + "\" errors=\"" + std::to_string(c.errors) +
                      "\" skipped=\"0\" time=\"" + fixed(c.time, 3) + "\"";
    if (!timestamp.empty()) out += " timestamp=\"" + timestamp + "\"";
    return out + ">\n";
}

void scenario_case(std::ostringstream& out, const ScenarioResult& s) {
    out << "    <testcase classname=\"msglab.scenarios\" name=\"" << attr(s.id.empty() ? s.title : s.id)
        << "\" time=\"" << fixed(s.duration_s.value_or(0), 3) << "\"";
    std::string about = s.title;
    if (!s.finding.empty()) about += (about.empty() ? "" : "\n") + std::string("finding: ") + s.finding;
    if (s.severity) about += std::string("\nseverity: ") + severity_name(*s.severity);
    if (s.cwe > 0) about += "\nCWE-" + std::to_string(s.cwe);
    if (!s.trace.empty()) about += "\ntrace: " + s.trace;
    switch (s.outcome) {
        case Outcome::pass: out << "/>\n"; return;
        case Outcome::xfail:
            out << ">\n      <system-out>" << body("XFAIL: failed as expected" + (s.message.empty() ? "" : ": " + s.message))
                << "</system-out>\n    </testcase>\n";
            return;
        case Outcome::fail:
            out << ">\n      <failure type=\"" << attr(s.finding.empty() ? "FAIL" : s.finding) << "\" message=\""
                << attr(shorten(s.message.empty() ? "failed" : s.message, 300)) << "\">" << body(about) << "</failure>\n";
            break;
        case Outcome::xpass:
            out << ">\n      <failure type=\"XPASS\" message=\""
                << attr(shorten("passed, but was expected to fail" + (s.message.empty() ? "" : ": " + s.message), 300))
                << "\">" << body(about) << "</failure>\n";
            break;
        case Outcome::error:
            out << ">\n      <error type=\"ERROR\" message=\"" << attr(shorten(s.message.empty() ? "error" : s.message, 300))
                << "\">" << body(about) << "</error>\n";
            break;
    }
    out << "    </testcase>\n";
}

void finding_case(std::ostringstream& out, const Report& r, const ReportFinding& rf) {
    const Finding& f = rf.finding;
    const Evidence& e = f.evidence;
    std::string name = rf.id + " " + f.code + (f.title.empty() ? "" : ": " + f.title);
    std::string message = std::string(severity_name(f.severity)) +
                          (f.cwe > 0 ? ", CWE-" + std::to_string(f.cwe) : std::string()) +
                          (e.detail.empty() ? "" : ": " + e.detail);
    std::ostringstream text;
    text << severity_name(f.severity) << " " << f.code << (f.cwe > 0 ? " (CWE-" + std::to_string(f.cwe) + ")" : "")
         << ", confidence " << confidence_name(f.confidence);
    if (!f.technique.empty()) text << ", technique " << f.technique;
    if (!f.target.empty()) text << "\ntarget: " << f.target;
    if (!f.session_id.empty()) text << "\nsession: " << f.session_id;
    if (!e.detail.empty()) text << "\nevidence: " << e.detail;
    std::string pcap = r.capture_of(f);
    if (!pcap.empty()) text << "\ncapture: " << pcap << (e.frames.empty() ? "" : ", frames " + join(e.frames, ", "));
    if (!e.bytes_hex.empty()) text << "\nbytes: " << e.bytes_hex;
    if (!e.reproducer.empty()) text << "\nreproducer: " << e.reproducer;
    if (!f.reproduce.empty()) text << "\nreproduce: " << f.reproduce;
    if (!f.remediation.empty()) text << "\nremediation: " << f.remediation;
    out << "    <testcase classname=\"msglab.findings." << attr(f.protocol.empty() ? "unknown" : f.protocol)
        << "\" name=\"" << attr(shorten(name, 200)) << "\" time=\"0.000\">\n      <failure type=\"" << attr(f.code)
        << "\" message=\"" << attr(shorten(message, 300)) << "\">" << body(text.str()) << "</failure>\n    </testcase>\n";
}

}  // namespace

std::string render_junit(const Report& r, const Options& o) {
    Counts scenarios = scenario_counts(r.run);
    Counts findings;
    findings.tests = findings.failures = r.findings.size();
    Counts all{scenarios.tests + findings.tests, scenarios.failures + findings.failures, scenarios.errors, 0};
    all.time = r.run.duration_s.value_or(scenarios.time);
    std::string timestamp = junit_timestamp(r.run.started);

    std::ostringstream out;
    out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\""
        << attr(o.title.empty() ? default_title(r) : o.title) << "\" tests=\"" << all.tests << "\" failures=\""
        << all.failures << "\" errors=\"" << all.errors << "\" skipped=\"0\" time=\"" << fixed(all.time, 3) << "\">\n";
    out << suite_open("msglab.scenarios", scenarios, timestamp);
    std::string properties;
    auto property = [&](const char* name, const std::string& value) {
        if (!value.empty()) properties += "      <property name=\"" + std::string(name) + "\" value=\"" + attr(value) + "\"/>\n";
    };
    property("protocol", r.protocol());
    property("target", r.target());
    std::string plants;
    for (const auto& p : r.run.plants) plants += (plants.empty() ? "" : ",") + p;
    property("plants", plants);
    property("command", r.run.command);
    if (!properties.empty()) out << "    <properties>\n" << properties << "    </properties>\n";
    for (const auto& s : r.run.scenarios) scenario_case(out, s);
    out << "  </testsuite>\n" << suite_open("msglab.findings", findings, timestamp);
    for (const auto& rf : r.findings) finding_case(out, r, rf);
    out << "  </testsuite>\n</testsuites>\n";
    return out.str();
}

}  // namespace msglab::report
