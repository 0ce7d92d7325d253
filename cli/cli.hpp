// Shared pieces of the msglab command: the command table and option parsing.
#pragma once

#include <boost/program_options.hpp>

#include <functional>
#include <stdexcept>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "core/address.hpp"
#include "core/registry.hpp"

namespace msglab::cli {

namespace po = boost::program_options;

// Exit statuses.
constexpr int kOk = 0;
constexpr int kFailure = 1;  // the command ran and something failed
constexpr int kUsage = 2;    // the command line was wrong

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

using Args = std::vector<std::string>;

struct Command {
    std::string name;
    std::string summary;   // one line for `msglab --help`
    std::function<int(const std::string& name, const Args& args)> run;
};

const std::vector<Command>& commands();

// Parses `args` against `options` (and `positional`). Prints the help text and
// returns false when --help was given; throws UsageError on a bad command line.
bool parse_options(const std::string& command, const std::string& usage, const std::string& description,
                   po::options_description& options, const po::positional_options_description& positional,
                   const Args& args, po::variables_map& vm);

// Command implementations.
int cmd_protocols(const std::string&, const Args&);
int cmd_plants(const std::string&, const Args&);
int cmd_findings(const std::string&, const Args&);
int cmd_selftest(const std::string&, const Args&);
int cmd_audit(const std::string&, const Args&);
int cmd_serve(const std::string&, const Args&);
int cmd_connect(const std::string&, const Args&);
int cmd_capture(const std::string&, const Args&);
int cmd_decode(const std::string&, const Args&);
int cmd_replay(const std::string&, const Args&);
int cmd_tshark(const std::string&, const Args&);
int cmd_wireshark(const std::string&, const Args&);
int cmd_fuzz(const std::string&, const Args&);
int cmd_report(const std::string& name, const Args& args);
int cmd_scenario(const std::string&, const Args&);
int cmd_hunt(const std::string&, const Args&);
// The known-answer self-checks (selftest, and the audit's first stage).
int run_checks(bool quiet);

// `msglab fuzz --protocol P --target HOST:PORT ...`: fuzzing a live endpoint
// (cli/cmd_netfuzz.cpp). Parses its own options; `cmd_fuzz` hands it the
// whole command line when --protocol or --target is present.
int fuzz_network(const std::string& command, const Args& args);

// Per-protocol endpoints behind `serve` and `connect`.
int secmsg_serve(const po::variables_map& vm);
int secmsg_connect(const po::variables_map& vm);
void slmp_serve_options(po::options_description& o);
void slmp_connect_options(po::options_description& o);
int slmp_serve(const po::variables_map& vm);
int slmp_connect(const po::variables_map& vm);
void csmp_serve_options(po::options_description& o);
void csmp_connect_options(po::options_description& o);
int csmp_serve(const po::variables_map& vm);
int csmp_connect(const po::variables_map& vm);
void spchat_serve_options(po::options_description& o);
void spchat_connect_options(po::options_description& o);
int spchat_serve(const po::variables_map& vm);
int spchat_connect(const po::variables_map& vm);
void socp_serve_options(po::options_description& o);
void socp_connect_options(po::options_description& o);
int socp_serve(const po::variables_map& vm);
int socp_connect(const po::variables_map& vm);
void signal_serve_options(po::options_description& o);
void signal_connect_options(po::options_description& o);
int signal_serve(const po::variables_map& vm);
int signal_connect(const po::variables_map& vm);

// --server-file KEY=PATH options (repeatable): files of the server under
// test that scenario checks read (a database). Throws UsageError.
std::map<std::string, std::string> server_files_of(const po::variables_map& vm);

// `msglab serve`: --listen as HOST:PORT with an IP address, and the --plant
// ids for `protocol`. Both throw UsageError with what is wrong.
HostPort listen_option(const po::variables_map& vm, std::uint16_t default_port);
PlantSet plants_option(const po::variables_map& vm, std::string_view protocol);

// One line to `os`, whole: the endpoints print from their I/O threads too.
void say(std::ostream& os, const std::string& line);

// Raises the open-file limit to its hard maximum, for servers with many peers.
void raise_fd_limit();

}  // namespace msglab::cli
