// report.sarif: SARIF 2.1.0 (OASIS), one run. The rules are the finding
// catalogue, so a rule keeps its index from one report to the next; codes a
// producer used that the catalogue lacks follow, from the findings themselves.
// A finding's evidence frames are binary regions (byte offset and length) of
// the capture file, and its target a logical location.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "core/crypto.hpp"
#include "report/report.hpp"
#include "report/text.hpp"

#ifndef MSGLAB_VERSION
#define MSGLAB_VERSION "unknown"
#endif

namespace msglab::report {

namespace {

using json = nlohmann::ordered_json;

// Where results point: the hunt's folder, which the consumer resolves.
constexpr const char* kBase = "HUNTDIR";

const char* level(Severity s) {
    switch (s) {
        case Severity::critical:
        case Severity::high: return "error";
        case Severity::medium: return "warning";
        case Severity::low:
        case Severity::info: return "note";
    }
    return "note";
}

// GitHub code scanning's scale: over 9.0 critical, 7.0 high, 4.0 medium, 0.1 low.
const char* security_severity(Severity s) {
    switch (s) {
        case Severity::critical: return "9.5";
        case Severity::high: return "8.0";
        case Severity::medium: return "5.5";
        case Severity::low: return "3.0";
        case Severity::info: return "0.0";
    }
    return "0.0";
}

// "REPLAY_ACCEPTED" -> "ReplayAccepted", the form SARIF suggests for names.
std::string pascal(std::string_view code) {
    std::string out;
    bool upper = true;
    for (char c : code) {
        if (c == '_') {
            upper = true;
            continue;
        }
        out += upper ? c : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        upper = false;
    }
    return out;
}

std::string text(std::string_view s) { return visible(s); }

json rule(std::string_view code, int cwe, Severity severity, std::string_view title, std::string_view meaning,
          std::string_view remediation) {
    json props = {{"severity", severity_name(severity)}, {"security-severity", security_severity(severity)}};
    json tags = json::array({"security"});
    if (cwe > 0) {
        props["cwe"] = "CWE-" + std::to_string(cwe);
        tags.push_back("external/cwe/cwe-" + std::to_string(cwe));
    }
    props["tags"] = tags;
    std::string help = remediation.empty() ? std::string("No remediation given.") : text(remediation);
    std::string markdown = "**Remediation:** " + help;
    if (cwe > 0) markdown += "\n\n[CWE-" + std::to_string(cwe) + "](" + cwe_url(cwe) + ")";
    return {{"id", text(code)},
            {"name", pascal(text(code))},
            {"shortDescription", {{"text", title.empty() ? text(code) : text(title)}}},
            {"fullDescription", {{"text", meaning.empty() ? text(title.empty() ? code : title) : text(meaning)}}},
            {"help", {{"text", help}, {"markdown", markdown}}},
            {"defaultConfiguration", {{"level", level(severity)}}},
            {"properties", props}};
}

std::string sha256_hex(std::initializer_list<std::string_view> parts) {
    std::string joined;
    for (auto p : parts) {
        joined += p;
        joined += '\0';
    }
    return hex(crypto::sha256(as_bytes(joined)));
}

// A relative path as a URI reference: unreserved characters and '/' as is,
// every other byte percent-encoded.
std::string uri_path(std::string_view path) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : path) {
        if (std::isalnum(c) || std::string_view("-._~/").find(static_cast<char>(c)) != std::string_view::npos) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += digits[c >> 4];
            out += digits[c & 15];
        }
    }
    return out;
}

json artifact(const std::string& path) {
    if (!path.empty() && path.front() == '/') return {{"uri", "file://" + uri_path(path)}};
    return {{"uri", uri_path(path)}, {"uriBaseId", kBase}};
}

json locations(const Report& r, const ReportFinding& rf) {
    const Finding& f = rf.finding;
    json logical = json::array();
    if (!f.target.empty()) {
        std::string fqn = (f.protocol.empty() ? std::string() : f.protocol + "://") + f.target;
        logical.push_back({{"name", text(f.target)}, {"fullyQualifiedName", text(fqn)}, {"kind", "resource"}});
    }
    json out = json::array();
    std::string pcap = r.capture_of(f);
    if (pcap.empty()) {
        if (!logical.empty()) out.push_back({{"logicalLocations", logical}});
        return out;
    }
    auto add = [&](json physical) {
        json loc = {{"physicalLocation", std::move(physical)}};
        if (!logical.empty()) loc["logicalLocations"] = logical;
        out.push_back(std::move(loc));
    };
    for (auto frame : f.evidence.frames) {
        auto it = rf.regions.find(frame);
        if (it == rf.regions.end()) continue;
        add({{"artifactLocation", artifact(pcap)},
             {"region",
              {{"byteOffset", it->second.offset},
               {"byteLength", it->second.length},
               {"message", {{"text", "frame " + std::to_string(frame)}}}}}});
    }
    if (out.empty()) add({{"artifactLocation", artifact(pcap)}});
    return out;
}

