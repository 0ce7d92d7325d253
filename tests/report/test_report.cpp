// msglab report: the model, the four writers against golden files, what each
// format must guarantee (HTML self-contained and escaped, SARIF and JUnit well
// formed), the command, and the page in a real browser.
//
// The fixture folder tests/fixtures/report/ is a hunt's folder written by
// hand (findings.jsonl, run.json) around a capture and key log generated here
// from real SecMsg sessions; MSGLAB_UPDATE_GOLDEN=1 regenerates the capture
// and the golden files.
#include <pcap/pcap.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>

#include "replay/pcap_io.hpp"
#include "replay/synth.hpp"
#include "report/report.hpp"
#include "report/text.hpp"
#include "secmsg/session.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::report;
namespace fs = std::filesystem;

namespace {

const fs::path kFixture = MSGLAB_REPORT_FIXTURE_DIR;
const fs::path kGolden = fs::path(MSGLAB_TEST_GOLDEN_DIR) / "report";

bool updating_golden() {
    const char* update = std::getenv("MSGLAB_UPDATE_GOLDEN");
    return update && std::string(update) == "1";
}

// Real SecMsg sessions between a client and a server on loopback, written
// with synthetic TCP framing: a clock that starts at 2026-11-21T10:00:00Z and
// a seeded random source make every byte the same on each run.
class FixtureCapture {
public:
    explicit FixtureCapture(const fs::path& dir)
        : m_keylog((dir / "keys.log").string()), m_pcap((dir / "capture.pcap").string(), DLT_EN10MB) {}

    // A connection from `client_port` to :5000 and the SecMsg handshake.
    void open(std::uint16_t client_port, const std::vector<std::string>& server_plants = {}) {
        secmsg::SessionConfig config;
        for (const auto& p : server_plants) config.plants.enable(p);
        m_tcp = std::make_unique<replay::SynthTcp>(0x7f000001, client_port, 0x7f000001, 5000);
        m_client = std::make_unique<secmsg::Session>(secmsg::Role::initiator, secmsg::SessionConfig{}, m_clock, m_rng);
        m_server = std::make_unique<secmsg::Session>(secmsg::Role::responder, config, m_clock, m_rng, &m_keylog);
        m_server->start();
        put(m_tcp->handshake_syn());
        put(m_tcp->handshake_syn_ack());
        put(m_tcp->handshake_ack());
        Bytes request = m_client->start().packets.at(0);
        put(m_tcp->data(true, request));
        Bytes response = m_server->feed(request).packets.at(0);
        put(m_tcp->data(false, response));
        m_client->feed(response);
    }

    // The client sends `text`; the server echoes it. Returns the client's packet.
    Bytes exchange(std::string_view text) {
        Bytes packet = m_client->send(as_bytes(text));
        deliver(packet);
        return packet;
    }

    // Raw bytes from the client's side (a replay, a tampered copy); the server
    // echoes whatever its session accepts.
    void deliver(const Bytes& packet) {
        m_clock.advance(1);
        put(m_tcp->data(true, packet));
        secmsg::Output out = m_server->feed(packet);
        for (const auto& e : out.events) {
            if (e.kind != secmsg::Event::Kind::message) continue;
            Bytes echo = m_server->send(e.plaintext);
            m_client->feed(echo);
            put(m_tcp->data(false, echo));
        }
    }

    void close() {
        put(m_tcp->fin(true));
        put(m_tcp->fin(false));
        m_clock.advance(10);
    }

private:
    void put(const replay::SynthFrame& f) {
        // Stamped here: the session clock moves in whole seconds.
        m_usec += 2000;
        m_pcap.write(f.frame, m_clock.unix_seconds(), m_usec);
    }

