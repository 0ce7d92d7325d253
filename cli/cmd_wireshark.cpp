// msglab tshark | wireshark: run Wireshark's tools with the msglab plugin
// loaded, also as root (which ignores WIRESHARK_PLUGIN_DIR otherwise).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <filesystem>
#include <iostream>

#include "cli/cli.hpp"

#ifndef MSGLAB_BUILD_PLUGIN_DIR
#define MSGLAB_BUILD_PLUGIN_DIR ""
#endif

namespace msglab::cli {

namespace fs = std::filesystem;

namespace {

bool has_plugin(const fs::path& dir) {
    std::error_code ec;
    return !dir.empty() && fs::exists(dir / "4.0" / "epan" / "msglab.so", ec);
}

// $MSGLAB_PLUGIN_DIR, the build tree, then the personal plugin folder.
std::optional<fs::path> plugin_dir() {
    if (const char* env = std::getenv("MSGLAB_PLUGIN_DIR"); env && *env) {
        if (has_plugin(env)) return fs::path(env);
        throw std::runtime_error(std::string("MSGLAB_PLUGIN_DIR=") + env + " has no 4.0/epan/msglab.so");
    }
    if (has_plugin(MSGLAB_BUILD_PLUGIN_DIR)) return fs::path(MSGLAB_BUILD_PLUGIN_DIR);
    if (const char* home = std::getenv("HOME"); home && *home) {
        fs::path personal = fs::path(home) / ".local" / "lib" / "wireshark" / "plugins";
        if (has_plugin(personal)) return personal;
    }
    return std::nullopt;
}

bool on_path(const std::string& tool) {
    const char* path = std::getenv("PATH");
    if (!path) return false;
    std::string p(path);
    std::size_t start = 0;
    while (start <= p.size()) {
        std::size_t end = p.find(':', start);
        std::string dir = p.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (!dir.empty() && access((dir + "/" + tool).c_str(), X_OK) == 0) return true;
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return false;
}

int run_tool(const std::string& tool, const Args& args) {
    if (!args.empty() && args[0] == "--help") {
        std::cout << "Usage: msglab " << tool << " [--keylog F] [" << tool << " options...]\n\n"
                  << "Runs " << tool << " with msglab's Wireshark plugin loaded (SecMsg decoded, decrypted and\n"
                  << "checked). Every other argument goes to " << tool << " unchanged ('msglab " << tool
                  << " -h' shows its own help).\n\n"
                  << "  --keylog F   key log for decryption (same as -o secmsg.keylog_file:F);\n"
                  << "               MSGLAB_KEYLOGFILE is honoured too\n\n"
                  << "The plugin is looked for in $MSGLAB_PLUGIN_DIR, then the build tree, then the personal\n"
                  << "plugin folder ('make install-plugin'). As root, " << tool
                  << " ignores plugin folders, so it is run\n"
                  << "in a user namespace (unshare -U) as an unprivileged user; files it opens must be readable\n"
                  << "by everyone.\n";
        return kOk;
    }
    auto dir = plugin_dir();
    if (!dir)
        throw std::runtime_error("msglab.so not found: build it with 'make', or 'make install-plugin', or set "
                                 "MSGLAB_PLUGIN_DIR to a folder holding 4.0/epan/msglab.so");
    if (!on_path(tool)) throw std::runtime_error(tool + " is not installed ('make deps' installs tshark)");
    std::vector<std::string> argv;
    if (geteuid() == 0) {
        if (!on_path("unshare")) throw std::runtime_error("running as root needs unshare (util-linux)");
        argv = {"unshare", "-U"};
    }
    argv.push_back(tool);
    for (std::size_t i = 0; i < args.size(); ++i) {
        if (args[i] == "--keylog") {
            if (i + 1 >= args.size()) throw UsageError("--keylog needs a file");
            std::error_code ec;
            std::string path = fs::absolute(args[++i], ec).string();
            if (access(path.c_str(), R_OK) != 0) throw UsageError("cannot read key log " + path);
            argv.push_back("-o");
            argv.push_back("secmsg.keylog_file:" + path);
        } else {
            argv.push_back(args[i]);
        }
    }
    setenv("WIRESHARK_PLUGIN_DIR", dir->c_str(), 1);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    std::cout.flush();
    execvp(cargv[0], cargv.data());
    throw std::runtime_error("cannot run " + argv[0] + ": " + std::strerror(errno));
}

}  // namespace

int cmd_tshark(const std::string&, const Args& args) { return run_tool("tshark", args); }
int cmd_wireshark(const std::string&, const Args& args) { return run_tool("wireshark", args); }

}  // namespace msglab::cli
