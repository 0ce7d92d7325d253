#include <algorithm>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "report/report.hpp"

namespace msglab::report {

namespace {
constexpr Format kFormats[] = {Format::html, Format::markdown, Format::sarif, Format::junit};
}

const char* format_name(Format f) {
    switch (f) {
        case Format::html: return "html";
        case Format::markdown: return "md";
        case Format::sarif: return "sarif";
        case Format::junit: return "junit";
    }
    return "html";
}

const char* file_name(Format f) {
    switch (f) {
        case Format::html: return "report.html";
        case Format::markdown: return "report.md";
        case Format::sarif: return "report.sarif";
        case Format::junit: return "junit.xml";
    }
    return "report.html";
}

std::vector<Format> parse_formats(std::string_view list) {
    std::vector<bool> wanted(std::size(kFormats), false);
    std::size_t start = 0;
    while (start <= list.size()) {
        std::size_t end = std::min(list.find(',', start), list.size());
        std::string_view name = list.substr(start, end - start);
        bool known = false;
        for (std::size_t i = 0; i < std::size(kFormats); ++i) {
            if (name == format_name(kFormats[i])) {
                wanted[i] = known = true;
            }
        }
        if (!known)
            throw std::invalid_argument("unknown format '" + std::string(name) + "' (known: html, md, sarif, junit)");
        start = end + 1;
    }
    std::vector<Format> out;
    for (std::size_t i = 0; i < std::size(kFormats); ++i)
        if (wanted[i]) out.push_back(kFormats[i]);
    return out;
}

std::string default_title(const Report& r) {
    std::string protocol = r.protocol(), target = r.target();
    if (!protocol.empty() && !target.empty()) return "msglab report: " + protocol + " at " + target;
    if (!protocol.empty() || !target.empty()) return "msglab report: " + protocol + target;
    return "msglab report";
}

std::string cwe_url(int cwe) { return "https://cwe.mitre.org/data/definitions/" + std::to_string(cwe) + ".html"; }

std::string render(Format f, const Report& r, const Options& o) {
    switch (f) {
        case Format::html: return render_html(r, o);
        case Format::markdown: return render_markdown(r, o);
        case Format::sarif: return render_sarif(r, o);
        case Format::junit: return render_junit(r, o);
    }
    return {};
}

std::vector<std::filesystem::path> write_reports(const Report& r, const std::filesystem::path& out,
                                                 const std::vector<Format>& formats, const Options& o) {
    std::error_code ec;
    std::filesystem::create_directories(out, ec);
    if (ec) throw std::runtime_error("cannot create " + out.string() + ": " + ec.message());
    std::vector<std::filesystem::path> written;
    for (Format f : formats) {
        std::filesystem::path path = out / file_name(f);
        std::string content = render(f, r, o);
        std::ofstream file(path, std::ios::binary | std::ios::trunc);
        file << content;
        file.close();
        if (!file) throw std::runtime_error("cannot write " + path.string());
        written.push_back(path);
    }
    return written;
}

}  // namespace msglab::report
