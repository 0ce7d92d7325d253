// msglab fuzz: libFuzzer campaigns over the built-in targets, or (with
// --protocol/--target) a live endpoint over the network.
//
// A campaign builds the clang targets when needed (build-fuzz/, as `make
// fuzzers`), runs each target in libFuzzer's fork mode so a crash does not end
// it, shows progress on one line, then reproduces every crash artifact,
// groups them by sanitizer kind and top stack frames, minimises one input per
// group, writes a CRASH finding per group and merges the new corpus entries
// that add coverage back into the seed corpus.
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cli/cli.hpp"
#include "cli/fuzz_campaign.hpp"
#include "core/crypto.hpp"
#include "core/findings.hpp"
#include "core/registry.hpp"

#ifndef MSGLAB_SOURCE_DIR
#define MSGLAB_SOURCE_DIR ""
#endif

namespace msglab::cli {

namespace {

namespace fs = std::filesystem;
using fuzz::TargetInfo;

struct Campaign {
    std::vector<const TargetInfo*> targets;
    unsigned seconds = 60;
    unsigned jobs = 1;
    std::uint64_t seed = 0;
    fs::path out, source, build_dir, seeds;
    std::vector<std::string> plants;
    bool merge = true, stop_on_crash = false, build_only = false, minimise = true;
};

struct TargetResult {
    const TargetInfo* target = nullptr;
    double seconds = 0;
    fuzz::Status status;
    std::size_t new_inputs = 0, merged = 0, artifacts = 0;
    std::vector<std::size_t> findings;  // indexes into the campaign's findings
    bool interrupted = false;
    int exit_status = 0;
};

extern "C" void on_interrupt(int) { fuzz::interrupted().store(true); }

std::string with_commas(std::uint64_t n) {
    std::string s = std::to_string(n);
    for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
    return s;
}

std::optional<std::string> find_in_path(const std::string& program) {
    const char* path = std::getenv("PATH");
    if (!path) return std::nullopt;
    std::stringstream dirs(path);
    for (std::string dir; std::getline(dirs, dir, ':');) {
        fs::path p = fs::path(dir.empty() ? "." : dir) / program;
        if (access(p.c_str(), X_OK) == 0) return p.string();
    }
    return std::nullopt;
}

std::size_t count_files(const fs::path& dir) {
    std::size_t n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.is_regular_file()) ++n;
    return n;
}

fs::path binary_of(const Campaign& c, const TargetInfo& t) { return c.build_dir / "fuzzers" / (t.name + "_fuzzer"); }

std::map<std::string, std::string> target_env(const Campaign& c, const TargetInfo& t, bool with_plants) {
    std::map<std::string, std::string> env{{"UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1"}};
    if (with_plants && t.stateful && !c.plants.empty()) {
        std::string list;
        for (const auto& p : c.plants)
            if (p.rfind(t.protocol + ".", 0) == 0) list += (list.empty() ? "" : ",") + p;
        if (!list.empty()) env["MSGLAB_FUZZ_PLANTS"] = list;
    }
    return env;
}

// Builds the libFuzzer binaries the campaign needs, as `make fuzzers` does.
void build_targets(const Campaign& c) {
    if (!fs::exists(c.source / "fuzzers" / "CMakeLists.txt"))
        throw std::runtime_error("the msglab source tree is needed to build the fuzz targets and was not found at '" +
                                 c.source.string() + "' (use --source DIR)");
    auto clang = find_in_path("clang++-14");
    if (!clang)
        throw std::runtime_error("clang++-14 is not installed; libFuzzer needs it (apt-get install clang-14 "
                                 "libclang-rt-14-dev, or 'make deps')");
    auto cmake = find_in_path("cmake");
    if (!cmake) throw std::runtime_error("cmake is not installed ('make deps')");
    fs::create_directories(c.out);
    fs::path log = c.out / "build.log";
    std::ofstream build_log(log);
    auto to_log = [&](const std::string& line) { build_log << line << "\n"; };
    auto start = std::chrono::steady_clock::now();
    std::cerr << "building " << c.targets.size() << " fuzz target(s) with clang-14 (ASan+UBSan) in "
              << c.build_dir.string() << "/ ..." << std::flush;
    if (!fs::exists(c.build_dir / "CMakeCache.txt")) {
        std::vector<std::string> configure = {*cmake,
                                              "-S",
                                              c.source.string(),
                                              "-B",
                                              c.build_dir.string(),
                                              "-DCMAKE_CXX_COMPILER=clang++-14",
                                              "-DCMAKE_C_COMPILER=clang-14",
                                              "-DMSGLAB_FUZZ=ON",
                                              "-DMSGLAB_BUILD_TESTS=OFF",
                                              "-DMSGLAB_BUILD_BENCH=OFF",
                                              "-DMSGLAB_BUILD_DISSECTOR=OFF"};
        if (find_in_path("ninja")) configure.insert(configure.begin() + 1, {"-G", "Ninja"});
        if (fuzz::run_process(configure, {}, std::chrono::seconds(600), to_log) != 0) {
            std::cerr << " failed\n";
            throw std::runtime_error("configuring the fuzz build failed; see " + log.string());
        }
    }
    std::vector<std::string> build = {*cmake, "--build", c.build_dir.string(), "-j",
                                      std::to_string(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN))), "--target"};
    for (const auto* t : c.targets) build.push_back(t->name + "_fuzzer");
    bool up_to_date = false;
    int rc = fuzz::run_process(build, {}, std::chrono::seconds(3600), [&](const std::string& line) {
        to_log(line);
        if (line.find("no work to do") != std::string::npos) up_to_date = true;
    });
    if (rc != 0) {
        std::cerr << " failed\n";
        throw std::runtime_error("building the fuzz targets failed; see " + log.string());
    }
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start).count();
    std::cerr << (up_to_date ? " up to date\n" : " done in " + std::to_string(secs) + " s\n");
}