json result(const Report& r, const ReportFinding& rf, std::size_t rule_index) {
    const Finding& f = rf.finding;
    const Evidence& e = f.evidence;
    std::string message = rf.id + ": " + (f.title.empty() ? f.code : f.title) + ".";
    if (!e.detail.empty()) message += " " + e.detail;
    if (!e.frames.empty()) message += " (frames " + join(e.frames, ", ") + ")";
    std::string frames = join(e.frames, ",");
    json props = {{"id", rf.id},
                  {"severity", severity_name(f.severity)},
                  {"confidence", confidence_name(f.confidence)},
                  {"technique", text(f.technique)},
                  {"protocol", text(f.protocol)},
                  {"target", text(f.target)},
                  {"sessionId", text(f.session_id)},
                  {"frames", e.frames},
                  {"evidenceBytes", text(e.bytes_hex)},
                  {"reproduce", text(f.reproduce)},
                  {"remediation", text(f.remediation)},
                  {"time", text(f.time)}};
    json res = {{"ruleId", text(f.code)},
                {"ruleIndex", rule_index},
                {"kind", "fail"},
                {"level", level(f.severity)},
                {"message", {{"text", text(message)}}},
                {"locations", locations(r, rf)}};
    if (!e.reproducer.empty())
        res["relatedLocations"] = json::array({{{"id", 1},
                                                {"physicalLocation", {{"artifactLocation", artifact(e.reproducer)}}},
                                                {"message", {{"text", "reproducer"}}}}});
    // The same evidence gives the same fingerprint; the partial one matches
    // the same flaw of the same target across runs, whatever the evidence.
    res["fingerprints"] = {{"msglabFinding/v1", sha256_hex({f.code, f.protocol, f.target, f.technique, f.session_id,
                                                            frames, e.bytes_hex, e.detail})}};
    res["partialFingerprints"] = {{"msglabFlaw/v1", sha256_hex({f.code, f.protocol, f.target})}};
    res["properties"] = props;
    return res;
}

}  // namespace

std::string render_sarif(const Report& r, const Options& o) {
    json rules = json::array();
    std::map<std::string, std::size_t> index;
    for (const auto& c : finding_catalogue()) {
        index[std::string(c.code)] = rules.size();
        rules.push_back(rule(c.code, c.cwe, c.severity, c.title, c.meaning, c.remediation));
    }
    std::set<std::string> extra;
    for (const auto& rf : r.findings)
        if (!index.count(rf.finding.code)) extra.insert(rf.finding.code);
    for (const auto& code : extra) {
        // The first finding with the code (the most severe) describes the rule.
        const auto& f = std::find_if(r.findings.begin(), r.findings.end(),
                                     [&](const ReportFinding& rf) { return rf.finding.code == code; })
                            ->finding;
        index[code] = rules.size();
        rules.push_back(rule(code, f.cwe, f.severity, f.title, "", f.remediation));
    }

    json driver = {{"name", "msglab"},
                   {"version", r.run.version.empty() ? std::string(MSGLAB_VERSION) : text(r.run.version)},
                   {"rules", rules}};
    json invocation = {{"executionSuccessful", true}};
    if (!r.run.command.empty()) invocation["commandLine"] = text(r.run.command);
    if (!r.run.started.empty()) invocation["startTimeUtc"] = text(r.run.started);
    if (!r.problems.empty()) {
        json notes = json::array();
        for (const auto& p : r.problems) notes.push_back({{"level", "warning"}, {"message", {{"text", text(p)}}}});
        invocation["toolExecutionNotifications"] = notes;
    }
    json results = json::array();
    for (const auto& rf : r.findings) results.push_back(result(r, rf, index.at(rf.finding.code)));

    json run = {{"tool", {{"driver", driver}}},
                {"invocations", json::array({invocation})},
                {"originalUriBaseIds",
                 {{kBase, {{"description", {{"text", "The folder msglab hunt wrote: findings, capture, key log."}}}}}}},
                {"results", results}};
    json props = json::object();
    props["title"] = text(o.title.empty() ? default_title(r) : o.title);
    if (!r.protocol().empty()) props["protocol"] = text(r.protocol());
    if (!r.target().empty()) props["target"] = text(r.target());
    if (!r.run.plants.empty()) {
        json plants = json::array();
        for (const auto& p : r.run.plants) plants.push_back(text(p));
        props["plants"] = plants;
    }
    run["properties"] = props;

    json doc = {{"$schema", "https://json.schemastore.org/sarif-2.1.0.json"},
                {"version", "2.1.0"},
                {"runs", json::array({run})}};
    return doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace msglab::report