    ManualClock m_clock{1795255200};
    DeterministicRng m_rng{20261121};
    KeyLogWriter m_keylog;
    replay::PcapWriter m_pcap;
    std::uint32_t m_usec = 0;
    std::unique_ptr<replay::SynthTcp> m_tcp;
    std::unique_ptr<secmsg::Session> m_client, m_server;
};

// Stream 0: a clean chat. Stream 1: a server with no replay cache and no MAC
// check, sent a replay, a tampered message and hostile text. Stream 2: a long
// chat, for the bound on diagrams.
void write_fixture_capture(const fs::path& dir) {
    fs::remove(dir / "keys.log");
    FixtureCapture c(dir);
    c.open(40000);
    c.exchange("hello from A");
    c.exchange("second message");
    c.close();

    c.open(40002, {secmsg::plant::no_freshness, secmsg::plant::skip_hmac});
    Bytes transfer = c.exchange("transfer 100 to bob");
    c.deliver(transfer);
    Bytes tampered = c.exchange("transfer 1 to carol");
    tampered[tampered.size() - 1] ^= 0x01;
    c.deliver(tampered);
    c.exchange("<script>alert(1)</script>\xff\x1b[31m\xe2\x80\xae");
    c.close();

    c.open(40004);
    for (int i = 1; i <= 30; ++i) c.exchange("line " + std::to_string(i) + " of a long chat");
    c.close();
}

}  // namespace

TEST_CASE("the fixture capture is the deterministic session the test describes", "[report]") {
    test::TempDir tmp;
    write_fixture_capture(tmp.path());
    if (updating_golden()) {
        fs::copy_file(tmp / "capture.pcap", kFixture / "capture.pcap", fs::copy_options::overwrite_existing);
        fs::copy_file(tmp / "keys.log", kFixture / "keys.log", fs::copy_options::overwrite_existing);
    }
    CHECK(test::read_file(tmp / "capture.pcap") == test::read_file(kFixture / "capture.pcap"));
    CHECK(test::read_file(tmp / "keys.log") == test::read_file(kFixture / "keys.log"));
}

namespace {

// The fixture's report, read once.
const Report& fixture() {
    static const Report r = load_report(kFixture);
    return r;
}

const ReportFinding& finding(const std::string& code) {
    for (const auto& rf : fixture().findings)
        if (rf.finding.code == code) return rf;
    throw std::runtime_error("no finding " + code + " in the fixture");
}

}  // namespace

TEST_CASE("the four reports of the fixture match the golden files", "[report]") {
    for (Format f : {Format::html, Format::markdown, Format::sarif, Format::junit}) {
        INFO(file_name(f));
        fs::path golden = kGolden / file_name(f);
        std::string content = render(f, fixture(), {});
        if (updating_golden()) {
            fs::create_directories(kGolden);
            test::write_file(golden, content);
        }
        std::string expected = test::read_file(golden);
        REQUIRE_FALSE(expected.empty());
        CHECK(content == expected);
        CHECK(render(f, fixture(), {}) == content);
    }
}

TEST_CASE("damaged lines are reported, the rest kept and sorted by severity then code", "[report]") {
    const Report& r = fixture();
    CHECK(r.problems == std::vector<std::string>{
                            "findings.jsonl line 3: 3 byte(s) of invalid UTF-8 shown as U+FFFD",
                            "findings.jsonl line 5: bad or missing 'severity'; line skipped",
                            "findings.jsonl line 9: not valid JSON; line skipped",
                        });
    std::vector<std::string> order;
    for (const auto& rf : r.findings) order.push_back(rf.id + " " + rf.finding.code);
    CHECK(order == std::vector<std::string>{"F1 MAC_NOT_VERIFIED", "F2 CRASH", "F3 KEYSTREAM_REUSE",
                                            "F4 REPLAY_ACCEPTED", "F5 WEAK_DH_PUBLIC_ACCEPTED",
                                            "F6 NONSTANDARD_CIPHER", "F7 PLAINTEXT_HASH_EXPOSED",
                                            "F8 UNBOUNDED_LENGTH", "F9 DEBUG_ECHO_TRIGGER", "F10 SERVER_ECHOES"});
    // What the producer left out comes from the catalogue.
    const Finding& weak = finding("WEAK_DH_PUBLIC_ACCEPTED").finding;
    CHECK(weak.cwe == 20);
    CHECK(weak.title == "Weak Diffie-Hellman public value accepted");
    CHECK_FALSE(weak.remediation.empty());
    // Invalid UTF-8 became U+FFFD; everything else is kept as it was.
    const std::string& detail = finding("KEYSTREAM_REUSE").finding.evidence.detail;
    CHECK(detail.find("\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd(\"\x1b[2J\xe2\x80\xae") != std::string::npos);
    CHECK(repair_utf8(detail) == detail);
    CHECK(r.run.scenarios.size() == 8);
    CHECK(r.count(Severity::high) == 4);
    CHECK(r.keylog_secrets == 3);
}

