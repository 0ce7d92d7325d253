// msglab serve <protocol> and msglab connect <protocol>: the reference endpoints.
#include <sys/resource.h>

#include <iostream>
#include <mutex>

#include <boost/asio/ip/address.hpp>

#include "cli/cli.hpp"
#include "core/registry.hpp"

namespace msglab::cli {

void say(std::ostream& os, const std::string& line) {
    static std::mutex mutex;
    std::lock_guard<std::mutex> lock(mutex);
    os << line << std::endl;
}

void raise_fd_limit() {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

namespace {

struct EndpointCommands {
    std::string protocol;
    std::function<void(po::options_description&)> serve_options;
    std::function<int(const po::variables_map&)> serve;
    std::function<void(po::options_description&)> connect_options;
    std::function<int(const po::variables_map&)> connect;
};

void common_options(po::options_description& o) {
    o.add_options()("plant", po::value<std::vector<std::string>>()->composing(),
                    "switch on a plant from 'msglab plants' (repeatable); off by default")(
        "keylog", po::value<std::string>(), "append session secrets to this key log (else $MSGLAB_KEYLOGFILE)")(
        "max-payload", po::value<std::uint32_t>()->default_value(65536), "largest payload accepted, in bytes")(
        "window", po::value<std::uint64_t>()->default_value(300),
        "freshness window for timestamps, in seconds either side");
}

const std::vector<EndpointCommands>& endpoint_table() {
    static const std::vector<EndpointCommands> table = {
        {"secmsg",
         [](po::options_description& o) {
             o.add_options()("listen", po::value<std::string>()->default_value("127.0.0.1:5000"),
                             "address to listen on, HOST:PORT (port 0 picks a free one)")(
                 "echo", "send every received message back to its sender")(
                 "max-connections", po::value<std::size_t>()->default_value(10000), "concurrent peers at most")(
                 "duration", po::value<double>(), "stop after this many seconds (default: until Ctrl-C)");
             common_options(o);
         },
         secmsg_serve,
         [](po::options_description& o) {
             o.add_options()("send", po::value<std::vector<std::string>>()->composing(),
                             "send this message (repeatable, in order); without it, chat from the terminal")(
                 "wait", po::value<double>()->default_value(1.0),
                 "after the last message sent, wait this long for replies, in seconds")(
                 "timeout", po::value<double>()->default_value(10.0), "give up connecting after this many seconds");
             common_options(o);
         },
         secmsg_connect},
        {"slmp", slmp_serve_options, slmp_serve, slmp_connect_options, slmp_connect},
        {"csmp", csmp_serve_options, csmp_serve, csmp_connect_options, csmp_connect},
        {"spchat", spchat_serve_options, spchat_serve, spchat_connect_options, spchat_connect},
        {"socp", socp_serve_options, socp_serve, socp_connect_options, socp_connect},
        {"signal", signal_serve_options, signal_serve, signal_connect_options, signal_connect},
    };
    return table;
}

int endpoint_command(const std::string& name, const Args& args, bool serve) {
    const auto& reg = Registry::builtin();
    std::string ids;
    for (const auto& e : endpoint_table()) ids += (ids.empty() ? "" : ", ") + e.protocol;
    if (args.empty() || args[0] == "--help" || args[0] == "-h") {
        std::cout << "Usage: msglab " << name << " <protocol> [options]\n\n"
                  << (serve ? "Runs the reference endpoint of a protocol; it prints what it receives.\n"
                            : "Connects to an endpoint of a protocol, sends messages and prints replies.\n")
                  << "Protocols: " << ids << "\n"
                  << "Options depend on the protocol: 'msglab " << name << " <protocol> --help'.\n";
        return args.empty() ? kUsage : kOk;
    }
    const std::string& id = args[0];
    for (const auto& e : endpoint_table()) {
        if (e.protocol != id) continue;
        po::options_description opts(reg.protocol(id)->name + " options");
        (serve ? e.serve_options : e.connect_options)(opts);
        po::positional_options_description pos;
        if (!serve) {
            opts.add_options()("target", po::value<std::string>()->required(), "HOST:PORT to connect to");
            pos.add("target", 1);
        }
        po::variables_map vm;
        std::string usage = serve ? id + " [options]" : id + " HOST:PORT [options]";
        std::string desc =
            serve ? "Runs the " + reg.protocol(id)->name + " reference endpoint and prints what it receives."
                  : "Connects to a " + reg.protocol(id)->name +
                        " endpoint. With --send, sends each message and prints the replies;\n"
                        "without it, reads lines from the terminal (or standard input) and sends each one.\n"
                        "Type /quit to leave.";
        if (!parse_options(name + " " + id, usage.substr(id.size() + 1), desc, opts, pos,
                           Args(args.begin() + 1, args.end()), vm))
            return kOk;
        return serve ? e.serve(vm) : e.connect(vm);
    }
    if (reg.protocol(id)) throw UsageError("no " + name + " endpoint for protocol '" + id + "' yet (have: " + ids + ")");
    throw UsageError("unknown protocol '" + id + "' (have: " + ids + ")");
}

}  // namespace

int cmd_serve(const std::string& name, const Args& args) { return endpoint_command(name, args, true); }
int cmd_connect(const std::string& name, const Args& args) { return endpoint_command(name, args, false); }

HostPort listen_option(const po::variables_map& vm, std::uint16_t default_port) {
    std::string err;
    auto listen = parse_host_port(vm["listen"].as<std::string>(), default_port, err);
    if (!listen) throw UsageError("--listen: " + err);
    boost::system::error_code ec;
    boost::asio::ip::make_address(listen->host, ec);
    if (ec) throw UsageError("--listen: '" + listen->host + "' is not an IP address");
    return *listen;
}

PlantSet plants_option(const po::variables_map& vm, std::string_view protocol) {
    std::vector<std::string> plants;
    if (vm.count("plant")) plants = vm["plant"].as<std::vector<std::string>>();
    try {
        return PlantSet::parse(plants, protocol);
    } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
    }
}

}  // namespace msglab::cli
