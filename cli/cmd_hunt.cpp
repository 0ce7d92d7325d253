// msglab hunt <protocol> --target HOST:PORT [--time S] --out DIR
#include <filesystem>
#include <iostream>
#include <map>

#include "cli/cli.hpp"
#include "core/address.hpp"
#include "core/registry.hpp"
#include "report/model.hpp"
#include "report/report.hpp"
#include "scenario/hunt.hpp"

#ifndef MSGLAB_SOURCE_DIR
#define MSGLAB_SOURCE_DIR ""
#endif

namespace msglab::cli {

int cmd_hunt(const std::string& name, const Args& args) {
    po::options_description options("Options");
    options.add_options()
        ("protocol", po::value<std::string>(), "protocol id (see 'msglab protocols')")
        ("target,t", po::value<std::string>(), "HOST:PORT of the endpoint")
        ("time", po::value<double>()->default_value(10), "seconds for the network fuzz")
        ("out,o", po::value<std::string>(), "folder for findings.jsonl, capture.pcap, keys.log, run.json, traces/")
        ("iface", po::value<std::string>(), "capture interface (default: lo for loopback targets, else any)")
        ("no-capture", "do not capture (no capture analysis)")
        ("seed", po::value<std::uint64_t>()->default_value(1), "seed of the replay and the fuzz")
        ("server-file", po::value<std::vector<std::string>>()->composing(),
         "KEY=PATH: a file of the server under test that checks read (csmp: db=its --db file); repeatable")
        ("scenarios", po::value<std::string>()->default_value((std::filesystem::path(MSGLAB_SOURCE_DIR) / "scenarios").string()),
         "scenario library root (PROTOCOL/ under it)");
    po::positional_options_description pos;
    pos.add("protocol", 1);
    po::variables_map vm;
    if (!parse_options(name, "<protocol> --target HOST:PORT [--time S] --out DIR",
                       "Runs every technique against one endpoint while capturing its traffic: the protocol's\n"
                       "scenarios, replay mutations against a fresh session, a short network fuzz; then decodes\n"
                       "the capture and analyses it. Writes findings.jsonl, capture.pcap, keys.log, run.json and\n"
                       "traces into DIR ('msglab report DIR' makes the reports). Capturing needs root or\n"
                       "CAP_NET_RAW; without it the hunt goes on without capture analysis.\n"
                       "Exit status 1 when there are findings or the target was not there.",
                       options, pos, args, vm))
        return kOk;
    if (!vm.count("protocol")) throw UsageError("which protocol? (see 'msglab protocols')");
    if (!vm.count("target")) throw UsageError("--target HOST:PORT is required");
    if (!vm.count("out")) throw UsageError("--out DIR is required");
    scenario::HuntOptions o;
    o.protocol = vm["protocol"].as<std::string>();
    if (!Registry::builtin().protocol(o.protocol))
        throw UsageError("unknown protocol '" + o.protocol + "' (see 'msglab protocols')");
    std::string err;
    auto target = parse_host_port(vm["target"].as<std::string>(), std::nullopt, err);
    if (!target) throw UsageError("--target: " + err);
    o.target = *target;
    o.out = vm["out"].as<std::string>();
    o.fuzz_seconds = vm["time"].as<double>();
    if (o.fuzz_seconds < 0 || o.fuzz_seconds > 86400) throw UsageError("--time must be 0 to 86400 seconds");
    if (vm.count("iface")) o.iface = vm["iface"].as<std::string>();
    o.capture = !vm.count("no-capture");
    o.server_files = server_files_of(vm);
    o.seed = vm["seed"].as<std::uint64_t>();
    o.library_root = vm["scenarios"].as<std::string>();
    o.command = "msglab hunt";
    for (const auto& a : args) o.command += " " + a;
    o.progress = [](const std::string& line) { std::cerr << "  " << line << "\n"; };
    std::cerr << "hunting " << o.protocol << " at " << o.target.to_string() << " into " << o.out << "\n";
    auto r = scenario::run_hunt(o);
    if (!r.stop_reason.empty()) {
        std::cerr << "msglab hunt: " << r.stop_reason << "\n";
        return kFailure;
    }
    std::map<std::string, std::vector<std::string>> by_code;
    for (const auto& f : r.findings) by_code[f.code].push_back(f.technique);
    std::cout << "\n" << r.findings.size() << " finding(s) in " << r.seconds << " s:\n";
    for (const auto& [code, techniques] : by_code) {
        std::cout << "  " << code << "  (";
        for (std::size_t i = 0; i < techniques.size(); ++i) std::cout << (i ? ", " : "") << techniques[i];
        std::cout << ")\n";
    }
    // The reports, from the folder just written (as 'msglab report DIR' would).
    std::string reports;
    try {
        auto model = report::load_report(o.out);
        for (const auto& p : report::write_reports(model, o.out, report::parse_formats("html,md,sarif,junit"), {}))
            reports += ", " + p.filename().string();
    } catch (const std::exception& e) {
        std::cerr << "msglab hunt: the reports could not be written: " << e.what() << "\n";
    }
    std::cout << "written: " << o.out << "/findings.jsonl, run.json, keys.log, traces/"
              << (r.capture_note.empty() ? ", capture.pcap" : "") << reports << "\n";
    return r.findings.empty() ? kOk : kFailure;
}

}  // namespace msglab::cli
