// msglab fuzz --protocol P --target HOST:PORT: fuzzing a live endpoint. The
// engine is replay/netfuzz; this file parses options, shows progress and
// prints the summary.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <iomanip>
#include <iostream>
#include <random>
#include <sstream>

#include "cli/cli.hpp"
#include "core/address.hpp"
#include "core/registry.hpp"
#include "replay/netfuzz.hpp"

namespace msglab::cli {

namespace {

std::atomic<bool> g_stop{false};
extern "C" void stop_campaign(int) { g_stop = true; }

std::string progress_line(const replay::NetFuzzStats& s, const replay::Coverage& c, const SessionModel& model,
                          std::size_t findings) {
    std::ostringstream l;
    l << std::fixed << std::setprecision(1) << s.seconds << " s: " << s.iterations << " iterations ("
      << (s.seconds > 0 ? static_cast<double>(s.iterations) / s.seconds : 0.0) << "/s), " << s.steps
      << " steps; states " << c.states_reached(model) << "/" << model.states.size() << ", transitions "
      << c.transitions_reached(model) << "/" << model.transitions.size() << " (+" << c.unexpected()
      << " unexpected); resets " << s.reset << ", silences " << s.silent << "; findings " << findings;
    return l.str();
}

void print_findings(const replay::NetFuzzResult& r) {
    std::cout << "findings: " << r.findings.size() << "\n";
    for (const auto& f : r.findings) {
        std::cout << "  " << f.finding.code << " (" << severity_name(f.finding.severity) << ", "
                  << confidence_name(f.finding.confidence) << ", seen " << f.count << "x): " << f.finding.title << "\n"
                  << "    " << f.finding.evidence.detail << "\n";
        if (!f.finding.reproduce.empty()) std::cout << "    reproduce: " << f.finding.reproduce << "\n";
    }
}

}  // namespace

int fuzz_network(const std::string& name, const Args& args) {
    po::options_description opts("Options");
    opts.add_options()("protocol,p", po::value<std::string>()->required(), "the protocol the target speaks")(
        "target,t", po::value<std::string>()->required(), "HOST:PORT of the live endpoint")(
        "time", po::value<double>()->default_value(60), "campaign length in seconds")(
        "iterations,n", po::value<std::uint64_t>(), "stop after this many iterations as well")(
        "seed", po::value<std::uint64_t>(), "seed for every choice (default: random; always printed)")(
        "out,o", po::value<std::string>()->default_value("netfuzz-out"),
        "folder for findings.jsonl, netfuzz-summary.json, state-graph.dot and repro/ (created)")(
        "timeout", po::value<double>()->default_value(300), "longest wait for the target's reaction to a step, ms")(
        "stop-on-crash", "stop at once when the target goes down (default: wait --restart-wait for it)")(
        "restart-wait", po::value<double>()->default_value(10),
        "seconds a target that went down may take to come back before the campaign stops")(
        "reproduce", po::value<std::string>(), "run again the iterations of a reproducer file (repro/*.json)");
    po::positional_options_description pos;
    po::variables_map vm;
    if (!parse_options(
            name, "--protocol P --target HOST:PORT [--time S] [--iterations N] [--seed N] [--out DIR]",
            "Fuzzes a live endpoint over the network. Each iteration opens a fresh connection, completes the\n"
            "handshake through msglab's own client and plays a plan of steps: the handshake, data messages\n"
            "sealed in the live session, sometimes a replayed, reflected or reordered message, a second\n"
            "handshake or a reconnect, then a close. One or more steps at any position, the handshake\n"
            "included, are mutated: bit flips, field-aware values (length, type, timestamp, weak DH values,\n"
            "MAC), truncation, random tails, writes split in pieces. After each step it records what the\n"
            "target did (answered, silent, FIN, RST) and infers the target's state from the protocol's\n"
            "session model; between iterations it checks a valid handshake still works.\n\n"
            "Reports state coverage (states and transitions of the session machine reached), writes the\n"
            "state graph as DOT (dot -Tsvg DIR/state-graph.dot -o graph.svg; red edges are transitions a\n"
            "clean endpoint never takes), and findings as JSON lines: REPLAY_ACCEPTED, REFLECTION_ACCEPTED,\n"
            "MAC_NOT_VERIFIED, STALE_MESSAGE_ACCEPTED, WEAK_DH_PUBLIC_ACCEPTED, LATE_HANDSHAKE_ACCEPTED,\n"
            "UNBOUNDED_LENGTH when the target keeps a connection open after a message a clean peer refuses,\n"
            "CRASH when it stops accepting connections or answering a valid handshake, each with a\n"
            "reproducer in DIR/repro/ and the command that replays it.\n\n"
            "Exit status: 0 no findings, 1 findings (or the target is unreachable), 2 bad command line.",
            opts, pos, args, vm))
        return kOk;

    const std::string proto_id = vm["protocol"].as<std::string>();
    const ProtocolInfo* proto = Registry::builtin().protocol(proto_id);
    if (!proto) throw UsageError("unknown protocol '" + proto_id + "' (see 'msglab protocols')");
    if (proto->session_model.empty() || !proto->make_live_client)
        throw UsageError("protocol '" + proto_id + "' has no session model for network fuzzing yet");
    std::string err;
    auto target = parse_host_port(vm["target"].as<std::string>(), std::nullopt, err);
    if (!target) throw UsageError("--target: " + err);
    if (target->port == 0) throw UsageError("--target: port 0 is not a port to connect to");

    replay::NetFuzzOptions o;
    o.target = *target;
    o.seconds = vm["time"].as<double>();
    if (o.seconds <= 0) throw UsageError("--time must be positive");
    if (vm.count("iterations")) o.iterations = vm["iterations"].as<std::uint64_t>();
    o.reply_timeout = vm["timeout"].as<double>() / 1000;
    if (o.reply_timeout <= 0) throw UsageError("--timeout must be positive");
    o.restart_wait = vm["restart-wait"].as<double>();
    if (o.restart_wait < 0) throw UsageError("--restart-wait cannot be negative");
    o.stop_on_crash = vm.count("stop-on-crash") != 0;
    if (vm.count("seed")) {
        o.seed = vm["seed"].as<std::uint64_t>();
    } else {
        std::random_device rd;
        o.seed = static_cast<std::uint64_t>(rd()) << 32 | rd();
    }
    o.out_dir = vm["out"].as<std::string>();
    std::ostringstream cmd;
    cmd << "msglab fuzz --protocol " << proto->id << " --target " << o.target.to_string();
    if (vm["timeout"].as<double>() != 300) cmd << " --timeout " << vm["timeout"].as<double>();
    o.command = cmd.str();
    const SessionModel& model = proto->session_model;

    if (vm.count("reproduce")) {
        std::string file = vm["reproduce"].as<std::string>();
        std::cout << "reproducing " << file << " against " << o.target.to_string() << "\n";
        o.out_dir.clear();  // a reproduction writes nothing
        auto r = replay::reproduce_netfuzz(o, *proto, file, &std::cout);
        print_findings(r);
        std::cout << (r.target_alive ? "the target is still alive\n" : "the target went down\n");
        return r.findings.empty() ? kOk : kFailure;
    }

    std::signal(SIGINT, stop_campaign);
    std::signal(SIGTERM, stop_campaign);
    bool tty = isatty(STDERR_FILENO);
    std::cerr << "seed: " << o.seed << "\n"
              << "fuzzing the " << proto->id << " " << model.role << " at " << o.target.to_string() << " for "
              << o.seconds << " s" << (o.iterations ? " or " + std::to_string(*o.iterations) + " iterations" : "")
              << "; output in " << o.out_dir << "; Ctrl-C stops\n";
    double last_line = 0;
    auto progress = [&](const replay::NetFuzzResult& so_far) {
        const auto& s = so_far.stats;
        if (tty) {
            std::cerr << "\r" << progress_line(s, so_far.coverage, model, so_far.findings.size()) << "\033[K"
                      << std::flush;
        } else if (s.seconds - last_line >= 5) {
            last_line = s.seconds;
            std::cerr << progress_line(s, so_far.coverage, model, so_far.findings.size()) << "\n";
        }
    };
    replay::NetFuzzResult r;
    try {
        r = replay::run_netfuzz(o, *proto, progress, &g_stop);
    } catch (...) {
        std::signal(SIGINT, SIG_DFL);
        std::signal(SIGTERM, SIG_DFL);
        throw;
    }
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    if (tty) std::cerr << "\n";
    replay::write_netfuzz_outputs(o, *proto, r);

    const auto& s = r.stats;
    std::cout << std::fixed << std::setprecision(1) << "stopped (" << r.stop_reason << ") after " << s.seconds << " s: "
              << s.iterations << " iterations ("
              << (s.seconds > 0 ? static_cast<double>(s.iterations) / s.seconds : 0.0) << "/s), " << s.steps
              << " steps on " << s.connections << " connections, " << s.mutated_steps << " mutated ("
              << s.mutated_before_last << " before the last message)\n"
              << "reactions: " << s.answered << " answered, " << s.silent << " silent, " << s.closed << " closed (FIN), "
              << s.reset << " reset (RST), " << s.unanswered << " unanswered where an answer was due; "
              << s.liveness_checks << " liveness checks, " << s.crashes << " time(s) down\n";
    std::cout << replay::coverage_table(model, r.coverage);
    print_findings(r);
    std::cout << "wrote " << o.out_dir << "/findings.jsonl, netfuzz-summary.json, state-graph.dot"
              << " (render: dot -Tsvg " << o.out_dir << "/state-graph.dot -o state-graph.svg)\n";
    return r.findings.empty() ? kOk : kFailure;
}

}  // namespace msglab::cli
