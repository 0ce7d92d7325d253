// The bytes each mutation produces, against golden files.
#include <sstream>

#include "core/registry.hpp"
#include "replay/mutate.hpp"
#include "secmsg/codec.hpp"
#include "support.hpp"

using namespace msglab;
using namespace msglab::replay;

namespace {

// A fixed plan: a handshake and two REGULAR packets under Z = 1.
std::vector<PlannedMessage> fixed_plan() {
    Bytes z(256, 0);
    z.back() = 1;
    auto keys = secmsg::Keys::from_shared_secret(z);
    Bytes y(256, 0);
    y.back() = 2;
    std::vector<PlannedMessage> plan;
    auto add = [&](Bytes b, bool auth, std::string origin) {
        PlannedMessage m;
        m.bytes = std::move(b);
        m.authenticated = auth;
        m.origin = std::move(origin);
        m.captured_index = plan.size();
        plan.push_back(std::move(m));
    };
    add(secmsg::serialize(secmsg::make_handshake(secmsg::MessageType::handshake_request, y, 1700000000)), false,
        "captured #0 HANDSHAKE_REQUEST");
    add(secmsg::serialize(secmsg::seal_regular(keys, as_bytes("hello"), 1700000001)), true, "captured #1 REGULAR");
    add(secmsg::serialize(secmsg::seal_regular(keys, as_bytes("world!"), 1700000002)), true, "captured #2 REGULAR");
    return plan;
}

std::string render(const std::string& spec) {
    auto plan = fixed_plan();
    std::vector<PlannedMessage> reflections;
    PlannedMessage r;
    r.bytes = unhex("5365674d5347");
    r.authenticated = true;
    r.origin = "captured server message";
    reflections.push_back(r);
    auto codec = Registry::builtin().protocol("secmsg")->make_codec(nullptr);
    DeterministicRng rng(42);
    auto parsed = parse_mutation(spec);
    REQUIRE(parsed);
    auto done = apply_mutation(*parsed, plan, reflections, *codec, rng);
    std::ostringstream out;
    out << "== " << spec << "\n";
    if (!done) {
        out << "error: " << done.error() << "\n";
        return out.str();
    }
    out << *done << "\n";
    for (std::size_t i = 0; i < plan.size(); ++i)
        out << "#" << i << " [" << probe_name(plan[i].probe) << "] " << plan[i].origin << "\n  "
            << (plan[i].bytes.size() > 200 ? hex(ByteView(plan[i].bytes).first(40)) + "...(" +
                                                 std::to_string(plan[i].bytes.size()) + " B, sha256 " +
                                                 hex(crypto::sha256(plan[i].bytes)).substr(0, 16) + ")"
                                           : hex(plan[i].bytes))
            << "\n";
    return out.str();
}

}  // namespace

TEST_CASE("mutations: the bytes each one produces match the golden file", "[mutate]") {
    const std::vector<std::string> specs = {
        "verbatim",
        "reflect",
        "reorder:index=1,with=2",
        "reorder",
        "drop:index=0",
        "drop",
        "duplicate:index=1",
        "duplicate",
        "truncate:index=2,length=40",
        "truncate",
        "flip:field=secmsg.hmac,index=1,bit=0",
        "flip:field=secmsg.timestamp",
        "set:field=secmsg.timestamp,value=0000000000000000,index=2",
        "set:field=secmsg.type,value=03,index=1",
        "flip:field=secmsg.nosuch",
        "set:field=secmsg.hmac,value=00",
    };
    std::string all;
    for (const auto& s : specs) all += render(s);
    std::string golden_path = std::string(MSGLAB_TEST_GOLDEN_DIR) + "/mutations.txt";
    if (const char* update = std::getenv("MSGLAB_UPDATE_GOLDEN"); update && std::string(update) == "1")
        test::write_file(golden_path, all);
    std::string golden = test::read_file(golden_path);
    REQUIRE_FALSE(golden.empty());
    CHECK(all == golden);
}

TEST_CASE("mutations: the spec parser says what is wrong", "[mutate]") {
    CHECK(parse_mutation("duplicate:index=2")->index == std::optional<std::size_t>(2));
    CHECK(parse_mutation("frobnicate").error().find("unknown mutation 'frobnicate'") != std::string::npos);
    CHECK(parse_mutation("drop:index=x").error().find("whole number") != std::string::npos);
    CHECK(parse_mutation("drop:index").error().find("key=value") != std::string::npos);
    CHECK(parse_mutation("flip").error().find("field=NAME") != std::string::npos);
    CHECK(parse_mutation("set:field=secmsg.hmac").error().find("value=HEX") != std::string::npos);
    CHECK(parse_mutation("set:field=a,value=zz").error().find("hex") != std::string::npos);
    CHECK(parse_mutation("drop:colour=red").error().find("unknown key 'colour'") != std::string::npos);
}

TEST_CASE("mutations: the same seed makes the same choices", "[mutate]") {
    CHECK(render("flip:field=secmsg.payload") == render("flip:field=secmsg.payload"));
    CHECK(render("duplicate") == render("duplicate"));
}
