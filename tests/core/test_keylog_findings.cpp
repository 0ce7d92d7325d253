#include <sstream>

#include "core/findings.hpp"
#include "core/keylog.hpp"
#include "core/registry.hpp"
#include "support.hpp"

using namespace msglab;

TEST_CASE("Key log lines parse strictly, files tolerate junk", "[keylog]") {
    auto e = parse_keylog_line("SECMSG_MASTER_SECRET 0011 aabbcc\r\n");
    REQUIRE(e);
    CHECK(e->label == "SECMSG_MASTER_SECRET");
    CHECK(hex(e->session_id) == "0011");
    CHECK(hex(e->secret) == "aabbcc");
    CHECK_FALSE(parse_keylog_line("lowercase 00 11"));
    CHECK_FALSE(parse_keylog_line("LABEL 0 11"));          // odd hex
    CHECK_FALSE(parse_keylog_line("LABEL 00 11 extra"));   // four fields
    CHECK_FALSE(parse_keylog_line("LABEL 00"));

    std::string overlong(100000, 'A');
    std::istringstream in("# a comment\n\nSECMSG_MASTER_SECRET 01 ff\ngarbage line\n\x01\x02\x03\n" + overlong +
                          "\nSECMSG_MASTER_SECRET 02 ee\nSECMSG_MASTER_SECRET 01 dd");
    KeyLog log = KeyLog::parse(in);
    CHECK(log.size() == 2);
    CHECK(log.junk_lines() == 3);
    CHECK(log.find("SECMSG_MASTER_SECRET", unhex("01")) == std::optional<Bytes>(unhex("dd")));  // last wins
    CHECK(log.find("SECMSG_MASTER_SECRET", unhex("02")) == std::optional<Bytes>(unhex("ee")));
    CHECK_FALSE(log.find("OTHER", unhex("02")));
}

TEST_CASE("Key log writer appends lines the reader reads back", "[keylog]") {
    test::TempDir dir;
    auto path = (dir / "keys.log").string();
    {
        KeyLogWriter w(path);
        w.write("A_LABEL", unhex("0102"), unhex("0a0b"));
        w.write("A_LABEL", unhex("0304"), unhex("0c0d"));
    }
    {
        KeyLogWriter w(path);  // appends, never truncates
        w.write("B_LABEL", unhex("05"), unhex("0e"));
    }
    CHECK(test::read_file(path) == "A_LABEL 0102 0a0b\nA_LABEL 0304 0c0d\nB_LABEL 05 0e\n");
    KeyLog log = KeyLog::load(path);
    CHECK(log.size() == 3);
    CHECK(log.junk_lines() == 0);
    CHECK_THROWS_AS(KeyLog::load((dir / "missing").string()), std::runtime_error);
    CHECK_THROWS_AS(KeyLogWriter((dir / "no/such/dir/k.log").string()), std::runtime_error);
}

TEST_CASE("Findings round-trip through JSON lines", "[findings]") {
    Finding f = Finding::make("REPLAY_ACCEPTED", "secmsg", "127.0.0.1:5000", "replay");
    CHECK(f.cwe == 294);
    CHECK(f.severity == Severity::high);
    f.session_id = "0011223344556677";
    f.evidence.pcap = "run.pcap";
    f.evidence.frames = {4, 9};
    f.evidence.bytes_hex = "5365674d5347";
    f.evidence.detail = "verbatim packet accepted \xff";  // invalid UTF-8 must not throw
    f.evidence.reproducer = "crashes/secmsg_session-1.bin";
    f.reproduce = "msglab replay run.pcap --target 127.0.0.1:5000";
    std::ostringstream out;
    FindingWriter w(out);
    w.write(f);
    w.write(Finding::make("CRASH", "secmsg", "fuzz", "fuzz"));
    CHECK(w.count() == 2);
    std::string text = out.str();
    CHECK(std::count(text.begin(), text.end(), '\n') == 2);

    std::istringstream in(text + "\nnot json\n{\"code\":\"X\"}\n{\"code\":\"Y\",\"severity\":\"high\",\"cwe\":\"a\"}\n");
    auto r = read_findings(in);
    REQUIRE(r.findings.size() == 2);
    CHECK(r.errors.size() == 3);
    CHECK(r.errors[0].rfind("line 4:", 0) == 0);
    const Finding& g = r.findings[0];
    CHECK(g.code == "REPLAY_ACCEPTED");
    CHECK(g.cwe == 294);
    CHECK(g.protocol == "secmsg");
    CHECK(g.session_id == "0011223344556677");
    CHECK(g.evidence.frames == std::vector<std::uint64_t>{4, 9});
    CHECK(g.evidence.reproducer == "crashes/secmsg_session-1.bin");
    CHECK(g.evidence.bytes_hex == "5365674d5347");
    CHECK(g.reproduce == f.reproduce);
    CHECK(r.findings[1].code == "CRASH");
    CHECK_THROWS_AS(Finding::make("NO_SUCH_CODE", "", "", ""), std::invalid_argument);
}

TEST_CASE("Finding catalogue entries are complete", "[findings]") {
    for (const auto& c : finding_catalogue()) {
        INFO(c.code);
        CHECK(c.cwe > 0);
        CHECK_FALSE(c.title.empty());
        CHECK_FALSE(c.meaning.empty());
        CHECK_FALSE(c.remediation.empty());
        CHECK(find_finding_code(c.code) == &c);
    }
}

TEST_CASE("Registries: every plant is documented and reachable only by name", "[registry]") {
    const Registry& reg = Registry::builtin();
    REQUIRE(reg.protocol("secmsg"));
    CHECK(reg.protocol("secmsg")->default_port == 5000);
    CHECK(reg.plants_of("secmsg").size() >= 6);
    for (const auto& p : reg.plants()) {
        INFO(p.id);
        CHECK(p.cwe > 0);
        CHECK_FALSE(p.summary.empty());
        CHECK_FALSE(p.description.empty());
        CHECK_FALSE(p.detected_by.empty());
    }
    for (const auto& p : reg.protocols())
        for (const auto& code : p.design_findings) CHECK(find_finding_code(code));
    CHECK(PlantSet().empty());
    auto set = PlantSet::parse({"secmsg.skip-hmac"}, "secmsg");
    CHECK(set.has("secmsg.skip-hmac"));
    CHECK_FALSE(set.has("secmsg.no-freshness"));
    CHECK_THROWS_WITH(PlantSet::parse({"secmsg.nope"}, "secmsg"), Catch::Contains("unknown plant 'secmsg.nope'"));
    Registry other;
    ProtocolInfo x;
    x.id = "x";
    other.add_protocol(x);
    CHECK_THROWS_AS(other.add_plant({"y.bad", "x", 1, Severity::low, "s", "d", {"CRASH"}}), std::logic_error);
    CHECK_THROWS_AS(other.add_plant({"x.bad", "x", 1, Severity::low, "s", "d", {"NOPE"}}), std::logic_error);
}
