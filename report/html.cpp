// report.html: one file that opens anywhere, offline. Inline CSS and SVG only;
// no script at all, and a Content Security Policy that forbids every fetch and
// every script, so a string that escaped escaping still could not run or call
// out. Every string from the input goes through html(), which makes it valid,
// visible UTF-8 and escapes it.
#include <algorithm>
#include <sstream>

#include "core/crypto.hpp"
#include "report/report.hpp"
#include "report/text.hpp"

namespace msglab::report {

namespace {

// Hashed into the page's Content-Security-Policy: it is the only style the
// page may use.
constexpr std::string_view kStyle = R"css(
:root {
  color-scheme: light dark;
  --fg: #1d2125; --bg: #ffffff; --bg2: #f4f5f7; --muted: #5e6c84; --line: #d0d7de; --link: #0b57d0;
  --critical: #a1001b; --high: #c2410c; --medium: #a16207; --low: #2f6fb3; --info: #6b7280; --ok: #1a7f37;
  --ev: #fde2e1; --ev-line: #c0262d;
  --mono: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace;
}
@media (prefers-color-scheme: dark) {
  :root {
    --fg: #e6e8eb; --bg: #15171a; --bg2: #1f2328; --muted: #9aa4b2; --line: #373e47; --link: #8ab4f8;
    --critical: #ff6b81; --high: #ff8a5c; --medium: #e3b341; --low: #6cb6ff; --info: #9aa4b2; --ok: #56d364;
    --ev: #4a1f22; --ev-line: #ff7b72;
  }
}
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1060px; padding: 24px; color: var(--fg); background: var(--bg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { margin-top: 36px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { margin: 24px 0 8px; font-size: 1.1em; }
h4 { margin: 16px 0 6px; font-size: 1em; }
a { color: var(--link); }
code, pre { font-family: var(--mono); font-size: 13px; }
pre { background: var(--bg2); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; overflow-x: auto; }
pre.wrap { white-space: pre-wrap; overflow-wrap: anywhere; }
.sub, .note, figcaption { color: var(--muted); }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px; border-bottom: 1px solid var(--line); }
th { background: var(--bg2); font-weight: 600; }
td { overflow-wrap: break-word; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.num, .nw, .sev { white-space: nowrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 8px 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.sev { display: inline-block; min-width: 5.6em; padding: 0 8px; border-radius: 10px; color: var(--bg);
  font-size: 12px; font-weight: 700; text-align: center; text-transform: uppercase; letter-spacing: .03em; }
.sev-critical { background: var(--critical); } .sev-high { background: var(--high); }
.sev-medium { background: var(--medium); } .sev-low { background: var(--low); } .sev-info { background: var(--info); }
ul.counts { display: flex; flex-wrap: wrap; gap: 10px; padding: 0; list-style: none; }
ul.counts li { min-width: 120px; padding: 8px 14px; border: 1px solid var(--line); border-top-width: 4px; border-radius: 6px; }
ul.counts li.zero { opacity: .5; }
ul.counts .n { display: block; font-size: 1.7em; font-weight: 700; }
.c-critical { border-top-color: var(--critical) !important; } .c-high { border-top-color: var(--high) !important; }
.c-medium { border-top-color: var(--medium) !important; } .c-low { border-top-color: var(--low) !important; }
.c-info { border-top-color: var(--info) !important; }
.o-PASS { color: var(--ok); font-weight: 600; } .o-XFAIL { color: var(--muted); font-weight: 600; }
.o-FAIL, .o-XPASS, .o-ERROR { color: var(--critical); font-weight: 700; }
ul.problems li { color: var(--high); }
article.finding { margin: 22px 0; padding: 14px 20px; border: 1px solid var(--line); border-left: 6px solid var(--info); border-radius: 6px; }
article.f-critical { border-left-color: var(--critical); } article.f-high { border-left-color: var(--high); }
article.f-medium { border-left-color: var(--medium); } article.f-low { border-left-color: var(--low); }
article.finding h3 { margin-top: 4px; }
figure { margin: 10px 0; overflow-x: auto; }
svg.seq { display: block; max-width: 100%; height: auto; font: 12px var(--mono); }
svg.seq text { fill: currentColor; }
svg.seq .life { stroke: var(--muted); stroke-dasharray: 5 4; }
svg.seq .box { fill: var(--bg2); stroke: var(--muted); }
svg.seq .role { font-weight: 700; }
svg.seq .arrow { stroke: currentColor; stroke-width: 1.3; }
svg.seq .head { fill: currentColor; }
svg.seq .meta { fill: var(--muted); font-size: 11px; }
svg.seq .pt { font-style: italic; }
svg.seq .evbg { fill: var(--ev); }
svg.seq .ev .arrow { stroke: var(--ev-line); stroke-width: 2.4; }
svg.seq .ev .head, svg.seq .evtag { fill: var(--ev-line); }
svg.seq .ev .label, svg.seq .evtag { font-weight: 700; }
svg.seq .gap line { stroke: var(--muted); stroke-dasharray: 2 3; }
svg.seq .gap rect { fill: var(--bg); }
svg.seq .gap text { fill: var(--muted); }
footer { margin-top: 40px; padding-top: 8px; border-top: 1px solid var(--line); color: var(--muted); font-size: 13px; }
@media print {
  body { max-width: none; padding: 0; font-size: 10.5pt; }
  a { color: inherit; }
  pre { white-space: pre-wrap; overflow-wrap: anywhere; }
  figure, pre, tr { break-inside: avoid; }
  h2, h3, h4 { break-after: avoid; }
}
)css";

std::string html(std::string_view s) { return html_escape(visible(s)); }
std::string code(std::string_view s) { return "<code>" + html(s) + "</code>"; }

std::string severity_badge(Severity s) {
    return std::string("<span class=\"sev sev-") + severity_name(s) + "\">" + severity_name(s) + "</span>";
}

std::string cwe_link(int cwe) {
    if (cwe <= 0) return "none";
    return "<a href=\"" + cwe_url(cwe) + "\">CWE-" + std::to_string(cwe) + "</a>";
}

class Page {
public:
    Page(const Report& r, const Options& o) : m_r(r), m_title(o.title.empty() ? default_title(r) : o.title) {}

    std::string render() {
        std::string digest = crypto::base64_encode(crypto::sha256(as_bytes(kStyle)));
        m_out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
              << "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'sha256-"
              << digest << "'; base-uri 'none'; form-action 'none'\">\n"
              << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
              << "<meta name=\"color-scheme\" content=\"light dark\">\n"
              << "<title>" << html(m_title) << "</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n";
        header();
        summary();
        findings();
        m_out << "<footer>Written by <code>msglab report</code> from the folder of a hunt. Frame numbers count from 1, "
                 "as Wireshark does; paths are relative to that folder.</footer>\n</body>\n</html>\n";
        return m_out.str();
    }

private:
    void header() {
        m_out << "<header>\n<h1>" << html(m_title) << "</h1>\n";
        std::vector<std::string> parts;
        for (const std::string& s : {m_r.protocol(), m_r.target(), m_r.run.started})
            if (!s.empty()) parts.push_back(html(s));
        if (!parts.empty()) {
            m_out << "<p class=\"sub\">";
            for (std::size_t i = 0; i < parts.size(); ++i) m_out << (i ? " \xc2\xb7 " : "") << parts[i];
            m_out << "</p>\n";
        }
        m_out << "</header>\n";
    }

    void fact(std::string_view name, const std::string& value_html) {
        m_out << "<dt>" << name << "</dt><dd>" << value_html << "</dd>\n";
    }

    void summary() {
        const RunInfo& run = m_r.run;
        m_out << "<section id=\"summary\">\n<h2>Summary</h2>\n<dl class=\"facts\">\n";
        if (!m_r.target().empty()) fact("Target", code(m_r.target()));
        if (!m_r.protocol().empty()) fact("Protocol", html(m_r.protocol()));
        if (!run.plants.empty()) {
            std::string plants;
            for (const auto& p : run.plants) plants += (plants.empty() ? "" : ", ") + code(p);
            fact("Plants", plants + " (switched on in the target)");
        }
        if (!run.started.empty()) fact("Started", html(run.started));
        if (run.duration_s) fact("Duration", fixed(*run.duration_s, 1) + " s");
        if (!run.command.empty()) fact("Command", code(run.command));
        if (!run.tool.empty() || !run.version.empty()) fact("Tool", html(run.tool + " " + run.version));
        std::string evidence = m_r.capture.empty() ? std::string("no capture") : code(m_r.capture);
        if (!m_r.keylog.empty())
            evidence += ", key log " + code(m_r.keylog) + " (" + std::to_string(m_r.keylog_secrets) + " secret" +
                        (m_r.keylog_secrets == 1 ? "" : "s") + ")";
        fact("Evidence", evidence);
        m_out << "</dl>\n";

        m_out << "<h3>Findings by severity</h3>\n<ul class=\"counts\">\n";
        for (Severity s : kSeverities) {
            std::size_t n = m_r.count(s);
            m_out << "<li class=\"c-" << severity_name(s) << (n ? "" : " zero") << "\"><span class=\"n\">" << n
                  << "</span>" << severity_name(s) << "</li>\n";
        }
        m_out << "</ul>\n";

        auto techniques = m_r.techniques();
        if (!techniques.empty()) {
            m_out << "<h3>Techniques</h3>\n<table>\n<thead><tr><th>technique</th><th class=\"num\">runs</th>"
                     "<th class=\"num\">findings</th></tr></thead>\n<tbody>\n";
            for (const auto& t : techniques)
                m_out << "<tr><td>" << html(t.name) << "</td><td class=\"num\">"
                      << (t.runs ? std::to_string(*t.runs) : "\xe2\x80\x94") << "</td><td class=\"num\">" << t.findings
                      << "</td></tr>\n";
            m_out << "</tbody>\n</table>\n";
        }
        scenarios();
        if (!m_r.problems.empty()) {
            m_out << "<h3>Input problems</h3>\n<ul class=\"problems\">\n";
            for (const auto& p : m_r.problems) m_out << "<li>" << html(p) << "</li>\n";
            m_out << "</ul>\n";
        }
        m_out << "</section>\n";
    }

    void scenarios() {
        const auto& list = m_r.run.scenarios;
        if (list.empty()) return;
        m_out << "<h3>Scenarios</h3>\n<p>" << list.size() << " scenario" << (list.size() == 1 ? "" : "s") << ":";
        bool first = true;
        for (Outcome o : {Outcome::pass, Outcome::fail, Outcome::xfail, Outcome::xpass, Outcome::error}) {
            auto n = std::count_if(list.begin(), list.end(), [o](const ScenarioResult& s) { return s.outcome == o; });
            if (!n) continue;
            m_out << (first ? " " : ", ") << n << " <span class=\"o-" << outcome_name(o) << "\">" << outcome_name(o)
                  << "</span>";
            first = false;
        }
        m_out << "</p>\n<table>\n<thead><tr><th>scenario</th><th>outcome</th><th>finding</th><th>severity</th>"
                 "<th>CWE</th><th class=\"num\">time</th><th>message</th></tr></thead>\n<tbody>\n";
        for (const auto& s : list) {
            m_out << "<tr><td>" << code(s.id);
            if (!s.title.empty()) m_out << "<br>" << html(s.title);
            m_out << "</td><td class=\"o-" << outcome_name(s.outcome) << "\">" << outcome_name(s.outcome) << "</td><td>"
                  << (s.finding.empty() ? "" : code(s.finding)) << "</td><td>"
                  << (s.severity ? severity_badge(*s.severity) : "") << "</td><td class=\"nw\">"
                  << (s.cwe > 0 ? cwe_link(s.cwe) : "") << "</td><td class=\"num\">"
                  << (s.duration_s ? fixed(*s.duration_s, 2) + " s" : "") << "</td><td>" << html(s.message);
            if (!s.trace.empty()) m_out << "<br>trace " << code(s.trace);
            m_out << "</td></tr>\n";
        }
        m_out << "</tbody>\n</table>\n";
    }

    void findings() {
        m_out << "<section id=\"findings\">\n<h2>Findings</h2>\n";
        if (m_r.findings.empty()) {
            m_out << "<p>No findings.</p>\n</section>\n";
            return;
        }
        m_out << "<table>\n<thead><tr><th>#</th><th>severity</th><th>code</th><th>title</th><th>CWE</th>"
                 "<th>technique</th></tr></thead>\n<tbody>\n";
        for (const auto& rf : m_r.findings) {
            const Finding& f = rf.finding;
            m_out << "<tr><td><a href=\"#" << rf.id << "\">" << rf.id << "</a></td><td>" << severity_badge(f.severity)
                  << "</td><td>" << code(f.code) << "</td><td>" << html(f.title) << "</td><td class=\"nw\">" << cwe_link(f.cwe)
                  << "</td><td>" << html(f.technique) << "</td></tr>\n";
        }
        m_out << "</tbody>\n</table>\n";
        for (const auto& rf : m_r.findings) finding(rf);
        m_out << "</section>\n";
    }

    void finding(const ReportFinding& rf) {
        const Finding& f = rf.finding;
        m_out << "<article class=\"finding f-" << severity_name(f.severity) << "\" id=\"" << rf.id << "\">\n<h3>"
              << severity_badge(f.severity) << " " << rf.id << " \xc2\xb7 " << code(f.code);
        if (!f.title.empty()) m_out << " \xc2\xb7 " << html(f.title);
        m_out << "</h3>\n<dl class=\"facts\">\n";
        fact("CWE", cwe_link(f.cwe));
        fact("Confidence", confidence_name(f.confidence));
        if (!f.technique.empty()) fact("Technique", html(f.technique));
        if (!f.protocol.empty()) fact("Protocol", html(f.protocol));
        if (!f.target.empty()) fact("Target", code(f.target));
        if (!f.session_id.empty()) fact("Session", code(f.session_id));
        if (!f.time.empty()) fact("Time", html(f.time));
        m_out << "</dl>\n";
        evidence(rf);
        m_out << "<h4>Reproduce</h4>\n";
        if (f.reproduce.empty())
            m_out << "<p class=\"note\">The finding gives no command.</p>\n";
        else
            m_out << "<pre class=\"wrap\"><code>" << html(f.reproduce) << "</code></pre>\n";
        m_out << "<h4>Remediation</h4>\n<p>" << (f.remediation.empty() ? "None given." : html(f.remediation))
              << "</p>\n</article>\n";
    }

    void evidence(const ReportFinding& rf) {
        const Evidence& e = rf.finding.evidence;
        m_out << "<h4>Evidence</h4>\n";
        if (!e.detail.empty()) m_out << "<p>" << html(e.detail) << "</p>\n";
        std::string pcap = m_r.capture_of(rf.finding);
        m_out << "<dl class=\"facts\">\n";
        if (!pcap.empty())
            fact("Capture", code(pcap) + (e.frames.empty() ? "" : ", frame" + std::string(e.frames.size() == 1 ? " " : "s ") +
                                                                    join(e.frames, ", ")));
        if (!pcap.empty() && !e.frames.empty()) {
            std::string cmd = "msglab wireshark " + shell_word(pcap) +
                              (m_r.keylog.empty() ? "" : " --keylog " + shell_word(m_r.keylog)) +
                              " -Y 'frame.number in {" + join(e.frames, " ") + "}'";
            fact("In Wireshark", code(cmd));
        }
        if (!e.reproducer.empty()) fact("Reproducer", code(e.reproducer));
        m_out << "</dl>\n";
        if (!e.bytes_hex.empty()) {
            Bytes bytes;
            if (unhex(e.bytes_hex, bytes))
                m_out << "<pre class=\"hex\">" << html(hex_dump(bytes)) << "</pre>\n";
            else
                m_out << "<p class=\"note\">The bytes are not hex: " << code(shorten(e.bytes_hex, 200)) << "</p>\n";
        }
        diagram(rf.diagram);
    }

    void diagram(const SessionDiagram& d) {
        if (!d.available()) {
            m_out << "<p class=\"note\">No sequence diagram: " << html(d.unavailable) << ".</p>\n";
            return;
        }
        m_out << "<figure>\n" << render_svg(d) << "\n<figcaption>TCP stream " << d.stream << " ("
              << html(d.protocol) << "), client " << code(d.client) << ", server " << code(d.server);
        if (!d.session_id.empty()) m_out << ", session " << code(d.session_id);
        m_out << ": " << d.messages.size() << " of " << d.total << " message" << (d.total == 1 ? "" : "s")
              << " shown, the evidence highlighted.";
        if (!d.note.empty()) m_out << " Note: " << html(d.note) << ".";
        m_out << "</figcaption>\n</figure>\n";
    }

    const Report& m_r;
    std::string m_title;
    std::ostringstream m_out;
};

}  // namespace

std::string render_html(const Report& r, const Options& o) { return Page(r, o).render(); }

}  // namespace msglab::report
