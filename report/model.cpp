#include "report/model.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "report/text.hpp"

namespace msglab::report {

namespace fs = std::filesystem;
using json = nlohmann::json;

const char* outcome_name(Outcome o) {
    switch (o) {
        case Outcome::pass: return "PASS";
        case Outcome::fail: return "FAIL";
        case Outcome::xfail: return "XFAIL";
        case Outcome::xpass: return "XPASS";
        case Outcome::error: return "ERROR";
    }
    return "ERROR";
}

std::optional<Outcome> parse_outcome(std::string_view s) {
    for (Outcome o : {Outcome::pass, Outcome::fail, Outcome::xfail, Outcome::xpass, Outcome::error})
        if (s == outcome_name(o)) return o;
    return std::nullopt;
}

namespace {

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw LoadError("cannot read " + p.string());
    std::ostringstream s;
    s << in.rdbuf();
    if (in.bad()) throw LoadError("cannot read " + p.string());
    return s.str();
}

// The fields of one run.json object, each checked for its type: a field of
// the wrong type is a problem and left out, never the end of the report.
class Fields {
public:
    Fields(const json& j, std::string where, std::vector<std::string>& problems)
        : m_j(j), m_where(std::move(where)), m_problems(problems) {}

    std::string text(const char* key) const {
        const json* v = get(key, "a string", &json::is_string);
        return v ? v->get<std::string>() : std::string();
    }
    std::optional<double> number(const char* key) const {
        const json* v = get(key, "a number", &json::is_number);
        return v ? std::optional<double>(v->get<double>()) : std::nullopt;
    }
    std::optional<std::uint64_t> count(const char* key) const {
        const json* v = get(key, "a whole number", &json::is_number_unsigned);
        return v ? std::optional<std::uint64_t>(v->get<std::uint64_t>()) : std::nullopt;
    }
    const json* array(const char* key) const { return get(key, "an array", &json::is_array); }
    void problem(const std::string& what) const { m_problems.push_back(m_where + ": " + what); }

private:
    const json* get(const char* key, const char* kind, bool (json::*is)() const noexcept) const {
        auto it = m_j.find(key);
        if (it == m_j.end() || it->is_null()) return nullptr;
        if (!((*it).*is)()) {
            problem(std::string("'") + key + "' is not " + kind + "; ignored");
            return nullptr;
        }
        return &*it;
    }
    const json& m_j;
    std::string m_where;
    std::vector<std::string>& m_problems;
};

ScenarioResult read_scenario(const Fields& f) {
    ScenarioResult s;
    s.id = f.text("id");
    s.title = f.text("title");
    std::string outcome = f.text("outcome");
    if (auto o = parse_outcome(outcome))
        s.outcome = *o;
    else
        f.problem("outcome '" + outcome + "' is none of PASS, FAIL, XFAIL, XPASS, ERROR; shown as ERROR");
    s.finding = f.text("finding");
    if (std::string sev = f.text("severity"); !sev.empty()) {
        s.severity = parse_severity(sev);
        if (!s.severity) f.problem("severity '" + sev + "' is not a severity; ignored");
    }
    if (auto cwe = f.count("cwe")) s.cwe = static_cast<int>(*cwe);
    s.duration_s = f.number("duration_s");
    s.message = f.text("message");
    s.trace = f.text("trace");
    return s;
}

void read_run(const std::string& content, Report& r) {
    json j = json::parse(content, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        r.problems.push_back("run.json: not a JSON object; ignored");
        return;
    }
    r.has_run = true;
    RunInfo& run = r.run;
    Fields f(j, "run.json", r.problems);
    run.tool = f.text("tool");
    run.version = f.text("version");
    run.protocol = f.text("protocol");
    run.target = f.text("target");
    run.command = f.text("command");
    run.started = f.text("started");
    run.duration_s = f.number("duration_s");
    if (const json* plants = f.array("plants")) {
        for (const auto& p : *plants) {
            if (p.is_string())
                run.plants.push_back(p.get<std::string>());
            else
                f.problem("a plant is not a string; ignored");
        }
    }
    if (const json* techniques = f.array("techniques")) {
        for (std::size_t i = 0; i < techniques->size(); ++i) {
            const json& t = (*techniques)[i];
            Fields tf(t, "run.json techniques[" + std::to_string(i) + "]", r.problems);
            if (!t.is_object()) {
                tf.problem("not an object; ignored");
                continue;
            }
            run.techniques.push_back({tf.text("name"), tf.count("runs"), tf.count("findings").value_or(0)});
        }
    }
    if (const json* scenarios = f.array("scenarios")) {
        for (std::size_t i = 0; i < scenarios->size(); ++i) {
            const json& s = (*scenarios)[i];
            Fields sf(s, "run.json scenarios[" + std::to_string(i) + "]", r.problems);
            if (!s.is_object()) {
                sf.problem("not an object; ignored");
                continue;
            }
            run.scenarios.push_back(read_scenario(sf));
        }
    }
}

// The findings file with bad lines reported. A producer that quotes raw input
// without escaping may leave invalid UTF-8, which JSON forbids: those bytes
// become U+FFFD, so the finding is kept and the damage shown.
std::vector<Finding> read_findings_file(const std::string& content, std::vector<std::string>& problems) {
    std::size_t line_no = 0, start = 0;
    std::string repaired;
    while (start < content.size()) {
        std::size_t end = content.find('\n', start);
        if (end == std::string::npos) end = content.size();
        ++line_no;
        std::size_t replaced = 0;
        repaired += repair_utf8(std::string_view(content).substr(start, end - start), &replaced) + "\n";
        if (replaced)
            problems.push_back("findings.jsonl line " + std::to_string(line_no) + ": " + std::to_string(replaced) +
                               " byte(s) of invalid UTF-8 shown as U+FFFD");
        start = end + 1;
    }
    std::istringstream in(repaired);
    FindingReadResult result = read_findings(in);
    for (const auto& e : result.errors) problems.push_back("findings.jsonl " + e + "; line skipped");
    return std::move(result.findings);
}

// What the catalogue knows and the producer left out.
void complete_from_catalogue(Finding& f) {
    const FindingCode* c = find_finding_code(f.code);
    if (!c) return;
    if (f.cwe == 0) f.cwe = c->cwe;
    if (f.title.empty()) f.title = std::string(c->title);
    if (f.remediation.empty()) f.remediation = std::string(c->remediation);
}

// Draws each finding's session from the capture it names (relative to the
// folder), or from the folder's capture when it names none.
void attach_diagrams(const fs::path& dir, Report& r) {
    std::optional<KeyLog> keylog;
    if (!r.keylog.empty()) {
        try {
            keylog = KeyLog::load((dir / r.keylog).string());
            r.keylog_secrets = keylog->size();
            if (keylog->junk_lines())
                r.problems.push_back(r.keylog + ": " + std::to_string(keylog->junk_lines()) +
                                     " unreadable line(s) skipped");
        } catch (const std::exception& e) {
            r.problems.push_back(r.keylog + ": " + e.what());
        }
    }
    std::map<std::string, std::vector<ReportFinding*>> by_capture;
    for (auto& rf : r.findings) {
        std::string pcap = r.capture_of(rf.finding);
        if (pcap.empty())
            rf.diagram.unavailable = r.capture.empty() ? "the folder has no capture"
                                                       : "the finding names neither evidence frames nor a session";
        else
            by_capture[pcap].push_back(&rf);
    }
    for (auto& [name, group] : by_capture) {
        fs::path path = fs::path(name).is_absolute() ? fs::path(name) : dir / name;
        if (!fs::is_regular_file(path)) {
            for (auto* rf : group) rf->diagram.unavailable = "the capture " + name + " is not in the folder";
            continue;
        }
        std::vector<const Finding*> findings;
        for (auto* rf : group) findings.push_back(&rf->finding);
        auto diagrams = session_diagrams(path, findings, keylog ? &*keylog : nullptr);
        for (std::size_t i = 0; i < group.size(); ++i) {
            group[i]->diagram = std::move(diagrams[i]);
            group[i]->regions = frame_regions(path, group[i]->finding.evidence.frames);
        }
    }
}

}  // namespace

