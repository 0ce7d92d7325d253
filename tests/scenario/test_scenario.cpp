// Scenarios: the format's checker, round trips of scenarios and traces, and
// SecMsg's library against in-process reference endpoints, clean and with
// each plant: each plant's scenarios FAIL against it and PASS against the
// clean peer; the design findings are XFAIL everywhere.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/registry.hpp"
#include "scenario/runner.hpp"
#include "echo_server.hpp"
#include "csmp_server.hpp"
#include "signal_server.hpp"
#include "socp_server.hpp"
#include "spchat_server.hpp"
#include "slmp_server.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::scenario;
using namespace msglab::test;
namespace fs = std::filesystem;

namespace {

const fs::path kLibrary = fs::path(MSGLAB_SOURCE_DIR) / "scenarios" / "secmsg";

std::string error_of(const std::string& yaml) {
    try {
        parse_scenario(yaml, "t.yaml");
    } catch (const ScenarioError& e) {
        return e.what();
    }
    return "";
}

const char* const kMinimal = R"(id: t-1
title: t
protocol: secmsg
finding: REPLAY_ACCEPTED
steps:
  - connect: {}
)";

std::map<std::string, Outcome> run_library(const HostPort& target) {
    std::map<std::string, Outcome> out;
    RunOptions o;
    o.target = target;
    for (const auto& f : scenario_files(kLibrary.string())) {
        Scenario s = load_scenario(f);
        RunResult r = run_scenario(s, o);
        INFO(s.id << ": " << r.message);
        CHECK(r.outcome != Outcome::error);
        out[s.id] = r.outcome;
    }
    return out;
}

}  // namespace

TEST_CASE("The checker names the line and the problem", "[scenario]") {
    CHECK(error_of(kMinimal).empty());
    CHECK(error_of(std::string(kMinimal) + "  - send: {type: REGULAR, txt: hi}\n").find("t.yaml:7: step 2 (send): unknown key 'txt'") == 0);
    CHECK(error_of(std::string(kMinimal) + "  - replay: {step: nothing}\n").find("no earlier step is named 'nothing'") != std::string::npos);
    CHECK(error_of(std::string(kMinimal) + "  - jump: {}\n").find("unknown action 'jump'") != std::string::npos);
    CHECK(error_of(std::string(kMinimal) + "  - expect: {message: REGULAR, close: true}\n").find("exactly one of") != std::string::npos);
    CHECK(error_of(std::string(kMinimal) + "  - tamper: {step: x, field: f, xor: zz}\n").find("no earlier step") != std::string::npos);
    std::string bad_code = kMinimal;
    bad_code.replace(bad_code.find("REPLAY_ACCEPTED"), 15, "NOT_A_CODE");
    CHECK(error_of(bad_code).find("t.yaml:4: finding 'NOT_A_CODE' is not in the catalogue") == 0);
    CHECK(error_of("id: [unclosed\n").find("not valid YAML") != std::string::npos);
    CHECK(error_of("- a list\n").find("a scenario is a YAML mapping") != std::string::npos);
    // A mapping used as a key: yaml-cpp's own exception comes out as a ScenarioError.
    CHECK(error_of(std::string(kMinimal) + "? {a: b}\n: c\n").find("t.yaml:") == 0);
    CHECK(error_of(std::string(kMinimal) + "  - {send: {type: REGULAR}, {x: 1}: 2}\n").find("t.yaml:") == 0);
    CHECK(error_of(std::string(kMinimal) + "  - wait: {ms: 99999999}\n").find("at most 600000") != std::string::npos);
    CHECK(error_of(std::string(kMinimal) + "  - send: {raw: 5365zz}\n").find("must be hex bytes") != std::string::npos);
    // Bytes that are not UTF-8 (an overlong NUL here) would not survive being
    // written back; the file is refused at the line that holds them.
    CHECK(error_of(std::string(kMinimal) + "description: |\n  \xc0\x80\n").find("t.yaml:8: not valid UTF-8") == 0);
    CHECK(error_of(std::string(kMinimal) + "  - send: {type: REGULAR, text: \"\xc3\xc3\"}\n").find("not valid UTF-8") != std::string::npos);
    CHECK(error_of(std::string(kMinimal) + "  - send: {type: REGULAR, text: \"caf\xc3\xa9\"}\n").empty());
}

