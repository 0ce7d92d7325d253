// msglab fuzz end to end through the real binary: it builds the clang
// targets when needed, runs a clean campaign that merges new inputs into a
// seed corpus, and a short campaign with the memory-safety plant switched on
// finds it, minimises it and writes a CRASH finding whose reproducer crashes
// again (and only with the plant); the same for SLMP's slmp.unit-overflow.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/findings.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::test;
namespace fs = std::filesystem;

namespace {

std::size_t files_in(const fs::path& dir) {
    std::size_t n = 0;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file()) ++n;
    return n;
}

// `msglab fuzz TARGET --plant PLANT` for up to 60 s finds the plant: one
// certain CRASH finding of `protocol` whose title starts with `title`, with a
// minimised reproducer that crashes again with the plant and not without it.
void check_plant_found(const std::string& msglab, const fs::path& out, const std::string& target,
                       const std::string& plant, const std::string& protocol, const std::string& title) {
    auto planted = run_command(msglab + " fuzz " + target + " --plant " + plant + " --time 60 --stop-on-crash" +
                               " --no-merge --out " + shell_quote(out.string()) + " 2>&1");
    INFO(planted.output);
    REQUIRE(planted.exit_code == 1);
    CHECK(planted.output.find("plants: " + plant) != std::string::npos);
    std::ifstream in(out / "findings.jsonl");
    auto read = read_findings(in);
    REQUIRE(read.errors.empty());
    REQUIRE(read.findings.size() == 1);  // every crashing input is the same bug
    const Finding& f = read.findings[0];
    CHECK(f.code == "CRASH");
    CHECK(f.protocol == protocol);
    CHECK(f.confidence == Confidence::certain);
    CHECK(f.title.find(title) == 0);
    CHECK(f.reproduce.find("MSGLAB_FUZZ_PLANTS=" + plant) != std::string::npos);
    REQUIRE(fs::exists(f.evidence.reproducer));
    CHECK(fs::file_size(f.evidence.reproducer) < 64);  // minimised
    nlohmann::json psum;
    std::ifstream(out / "summary.json") >> psum;
    CHECK(psum["targets"][0]["seconds"].get<double>() < 60);

    // The reproduce command crashes again; the same input without the plant does not.
    auto again = run_command(f.reproduce + " 2>&1");
    CHECK(again.exit_code != 0);
    CHECK(again.output.find("heap-buffer-overflow") != std::string::npos);
    std::string binary = f.reproduce.substr(f.reproduce.find(' ') + 1);
    binary = binary.substr(0, binary.find(' '));
    auto unplanted = run_command(shell_quote(binary) + " " + shell_quote(f.evidence.reproducer) + " 2>&1");
    INFO(unplanted.output);
    CHECK(unplanted.exit_code == 0);
}

}  // namespace

TEST_CASE("msglab fuzz builds its targets, runs campaigns, and finds the memory-safety plant", "[fuzz]") {
    TempDir tmp;
    const std::string msglab = MSGLAB_BINARY;
    const fs::path source = MSGLAB_SOURCE_DIR;
    fs::copy(source / "fuzzers" / "corpus", tmp / "seeds", fs::copy_options::recursive);
    std::size_t keylog_seeds = files_in(tmp / "seeds" / "keylog");

    // A clean campaign over two parsers.
    auto clean = run_command(msglab + " fuzz keylog pcap --time 4 --out " + shell_quote((tmp / "clean").string()) +
                             " --seeds " + shell_quote((tmp / "seeds").string()) + " 2>&1");
    INFO(clean.output);
    REQUIRE(clean.exit_code == 0);
    CHECK(clean.output.find("keylog  [") != std::string::npos);  // progress
    CHECK(clean.output.find("0 unique crash(es)") != std::string::npos);
    nlohmann::json summary;
    std::ifstream(tmp / "clean" / "summary.json") >> summary;
    REQUIRE(summary["targets"].size() == 2);
    for (const auto& t : summary["targets"]) {
        CHECK(t["executions"].get<std::uint64_t>() > 1000);
        CHECK(t["exec_per_sec"].get<double>() > 100);
        CHECK(t["coverage"].get<std::uint64_t>() > 50);
        CHECK(t["unique_crashes"] == 0);
    }
    CHECK(fs::file_size(tmp / "clean" / "findings.jsonl") == 0);
    // Inputs with new coverage went back into the (copied) seed corpus.
    CHECK(files_in(tmp / "seeds" / "keylog") > keylog_seeds);
    CHECK(summary["targets"][0]["merged_into_seeds"].get<std::size_t>() ==
          files_in(tmp / "seeds" / "keylog") - keylog_seeds);

    // The stateful target with secmsg.recv-overflow allowed: found within 60 s.
    check_plant_found(msglab, tmp / "planted", "secmsg_session", "secmsg.recv-overflow", "secmsg",
                      "heap-buffer-overflow in msglab::secmsg::Session::handle_packet");
}