std::string progress_line(const TargetInfo& t, double elapsed, unsigned total, const fuzz::Status& s,
                          std::size_t crashes) {
    std::ostringstream o;
    // Runs over time: fork mode's own exec/s drops to 0 while jobs crash.
    auto rate = elapsed > 0.5 ? static_cast<std::uint64_t>(s.executions / elapsed) : s.exec_per_sec;
    o << t.name << "  [" << std::setw(4) << static_cast<unsigned>(elapsed) << "/" << total << " s]  "
      << with_commas(s.executions) << " runs  " << with_commas(rate) << " exec/s  cov "
      << s.coverage << "  corpus " << s.corpus << "  crashes " << crashes;
    return o.str();
}

struct CrashGroup {
    fuzz::CrashReport report;
    std::vector<std::string> artifacts;
    std::string log;  // the reproducer run's output
    bool reproduced = false;
};

// Runs `input` through the target once and reads what it reported.
std::pair<fuzz::CrashReport, std::string> reproduce(const Campaign& c, const TargetInfo& t, const std::string& input) {
    std::string log;
    fuzz::run_process({binary_of(c, t).string(), "-timeout=10", "-rss_limit_mb=2048", input},
                      target_env(c, t, true), std::chrono::seconds(60),
                      [&](const std::string& line) {
                          if (log.size() < (1u << 20)) log += line + "\n";
                      });
    return {fuzz::parse_crash_report(log), log};
}

