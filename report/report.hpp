// The reports of a hunt: one self-contained HTML page for people, Markdown for
// GitHub, SARIF 2.1.0 for code-scanning tools and JUnit XML for CI. Every
// writer is a pure function of the Report, so the same folder gives the same
// bytes: no clock is read, and everything is in a fixed order.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "report/model.hpp"

namespace msglab::report {

enum class Format { html, markdown, sarif, junit };
const char* format_name(Format f);  // as --format spells it: "html", "md", "sarif", "junit"
const char* file_name(Format f);    // "report.html", "report.md", "report.sarif", "junit.xml"
// "html,md,sarif,junit" in any order, duplicates ignored; the result is in
// the order above. Throws std::invalid_argument naming an unknown format.
std::vector<Format> parse_formats(std::string_view list);

struct Options {
    std::string title;  // empty: default_title()
};
std::string default_title(const Report& r);

// Most severe first.
constexpr Severity kSeverities[] = {Severity::critical, Severity::high, Severity::medium, Severity::low, Severity::info};
std::string cwe_url(int cwe);

std::string render_html(const Report& r, const Options& o);
std::string render_markdown(const Report& r, const Options& o);
std::string render_sarif(const Report& r, const Options& o);
std::string render_junit(const Report& r, const Options& o);
std::string render(Format f, const Report& r, const Options& o);

// The session as an inline SVG element (client left, server right, one
// arrow per message, evidence highlighted); styled by the page's CSS.
std::string render_svg(const SessionDiagram& d);
// The session as a Mermaid sequenceDiagram (the lines inside the fence).
std::string render_mermaid(const SessionDiagram& d);

// Writes each format into `out`, created when missing; returns the paths
// written. Throws std::runtime_error naming a file that cannot be written.
std::vector<std::filesystem::path> write_reports(const Report& r, const std::filesystem::path& out,
                                                 const std::vector<Format>& formats, const Options& o);

}  // namespace msglab::report
