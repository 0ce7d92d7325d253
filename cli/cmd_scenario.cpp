// msglab scenario check | run | list: declarative attack scenarios.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cli/cli.hpp"
#include "core/address.hpp"
#include "core/keylog.hpp"
#include "report/model.hpp"
#include "report/report.hpp"
#include "scenario/suite.hpp"

#ifndef MSGLAB_SOURCE_DIR
#define MSGLAB_SOURCE_DIR ""
#endif

namespace msglab::cli {

std::map<std::string, std::string> server_files_of(const po::variables_map& vm) {
    std::map<std::string, std::string> out;
    if (!vm.count("server-file")) return out;
    for (const auto& kv : vm["server-file"].as<std::vector<std::string>>()) {
        auto eq = kv.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == kv.size())
            throw UsageError("--server-file wants KEY=PATH, got '" + kv + "'");
        out[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    return out;
}

namespace {

namespace fs = std::filesystem;
using scenario::Outcome;
using scenario::RunResult;
using scenario::Scenario;

// Parses every file; prints each problem. Returns the scenarios, or nullopt
// when any file is bad.
std::optional<std::vector<Scenario>> load_all(const std::vector<std::string>& paths, bool quiet) {
    std::vector<Scenario> out;
    bool bad = false;
    for (const auto& path : paths) {
        auto files = scenario::scenario_files(path);
        if (files.empty()) {
            std::cerr << "msglab scenario: " << path << ": no such scenario file or folder (*.yaml)\n";
            bad = true;
        }
        for (const auto& f : files) {
            try {
                out.push_back(scenario::load_scenario(f));
                if (!quiet) std::cout << "ok     " << f << "  (" << out.back().id << ", " << out.back().steps.size() << " steps)\n";
            } catch (const scenario::ScenarioError& e) {
                std::cerr << "error  " << e.what() << "\n";
                bad = true;
            }
        }
    }
    std::map<std::string, std::string> ids;
    for (const auto& s : out) {
        auto [it, fresh] = ids.emplace(s.id, s.source);
        if (!fresh) {
            std::cerr << "error  " << s.source << ": id '" << s.id << "' is also used by " << it->second << "\n";
            bad = true;
        }
    }
    if (bad) return std::nullopt;
    return out;
}

fs::path library_dir(const std::string& protocol) { return fs::path(MSGLAB_SOURCE_DIR) / "scenarios" / protocol; }

int scenario_check(const Args& args) {
    po::options_description options("Options");
    options.add_options()("files", po::value<std::vector<std::string>>()->multitoken(), "scenario files or folders");
    po::positional_options_description pos;
    pos.add("files", -1);
    po::variables_map vm;
    if (!parse_options("scenario check", "FILE|DIR...",
                       "Checks scenario files: YAML syntax, every key known, values well-formed, references to\n"
                       "earlier named steps, finding codes in the catalogue, unique ids. Exit 1 when any is bad.",
                       options, pos, args, vm))
        return kOk;
    if (!vm.count("files")) throw UsageError("give at least one scenario file or folder");
    auto all = load_all(vm["files"].as<std::vector<std::string>>(), false);
    if (!all) return kFailure;
    std::cout << all->size() << " scenario(s) valid\n";
    return kOk;
}

int scenario_list(const Args& args) {
    po::options_description options("Options");
    options.add_options()("files", po::value<std::vector<std::string>>()->multitoken(),
                          "scenario files or folders (default: the library in the source tree)");
    po::positional_options_description pos;
    pos.add("files", -1);
    po::variables_map vm;
    if (!parse_options("scenario list", "[FILE|DIR...]", "Lists scenarios: id, severity, finding code, title.",
                       options, pos, args, vm))
        return kOk;
    std::vector<std::string> paths = vm.count("files") ? vm["files"].as<std::vector<std::string>>()
                                                       : std::vector<std::string>{(fs::path(MSGLAB_SOURCE_DIR) / "scenarios").string()};
    auto all = load_all(paths, true);
    if (!all) return kFailure;
    for (const auto& s : *all)
        std::cout << std::left << std::setw(36) << s.id << std::setw(10) << severity_name(s.severity) << std::setw(30)
                  << s.finding << s.title << (s.sanity ? "  [sanity]" : "") << "\n";
    return kOk;
}

void print_tap(const std::vector<RunResult>& results) {
    std::cout << "TAP version 13\n1.." << results.size() << "\n";
    for (std::size_t i = 0; i < results.size(); ++i) {
        const auto& r = results[i];
        bool ok = r.outcome == Outcome::pass || r.outcome == Outcome::xpass;
        std::cout << (ok ? "ok " : "not ok ") << i + 1 << " - " << r.trace.id << ": " << r.trace.title;
        if (r.outcome == Outcome::xfail || r.outcome == Outcome::xpass) std::cout << " # TODO " << *r.trace.xfail;
        std::cout << "\n";
        if (r.outcome != Outcome::pass) {
            std::cout << "  ---\n  outcome: " << outcome_name(r.outcome) << "\n";
            if (!r.message.empty()) std::cout << "  message: " << nlohmann::json(r.message).dump() << "\n";
            std::cout << "  finding: " << r.trace.finding << "\n  ...\n";
        }
    }
}

int scenario_run(const Args& args) {
    po::options_description options("Options");
    options.add_options()
        ("files", po::value<std::vector<std::string>>()->multitoken(), "scenario files or folders")
        ("target,t", po::value<std::string>(), "HOST:PORT of the endpoint under test")
        ("protocol,p", po::value<std::string>(), "run the library's scenarios of this protocol (when no files are given)")
        ("format,f", po::value<std::string>()->default_value("text"), "text, tap, junit or json (on standard output)")
        ("out,o", po::value<std::string>()->default_value("scenario-out"),
         "folder for traces/, findings.jsonl and run.json (also an input of 'msglab report')")
        ("keylog", po::value<std::string>(), "append the live sessions' keys to this key log")
        ("connect-timeout", po::value<double>()->default_value(3.0), "seconds to wait for a connection")
        ("server-file", po::value<std::vector<std::string>>()->composing(),
         "KEY=PATH: a file of the server under test that checks read (csmp: db=its --db file); repeatable")
        ("no-sanity", "do not add the protocol's sanity scenario first and last");
    po::positional_options_description pos;
    pos.add("files", -1);
    po::variables_map vm;
    if (!parse_options("scenario run", "FILE|DIR... --target HOST:PORT [--format tap|junit|json]",
                       "Runs scenarios against a live endpoint. The protocol's sanity scenario runs first and last:\n"
                       "a target that is not there, or not healthy, is reported as such and nothing is judged.\n"
                       "Every run writes its trace (a scenario file with what was sent and received, runnable\n"
                       "again) to OUT/traces/, findings of failed scenarios to OUT/findings.jsonl.\n"
                       "Outcomes: PASS, FAIL (the target misbehaved), XFAIL/XPASS (a failure was expected),\n"
                       "ERROR (the scenario could not be carried out). Exit 1 unless all PASS or XFAIL.",
                       options, pos, args, vm))
        return kOk;
    if (!vm.count("target")) throw UsageError("--target HOST:PORT is required");
    std::string err;
    auto target = parse_host_port(vm["target"].as<std::string>(), std::nullopt, err);
    if (!target) throw UsageError("--target: " + err);
    std::string format = vm["format"].as<std::string>();
    if (format != "text" && format != "tap" && format != "junit" && format != "json")
        throw UsageError("--format must be text, tap, junit or json");
    std::vector<std::string> paths;
    if (vm.count("files")) paths = vm["files"].as<std::vector<std::string>>();
    else if (vm.count("protocol")) paths.push_back(library_dir(vm["protocol"].as<std::string>()).string());
    else throw UsageError("give scenario files or folders, or --protocol for the library's");
    auto loaded = load_all(paths, true);
    if (!loaded) return kFailure;
    std::vector<Scenario> scenarios = std::move(*loaded);

    fs::path out = vm["out"].as<std::string>();
    fs::create_directories(out / "traces");
    std::unique_ptr<KeyLogWriter> keylog;
    if (vm.count("keylog")) keylog = std::make_unique<KeyLogWriter>(vm["keylog"].as<std::string>());
    scenario::RunOptions ro;
    ro.target = *target;
    ro.connect_timeout = vm["connect-timeout"].as<double>();
    ro.keylog = keylog.get();
    ro.server_files = server_files_of(vm);
    bool text = format == "text";
    bool progress = !text && isatty(STDERR_FILENO);

    std::string command = "msglab scenario run";
    for (const auto& a : args) command += " " + a;
    std::string started = utc_timestamp_now();
    auto start = std::chrono::steady_clock::now();
    nlohmann::json rows = nlohmann::json::array();
    auto on_result = [&](const RunResult& r, const std::string& label) {
        if (progress) std::cerr << "\r\033[K" << label << " " << outcome_name(r.outcome) << std::flush;
        fs::path trace = out / "traces" / (label + ".yaml");
        std::ofstream(trace) << "# trace of a run against " << target->to_string() << "; runnable again as a scenario\n"
                             << scenario::to_yaml(r.trace);
        rows.push_back(scenario::scenario_row(r, label, "traces/" + label + ".yaml"));
        if (!text) return;
        std::cout << std::left << std::setw(6) << outcome_name(r.outcome) << std::setw(38) << label << std::right
                  << std::setw(6) << static_cast<long>(r.seconds * 1000 + 0.5) << " ms  " << r.trace.title << "\n";
        if (r.outcome != Outcome::pass) std::cout << "      " << r.message << "\n";
        std::cout << std::flush;
    };
    auto suite = scenario::run_suite(scenarios, ro, (fs::path(MSGLAB_SOURCE_DIR) / "scenarios").string(),
                                     !vm.count("no-sanity"), on_result);
    if (progress) std::cerr << "\r\033[K";
    if (suite.unreachable || suite.unhealthy) {
        std::cerr << "msglab scenario: " << suite.stop_reason << "\n";
        return kFailure;
    }
    if (!suite.healthy_at_end) std::cerr << "msglab scenario: " << suite.stop_reason << "\n";
    const auto& results = suite.results;
    bool healthy_at_end = suite.healthy_at_end;

    // The folder is a report's input too: findings.jsonl and run.json.
    std::map<Outcome, int> counts;
    std::ofstream findings(out / "findings.jsonl");
    FindingWriter fw(findings);
    for (const auto& r : results) {
        ++counts[r.outcome];
        if (r.finding) fw.write(*r.finding);
    }
    findings.close();
    std::set<std::string> protocols;
    for (const auto& r : results) protocols.insert(r.trace.protocol);
    nlohmann::json run = {
        {"tool", "msglab"},
        {"target", target->to_string()},
        {"command", command},
        {"started", started},
        {"duration_s", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()},
        {"techniques", {{{"name", "scenario"}, {"runs", results.size()}, {"findings", fw.count()}}}},
        {"scenarios", rows}};
    if (protocols.size() == 1) run["protocol"] = *protocols.begin();
    std::ofstream(out / "run.json") << run.dump(2) << "\n";
    if (format == "tap") print_tap(results);
    else if (format == "junit") std::cout << report::render_junit(report::load_report(out), {});
    else if (format == "json") std::cout << rows.dump(2) << "\n";
    else {
        std::cout << "\n" << results.size() << " run(s): ";
        for (Outcome o : {Outcome::pass, Outcome::fail, Outcome::xfail, Outcome::xpass, Outcome::error})
            std::cout << counts[o] << " " << outcome_name(o) << (o == Outcome::error ? "" : ", ");
        std::cout << "; " << fw.count() << " finding(s) in " << (out / "findings.jsonl").string() << "\n";
    }
    bool good = counts[Outcome::fail] == 0 && counts[Outcome::xpass] == 0 && counts[Outcome::error] == 0 && healthy_at_end;
    return good ? kOk : kFailure;
}

}  // namespace

int cmd_scenario(const std::string& name, const Args& args) {
    if (args.empty() || args[0] == "--help" || args[0] == "-h") {
        std::cout << "Usage: msglab " << name << " check FILE|DIR...\n"
                  << "       msglab " << name << " run FILE|DIR... --target HOST:PORT [--format tap|junit|json]\n"
                  << "       msglab " << name << " list [FILE|DIR...]\n\n"
                  << "Declarative attack scenarios (YAML; docs/scenarios.md). 'msglab scenario run --help' for more.\n";
        return args.empty() ? kUsage : kOk;
    }
    Args rest(args.begin() + 1, args.end());
    if (args[0] == "check") return scenario_check(rest);
    if (args[0] == "run") return scenario_run(rest);
    if (args[0] == "list") return scenario_list(rest);
    throw UsageError("unknown subcommand '" + args[0] + "' (check, run, list)");
}

}  // namespace msglab::cli