// Reproduces, groups, minimises and reports the artifacts of one target.
void collect_crashes(const Campaign& c, const TargetInfo& t, const fs::path& artifacts_dir, TargetResult& result,
                     std::vector<Finding>& findings, std::map<std::string, std::size_t>& seen) {
    auto artifacts = fuzz::list_artifacts(artifacts_dir.string());
    result.artifacts = artifacts.size();
    if (artifacts.empty()) return;
    std::cerr << "  " << artifacts.size() << " crash input(s): reproducing and grouping by stack ...\n";
    std::map<std::string, CrashGroup> groups;
    for (const auto& a : artifacts) {
        auto [report, log] = reproduce(c, t, a);
        bool reproduced = !report.empty();
        if (!reproduced) {
            // A crash that does not come back on its own input (state outside
            // the input, or a flaky timeout): still reported, as tentative.
            std::string name = fs::path(a).filename().string();
            report.kind = name.substr(0, name.find('-'));
            report.summary = "did not reproduce when run again";
        }
        auto& g = groups[report.signature()];
        if (g.artifacts.empty()) g.report = report, g.log = log, g.reproduced = reproduced;
        g.artifacts.push_back(a);
    }
    fs::create_directories(c.out / "crashes");
    for (auto& [signature, g] : groups) {
        if (auto it = seen.find(signature); it != seen.end()) {
            findings[it->second].evidence.detail +=
                "\nalso reached from target " + t.name + " (" + std::to_string(g.artifacts.size()) + " input(s))";
            result.findings.push_back(it->second);
            continue;
        }
        // The smallest input of the group, then libFuzzer's minimiser on it.
        std::string smallest = *std::min_element(g.artifacts.begin(), g.artifacts.end(), [](auto& x, auto& y) {
            return fs::file_size(x) < fs::file_size(y);
        });
        std::string id = hex(crypto::sha256(to_bytes(signature))).substr(0, 8);
        fs::path repro = c.out / "crashes" / (t.name + "-" + id + ".bin");
        fs::copy_file(smallest, repro, fs::copy_options::overwrite_existing);
        bool minimised = false;
        if (c.minimise && g.reproduced && g.report.kind != "timeout" && g.report.kind != "out-of-memory") {
            fs::path min = c.out / "crashes" / (t.name + "-" + id + ".min");
            fuzz::run_process({binary_of(c, t).string(), "-minimize_crash=1", "-max_total_time=15", "-timeout=10",
                               "-exact_artifact_path=" + min.string(), smallest},
                              target_env(c, t, true), std::chrono::seconds(60), [](const std::string&) {});
            if (fs::exists(min) && fs::file_size(min) > 0 && fs::file_size(min) < fs::file_size(repro)) {
                auto [again, log] = reproduce(c, t, min.string());
                if (again.signature() == signature) {
                    fs::rename(min, repro);
                    g.log = log;
                    minimised = true;
                }
            }
            std::error_code ec;
            fs::remove(min, ec);
        }
        std::ofstream(c.out / "crashes" / (t.name + "-" + id + ".txt")) << g.log;

        Finding f = Finding::make("CRASH", t.protocol, "fuzz target " + t.name, "fuzz");
        f.confidence = g.reproduced ? Confidence::certain : Confidence::tentative;
        f.title = g.report.kind + (g.report.frames.empty() ? "" : " in " + g.report.frames.front());
        std::ostringstream detail;
        detail << g.report.summary;
        if (!g.report.frames.empty()) {
            detail << "\nstack:";
            for (std::size_t i = 0; i < g.report.frames.size() && i < 8; ++i) detail << "\n  " << g.report.frames[i];
        }
        detail << "\n" << g.artifacts.size() << " crashing input(s) in this group; reproducer "
               << fs::file_size(repro) << " bytes" << (minimised ? " (minimised)" : "");
        f.evidence.detail = detail.str();
        std::ifstream in(repro, std::ios::binary);
        Bytes head(64);
        in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
        head.resize(static_cast<std::size_t>(in.gcount()));
        f.evidence.bytes_hex = hex(head);
        f.evidence.reproducer = repro.string();
        f.reproduce = fuzz::shell_command({binary_of(c, t).string(), repro.string()}, [&] {
            auto env = target_env(c, t, true);
            env.erase("UBSAN_OPTIONS");
            return env;
        }());
        f.time = utc_timestamp_now();
        seen[signature] = findings.size();
        result.findings.push_back(findings.size());
        findings.push_back(std::move(f));
    }
}