TEST_CASE("a folder that is not a hunt's is an error, and every file is otherwise optional", "[report]") {
    test::TempDir tmp;
    auto error_of = [](const fs::path& dir) -> std::string {
        try {
            load_report(dir);
        } catch (const LoadError& e) {
            return e.what();
        }
        return "no error";
    };
    CHECK(error_of(tmp / "absent").find("absent: no such folder") != std::string::npos);
    CHECK(error_of(tmp.path()).find("neither findings.jsonl nor run.json") != std::string::npos);
    test::write_file(tmp / "file", "x");
    CHECK(error_of(tmp / "file").find("not a folder") != std::string::npos);
    test::write_file(tmp / "run.json", "{\"target\": ");
    CHECK(error_of(tmp.path()).find("nothing to report") != std::string::npos);

    // run.json alone, with fields of the wrong type: reported and left out.
    test::write_file(tmp / "run.json",
                     R"({"target": "10.0.0.1:5000", "duration_s": "long", "plants": [1],
                         "scenarios": [{"id": "s1", "outcome": "MAYBE"}, 7]})");
    Report r = load_report(tmp.path());
    CHECK(r.findings.empty());
    CHECK(r.target() == "10.0.0.1:5000");
    CHECK_FALSE(r.run.duration_s);
    CHECK(r.problems == std::vector<std::string>{
                            "run.json: 'duration_s' is not a number; ignored",
                            "run.json: a plant is not a string; ignored",
                            "run.json scenarios[0]: outcome 'MAYBE' is none of PASS, FAIL, XFAIL, XPASS, ERROR; shown as ERROR",
                            "run.json scenarios[1]: not an object; ignored",
                        });
    REQUIRE(r.run.scenarios.size() == 1);
    CHECK(r.run.scenarios[0].outcome == Outcome::error);
    CHECK(render_html(r, {}).find("<p>No findings.</p>") != std::string::npos);
    CHECK(render_markdown(r, {}).find("No findings.") != std::string::npos);

    // findings.jsonl alone, naming a capture the folder lacks.
    fs::remove(tmp / "run.json");
    Finding f = Finding::make("REPLAY_ACCEPTED", "secmsg", "10.0.0.1:5000", "replay");
    f.evidence.frames = {4};
    test::write_file(tmp / "findings.jsonl", to_json_line(f) + "\n");
    r = load_report(tmp.path());
    REQUIRE(r.findings.size() == 1);
    CHECK(r.findings[0].diagram.unavailable == "the folder has no capture");
    CHECK(r.techniques().size() == 1);
    CHECK(r.techniques()[0].name == "replay");
    CHECK_FALSE(r.techniques()[0].runs);
}

