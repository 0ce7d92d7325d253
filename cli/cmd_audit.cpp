// msglab audit: the main job. Self-checks, then every reference endpoint on
// loopback, clean and with each plant in turn, hunted; a report per run and
// an index page with the detection matrix (plant against technique).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "cli/cli.hpp"
#include "core/registry.hpp"
#include "report/text.hpp"
#include "scenario/hunt.hpp"

#ifndef MSGLAB_SOURCE_DIR
#define MSGLAB_SOURCE_DIR ""
#endif

namespace msglab::cli {

namespace {

namespace fs = std::filesystem;

std::string self_exe() {
    std::error_code ec;
    auto p = fs::read_symlink("/proc/self/exe", ec);
    return ec ? std::string("msglab") : p.string();
}

// A reference endpoint in its own process (a crash takes only it down),
// listening on an ephemeral loopback port it reports on its first line.
class Endpoint {
public:
    Endpoint(const std::string& protocol, const std::vector<std::string>& plants, const fs::path& log,
             const std::map<std::string, std::string>& files) {
        std::vector<std::string> argv = {self_exe(), "serve", protocol, "--listen", "127.0.0.1:0"};
        const ProtocolInfo* info = Registry::builtin().protocol(protocol);
        for (const auto& o : info->hunt_serve_options) argv.push_back(o);
        for (const auto& f : info->server_files) argv.insert(argv.end(), {f.option, files.at(f.key)});
        for (const auto& p : plants) argv.insert(argv.end(), {"--plant", p});
        m_pid = fork();
        if (m_pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
        if (m_pid == 0) {
            // Everything it prints goes to its log (a pipe nobody drains would stall it).
            int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0) dup2(fd, STDOUT_FILENO), dup2(fd, STDERR_FILENO);
            std::vector<char*> c;
            for (auto& a : argv) c.push_back(a.data());
            c.push_back(nullptr);
            execv(c[0], c.data());
            _exit(127);
        }
        // "secmsg listening on 127.0.0.1:PORT; ..."
        static const std::regex re(R"(listening on ([0-9.]+):([0-9]+))");
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (std::chrono::steady_clock::now() < until) {
            std::ifstream in(log);
            std::string line;
            std::smatch m;
            while (std::getline(in, line)) {
                if (std::regex_search(line, m, re)) {
                    m_target = {m[1].str(), static_cast<std::uint16_t>(std::stoi(m[2].str()))};
                    return;
                }
            }
            int status;
            if (waitpid(m_pid, &status, WNOHANG) == m_pid) {
                m_pid = -1;
                break;
            }
            usleep(50000);
        }
        stop();
        throw std::runtime_error("the " + protocol + " reference endpoint did not start (see " + log.string() + ")");
    }
    ~Endpoint() { stop(); }
    const HostPort& target() const { return m_target; }
    // True when it was still running (it did not crash).
    bool stop() {
        if (m_pid <= 0) return false;
        int status = 0;
        bool alive = waitpid(m_pid, &status, WNOHANG) == 0;
        if (alive) {
            kill(m_pid, SIGTERM);
            for (int i = 0; i < 50 && waitpid(m_pid, &status, WNOHANG) == 0; ++i) usleep(20000);
            kill(m_pid, SIGKILL);
            waitpid(m_pid, &status, 0);
        }
        m_pid = -1;
        return alive;
    }

private:
    pid_t m_pid = -1;
    HostPort m_target;
};

struct AuditRun {
    std::string protocol, plant;  // plant empty: clean
    std::string folder;
    scenario::HuntResult result;
    std::map<std::string, std::set<std::string>> codes;  // code -> techniques
    bool detected = false;         // planted: a detected_by code was reported
    std::vector<std::string> unexpected;  // clean: codes other than the design findings
    bool report_written = false;
    std::string error;
    std::string note;
};

const char* const kTechniques[] = {"scenario", "replay", "fuzz", "capture"};

void write_index(const fs::path& out, const std::vector<AuditRun>& runs, bool ok) {
    const Registry& reg = Registry::builtin();
    std::ofstream h(out / "index.html");
    h << "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>msglab audit</title><style>"
         "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
         "td,th{border:1px solid #ccc;padding:.35em .7em;text-align:left}th{background:#f3f3f3}"
         ".yes{background:#d9f2d9;text-align:center}.no{color:#999;text-align:center}.bad{background:#f8d0d0}"
         ".ok{background:#d9f2d9}code{font-size:.95em}</style></head><body>\n<h1>msglab audit</h1>\n<p>Result: <strong>"
      << (ok ? "every plant detected; clean endpoints show only their documented design findings"
             : "NOT CLEAN: see the rows marked in red")
      << "</strong></p>\n";
    std::set<std::string> protocols;
    for (const auto& r : runs) protocols.insert(r.protocol);
    for (const auto& p : protocols) {
        h << "<h2>" << report::html_escape(reg.protocol(p)->name) << "</h2>\n<h3>Detection matrix</h3>\n<table><tr><th>plant</th>"
             "<th>expected finding</th>";
        for (const char* t : kTechniques) h << "<th>" << t << "</th>";
        h << "<th>detected</th><th>report</th></tr>\n";
        for (const auto& r : runs) {
            if (r.protocol != p || r.plant.empty()) continue;
            const PlantInfo* info = reg.plant(r.plant);
            h << "<tr" << (r.detected ? "" : " class=\"bad\"") << "><td><code>" << report::html_escape(r.plant) << "</code></td><td>";
            for (const auto& c : info->detected_by) h << "<code>" << c << "</code> ";
            h << "</td>";
            for (const char* t : kTechniques) {
                bool hit = false;
                for (const auto& c : info->detected_by) hit |= r.codes.count(c) && r.codes.at(c).count(t);
                h << (hit ? "<td class=\"yes\">&#10003;</td>" : "<td class=\"no\">&ndash;</td>");
            }
            h << "<td>" << (r.detected ? "yes" : "NO") << "</td><td>"
              << (r.report_written ? "<a href=\"" + r.folder + "/report.html\">report</a>" : "<a href=\"" + r.folder + "/findings.jsonl\">findings</a>")
              << "</td></tr>\n";
        }
        h << "</table>\n<h3>Clean endpoint</h3>\n<table><tr><th>finding</th><th>techniques</th><th>documented design finding</th></tr>\n";
        for (const auto& r : runs) {
            if (r.protocol != p || !r.plant.empty()) continue;
            const auto& design = reg.protocol(p)->design_findings;
            for (const auto& [code, techniques] : r.codes) {
                bool documented = std::count(design.begin(), design.end(), code) != 0;
                h << "<tr class=\"" << (documented ? "ok" : "bad") << "\"><td><code>" << code << "</code></td><td>";
                for (const auto& t : techniques) h << t << " ";
                h << "</td><td>" << (documented ? "yes" : "NO: a flaw in the clean reference") << "</td></tr>\n";
            }
            h << "</table><p><a href=\"" << r.folder << (r.report_written ? "/report.html\">clean run's report</a>" : "/findings.jsonl\">clean run's findings</a>")
              << "</p>\n";
        }
    }
    h << "</body></html>\n";
}

}  // namespace

int cmd_audit(const std::string& name, const Args& args) {
    po::options_description opts("Options");
    opts.add_options()
        ("out,o", po::value<std::string>()->default_value("audit-out"), "folder for the runs, reports and index.html")
        ("time", po::value<double>()->default_value(5), "seconds of network fuzz per run")
        ("protocol", po::value<std::vector<std::string>>()->composing(), "audit only this protocol (repeatable)");
    po::positional_options_description pos;
    po::variables_map vm;
    if (!parse_options(name, "[--out DIR] [--time S]",
                       "The main job: self-checks, then every reference endpoint started on loopback, clean and\n"
                       "with each plant in turn, hunted (scenarios, replay, network fuzz, capture analysis) with\n"
                       "a report per run, and DIR/index.html with the detection matrix. Exit 0 only when every\n"
                       "plant is detected and clean endpoints show only their documented design findings.",
                       opts, pos, args, vm))
        return kOk;
    fs::path out = vm["out"].as<std::string>();
    double fuzz = vm["time"].as<double>();
    if (fuzz < 0 || fuzz > 3600) throw UsageError("--time must be 0 to 3600 seconds");
    const Registry& reg = Registry::builtin();
    std::set<std::string> only;
    if (vm.count("protocol"))
        for (const auto& p : vm["protocol"].as<std::vector<std::string>>()) {
            if (!reg.protocol(p)) throw UsageError("unknown protocol '" + p + "'");
            only.insert(p);
        }

    std::cout << "msglab audit\n\nStage 1 of 3: self-checks of the crypto core and codecs\n";
    int rc = run_checks(false);
    fs::create_directories(out);

    std::cout << "\nStage 2 of 3: hunt every reference endpoint, clean and with each plant\n" << std::flush;
    std::vector<AuditRun> runs;
    for (const auto& p : reg.protocols()) {
        if (!only.empty() && !only.count(p.id)) continue;
        if (scenario::scenario_files((fs::path(MSGLAB_SOURCE_DIR) / "scenarios" / p.id).string()).empty()) {
            std::cout << "  " << p.id << ": no scenario library yet; skipped\n";
            continue;
        }
        std::vector<std::string> plants = {""};
        for (const auto* pl : reg.plants_of(p.id)) plants.push_back(pl->id);
        for (const auto& plant : plants) {
            AuditRun run;
            run.protocol = p.id;
            run.plant = plant;
            run.folder = p.id + "-" + (plant.empty() ? "clean" : plant.substr(plant.find('.') + 1));
            fs::path dir = out / run.folder;
            fs::remove_all(dir);
            fs::create_directories(dir);
            std::cout << "  " << std::left << std::setw(34) << (p.id + " " + (plant.empty() ? "clean" : plant)) << std::flush;
            auto start = std::chrono::steady_clock::now();
            try {
                // The server's own files go into the run's folder, where the checks read them.
                std::map<std::string, std::string> files;
                for (const auto& f : p.server_files) files[f.key] = (dir / f.filename).string();
                Endpoint ep(p.id, plant.empty() ? std::vector<std::string>{} : std::vector<std::string>{plant},
                            dir / "endpoint.log", files);
                scenario::HuntOptions o;
                o.protocol = p.id;
                o.target = ep.target();
                o.out = dir.string();
                o.fuzz_seconds = fuzz;
                o.library_root = (fs::path(MSGLAB_SOURCE_DIR) / "scenarios").string();
                if (!plant.empty()) o.plants = {plant};
                o.server_files = files;
                std::string serve_options;
                std::string hunt_files;
                for (const auto& so : p.hunt_serve_options) serve_options += " " + so;
                for (const auto& f : p.server_files) {
                    serve_options += " " + f.option + " " + files[f.key];
                    hunt_files += " --server-file " + f.key + "=" + files[f.key];
                }
                o.command = "msglab serve " + p.id + serve_options + (plant.empty() ? "" : " --plant " + plant) +
                            " & msglab hunt " + p.id + " --target 127.0.0.1:PORT" + hunt_files;
                run.result = scenario::run_hunt(o);
                bool alive = ep.stop();
                if (!run.result.stop_reason.empty()) run.error = run.result.stop_reason;
                // A clean endpoint must survive its hunt; a planted one may die of its plant
                // (a sanitizer build aborts on the memory-safety plant), which the findings show.
                if (!alive && plant.empty()) run.error = "the clean endpoint died during the hunt (see endpoint.log)";
                if (!alive && !plant.empty()) run.note = "the endpoint died during the hunt (see endpoint.log)";
            } catch (const std::exception& e) {
                run.error = e.what();
            }
            for (const auto& f : run.result.findings) run.codes[f.code].insert(f.technique);
            const auto& design = p.design_findings;
            if (plant.empty()) {
                for (const auto& [code, t] : run.codes)
                    if (!std::count(design.begin(), design.end(), code)) run.unexpected.push_back(code);
            } else {
                for (const auto& c : reg.plant(plant)->detected_by) run.detected |= run.codes.count(c) != 0;
            }
            // The reports, by the report command (a failure there does not lose the hunt's folder).
            std::string cmd = "'" + self_exe() + "' report '" + dir.string() + "' --out '" + dir.string() + "' >'" +
                              (dir / "report.log").string() + "' 2>&1";
            run.report_written = std::system(cmd.c_str()) == 0 && fs::exists(dir / "report.html");
            double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            std::cout << std::right << std::setw(6) << std::fixed << std::setprecision(1) << secs << " s  ";
            if (!run.error.empty()) std::cout << "ERROR: " << run.error;
            else if (plant.empty()) std::cout << run.result.findings.size() << " finding(s), "
                                             << (run.unexpected.empty() ? "only design findings" : "UNEXPECTED findings");
            else std::cout << (run.detected ? "detected" : "NOT DETECTED") << " by";
            if (run.error.empty() && !plant.empty())
                for (const char* t : kTechniques) {
                    bool hit = false;
                    for (const auto& c : reg.plant(plant)->detected_by) hit |= run.codes.count(c) && run.codes[c].count(t);
                    if (hit) std::cout << " " << t;
                }
            if (!run.note.empty()) std::cout << "; " << run.note;
            std::cout << "\n" << std::flush;
            runs.push_back(std::move(run));
        }
    }

    bool ok = rc == kOk && !runs.empty();
    for (const auto& r : runs) ok &= r.error.empty() && (r.plant.empty() ? r.unexpected.empty() : r.detected);
    std::cout << "\nStage 3 of 3: index page\n";
    write_index(out, runs, ok);
    std::cout << "  " << (out / "index.html").string() << "\n\n";

    std::cout << std::left << std::setw(34) << "run" << std::setw(10) << "scenario" << std::setw(8) << "replay"
              << std::setw(6) << "fuzz" << std::setw(9) << "capture" << "result\n";
    for (const auto& r : runs) {
        std::cout << std::setw(34) << (r.protocol + " " + (r.plant.empty() ? "clean" : r.plant));
        for (const char* t : kTechniques) {
            std::size_t n = 0;
            for (const auto& [code, techniques] : r.codes) n += techniques.count(t);
            std::cout << std::setw(std::string(t).size() + 2) << n;
        }
        if (!r.error.empty()) std::cout << "ERROR";
        else if (r.plant.empty()) std::cout << (r.unexpected.empty() ? "design findings only" : "UNEXPECTED");
        else std::cout << (r.detected ? "detected" : "NOT DETECTED");
        std::cout << "\n";
    }
    std::cout << "\naudit: " << (ok ? "PASSED: every plant detected, clean endpoints show only their design findings"
                                   : "FAILED")
              << "\n";
    return ok ? kOk : kFailure;
}

}  // namespace msglab::cli