TargetResult run_target(const Campaign& c, const TargetInfo& t, std::vector<Finding>& findings,
                        std::map<std::string, std::size_t>& seen) {
    TargetResult r;
    r.target = &t;
    fs::path dir = c.out / t.name;
    fs::path corpus = dir / "corpus", artifacts = dir / "artifacts";
    fs::create_directories(corpus);
    std::error_code ec;
    fs::remove_all(artifacts, ec);  // a new campaign reports only its own crashes
    fs::create_directories(artifacts);
    std::size_t corpus_before = count_files(corpus);

    auto env = target_env(c, t, true);
    std::cerr << "\n" << t.name << (t.stateful ? " (stateful)" : "") << ": " << c.seconds << " s, " << c.jobs
              << (c.jobs == 1 ? " job" : " jobs");
    if (auto p = env.find("MSGLAB_FUZZ_PLANTS"); p != env.end()) std::cerr << ", plants: " << p->second;
    std::cerr << "\n";

    std::vector<std::string> argv = {binary_of(c, t).string(),
                                     "-fork=" + std::to_string(c.jobs),
                                     "-ignore_crashes=" + std::string(c.stop_on_crash ? "0" : "1"),
                                     "-max_total_time=" + std::to_string(c.seconds),
                                     "-seed=" + std::to_string(c.seed),
                                     "-timeout=10",
                                     "-rss_limit_mb=2048",
                                     "-artifact_prefix=" + artifacts.string() + "/"};
    fs::path dict = c.source / "fuzzers" / "dicts" / (t.name + ".dict");
    if (fs::exists(dict)) argv.push_back("-dict=" + dict.string());
    argv.push_back(corpus.string());
    if (fs::exists(c.seeds / t.name)) argv.push_back((c.seeds / t.name).string());

    std::ofstream log(dir / "fuzz.log");
    log << "$ " << fuzz::shell_command(argv, env) << "\n";
    bool tty = isatty(STDERR_FILENO);
    auto start = std::chrono::steady_clock::now();
    auto last_print = start;
    std::size_t crash_lines = 0;
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    r.exit_status = fuzz::run_process(argv, env, std::chrono::seconds(c.seconds + 120), [&](const std::string& line) {
        log << line << "\n";
        if (line.find("Test unit written to") != std::string::npos) ++crash_lines;
        if (!fuzz::parse_status_line(line, r.status)) return;
        std::size_t crashes = std::max<std::size_t>(crash_lines, r.status.crashes);
        auto now = std::chrono::steady_clock::now();
        if (tty) {
            std::cerr << "\r\033[K  " << progress_line(t, elapsed(), c.seconds, r.status, crashes) << std::flush;
        } else if (now - last_print >= std::chrono::seconds(10)) {
            std::cerr << "  " << progress_line(t, elapsed(), c.seconds, r.status, crashes) << "\n";
            last_print = now;
        }
    });
    r.seconds = elapsed();
    r.interrupted = fuzz::interrupted().load();
    std::size_t crashes = std::max<std::size_t>(crash_lines, r.status.crashes);
    std::cerr << (tty ? "\r\033[K  " : "  ") << progress_line(t, r.seconds, c.seconds, r.status, crashes)
              << (r.interrupted ? "  (interrupted)" : "") << "\n";
    if (r.status.executions == 0 && fuzz::list_artifacts(artifacts.string()).empty())
        throw std::runtime_error(t.name + ": libFuzzer did not run (exit status " + std::to_string(r.exit_status) +
                                 "); see " + (dir / "fuzz.log").string());
    r.new_inputs = count_files(corpus) - std::min(corpus_before, count_files(corpus));

    collect_crashes(c, t, artifacts, r, findings, seen);

    // Inputs that add coverage go back into the seed corpus, run without
    // plants so the seeds stay clean for the corpus-replay tests.
    if (c.merge && !r.interrupted && fs::exists(c.seeds) && count_files(corpus) > 0) {
        fs::path seeds = c.seeds / t.name;
        fs::create_directories(seeds);
        std::size_t before = count_files(seeds);
        std::ofstream merge_log(dir / "merge.log");
        fuzz::run_process({binary_of(c, t).string(), "-merge=1", "-timeout=10", "-rss_limit_mb=2048",
                           seeds.string(), corpus.string()},
                          target_env(c, t, false), std::chrono::seconds(300),
                          [&](const std::string& line) { merge_log << line << "\n"; });
        r.merged = count_files(seeds) - std::min(before, count_files(seeds));
        std::cerr << "  merged " << r.merged << " input(s) with new coverage into " << seeds.string() << "\n";
    }
    return r;
}