TEST_CASE("each diagram is the TCP stream that holds the finding's evidence", "[report]") {
    const SessionDiagram& mac = finding("MAC_NOT_VERIFIED").diagram;
    REQUIRE(mac.available());
    CHECK(mac.stream == 1);
    CHECK(mac.protocol == "secmsg");
    CHECK(mac.client == "127.0.0.1:40002");
    CHECK(mac.server == "127.0.0.1:5000");
    CHECK(mac.session_id == "a0007f1027e509b4");
    CHECK(mac.total == 12);
    REQUIRE(mac.messages.size() == 12);
    std::vector<std::uint64_t> evidence;
    for (const auto& m : mac.messages)
        if (m.evidence) evidence.push_back(m.first_frame);
    CHECK(evidence == std::vector<std::uint64_t>{23, 24});
    const DiagramMessage& tampered = mac.messages[8];
    CHECK(tampered.first_frame == 23);
    CHECK(tampered.from == Peer::client);
    CHECK(tampered.type == "REGULAR_MESSAGE");
    CHECK(tampered.preview == std::optional<std::string>("transfer 1 to carol"));
    CHECK(tampered.anomalies == std::vector<std::string>{"HMAC mismatch"});
    CHECK(mac.messages[0].type == "HANDSHAKE_REQUEST");
    CHECK_FALSE(mac.messages[0].preview);
    CHECK(mac.messages[9].offset == Approx(4.018));
    // Hostile plaintext is made visible, not interpreted.
    CHECK(mac.messages[10].preview == std::optional<std::string>("<script>alert(1)</script>\\xff\\x1b[31m\\u202e"));

    // Found by its session id (the case does not matter), no evidence marked.
    const SessionDiagram& weak = finding("WEAK_DH_PUBLIC_ACCEPTED").diagram;
    REQUIRE(weak.available());
    CHECK(weak.stream == 0);
    CHECK(weak.messages.size() == 6);
    CHECK(std::none_of(weak.messages.begin(), weak.messages.end(), [](const DiagramMessage& m) { return m.evidence; }));

    CHECK(finding("CRASH").diagram.unavailable == "the finding names neither evidence frames nor a session");
    CHECK(finding("UNBOUNDED_LENGTH").diagram.unavailable == "the capture netfuzz.pcap is not in the folder");
}

TEST_CASE("a long session is cut to the 40 messages nearest the evidence", "[report]") {
    const SessionDiagram& d = finding("KEYSTREAM_REUSE").diagram;
    REQUIRE(d.available());
    CHECK(d.stream == 2);
    CHECK(d.total == 62);
    REQUIRE(d.messages.size() == kMaxDiagramMessages);
    CHECK(d.left_out() == 22);
    // Evidence at stream messages 30 and 32 (frames 62 and 64): 11..50 shown.
    CHECK(d.messages.front().index == 11);
    CHECK(d.messages.back().index == 50);
    CHECK(render_svg(d).find("11 messages left out") != std::string::npos);
    CHECK(render_mermaid(d).find("Note over C,S: 11 messages left out") != std::string::npos);

    auto range = [](std::uint64_t from, std::uint64_t to) {
        std::vector<std::uint64_t> v;
        for (auto i = from; i <= to; ++i) v.push_back(i);
        return v;
    };
    CHECK(choose_window(10, {3}) == range(0, 9));
    CHECK(choose_window(100, {}) == range(0, 39));
    CHECK(choose_window(100, {0}) == range(0, 39));
    CHECK(choose_window(100, {99}) == range(60, 99));
    CHECK(choose_window(100, {50}) == range(30, 69));
    CHECK(choose_window(100, {500}) == std::vector<std::uint64_t>{});
    std::vector<std::uint64_t> both = range(0, 17);
    for (auto i : range(78, 99)) both.push_back(i);
    CHECK(choose_window(100, {90, 5}) == both);
}

