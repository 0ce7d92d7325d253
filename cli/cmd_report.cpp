// msglab report DIR: the reports of a hunt's folder.
#include <iostream>

#include "cli/cli.hpp"
#include "report/report.hpp"

namespace msglab::cli {

int cmd_report(const std::string& name, const Args& args) {
    po::options_description opts("Options");
    opts.add_options()("dir", po::value<std::string>()->required(), "the folder msglab hunt wrote")(
        "out,o", po::value<std::string>(), "where to write the reports (default: the input folder)")(
        "format,f", po::value<std::string>()->default_value("html,md,sarif,junit"),
        "which reports, comma-separated: html (report.html), md (report.md), sarif (report.sarif), junit (junit.xml)")(
        "title,t", po::value<std::string>(), "the reports' title (default: from the protocol and target)");
    po::positional_options_description pos;
    pos.add("dir", 1);
    po::variables_map vm;
    if (!parse_options(name, "DIR [--out DIR] [--format html,md,sarif,junit] [--title TEXT]",
                       "Writes the reports of a hunt from its folder (findings.jsonl, run.json, capture.pcap,\n"
                       "keys.log; see docs/reports.md): a self-contained HTML page with a summary, the findings by\n"
                       "severity with their evidence and a sequence diagram of each one's session, Markdown for\n"
                       "GitHub (Mermaid diagrams), SARIF 2.1.0 and JUnit XML. The same folder always gives the same\n"
                       "bytes. Damaged input lines are reported and left out. Prints the paths written.",
                       opts, pos, args, vm))
        return kOk;
    std::vector<report::Format> formats;
    try {
        formats = report::parse_formats(vm["format"].as<std::string>());
    } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--format: ") + e.what());
    }
    std::string dir = vm["dir"].as<std::string>();
    report::Options options;
    if (vm.count("title")) options.title = vm["title"].as<std::string>();

    report::Report r;
    try {
        r = report::load_report(dir);
    } catch (const report::LoadError& e) {
        std::cerr << "msglab " << name << ": " << e.what() << "\n";
        return kFailure;
    }
    for (const auto& p : r.problems) std::cerr << "warning: " << p << "\n";
    for (const auto& path : report::write_reports(r, vm.count("out") ? vm["out"].as<std::string>() : dir, formats, options))
        std::cout << path.string() << "\n";
    return kOk;
}

}  // namespace msglab::cli