TEST_CASE("Every library scenario round-trips through the canonical form", "[scenario]") {
    auto files = scenario_files(kLibrary.string());
    REQUIRE(files.size() >= 12);
    for (const auto& f : files) {
        Scenario s = load_scenario(f);
        std::string once = to_yaml(s);
        Scenario again = parse_scenario(once, f);
        CHECK(to_yaml(again) == once);
        CHECK(again.steps.size() == s.steps.size());
    }
}

TEST_CASE("SecMsg's library covers every plant and every design finding", "[scenario]") {
    std::set<std::string> covered;
    bool sanity = false;
    for (const auto& f : scenario_files(kLibrary.string())) {
        Scenario s = load_scenario(f);
        covered.insert(s.covers.begin(), s.covers.end());
        sanity |= s.sanity;
    }
    CHECK(sanity);
    const Registry& reg = Registry::builtin();
    for (const auto* p : reg.plants_of("secmsg")) CHECK(covered.count(p->id) == 1);
    for (const auto& code : reg.protocol("secmsg")->design_findings) CHECK(covered.count(code) == 1);
}

TEST_CASE("Against the clean reference every plant scenario passes and design findings are XFAIL", "[scenario]") {
    EchoServer clean;
    auto outcomes = run_library(clean.target());
    for (const auto& f : scenario_files(kLibrary.string())) {
        Scenario s = load_scenario(f);
        INFO(s.id);
        CHECK(outcomes[s.id] == (s.xfail ? Outcome::xfail : Outcome::pass));
    }
}

TEST_CASE("Each plant's scenarios FAIL against that plant, and only they", "[scenario]") {
    for (const auto* plant : Registry::builtin().plants_of("secmsg")) {
        if (!in_process_plant_ok(plant->id)) continue;
        EchoServer planted({plant->id});
        auto outcomes = run_library(planted.target());
        for (const auto& f : scenario_files(kLibrary.string())) {
            Scenario s = load_scenario(f);
            bool targets_it = std::count(s.covers.begin(), s.covers.end(), plant->id) != 0;
            INFO(plant->id << " / " << s.id);
            if (s.xfail) CHECK(outcomes[s.id] == Outcome::xfail);
            else CHECK(outcomes[s.id] == (targets_it ? Outcome::fail : Outcome::pass));
        }
    }
}

TEST_CASE("A failed scenario yields its finding, and its trace is a scenario that runs again", "[scenario]") {
    EchoServer planted({"secmsg.skip-hmac"});
    RunOptions o;
    o.target = planted.target();
    Scenario s = load_scenario((kLibrary / "tampered-ciphertext.yaml").string());
    RunResult r = run_scenario(s, o);
    REQUIRE(r.outcome == Outcome::fail);
    CHECK(r.failed_step == 6);
    CHECK(r.message.find("expected a close; got REGULAR_MESSAGE") != std::string::npos);
    REQUIRE(r.finding);
    CHECK(r.finding->code == "MAC_NOT_VERIFIED");
    CHECK(r.finding->technique == "scenario");
    CHECK(r.finding->reproduce.find("msglab scenario run") == 0);

    std::string trace = to_yaml(r.trace);
    CHECK(trace.find("sent: 5365674d5347") != std::string::npos);  // the bytes that went out
    CHECK(trace.find("outcome: FAIL") != std::string::npos);
    Scenario again = parse_scenario(trace, "trace.yaml");
    CHECK(again.steps.size() == s.steps.size());
    RunResult rerun = run_scenario(again, o);
    CHECK(rerun.outcome == Outcome::fail);
    CHECK(rerun.failed_step == r.failed_step);

    EchoServer clean;
    o.target = clean.target();
    CHECK(run_scenario(again, o).outcome == Outcome::pass);
}

TEST_CASE("A dead target is unreachable, not a failure", "[scenario]") {
    RunOptions o;
    o.target = {"127.0.0.1", 1};
    RunResult r = run_scenario(load_scenario((kLibrary / "sanity.yaml").string()), o);
    CHECK(r.outcome == Outcome::error);
    CHECK(r.unreachable);
    CHECK_FALSE(r.finding);
}