TEST_CASE("the HTML is one file that fetches and runs nothing and escapes its input", "[report]") {
    std::string html = render_html(fixture(), {});
    std::string lower = html;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    CHECK(lower.find("<script") == std::string::npos);
    CHECK(lower.find("<link") == std::string::npos);
    CHECK(lower.find("url(") == std::string::npos);
    CHECK(lower.find("@import") == std::string::npos);
    CHECK(lower.find(" src=") == std::string::npos);
    CHECK(lower.find("<img") == std::string::npos);
    CHECK(lower.find("<iframe") == std::string::npos);
    CHECK(lower.find("<object") == std::string::npos);
    // Links are in-page anchors or plain references to CWE entries.
    std::regex href("href=\"([^\"]*)\"");
    std::size_t cwe_links = 0;
    for (auto it = std::sregex_iterator(html.begin(), html.end(), href); it != std::sregex_iterator(); ++it) {
        std::string target = (*it)[1];
        bool in_page = target.rfind("#", 0) == 0, cwe = target.rfind("https://cwe.mitre.org/data/definitions/", 0) == 0;
        CHECK((in_page || cwe));
        cwe_links += cwe;
    }
    CHECK(cwe_links > 0);

    // The policy forbids every fetch and script; the one stylesheet is allowed by its hash.
    std::smatch csp, style;
    REQUIRE(std::regex_search(html, csp, std::regex("Content-Security-Policy\" content=\"default-src 'none'; style-src 'sha256-([^']+)'")));
    std::size_t open = html.find("<style>") + 7, close = html.find("</style>");
    REQUIRE(close != std::string::npos);
    CHECK(csp[1] == crypto::base64_encode(crypto::sha256(as_bytes(std::string_view(html).substr(open, close - open)))));
    CHECK(html.find("style=") == std::string::npos);

    // Attacker text: escaped, valid UTF-8, its controls and bidi overrides visible.
    CHECK(html.find("&lt;script&gt;alert(document.domain)&lt;/script&gt;") != std::string::npos);
    CHECK(html.find("&lt;script&gt;alert(1)&lt;/script&gt;\\xff\\x1b[31m\\u202e") != std::string::npos);
    CHECK(html.find("P2 = &quot;\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd(&quot;\\x1b[2J\\u202etxt.exe") != std::string::npos);
    CHECK(repair_utf8(html) == html);
    CHECK(html.find('\x1b') == std::string::npos);
    CHECK(html.find("\xe2\x80\xae") == std::string::npos);

    // Findings in report order, each with its diagram or the reason for none.
    std::size_t last = 0;
    for (const auto& rf : fixture().findings) {
        std::size_t at = html.find("<article class=\"finding f-" + std::string(severity_name(rf.finding.severity)) +
                                   "\" id=\"" + rf.id + "\">");
        REQUIRE(at != std::string::npos);
        CHECK(at > last);
        last = at;
    }
    CHECK(std::count(html.begin(), html.end(), '\0') == 0);
    std::string svg_open = "<svg class=\"seq\"";
    std::size_t svgs = 0;
    for (std::size_t at = html.find(svg_open); at != std::string::npos; at = html.find(svg_open, at + 1)) ++svgs;
    CHECK(svgs == 6);
    CHECK(html.find("No sequence diagram: the capture netfuzz.pcap is not in the folder.") != std::string::npos);

    CHECK(render_html(fixture(), {"Audit <1> & \"2\""}).find("<title>Audit &lt;1&gt; &amp; &quot;2&quot;</title>") !=
          std::string::npos);
}

