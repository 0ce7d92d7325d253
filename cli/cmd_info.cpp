// msglab protocols | plants | findings: what msglab knows.
#include <iomanip>
#include <filesystem>
#include <iostream>
#include <map>

#include "cli/cli.hpp"
#include "scenario/scenario.hpp"
#include "core/registry.hpp"

#ifndef MSGLAB_SOURCE_DIR
#define MSGLAB_SOURCE_DIR ""
#endif

namespace msglab::cli {

static std::string pad(std::string s, std::size_t n) {
    if (s.size() < n) s.resize(n, ' ');
    return s + " ";
}

int cmd_protocols(const std::string& name, const Args& args) {
    po::options_description opts("Options");
    opts.add_options()("verbose,v", "also print each protocol's key log labels and design findings");
    po::positional_options_description pos;
    po::variables_map vm;
    if (!parse_options(name, "[--verbose]", "Lists the protocol variants in the registry: id, transport, default port.",
                       opts, pos, args, vm))
        return kOk;
    const auto& reg = Registry::builtin();
    std::cout << pad("ID", 8) << pad("TRANSPORT", 10) << pad("PORT", 6) << pad("PLANTS", 7) << "NAME\n";
    for (const auto& p : reg.protocols())
        std::cout << pad(p.id, 8) << pad(p.transport, 10) << pad(std::to_string(p.default_port), 6)
                  << pad(std::to_string(reg.plants_of(p.id).size()), 7) << p.name << "\n";
    if (vm.count("verbose")) {
        for (const auto& p : reg.protocols()) {
            std::cout << "\n" << p.id << ": " << p.summary << "\n  wire format: " << p.spec << "\n  key log labels:";
            for (const auto& l : p.keylog_labels) std::cout << " " << l;
            std::cout << "\n  design findings (forced by the wire format, reported about the protocol):\n";
            for (const auto& code : p.design_findings) {
                const FindingCode* c = find_finding_code(code);
                std::cout << "    " << pad(code, 30) << (c ? std::string(c->title) : std::string()) << "\n";
            }
        }
    }
    return kOk;
}

int cmd_plants(const std::string& name, const Args& args) {
    po::options_description opts("Options");
    opts.add_options()("protocol,p", po::value<std::string>(), "only the plants of this protocol")(
        "verbose,v", "also print each plant's description and the findings that detect it");
    po::positional_options_description pos;
    po::variables_map vm;
    if (!parse_options(name, "[--protocol ID] [--verbose]",
                       "Lists the backdoor catalogue. Plants are off by default; switch one on with\n"
                       "'msglab serve <protocol> --plant ID'.",
                       opts, pos, args, vm))
        return kOk;
    const auto& reg = Registry::builtin();
    std::string only = vm.count("protocol") ? vm["protocol"].as<std::string>() : "";
    if (!only.empty() && !reg.protocol(only)) throw UsageError("unknown protocol '" + only + "'");
    std::cout << pad("ID", 28) << pad("CWE", 8) << pad("SEVERITY", 9) << "SUMMARY\n";
    for (const auto& p : reg.plants()) {
        if (!only.empty() && p.protocol != only) continue;
        std::cout << pad(p.id, 28) << pad("CWE-" + std::to_string(p.cwe), 8) << pad(severity_name(p.severity), 9)
                  << p.summary << "\n";
        if (vm.count("verbose")) {
            std::cout << "    " << p.description << "\n    detected by:";
            for (const auto& c : p.detected_by) std::cout << " " << c;
            std::cout << "\n\n";
        }
    }
    return kOk;
}

int cmd_findings(const std::string& name, const Args& args) {
    po::options_description opts("Options");
    opts.add_options()("verbose,v", "also print each code's meaning, remediation and what triggers it");
    po::positional_options_description pos;
    po::variables_map vm;
    if (!parse_options(name, "[--verbose]",
                       "Lists the catalogue of finding codes that msglab reports, with what triggers each: the\n"
                       "scenarios of the library that report it, the plants it reveals, and the techniques.",
                       opts, pos, args, vm))
        return kOk;
    // What triggers each code: the scenario library, the plants, the other techniques.
    std::map<std::string, std::vector<std::string>> scenarios, plants;
    for (const auto& f : scenario::scenario_files((std::filesystem::path(MSGLAB_SOURCE_DIR) / "scenarios").string())) {
        try {
            auto s = scenario::load_scenario(f);
            if (!s.sanity) scenarios[s.finding].push_back(s.id);
        } catch (const scenario::ScenarioError&) {
        }
    }
    for (const auto& p : Registry::builtin().plants())
        for (const auto& c : p.detected_by) plants[c].push_back(p.id);
    std::cout << pad("CODE", 30) << pad("CWE", 8) << pad("SEVERITY", 9) << "TITLE\n";
    for (const auto& c : finding_catalogue()) {
        std::string code(c.code);
        std::cout << pad(code, 30) << pad("CWE-" + std::to_string(c.cwe), 8) << pad(severity_name(c.severity), 9)
                  << c.title << "\n";
        if (!vm.count("verbose")) continue;
        std::cout << "    " << c.meaning << "\n    remediation: " << c.remediation << "\n";
        std::cout << "    scenarios: ";
        for (const auto& s : scenarios[code]) std::cout << s << " ";
        std::cout << (scenarios[code].empty() ? "none\n" : "\n");
        if (!plants[code].empty()) {
            std::cout << "    reveals plants: ";
            for (const auto& p : plants[code]) std::cout << p << " ";
            std::cout << "\n";
        }
        std::cout << "\n";
    }
    return kOk;
}

}  // namespace msglab::cli