TEST_CASE("msglab scenario: check, run with every format, and a dead target", "[scenario]") {
    const std::string msglab = MSGLAB_BINARY;
    TempDir tmp;
    std::ofstream(tmp / "bad.yaml") << kMinimal << "  - send: {type: REGULAR, txt: hi}\n";
    auto check = run_command(msglab + " scenario check " + shell_quote((tmp / "bad.yaml").string()) + " 2>&1");
    CHECK(check.exit_code == 1);
    CHECK(check.output.find("bad.yaml:7: step 2 (send): unknown key 'txt'") != std::string::npos);
    check = run_command(msglab + " scenario check " + shell_quote(kLibrary.string()));
    CHECK(check.exit_code == 0);

    EchoServer planted({"secmsg.no-freshness"});
    std::string base = msglab + " scenario run " + shell_quote(kLibrary.string()) + " --target " +
                       planted.target().to_string() + " --out " + shell_quote((tmp / "out").string());
    auto tap = run_command(base + " --format tap");
    CHECK(tap.exit_code == 1);
    CHECK(tap.output.find("TAP version 13") == 0);
    CHECK(tap.output.find("not ok") != std::string::npos);
    CHECK(tap.output.find("- secmsg-replay-regular:") != std::string::npos);
    CHECK(tap.output.find("# TODO a design finding") != std::string::npos);

    auto json = run_command(base + " --format json");
    auto results = nlohmann::json::parse(json.output);
    std::map<std::string, std::string> by_id;
    for (const auto& r : results) by_id[r["id"]] = r["outcome"];
    CHECK(by_id["secmsg-sanity"] == "PASS");
    CHECK(by_id["secmsg-sanity-end"] == "PASS");
    CHECK(by_id["secmsg-replay-regular"] == "FAIL");
    CHECK(by_id["secmsg-stale-message"] == "FAIL");
    CHECK(by_id["secmsg-forged-hmac"] == "PASS");
    CHECK(fs::exists(tmp / "out" / "traces" / "secmsg-replay-regular.yaml"));
    std::ifstream findings(tmp / "out" / "findings.jsonl");
    auto read = read_findings(findings);
    std::set<std::string> codes;
    for (const auto& f : read.findings) codes.insert(f.code);
    CHECK(codes.count("REPLAY_ACCEPTED"));
    CHECK(codes.count("STALE_MESSAGE_ACCEPTED"));
    CHECK(codes.count("KEYSTREAM_REUSE"));  // XFAIL still reports the design finding

    auto junit = run_command(base + " --format junit");
    CHECK(junit.output.find("<testsuites ") != std::string::npos);
    CHECK(junit.output.find("<failure type=\"REPLAY_ACCEPTED\"") != std::string::npos);
    CHECK(junit.output.find("XFAIL: failed as expected") != std::string::npos);
    // The run's folder is a report's input.
    nlohmann::json run;
    std::ifstream(tmp / "out" / "run.json") >> run;
    CHECK(run["scenarios"].size() == by_id.size());
    CHECK(run["techniques"][0]["findings"] == read.findings.size());

    // The trace runs again as a scenario.
    auto rerun = run_command(msglab + " scenario run " + shell_quote((tmp / "out" / "traces" / "secmsg-replay-regular.yaml").string()) +
                             " --target " + planted.target().to_string() + " --out " + shell_quote((tmp / "out2").string()));
    CHECK(rerun.exit_code == 1);
    CHECK(rerun.output.find("FAIL  secmsg-replay-regular") != std::string::npos);

    auto dead = run_command(msglab + " scenario run " + shell_quote(kLibrary.string()) +
                            " --target 127.0.0.1:1 --out " + shell_quote((tmp / "dead").string()) + " 2>&1");
    CHECK(dead.exit_code == 1);
    CHECK(dead.output.find("no endpoint at 127.0.0.1:1") != std::string::npos);
    CHECK(dead.output.find("nothing was tested") != std::string::npos);
    CHECK(dead.output.find("FAIL ") == std::string::npos);
}