std::string Report::capture_of(const Finding& f) const {
    if (!f.evidence.pcap.empty()) return f.evidence.pcap;
    if (!f.evidence.frames.empty() || !f.session_id.empty()) return capture;
    return {};
}

std::string Report::protocol() const {
    if (!run.protocol.empty()) return run.protocol;
    for (const auto& f : findings)
        if (!f.finding.protocol.empty()) return f.finding.protocol;
    return {};
}

std::string Report::target() const {
    if (!run.target.empty()) return run.target;
    for (const auto& f : findings)
        if (!f.finding.target.empty()) return f.finding.target;
    return {};
}

std::vector<TechniqueCount> Report::techniques() const {
    if (!run.techniques.empty()) return run.techniques;
    std::map<std::string, std::uint64_t> counts;
    for (const auto& f : findings)
        if (!f.finding.technique.empty()) ++counts[f.finding.technique];
    std::vector<TechniqueCount> out;
    for (const auto& [name, n] : counts) out.push_back({name, std::nullopt, n});
    return out;
}

std::size_t Report::count(Severity s) const {
    return static_cast<std::size_t>(
        std::count_if(findings.begin(), findings.end(), [s](const ReportFinding& f) { return f.finding.severity == s; }));
}

Report load_report(const fs::path& dir) {
    std::error_code ec;
    if (!fs::exists(dir, ec)) throw LoadError(dir.string() + ": no such folder");
    if (!fs::is_directory(dir, ec)) throw LoadError(dir.string() + ": not a folder");
    const fs::path findings_path = dir / "findings.jsonl", run_path = dir / "run.json";
    Report r;
    r.has_findings_file = fs::is_regular_file(findings_path, ec);
    bool run_file = fs::is_regular_file(run_path, ec);
    if (!r.has_findings_file && !run_file)
        throw LoadError(dir.string() + ": neither findings.jsonl nor run.json; not a folder msglab hunt wrote");
    if (run_file) {
        std::size_t replaced = 0;
        std::string content = repair_utf8(read_text(run_path), &replaced);
        if (replaced)
            r.problems.push_back("run.json: " + std::to_string(replaced) + " byte(s) of invalid UTF-8 shown as U+FFFD");
        read_run(content, r);
    }
    if (r.has_findings_file) {
        for (auto& f : read_findings_file(read_text(findings_path), r.problems))
            r.findings.push_back({"", std::move(f), {}, {}});
    }
    if (!r.has_findings_file && !r.has_run)
        throw LoadError(run_path.string() + ": not a JSON object, and there is no findings.jsonl: nothing to report");

    for (auto& rf : r.findings) complete_from_catalogue(rf.finding);
    std::stable_sort(r.findings.begin(), r.findings.end(), [](const ReportFinding& a, const ReportFinding& b) {
        if (a.finding.severity != b.finding.severity) return a.finding.severity > b.finding.severity;
        return a.finding.code < b.finding.code;
    });
    for (std::size_t i = 0; i < r.findings.size(); ++i) r.findings[i].id = "F" + std::to_string(i + 1);

    if (fs::is_regular_file(dir / "capture.pcap", ec)) r.capture = "capture.pcap";
    if (fs::is_regular_file(dir / "keys.log", ec)) r.keylog = "keys.log";
    attach_diagrams(dir, r);
    return r;
}

}  // namespace msglab::report