TEST_CASE("SARIF is 2.1.0 with a rule for every result and regions in the capture", "[report]") {
    auto doc = nlohmann::json::parse(render_sarif(fixture(), {}));
    CHECK(doc["version"] == "2.1.0");
    CHECK(doc["$schema"].get<std::string>().find("sarif-2.1.0") != std::string::npos);
    REQUIRE(doc["runs"].size() == 1);
    const auto& run = doc["runs"][0];
    const auto& driver = run["tool"]["driver"];
    CHECK(driver["name"] == "msglab");
    CHECK(driver["version"] == "0.1.0");
    CHECK_FALSE(driver.contains("informationUri"));

    std::set<std::string> rule_ids;
    for (const auto& rule : driver["rules"]) {
        CHECK(rule_ids.insert(rule["id"].get<std::string>()).second);
        double score = std::stod(rule["properties"]["security-severity"].get<std::string>());
        CHECK((score >= 0 && score <= 10));
        CHECK(rule["shortDescription"]["text"].is_string());
        CHECK(rule["help"]["text"].is_string());
    }
    for (const auto& c : finding_catalogue()) {
        CHECK(rule_ids.count(std::string(c.code)));
    }
    const std::map<std::string, std::string> levels = {
        {"critical", "error"}, {"high", "error"}, {"medium", "warning"}, {"low", "note"}, {"info", "note"}};
    REQUIRE(run["results"].size() == fixture().findings.size());
    std::set<std::string> fingerprints;
    Bytes capture = to_bytes(test::read_file(kFixture / "capture.pcap"));
    for (const auto& res : run["results"]) {
        std::string id = res["ruleId"];
        INFO(id);
        CHECK(rule_ids.count(id));
        CHECK(driver["rules"][res["ruleIndex"].get<std::size_t>()]["id"] == id);
        CHECK(res["level"] == levels.at(res["properties"]["severity"].get<std::string>()));
        CHECK(fingerprints.insert(res["fingerprints"]["msglabFinding/v1"].get<std::string>()).second);
        CHECK(res["message"]["text"].get<std::string>().find(res["properties"]["id"].get<std::string>() + ": ") == 0);
        // A region is the frame's bytes in the capture: they hold the evidence.
        Bytes evidence = unhex(res["properties"]["evidenceBytes"].get<std::string>());
        const auto& frames = res["properties"]["frames"];
        for (const auto& loc : res["locations"]) {
            if (!loc.contains("physicalLocation") || !loc["physicalLocation"].contains("region")) continue;
            CHECK(loc["physicalLocation"]["artifactLocation"]["uri"] == "capture.pcap");
            const auto& region = loc["physicalLocation"]["region"];
            std::size_t offset = region["byteOffset"].get<std::size_t>(), length = region["byteLength"].get<std::size_t>();
            REQUIRE(offset + length <= capture.size());
            REQUIRE_FALSE(frames.empty());
            if (region["message"]["text"] == "frame " + std::to_string(frames[0].get<std::uint64_t>())) {
                auto frame = ByteView(capture).subspan(offset, length);
                CHECK(std::search(frame.begin(), frame.end(), evidence.begin(), evidence.end()) != frame.end());
            }
        }
    }
    // Codes outside the catalogue get a rule from the finding itself.
    CHECK(rule_ids.count("DEBUG_ECHO_TRIGGER"));
    CHECK(run["results"][0]["locations"].size() == 2);
    CHECK(run["results"][0]["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "secmsg://127.0.0.1:5000");
    CHECK(run["invocations"][0]["toolExecutionNotifications"].size() == 3);
}

TEST_CASE("JUnit XML parses with a test case per scenario and per finding", "[report]") {
    test::TempDir tmp;
    test::write_file(tmp / "junit.xml", render_junit(fixture(), {}));
    test::write_file(tmp / "count.py", R"py(import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
print(root.tag, root.get("tests"), root.get("failures"), root.get("errors"))
for suite in root.findall("testsuite"):
    cases = suite.findall("testcase")
    count = lambda tag: sum(1 for c in cases if c.find(tag) is not None)
    print(suite.get("name"), suite.get("tests"), suite.get("failures"), suite.get("errors"),
          len(cases), count("failure"), count("error"), count("system-out"))
    for c in cases:
        out = c.find("system-out")
        if out is not None:
            print(c.get("name"), out.text.split(":")[0])
)py");
    auto result = test::run_command(std::string(test::kSystemPython) + " " + test::shell_quote((tmp / "count.py").string()) +
                                    " " + test::shell_quote((tmp / "junit.xml").string()));
    CHECK(result.exit_code == 0);
    CHECK(result.output ==
          "testsuites 18 14 1\n"
          "msglab.scenarios 8 4 1 8 4 1 1\n"
          "secmsg-late-handshake XFAIL\n"
          "msglab.findings 10 10 0 10 10 0 0\n");
}

TEST_CASE("Markdown keeps hostile text out of its markup and Mermaid blocks", "[report]") {
    std::string md = render_markdown(fixture(), {});
    CHECK(md.find("<script") == std::string::npos);
    CHECK(md.find("&lt;script&gt;alert(document.domain)&lt;/script&gt;") != std::string::npos);
    CHECK(repair_utf8(md) == md);
    // Inside a Mermaid block only the statements msglab writes, and no
    // character that could end one or start markup outside an entity code.
    std::istringstream in(md);
    std::string line;
    bool in_mermaid = false;
    std::size_t blocks = 0, statements = 0;
    std::regex statement(R"(    (participant [CS] as .*|[CS]->>[CS]: .*|Note over C,S: .*|rect rgba\(220, 38, 38, 0\.18\)|end))");
    while (std::getline(in, line)) {
        if (line == "```mermaid") {
            in_mermaid = true;
            ++blocks;
            continue;
        }
        if (!in_mermaid || line == "sequenceDiagram") continue;
        if (line == "```") {
            in_mermaid = false;
            continue;
        }
        INFO(line);
        CHECK(std::regex_match(line, statement));
        std::size_t label = line.find(line.find("participant") != std::string::npos ? " as " : ": ");
        std::string text = label == std::string::npos ? "" : std::regex_replace(line.substr(label), std::regex("#[0-9]+;"), "");
        CHECK(text.find_first_of("<>;#`%\"") == std::string::npos);
        ++statements;
    }
    CHECK(blocks == 6);
    CHECK(statements > 100);
    CHECK(md.find("#60;script#62;alert(1)#60;/script#62;") != std::string::npos);

    // A command holding a fence gets a longer one.
    Report r;
    ReportFinding rf;
    rf.id = "F1";
    rf.finding = Finding::make("CRASH", "secmsg", "t", "fuzz");
    rf.finding.reproduce = "printf '```\\n' | sh";
    rf.diagram.unavailable = "none";
    r.findings.push_back(rf);
    CHECK(render_markdown(r, {}).find("````sh\nprintf '```\\n' | sh\n````\n") != std::string::npos);
}

TEST_CASE("msglab report writes the files it is asked for and prints their paths", "[report]") {
    test::TempDir tmp;
    const std::string msglab = MSGLAB_BINARY;
    auto run = [&](const std::string& args) { return test::run_command(msglab + " report " + args + " 2>&1"); };
    std::string fixture_dir = test::shell_quote(kFixture.string());

    auto all = run(fixture_dir + " --out " + test::shell_quote((tmp / "all").string()));
    CHECK(all.exit_code == 0);
    for (Format f : {Format::html, Format::markdown, Format::sarif, Format::junit}) {
        fs::path path = tmp / "all" / file_name(f);
        CHECK(all.output.find(path.string() + "\n") != std::string::npos);
        CHECK(test::read_file(path) == test::read_file(kGolden / file_name(f)));
    }
    CHECK(all.output.find("warning: findings.jsonl line 9: not valid JSON; line skipped") != std::string::npos);

    auto two = run(fixture_dir + " --format junit,sarif --title 'Audit <1>' --out " + test::shell_quote((tmp / "two").string()));
    CHECK(two.exit_code == 0);
    CHECK(fs::exists(tmp / "two" / "report.sarif"));
    CHECK(fs::exists(tmp / "two" / "junit.xml"));
    CHECK_FALSE(fs::exists(tmp / "two" / "report.html"));
    CHECK(test::read_file(tmp / "two" / "junit.xml").find("<testsuites name=\"Audit &lt;1&gt;\"") != std::string::npos);

    // Without --out, into the input folder.
    fs::create_directories(tmp / "hunt");
    fs::copy_file(kFixture / "run.json", tmp / "hunt" / "run.json");
    CHECK(run(test::shell_quote((tmp / "hunt").string()) + " --format md").exit_code == 0);
    CHECK(fs::exists(tmp / "hunt" / "report.md"));

    auto missing = run(test::shell_quote((tmp / "absent").string()));
    CHECK(missing.exit_code == 1);
    CHECK(missing.output.find("no such folder") != std::string::npos);
    auto bad_format = run(fixture_dir + " --format html,pdf");
    CHECK(bad_format.exit_code == 2);
    CHECK(bad_format.output.find("unknown format 'pdf'") != std::string::npos);
    CHECK(run("").exit_code == 2);
    auto help = run("--help");
    CHECK(help.exit_code == 0);
    CHECK(help.output.find("--format") != std::string::npos);
}

namespace {

// What Chromium made of a page: the DOM after load, and every console message.
struct BrowserRun {
    int exit_code = -1;
    std::string dom;
    std::vector<std::string> console;
};

std::optional<std::string> find_chromium() {
    for (const char* path : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
        if (fs::exists(path)) return std::string(path);
    return std::nullopt;
}

// Headless Chromium with --enable-logging=stderr logs each console message of
// the page as "...:INFO:CONSOLE:<line>] "<text>", source: <url> (<line>)",
// whatever its level: console.error from a script, and what the browser itself
// reports about the page (a Content-Security-Policy violation, a resource that
// failed to load, an invalid SVG attribute). The report has no script, so any
// such line means something is wrong with it.
BrowserRun open_in_chromium(const std::string& chromium, const fs::path& page, const test::TempDir& tmp) {
    fs::path profile = tmp / "chromium-profile", log = tmp / "chromium.log";
    std::string command = "timeout 120 " + chromium +
                          " --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions"
                          " --disable-background-networking --disable-component-update --disable-sync"
                          " --user-data-dir=" + test::shell_quote(profile.string()) +
                          " --enable-logging=stderr --log-level=0 --dump-dom " +
                          test::shell_quote("file://" + fs::absolute(page).string()) + " 2>" +
                          test::shell_quote(log.string());
    auto result = test::run_command(command);
    BrowserRun run;
    run.exit_code = result.exit_code;
    run.dom = result.output;
    std::istringstream in(test::read_file(log));
    std::regex console(R"(:CONSOLE[:(]\d+[\])])");
    for (std::string line; std::getline(in, line);)
        if (std::regex_search(line, console)) run.console.push_back(line);
    return run;
}

bool any_contains(const std::vector<std::string>& lines, std::string_view text) {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(text) != std::string::npos; });
}

}  // namespace

TEST_CASE("the HTML renders in headless Chromium without a console message", "[report][chromium]") {
    auto chromium = find_chromium();
    if (!chromium) MSGLAB_SKIP("chromium is not installed (apt-get install chromium)");
    test::TempDir tmp;

    // Controls: the detection sees a script's console.error, and an error the
    // browser reports about the page itself.
    test::write_file(tmp / "control-script.html",
                     "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>control</title></head><body><p>x</p>"
                     "<script>console.error(\"msglab-control-error\");</script></body></html>\n");
    BrowserRun script = open_in_chromium(*chromium, tmp / "control-script.html", tmp);
    REQUIRE(script.exit_code == 0);
    CHECK(any_contains(script.console, "msglab-control-error"));
    test::write_file(tmp / "control-svg.html",
                     "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>control</title></head><body>"
                     "<svg width=\"10\" height=\"10\"><path d=\"M 1 x\"/></svg></body></html>\n");
    BrowserRun svg = open_in_chromium(*chromium, tmp / "control-svg.html", tmp);
    REQUIRE(svg.exit_code == 0);
    CHECK(any_contains(svg.console, "attribute d: Expected number"));

    write_reports(fixture(), tmp.path(), {Format::html}, {});
    BrowserRun page = open_in_chromium(*chromium, tmp / "report.html", tmp);
    REQUIRE(page.exit_code == 0);
    for (const auto& line : page.console) UNSCOPED_INFO(line);
    CHECK(page.console.empty());
    // It rendered: the findings, their diagrams, the hostile text as text.
    CHECK(page.dom.find("<h2>Findings</h2>") != std::string::npos);
    for (const auto& rf : fixture().findings) CHECK(page.dom.find("id=\"" + rf.id + "\"") != std::string::npos);
    CHECK(page.dom.find("<svg class=\"seq\"") != std::string::npos);
    CHECK(page.dom.find("&lt;script&gt;alert(document.domain)&lt;/script&gt;") != std::string::npos);
    CHECK(page.dom.find("<script") == std::string::npos);
}