TEST_CASE("Every finding code in the catalogue is triggered by a library scenario against some endpoint", "[scenario]") {
    // The endpoints: clean, each plant, and one configured without a length bound.
    std::vector<std::unique_ptr<EchoServer>> servers;
    servers.push_back(std::make_unique<EchoServer>());
    for (const auto* p : Registry::builtin().plants_of("secmsg"))
        if (in_process_plant_ok(p->id)) servers.push_back(std::make_unique<EchoServer>(std::vector<std::string>{p->id}));
    servers.push_back(std::make_unique<EchoServer>(std::vector<std::string>{}, 0xffffffffu));
    std::set<std::string> triggered;
    for (const auto& f : scenario_files(kLibrary.string())) {
        Scenario s = load_scenario(f);
        for (const auto& server : servers) {
            RunOptions o;
            o.target = server->target();
            RunResult r = run_scenario(s, o);
            if (r.finding) triggered.insert(r.finding->code);
        }
    }
    // SLMP's library against SLMP servers, clean and with each plant, one
    // server per run (the crash plant leaves a dead one behind).
    std::vector<std::vector<std::string>> slmp_plants = {{}};
    for (const auto* p : Registry::builtin().plants_of("slmp"))
        if (in_process_plant_ok(p->id)) slmp_plants.push_back({p->id});
    for (const auto& f : scenario_files((fs::path(MSGLAB_SOURCE_DIR) / "scenarios" / "slmp").string())) {
        Scenario s = load_scenario(f);
        for (const auto& plants : slmp_plants) {
            SlmpServer server(plants);
            RunOptions o;
            o.target = server.target();
            RunResult r = run_scenario(s, o);
            if (r.finding) triggered.insert(r.finding->code);
        }
    }
    // CSMP's library (probe checks) against CSMP servers, clean and with
    // each plant.
    std::vector<std::vector<std::string>> csmp_plants = {{}};
    for (const auto* p : Registry::builtin().plants_of("csmp")) csmp_plants.push_back({p->id});
    auto csmp_library = scenario_files((fs::path(MSGLAB_SOURCE_DIR) / "scenarios" / "csmp").string());
    for (const auto& plants : csmp_plants) {
        CsmpServer server(plants);
        for (const auto& f : csmp_library) {
            RunOptions o;
            o.target = server.target();
            o.server_files = server.files();
            RunResult r = run_scenario(load_scenario(f), o);
            if (r.finding) triggered.insert(r.finding->code);
        }
    }
    // SP-SimpleChat's library (probe checks), clean and with each plant.
    std::vector<std::vector<std::string>> spchat_plants = {{}};
    for (const auto* p : Registry::builtin().plants_of("spchat")) spchat_plants.push_back({p->id});
    auto spchat_library = scenario_files((fs::path(MSGLAB_SOURCE_DIR) / "scenarios" / "spchat").string());
    for (const auto& plants : spchat_plants) {
        SpchatServer server(plants);
        for (const auto& f : spchat_library) {
            RunOptions o;
            o.target = server.target();
            RunResult r = run_scenario(load_scenario(f), o);
            if (r.finding) triggered.insert(r.finding->code);
        }
    }
    // SOCP's and the Signal-style chat's libraries: each scenario against the
    // servers it is meant for (the clean one for design findings, each
    // plant's for its own), as every SOCP check costs RSA-4096 signatures.
    auto meant_only = [&](const std::string& protocol, auto make_server) {
        auto library = scenario_files((fs::path(MSGLAB_SOURCE_DIR) / "scenarios" / protocol).string());
        std::vector<std::vector<std::string>> runs = {{}};
        for (const auto* p : Registry::builtin().plants_of(protocol)) runs.push_back({p->id});
        for (const auto& plants : runs) {
            auto server = make_server(plants);
            for (const auto& f : library) {
                Scenario s = load_scenario(f);
                bool meant = plants.empty() ? s.xfail.has_value()
                                            : std::find(s.covers.begin(), s.covers.end(), plants[0]) != s.covers.end();
                if (!meant) continue;
                RunOptions o;
                o.target = server->target();
                RunResult r = run_scenario(s, o);
                if (r.finding) triggered.insert(r.finding->code);
            }
        }
    };
    meant_only("socp", [](const std::vector<std::string>& p) { return std::make_unique<SocpServer>(p); });
    meant_only("signal", [](const std::vector<std::string>& p) { return std::make_unique<SignalServer>(p); });
    for (const auto& c : finding_catalogue()) {
#if defined(__SANITIZE_ADDRESS__)
        // Only the memory-safety plant's endpoint triggers CRASH, and it cannot
        // run in-process under ASan (the normal build checks this code).
        if (c.code == "CRASH") continue;
#endif
        INFO(c.code << " has no scenario that reports it against any test endpoint");
        CHECK(triggered.count(std::string(c.code)) == 1);
    }
}
