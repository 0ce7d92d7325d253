// report.md: GitHub-flavoured Markdown, with each session as a Mermaid
// sequenceDiagram. GitHub renders inline HTML, so input strings are escaped
// for Markdown and HTML alike; in code spans and fences, the fence is made
// longer than any run of backticks inside.
#include <algorithm>
#include <sstream>

#include "report/report.hpp"
#include "report/text.hpp"

namespace msglab::report {

namespace {

// Prose: one line, every character Markdown or HTML gives a meaning escaped;
// HTML's as entities, which every Markdown renderer honours.
std::string md(std::string_view s) {
    std::string out;
    for (char c : shorten(s, 4000)) {
        if (c == '<')
            out += "&lt;";
        else if (c == '>')
            out += "&gt;";
        else if (c == '&')
            out += "&amp;";
        else if (std::string_view("\\`*_[]|~#!").find(c) != std::string_view::npos)
            out += std::string("\\") + c;
        else
            out += c;
    }
    return out;
}

std::size_t longest_backtick_run(std::string_view s) {
    std::size_t best = 0, run = 0;
    for (char c : s) {
        run = c == '`' ? run + 1 : 0;
        best = std::max(best, run);
    }
    return best;
}

// A code span; in a table cell `|` still ends the cell unless escaped.
std::string md_code(std::string_view s, bool in_table = false) {
    std::string text = shorten(s, 4000);
    if (in_table) {
        std::string escaped;
        for (char c : text) escaped += c == '|' ? std::string("\\|") : std::string(1, c);
        text = escaped;
    }
    std::string fence(longest_backtick_run(text) + 1, '`');
    bool pad = text.empty() || text.front() == '`' || text.back() == '`';
    return fence + (pad ? " " : "") + text + (pad ? " " : "") + fence;
}

std::string fenced(std::string_view info, const std::string& body) {
    std::string fence(std::max<std::size_t>(3, longest_backtick_run(body) + 1), '`');
    return fence + std::string(info) + "\n" + body + (body.empty() || body.back() == '\n' ? "" : "\n") + fence + "\n";
}

std::string cwe_md(int cwe) {
    if (cwe <= 0) return "none";
    return "[CWE-" + std::to_string(cwe) + "](" + cwe_url(cwe) + ")";
}

// Mermaid text: what could end a statement, open a comment or an entity, or
// become markup, written as Mermaid's #code; entities.
std::string mermaid_text(std::string_view s) {
    std::string out;
    for (unsigned char c : shorten(s, 200)) {
        if (c >= 0x80 || std::isalnum(c) || std::string_view(" .,:_+-=/()'").find(static_cast<char>(c)) != std::string_view::npos)
            out += static_cast<char>(c);
        else
            out += "#" + std::to_string(c) + ";";
    }
    return out;
}

}  // namespace

std::string render_mermaid(const SessionDiagram& d) {
    std::ostringstream out;
    out << "sequenceDiagram\n"
        << "    participant C as client " << mermaid_text(d.client) << "\n"
        << "    participant S as server " << mermaid_text(d.server) << "\n";
    auto gap = [&](std::uint64_t n) {
        out << "    Note over C,S: " << n << (n == 1 ? " message" : " messages") << " left out\n";
    };
    std::uint64_t next = 0;
    for (const auto& m : d.messages) {
        if (m.index > next) gap(m.index - next);
        next = m.index + 1;
        if (m.evidence) out << "    rect rgba(220, 38, 38, 0.18)\n";
        std::string frames = m.first_frame == m.last_frame
                                 ? "frame " + std::to_string(m.first_frame)
                                 : "frames " + std::to_string(m.first_frame) + "-" + std::to_string(m.last_frame);
        std::string text = frames + " +" + fixed(m.offset, 3) + " s " + m.type + " (" + std::to_string(m.length) + " B)";
        if (!m.anomalies.empty()) text += " \xe2\x9a\xa0";
        if (m.preview) text += " \xe2\x80\x9c" + *m.preview + "\xe2\x80\x9d";
        if (m.evidence) text += " EVIDENCE";
        out << "    " << (m.from == Peer::client ? "C->>S: " : "S->>C: ") << mermaid_text(text) << "\n";
        if (m.evidence) out << "    end\n";
    }
    if (d.total > next) gap(d.total - next);
    return out.str();
}

std::string render_markdown(const Report& r, const Options& o) {
    std::ostringstream out;
    const RunInfo& run = r.run;
    out << "# " << md(o.title.empty() ? default_title(r) : o.title) << "\n\n";

    out << "## Summary\n\n| | |\n|---|---|\n";
    auto row = [&](std::string_view name, const std::string& value) { out << "| " << name << " | " << value << " |\n"; };
    if (!r.target().empty()) row("Target", md_code(r.target(), true));
    if (!r.protocol().empty()) row("Protocol", md(r.protocol()));
    if (!run.plants.empty()) {
        std::string plants;
        for (const auto& p : run.plants) plants += (plants.empty() ? "" : ", ") + md_code(p, true);
        row("Plants", plants + " (switched on in the target)");
    }
    if (!run.started.empty()) row("Started", md(run.started));
    if (run.duration_s) row("Duration", fixed(*run.duration_s, 1) + " s");
    if (!run.command.empty()) row("Command", md_code(run.command, true));
    if (!run.tool.empty() || !run.version.empty()) row("Tool", md(run.tool + " " + run.version));
    std::string evidence = r.capture.empty() ? std::string("no capture") : md_code(r.capture, true);
    if (!r.keylog.empty()) evidence += ", key log " + md_code(r.keylog, true);
    row("Evidence", evidence);

    out << "\n| Severity | Findings |\n|---|---:|\n";
    for (Severity s : kSeverities) out << "| " << severity_name(s) << " | " << r.count(s) << " |\n";

    if (auto techniques = r.techniques(); !techniques.empty()) {
        out << "\n### Techniques\n\n| Technique | Runs | Findings |\n|---|---:|---:|\n";
        for (const auto& t : techniques)
            out << "| " << md(t.name) << " | " << (t.runs ? std::to_string(*t.runs) : "\xe2\x80\x94") << " | "
                << t.findings << " |\n";
    }
    if (!run.scenarios.empty()) {
        out << "\n### Scenarios\n\n| Scenario | Outcome | Finding | Severity | CWE | Time | Message |\n"
               "|---|---|---|---|---|---:|---|\n";
        for (const auto& s : run.scenarios)
            out << "| " << md_code(s.id, true) << (s.title.empty() ? "" : " " + md(s.title)) << " | **"
                << outcome_name(s.outcome) << "** | " << (s.finding.empty() ? "" : md_code(s.finding, true)) << " | "
                << (s.severity ? severity_name(*s.severity) : "") << " | " << (s.cwe > 0 ? cwe_md(s.cwe) : "") << " | "
                << (s.duration_s ? fixed(*s.duration_s, 2) + " s" : "") << " | " << md(s.message) << " |\n";
    }
    if (!r.problems.empty()) {
        out << "\n### Input problems\n\n";
        for (const auto& p : r.problems) out << "- " << md(p) << "\n";
    }

    out << "\n## Findings\n\n";
    if (r.findings.empty()) out << "No findings.\n";
    for (const auto& rf : r.findings) {
        const Finding& f = rf.finding;
        const Evidence& e = f.evidence;
        out << "### " << rf.id << " \xc2\xb7 " << severity_name(f.severity) << " \xc2\xb7 " << md_code(f.code)
            << (f.title.empty() ? "" : " \xc2\xb7 " + md(f.title)) << "\n\n";
        out << "- **CWE**: " << cwe_md(f.cwe) << "\n- **Confidence**: " << confidence_name(f.confidence) << "\n";
        if (!f.technique.empty()) out << "- **Technique**: " << md(f.technique) << "\n";
        if (!f.protocol.empty()) out << "- **Protocol**: " << md(f.protocol) << "\n";
        if (!f.target.empty()) out << "- **Target**: " << md_code(f.target) << "\n";
        if (!f.session_id.empty()) out << "- **Session**: " << md_code(f.session_id) << "\n";
        if (!f.time.empty()) out << "- **Time**: " << md(f.time) << "\n";
        out << "\n**Evidence**";
        if (!e.detail.empty()) out << ": " << md(e.detail);
        out << "\n\n";
        std::string pcap = r.capture_of(f);
        if (!pcap.empty())
            out << "- Capture " << md_code(pcap)
                << (e.frames.empty() ? "" : ", frame" + std::string(e.frames.size() == 1 ? " " : "s ") + join(e.frames, ", "))
                << "\n";
        if (!e.reproducer.empty()) out << "- Reproducer " << md_code(e.reproducer) << "\n";
        Bytes bytes;
        if (!e.bytes_hex.empty() && unhex(e.bytes_hex, bytes)) out << "\n" << fenced("text", hex_dump(bytes));
        const SessionDiagram& d = rf.diagram;
        if (d.available()) {
            out << "\nTCP stream " << d.stream << ": " << d.messages.size() << " of " << d.total
                << " messages shown, the evidence highlighted.\n\n"
                << fenced("mermaid", render_mermaid(d));
        } else {
            out << "\nNo sequence diagram: " << md(d.unavailable) << ".\n";
        }
        out << "\n**Reproduce**\n\n";
        if (f.reproduce.empty())
            out << "The finding gives no command.\n";
        else
            out << fenced("sh", visible(f.reproduce));
        out << "\n**Remediation**: " << (f.remediation.empty() ? "None given." : md(f.remediation)) << "\n\n";
    }
    return out.str();
}

}  // namespace msglab::report