void write_summary(const Campaign& c, const std::vector<TargetResult>& results, const std::vector<Finding>& findings,
                   const std::string& command) {
    nlohmann::json j;
    j["command"] = command;
    j["seconds_per_target"] = c.seconds;
    j["jobs"] = c.jobs;
    j["seed"] = c.seed;
    j["plants"] = c.plants;
    j["targets"] = nlohmann::json::array();
    for (const auto& r : results) {
        j["targets"].push_back({{"target", r.target->name},
                                {"stateful", r.target->stateful},
                                {"goal_exec_per_sec", r.target->goal_exec_per_sec},
                                {"seconds", r.seconds},
                                {"executions", r.status.executions},
                                {"exec_per_sec", r.seconds > 0 ? r.status.executions / r.seconds : 0.0},
                                {"coverage", r.status.coverage},
                                {"features", r.status.features},
                                {"corpus", r.status.corpus},
                                {"new_inputs", r.new_inputs},
                                {"merged_into_seeds", r.merged},
                                {"crash_inputs", r.artifacts},
                                {"unique_crashes", r.findings.size()},
                                {"interrupted", r.interrupted}});
    }
    j["findings"] = findings.size();
    std::ofstream(c.out / "summary.json") << j.dump(2) << "\n";
}

}  // namespace

