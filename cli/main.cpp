#include <iostream>

#include "cli/cli.hpp"

#ifndef MSGLAB_VERSION
#define MSGLAB_VERSION "unknown"
#endif

namespace msglab::cli {

const std::vector<Command>& commands() {
    static const std::vector<Command> table = {
        {"protocols", "list the protocol variants msglab speaks (id, transport, default port)", cmd_protocols},
        {"plants", "list the backdoor catalogue: switchable flaws for the reference endpoints", cmd_plants},
        {"findings", "list the finding codes with CWE, severity and meaning", cmd_findings},
        {"serve", "run a reference endpoint (server or listening peer) of a protocol", cmd_serve},
        {"connect", "connect to an endpoint, send messages or chat interactively", cmd_connect},
        {"capture", "capture live traffic with libpcap into a pcap file", cmd_capture},
        {"decode", "decode the messages of a capture (plaintexts with a key log), as text or JSON", cmd_decode},
        {"replay", "replay a captured session to a live target, with mutations, and report findings", cmd_replay},
        {"scenario", "check and run declarative attack scenarios (YAML) against a live endpoint", cmd_scenario},
        {"hunt", "every technique against one endpoint while capturing: scenarios, replay, fuzz, capture analysis", cmd_hunt},
        {"fuzz", "run fuzz campaigns: libFuzzer targets, or a live endpoint over the network", cmd_fuzz},
        {"report", "write HTML, Markdown, SARIF and JUnit reports from a hunt's folder", cmd_report},
        {"tshark", "run tshark with the msglab plugin loaded (also as root)", cmd_tshark},
        {"wireshark", "run Wireshark with the msglab plugin loaded (also as root)", cmd_wireshark},
        {"selftest", "run the built-in known-answer self-checks of the crypto core and codecs", cmd_selftest},
        {"audit", "the main job: check every variant, clean and planted, and report", cmd_audit},
    };
    return table;
}

bool parse_options(const std::string& command, const std::string& usage, const std::string& description,
                   po::options_description& options, const po::positional_options_description& positional,
                   const Args& args, po::variables_map& vm) {
    options.add_options()("help,h", "show this help");
    try {
        po::store(po::command_line_parser(args).options(options).positional(positional).run(), vm);
        if (vm.count("help")) {
            std::cout << "Usage: msglab " << command << " " << usage << "\n\n" << description << "\n\n"
                      << options << "\n";
            return false;
        }
        po::notify(vm);
    } catch (const po::error& e) {
        throw UsageError(e.what());
    }
    return true;
}

static void print_help() {
    std::cout << "msglab " MSGLAB_VERSION
                 ": a testing and analysis suite for small secure-messaging protocols\n\n"
                 "Usage: msglab <command> [options]\n"
                 "       msglab <command> --help     options of one command\n"
                 "       msglab --version\n\n"
                 "Commands:\n";
    for (const auto& c : commands()) {
        std::string name = c.name;
        name.resize(12, ' ');
        std::cout << "  " << name << c.summary << "\n";
    }
    std::cout << "\nExit status: 0 success, 1 the command failed (or found a problem), 2 bad command line.\n";
}

}  // namespace msglab::cli

int main(int argc, char** argv) {
    using namespace msglab::cli;
    Args args(argv + 1, argv + argc);
    if (args.empty()) {
        print_help();
        return kUsage;
    }
    const std::string& first = args[0];
    if (first == "--help" || first == "-h" || first == "help") {
        print_help();
        return kOk;
    }
    if (first == "--version" || first == "-V") {
        std::cout << "msglab " MSGLAB_VERSION "\n";
        return kOk;
    }
    for (const auto& c : commands()) {
        if (c.name != first) continue;
        try {
            return c.run(c.name, Args(args.begin() + 1, args.end()));
        } catch (const UsageError& e) {
            std::cerr << "msglab " << c.name << ": " << e.what() << "\n"
                      << "Try 'msglab " << c.name << " --help'.\n";
            return kUsage;
        } catch (const std::exception& e) {
            std::cerr << "msglab " << c.name << ": error: " << e.what() << "\n";
            return kFailure;
        }
    }
    if (!first.empty() && first[0] == '-')
        std::cerr << "msglab: unknown option '" << first << "'\n";
    else
        std::cerr << "msglab: unknown command '" << first << "'\n";
    std::cerr << "Try 'msglab --help' for the list of commands.\n";
    return kUsage;
}