TEST_CASE("msglab fuzz runs the SLMP targets clean, and finds slmp.unit-overflow within 60 s", "[fuzz]") {
    TempDir tmp;
    const std::string msglab = MSGLAB_BINARY;

    // Without --plant both SLMP targets run clean from the seed corpus.
    auto clean = run_command(msglab + " fuzz slmp_codec slmp_session --time 5 --no-merge --out " +
                             shell_quote((tmp / "clean").string()) + " 2>&1");
    INFO(clean.output);
    REQUIRE(clean.exit_code == 0);
    CHECK(clean.output.find("0 unique crash(es)") != std::string::npos);
    CHECK(clean.output.find("plants:") == std::string::npos);
    nlohmann::json summary;
    std::ifstream(tmp / "clean" / "summary.json") >> summary;
    REQUIRE(summary["targets"].size() == 2);
    for (const auto& t : summary["targets"]) {
        INFO(t.dump());
        CHECK(t["executions"].get<std::uint64_t>() > 500);
        CHECK(t["coverage"].get<std::uint64_t>() > 500);
        CHECK(t["crash_inputs"] == 0);
        CHECK(t["unique_crashes"] == 0);
    }
    CHECK(fs::file_size(tmp / "clean" / "findings.jsonl") == 0);

    // The stateful target with slmp.unit-overflow allowed: a unit over the
    // original's 1024-byte read is a heap overflow, found within 60 s.
    check_plant_found(msglab, tmp / "planted", "slmp_session", "slmp.unit-overflow", "slmp",
                      "heap-buffer-overflow in msglab::slmp::ServerSession::overflow");
}

TEST_CASE("msglab fuzz refuses bad command lines clearly", "[fuzz]") {
    const std::string msglab = MSGLAB_BINARY;
    auto r = run_command(msglab + " fuzz no_such_target 2>&1");
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("unknown fuzz target 'no_such_target'") != std::string::npos);
    r = run_command(msglab + " fuzz --time 0 2>&1");
    CHECK(r.exit_code == 2);
    r = run_command(msglab + " fuzz fernet --plant secmsg.recv-overflow 2>&1");
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("applies to none of the chosen targets") != std::string::npos);
    r = run_command(msglab + " fuzz secmsg_session --plant secmsg.nope 2>&1");
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("unknown plant") != std::string::npos);
    r = run_command(msglab + " fuzz slmp_codec --plant slmp.unit-overflow 2>&1");
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("applies to none of the chosen targets") != std::string::npos);
    r = run_command(msglab + " fuzz slmp_session --plant secmsg.recv-overflow 2>&1");
    CHECK(r.exit_code == 2);
    r = run_command(msglab + " fuzz --list");
    CHECK(r.exit_code == 0);
    for (const char* t : {"secmsg_codec", "secmsg_session", "slmp_codec", "slmp_session", "fernet", "keylog", "pcap"})
        CHECK(r.output.find(t) != std::string::npos);
}