int cmd_fuzz(const std::string& name, const Args& args) {
    for (const auto& a : args)
        if (a == "--target" || a.rfind("--target=", 0) == 0 || a == "--protocol" || a.rfind("--protocol=", 0) == 0)
            return fuzz_network(name, args);

    po::options_description options("Options");
    options.add_options()
        ("targets", po::value<std::vector<std::string>>()->multitoken(), "fuzz targets (default: all; see --list)")
        ("time,t", po::value<unsigned>()->default_value(60), "seconds per target")
        ("jobs,j", po::value<unsigned>()->default_value(1), "parallel libFuzzer jobs per target (fork mode)")
        ("out,o", po::value<std::string>()->default_value("fuzz-out"),
         "campaign folder: corpus, crashes, findings.jsonl, summary.json, logs")
        ("plant", po::value<std::vector<std::string>>()->composing(),
         "let stateful targets switch this plant on (repeatable; see 'msglab plants')")
        ("seed", po::value<std::uint64_t>()->default_value(1), "libFuzzer's random seed")
        ("stop-on-crash", "end a target's run at its first crash")
        ("no-merge", "keep new corpus entries out of the seed corpus")
        ("no-minimize", "keep crash inputs as found")
        ("build-only", "only build the fuzz targets")
        ("list", "list the fuzz targets")
        ("source", po::value<std::string>()->default_value(MSGLAB_SOURCE_DIR), "msglab source tree")
        ("build-dir", po::value<std::string>(), "fuzz build folder (default: SOURCE/build-fuzz)")
        ("seeds", po::value<std::string>(), "seed corpus root, one folder per target (default: SOURCE/fuzzers/corpus)");
    po::positional_options_description positional;
    positional.add("targets", -1);
    po::variables_map vm;
    if (!parse_options(name, "[TARGET...] [--time S] [--jobs N] [--out DIR] [--plant ID]...",
                       "Runs libFuzzer campaigns over msglab's fuzz targets (built with clang-14, ASan and UBSan\n"
                       "when needed), with progress on one line. Crashes are reproduced, grouped by sanitizer\n"
                       "kind and stack, minimised, and written as CRASH findings (DIR/findings.jsonl) with a\n"
                       "reproducer in DIR/crashes/. New inputs that add coverage are merged back into the seed\n"
                       "corpus. Exit status 1 when something crashed.\n\n"
                       "Network mode fuzzes a live endpoint instead:\n"
                       "  msglab fuzz --protocol secmsg --target HOST:PORT --time S   (--protocol P --help for more)",
                       options, positional, args, vm))
        return kOk;

    if (vm.count("list")) {
        for (const auto& t : fuzz::targets())
            std::cout << std::left << std::setw(16) << t.name << std::setw(10) << (t.stateful ? "stateful" : "parser")
                      << t.description << "\n";
        return kOk;
    }
    Campaign c;
    if (vm.count("targets")) {
        std::set<std::string> chosen;
        for (const auto& n : vm["targets"].as<std::vector<std::string>>()) {
            const TargetInfo* t = fuzz::find_target(n);
            if (!t) throw UsageError("unknown fuzz target '" + n + "' (see 'msglab fuzz --list')");
            if (chosen.insert(n).second) c.targets.push_back(t);
        }
    } else {
        for (const auto& t : fuzz::targets()) c.targets.push_back(&t);
    }
    c.seconds = vm["time"].as<unsigned>();
    if (c.seconds == 0 || c.seconds > 7 * 24 * 3600) throw UsageError("--time must be 1 to 604800 seconds");
    c.jobs = vm["jobs"].as<unsigned>();
    if (c.jobs == 0 || c.jobs > 256) throw UsageError("--jobs must be 1 to 256");
    c.seed = vm["seed"].as<std::uint64_t>();
    c.out = vm["out"].as<std::string>();
    c.source = vm["source"].as<std::string>();
    c.build_dir = vm.count("build-dir") ? fs::path(vm["build-dir"].as<std::string>()) : c.source / "build-fuzz";
    c.seeds = vm.count("seeds") ? fs::path(vm["seeds"].as<std::string>()) : c.source / "fuzzers" / "corpus";
    c.merge = !vm.count("no-merge");
    c.minimise = !vm.count("no-minimize");
    c.stop_on_crash = vm.count("stop-on-crash") != 0;
    c.build_only = vm.count("build-only") != 0;
    if (vm.count("plant")) {
        for (const auto& p : vm["plant"].as<std::vector<std::string>>()) {
            auto dot = p.find('.');
            std::string protocol = dot == std::string::npos ? "" : p.substr(0, dot);
            try {
                PlantSet::parse({p}, protocol);
            } catch (const std::invalid_argument& e) {
                throw UsageError(e.what());
            }
            bool used = false;
            for (const auto* t : c.targets) used |= t->stateful && t->protocol == protocol;
            if (!used)
                throw UsageError("plant '" + p + "' applies to none of the chosen targets (stateful " + protocol +
                                 " targets take plants)");
            c.plants.push_back(p);
        }
    }
    if (c.source.empty()) throw UsageError("--source is needed: this msglab was built without its source path");

    build_targets(c);
    if (c.build_only) {
        for (const auto* t : c.targets) std::cout << binary_of(c, *t).string() << "\n";
        return kOk;
    }

    std::string command = "msglab fuzz";
    for (const auto& a : args) command += " " + a;
    fuzz::interrupted().store(false);
    struct sigaction sa {};
    sa.sa_handler = on_interrupt;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);

    std::vector<Finding> findings;
    std::map<std::string, std::size_t> seen;
    std::vector<TargetResult> results;
    for (const auto* t : c.targets) {
        results.push_back(run_target(c, *t, findings, seen));
        if (fuzz::interrupted().load()) break;
    }
    {
        std::ofstream out(c.out / "findings.jsonl");
        FindingWriter w(out);
        for (const auto& f : findings) w.write(f);
    }
    write_summary(c, results, findings, command);

    std::cout << "\n" << std::left << std::setw(16) << "target" << std::right << std::setw(8) << "time"
              << std::setw(14) << "runs" << std::setw(10) << "exec/s" << std::setw(8) << "cov" << std::setw(9)
              << "corpus" << std::setw(7) << "new" << std::setw(9) << "crashes" << "\n";
    for (const auto& r : results) {
        double rate = r.seconds > 0 ? r.status.executions / r.seconds : 0;
        std::cout << std::left << std::setw(16) << r.target->name << std::right << std::setw(7)
                  << static_cast<unsigned>(r.seconds + 0.5) << "s" << std::setw(14) << with_commas(r.status.executions)
                  << std::setw(10) << with_commas(static_cast<std::uint64_t>(rate)) << std::setw(8)
                  << r.status.coverage << std::setw(9) << r.status.corpus << std::setw(7) << r.new_inputs
                  << std::setw(9) << r.findings.size() << "\n";
    }
    std::cout << "\n";
    for (const auto& f : findings) {
        std::cout << "CRASH  " << f.title << "\n       reproducer: " << f.evidence.reproducer
                  << "\n       reproduce:  " << f.reproduce << "\n";
    }
    std::cout << findings.size() << " unique crash(es); findings: " << (c.out / "findings.jsonl").string()
              << ", summary: " << (c.out / "summary.json").string() << "\n";
    if (fuzz::interrupted().load()) {
        std::cerr << "msglab fuzz: interrupted\n";
        return findings.empty() ? 130 : kFailure;
    }
    return findings.empty() ? kOk : kFailure;
}

}  // namespace msglab::cli
