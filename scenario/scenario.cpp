#include "scenario/scenario.hpp"

#include "report/text.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace msglab::scenario {

namespace fs = std::filesystem;

ScenarioError::ScenarioError(const std::string& f, int l, const std::string& what)
    : std::runtime_error(f + (l > 0 ? ":" + std::to_string(l) : std::string()) + ": " + what), file(f), line(l) {}

const char* outcome_name(Outcome o) {
    switch (o) {
        case Outcome::pass: return "PASS";
        case Outcome::fail: return "FAIL";
        case Outcome::xfail: return "XFAIL";
        case Outcome::xpass: return "XPASS";
        case Outcome::error: return "ERROR";
    }
    return "?";
}

namespace {

const char* const kStepNames[] = {"connect", "handshake", "send",  "expect", "replay", "tamper",
                                  "wait",    "reconnect", "close", "stall",  "alive", "probe"};

}  // namespace

const char* step_name(Step::Kind kind) { return kStepNames[static_cast<int>(kind)]; }

namespace {

class Parser {
public:
    explicit Parser(std::string source) : m_source(std::move(source)) {}

    [[noreturn]] void fail(const YAML::Node& at, const std::string& what) const {
        int line = at.IsDefined() && !at.Mark().is_null() ? at.Mark().line + 1 : 0;
        throw ScenarioError(m_source, line, what);
    }

    void only_keys(const YAML::Node& map, std::initializer_list<const char*> allowed, const std::string& where) const {
        if (!map.IsMap()) fail(map, where + " must be a mapping");
        for (const auto& kv : map) {
            std::string key = kv.first.as<std::string>();
            if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; })) {
                std::string list;
                for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
                fail(kv.first, where + ": unknown key '" + key + "' (known: " + list + ")");
            }
        }
    }

    std::string str(const YAML::Node& n, const std::string& what) const {
        if (!n.IsScalar()) fail(n, what + " must be a string");
        return n.as<std::string>();
    }

    template <class T>
    T number(const YAML::Node& n, const std::string& what) const {
        if (!n.IsScalar()) fail(n, what + " must be a number");
        try {
            return n.as<T>();
        } catch (const YAML::Exception&) {
            fail(n, what + " must be a number in range, not '" + n.as<std::string>() + "'");
        }
    }

    bool boolean(const YAML::Node& n, const std::string& what) const {
        if (!n.IsScalar()) fail(n, what + " must be true or false");
        try {
            return n.as<bool>();
        } catch (const YAML::Exception&) {
            fail(n, what + " must be true or false");
        }
    }

    Bytes hex(const YAML::Node& n, const std::string& what) const {
        std::string s = str(n, what);
        s.erase(std::remove_if(s.begin(), s.end(), [](char c) { return c == ' ' || c == ':'; }), s.end());
        Bytes out;
        if (!unhex(s, out)) fail(n, what + " must be hex bytes");
        return out;
    }

    Value value(const YAML::Node& n, const std::string& what) const {
        Value v;
        if (n.IsScalar()) {
            v.kind = Value::Kind::hex;
            v.bytes = hex(n, what);
            return v;
        }
        only_keys(n, {"int", "text", "zeros", "sha256", "sha256_of", "same_as", "aes128_ctr"}, what);
        if (n.size() != 1)
            fail(n, what + " must have exactly one of int, text, zeros, sha256, sha256_of, same_as, aes128_ctr");
        if (n["int"]) {
            v.kind = Value::Kind::integer;
            v.integer = number<std::uint64_t>(n["int"], what + ".int");
        } else if (n["text"]) {
            v.kind = Value::Kind::text;
            v.text = str(n["text"], what + ".text");
        } else if (n["zeros"]) {
            v.kind = Value::Kind::zeros;
            if (!boolean(n["zeros"], what + ".zeros")) fail(n, what + ".zeros must be true");
        } else if (n["sha256"]) {
            v.kind = Value::Kind::sha256;
            v.text = str(n["sha256"], what + ".sha256");
        } else if (n["sha256_of"]) {
            v.kind = Value::Kind::sha256_of;
            v.field = str(n["sha256_of"], what + ".sha256_of");
        } else if (n["aes128_ctr"]) {
            v.kind = Value::Kind::std_cipher;
            v.text = str(n["aes128_ctr"], what + ".aes128_ctr");
        } else {
            v.kind = Value::Kind::same_as;
            const YAML::Node& s = n["same_as"];
            only_keys(s, {"step", "field"}, what + ".same_as");
            if (!s["step"] || !s["field"]) fail(s, what + ".same_as needs step and field");
            v.step = str(s["step"], what + ".same_as.step");
            v.field = str(s["field"], what + ".same_as.field");
            need_name(s["step"], v.step);
        }
        return v;
    }

    void need_name(const YAML::Node& at, const std::string& name) const {
        if (!m_names.count(name)) fail(at, "no earlier step is named '" + name + "' (name one with 'as:')");
    }

    std::vector<FieldValue> field_values(const YAML::Node& n, const std::string& what) const {
        if (!n.IsMap()) fail(n, what + " must map field names to values");
        std::vector<FieldValue> out;
        for (const auto& kv : n) {
            std::string field = kv.first.as<std::string>();
            out.push_back({field, value(kv.second, what + "." + field)});
        }
        return out;
    }

    Reaction reaction(const YAML::Node& n, const std::string& what) const {
        only_keys(n, {"message", "error", "close", "silence", "contains", "field", "equals", "differs"}, what);
        Reaction r;
        int kinds = !!n["message"] + !!n["error"] + !!n["close"] + !!n["silence"];
        if (kinds != 1) fail(n, what + " must name exactly one of message, error, close, silence");
        if (n["message"]) {
            r.kind = Reaction::Kind::message;
            r.type = str(n["message"], what + ".message");
        } else if (n["error"]) {
            r.kind = Reaction::Kind::error;
            r.contains = str(n["error"], what + ".error");
        } else if (n["close"]) {
            r.kind = Reaction::Kind::close;
            if (!boolean(n["close"], what + ".close")) fail(n, what + ".close must be true");
        } else {
            r.kind = Reaction::Kind::silence;
            if (!boolean(n["silence"], what + ".silence")) fail(n, what + ".silence must be true");
        }
        if (n["contains"]) r.contains = str(n["contains"], what + ".contains");
        if (n["field"]) r.field = str(n["field"], what + ".field");
        if (n["equals"]) r.equals = value(n["equals"], what + ".equals");
        if (n["differs"]) r.differs = value(n["differs"], what + ".differs");
        if ((r.equals || r.differs) && r.field.empty()) fail(n, what + ": equals/differs need a field");
        if (!r.field.empty() && !r.equals && !r.differs) fail(n, what + ": field needs equals or differs");
        if (!r.field.empty() && r.kind != Reaction::Kind::message) fail(n, what + ": field checks apply to a message");
        return r;
    }

    Step step(const YAML::Node& n, std::size_t index) {
        std::string where = "step " + std::to_string(index + 1);
        if (!n.IsMap()) fail(n, where + " must be a mapping like '- send: {...}'");
        Step s;
        s.line = n.Mark().is_null() ? 0 : n.Mark().line + 1;
        std::string kind;
        YAML::Node body;
        for (const auto& kv : n) {
            std::string key = kv.first.as<std::string>();
            if (key == "trace") {
                s.trace = YAML::Clone(kv.second);
                continue;
            }
            if (!kind.empty()) fail(kv.first, where + ": one action per step ('" + kind + "' and '" + key + "')");
            auto it = std::find_if(std::begin(kStepNames), std::end(kStepNames), [&](const char* a) { return key == a; });
            if (it == std::end(kStepNames))
                fail(kv.first, where + ": unknown action '" + key +
                                   "' (connect, handshake, send, expect, replay, tamper, wait, reconnect, close, stall, "
                                   "alive, probe)");
            kind = key;
            s.kind = static_cast<Step::Kind>(it - std::begin(kStepNames));
            body = kv.second;
        }
        if (kind.empty()) fail(n, where + " has no action");
        where += " (" + kind + ")";
        if (body.IsNull()) body = YAML::Node(YAML::NodeType::Map);
        switch (s.kind) {
            case Step::Kind::connect:
            case Step::Kind::reconnect:
            case Step::Kind::close:
            case Step::Kind::alive:
                only_keys(body, {"timeout_ms"}, where);
                if (body["timeout_ms"]) s.timeout_ms = number<unsigned>(body["timeout_ms"], where + ".timeout_ms");
                break;
            case Step::Kind::handshake:
                only_keys(body, {"timeout_ms", "as"}, where);
                if (body["timeout_ms"]) s.timeout_ms = number<unsigned>(body["timeout_ms"], where + ".timeout_ms");
                break;
            case Step::Kind::probe:
                only_keys(body, {"check", "timeout_ms"}, where);
                if (!body["check"]) fail(body, where + " needs a check (the protocol's named probe)");
                s.type = str(body["check"], where + ".check");
                if (body["timeout_ms"]) s.timeout_ms = number<unsigned>(body["timeout_ms"], where + ".timeout_ms");
                break;
            case Step::Kind::stall:
                only_keys(body, {"raw", "timeout_ms"}, where);
                if (body["raw"]) s.raw = hex(body["raw"], where + ".raw");
                if (body["timeout_ms"]) s.timeout_ms = number<unsigned>(body["timeout_ms"], where + ".timeout_ms");
                break;
            case Step::Kind::send: {
                only_keys(body, {"type", "text", "size", "raw", "timestamp", "age", "fields", "as"}, where);
                if (body["raw"]) {
                    s.raw = hex(body["raw"], where + ".raw");
                    if (body["type"] || body["text"] || body["size"]) fail(body, where + ": raw excludes type, text, size");
                } else {
                    if (!body["type"]) fail(body, where + " needs a type (or raw bytes)");
                    s.type = str(body["type"], where + ".type");
                }
                if (body["text"]) s.text = str(body["text"], where + ".text");
                if (body["size"]) {
                    s.size = number<std::size_t>(body["size"], where + ".size");
                    if (*s.size > (1u << 20)) fail(body["size"], where + ".size must be at most 1048576");
                }
                if (s.text && s.size) fail(body, where + ": text or size, not both");
                if (body["timestamp"]) s.timestamp = number<std::int64_t>(body["timestamp"], where + ".timestamp");
                if (body["age"]) s.age = number<std::uint64_t>(body["age"], where + ".age");
                if (s.timestamp && s.age) fail(body, where + ": timestamp or age, not both");
                if (body["fields"]) s.fields = field_values(body["fields"], where + ".fields");
                break;
            }
            case Step::Kind::expect: {
                only_keys(body, {"message", "error", "close", "silence", "contains", "field", "equals", "differs",
                                 "any", "timeout_ms", "as"},
                          where);
                if (body["timeout_ms"]) s.timeout_ms = number<unsigned>(body["timeout_ms"], where + ".timeout_ms");
                if (body["any"]) {
                    for (const char* k : {"message", "error", "close", "silence", "contains", "field", "equals", "differs"})
                        if (body[k]) fail(body, where + ": '" + k + "' goes inside one of the 'any' alternatives");
                    if (!body["any"].IsSequence() || body["any"].size() == 0)
                        fail(body["any"], where + ".any must be a non-empty list of reactions");
                    for (std::size_t i = 0; i < body["any"].size(); ++i)
                        s.any.push_back(reaction(body["any"][i], where + ".any[" + std::to_string(i) + "]"));
                } else {
                    YAML::Node r(YAML::NodeType::Map);
                    for (const auto& kv : body) {
                        std::string k = kv.first.as<std::string>();
                        if (k != "timeout_ms" && k != "as") r[k] = kv.second;
                    }
                    s.any.push_back(reaction(r, where));
                }
                break;
            }
            case Step::Kind::replay:
                only_keys(body, {"step", "as"}, where);
                if (!body["step"]) fail(body, where + " needs the step to replay");
                s.ref = str(body["step"], where + ".step");
                need_name(body["step"], s.ref);
                break;
            case Step::Kind::tamper:
                only_keys(body, {"step", "field", "set", "xor", "as"}, where);
                if (!body["step"] || !body["field"]) fail(body, where + " needs step and field");
                s.ref = str(body["step"], where + ".step");
                need_name(body["step"], s.ref);
                s.field = str(body["field"], where + ".field");
                if (!!body["set"] == !!body["xor"]) fail(body, where + " needs exactly one of set, xor");
                if (body["set"]) s.set = value(body["set"], where + ".set");
                if (body["xor"]) {
                    s.xor_mask = hex(body["xor"], where + ".xor");
                    if (s.xor_mask->empty()) fail(body["xor"], where + ".xor must not be empty");
                }
                break;
            case Step::Kind::wait:
                only_keys(body, {"ms"}, where);
                if (!body["ms"]) fail(body, where + " needs ms");
                s.ms = number<unsigned>(body["ms"], where + ".ms");
                if (s.ms > 600000) fail(body["ms"], where + ".ms must be at most 600000");
                break;
        }
        if (body["as"]) {
            s.as = str(body["as"], where + ".as");
            static const std::regex name_re("[A-Za-z_][A-Za-z0-9_-]{0,63}");
            if (!std::regex_match(s.as, name_re)) fail(body["as"], where + ".as must be a short name");
            m_names.insert(s.as);
        }
        return s;
    }

private:
    std::string m_source;
    std::set<std::string> m_names;
};

}  // namespace

namespace {

Scenario parse_root(const std::string& text, const std::string& source) {
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
        throw ScenarioError(source, e.mark.is_null() ? 0 : e.mark.line + 1, "not valid YAML: " + e.msg);
    }
    Parser p(source);
    if (!root.IsMap()) throw ScenarioError(source, 0, "a scenario is a YAML mapping (id, title, protocol, steps, ...)");
    p.only_keys(root,
                {"id", "title", "protocol", "severity", "cwe", "finding", "description", "references", "covers", "xfail",
                 "sanity", "timeout_ms", "steps", "result"},
                "scenario");
    Scenario s;
    s.source = source;
    for (const char* k : {"id", "title", "protocol", "finding", "steps"})
        if (!root[k]) p.fail(root, std::string("missing '") + k + "'");
    s.id = p.str(root["id"], "id");
    static const std::regex id_re("[a-z0-9][a-z0-9.-]{0,79}");
    if (!std::regex_match(s.id, id_re)) p.fail(root["id"], "id must be lower-case letters, digits, '-' and '.'");
    s.title = p.str(root["title"], "title");
    s.protocol = p.str(root["protocol"], "protocol");
    s.finding = p.str(root["finding"], "finding");
    const FindingCode* code = find_finding_code(s.finding);
    if (!code) p.fail(root["finding"], "finding '" + s.finding + "' is not in the catalogue (see 'msglab findings')");
    s.severity = code->severity;
    s.cwe = code->cwe;
    if (root["severity"]) {
        auto sev = parse_severity(p.str(root["severity"], "severity"));
        if (!sev) p.fail(root["severity"], "severity must be info, low, medium, high or critical");
        s.severity = *sev;
    }
    if (root["cwe"]) s.cwe = p.number<int>(root["cwe"], "cwe");
    if (root["description"]) s.description = p.str(root["description"], "description");
    for (const char* k : {"references", "covers"}) {
        if (!root[k]) continue;
        if (!root[k].IsSequence()) p.fail(root[k], std::string(k) + " must be a list");
        for (const auto& r : root[k]) (k[0] == 'r' ? s.references : s.covers).push_back(p.str(r, k));
    }
    if (root["xfail"]) s.xfail = p.str(root["xfail"], "xfail");
    if (root["sanity"]) s.sanity = p.boolean(root["sanity"], "sanity");
    if (root["timeout_ms"]) s.timeout_ms = p.number<unsigned>(root["timeout_ms"], "timeout_ms");
    if (root["result"]) s.result = YAML::Clone(root["result"]);
    const YAML::Node& steps = root["steps"];
    if (!steps.IsSequence() || steps.size() == 0) p.fail(steps, "steps must be a non-empty list");
    if (steps.size() > 1000) p.fail(steps, "at most 1000 steps");
    for (std::size_t i = 0; i < steps.size(); ++i) s.steps.push_back(p.step(steps[i], i));
    return s;
}

}  // namespace

Scenario parse_scenario(const std::string& text, const std::string& source) {
    if (text.size() > kMaxScenarioBytes) throw ScenarioError(source, 0, "larger than 8 MiB");
    // YAML is UTF-8 here; other bytes would be written back as something else.
    if (std::size_t bad = report::first_invalid_utf8(text); bad < text.size()) {
        auto line = static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(bad), '\n')) + 1;
        throw ScenarioError(source, line, "not valid UTF-8 (byte " + std::to_string(bad) + ")");
    }
    try {
        return parse_root(text, source);
    } catch (const YAML::Exception& e) {
        // What the checks above do not foresee (a mapping used as a key, an
        // alias to nothing...) is still the file's fault, said as such.
        throw ScenarioError(source, e.mark.is_null() ? 0 : e.mark.line + 1, "not a usable scenario: " + e.msg);
    }
}

Scenario load_scenario(const std::string& path) {
    std::error_code ec;
    auto size = fs::file_size(path, ec);
    if (ec) throw ScenarioError(path, 0, "cannot read the file: " + ec.message());
    if (size > kMaxScenarioBytes) throw ScenarioError(path, 0, "larger than 8 MiB");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw ScenarioError(path, 0, "cannot read the file");
    std::ostringstream text;
    text << in.rdbuf();
    return parse_scenario(text.str(), path);
}

namespace {

// A literal block keeps a text exactly only when the text ends in one
// newline (block chomping adds one), does not start with a space, and holds
// only what a block may show; anything else is written quoted.
bool literal_block_ok(const std::string& t) {
    if (t.size() < 2 || t.back() != '\n' || t[t.size() - 2] == '\n' || t.front() == ' ' || t.front() == '\n')
        return false;
    for (std::size_t i = 0; i < t.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(t[i]);
        if ((c < 0x20 && c != '\n') || c == 0x7f) return false;
        if (c == ' ' && i + 1 < t.size() && t[i + 1] == '\n') return false;  // trailing spaces
    }
    return true;
}

// A string written so that it reads back the same: yaml-cpp writes some
// strings with control characters or edge spaces as plain scalars that read
// back as something else, so those are double-quoted (and escaped).
struct Str {
    const std::string& v;
};

YAML::Emitter& operator<<(YAML::Emitter& e, Str s) {
    bool quote = !s.v.empty() && (s.v.front() == ' ' || s.v.back() == ' ');
    for (unsigned char c : s.v) quote = quote || c < 0x20 || c == 0x7f;
    if (quote) e << YAML::DoubleQuoted;
    return e << s.v;
}

void emit_value(YAML::Emitter& e, const Value& v) {
    switch (v.kind) {
        case Value::Kind::hex: e << hex(v.bytes); return;
        case Value::Kind::integer: e << YAML::Flow << YAML::BeginMap << YAML::Key << "int" << YAML::Value << v.integer << YAML::EndMap; return;
        case Value::Kind::text: e << YAML::Flow << YAML::BeginMap << YAML::Key << "text" << YAML::Value << Str{v.text} << YAML::EndMap; return;
        case Value::Kind::zeros: e << YAML::Flow << YAML::BeginMap << YAML::Key << "zeros" << YAML::Value << true << YAML::EndMap; return;
        case Value::Kind::sha256: e << YAML::Flow << YAML::BeginMap << YAML::Key << "sha256" << YAML::Value << Str{v.text} << YAML::EndMap; return;
        case Value::Kind::sha256_of: e << YAML::Flow << YAML::BeginMap << YAML::Key << "sha256_of" << YAML::Value << Str{v.field} << YAML::EndMap; return;
        case Value::Kind::std_cipher: e << YAML::Flow << YAML::BeginMap << YAML::Key << "aes128_ctr" << YAML::Value << Str{v.text} << YAML::EndMap; return;
        case Value::Kind::same_as:
            e << YAML::Flow << YAML::BeginMap << YAML::Key << "same_as" << YAML::Value << YAML::BeginMap << YAML::Key
              << "step" << YAML::Value << v.step << YAML::Key << "field" << YAML::Value << Str{v.field} << YAML::EndMap
              << YAML::EndMap;
            return;
    }
}

void emit_reaction_keys(YAML::Emitter& e, const Reaction& r) {
    switch (r.kind) {
        case Reaction::Kind::message: e << YAML::Key << "message" << YAML::Value << Str{r.type}; break;
        case Reaction::Kind::error: e << YAML::Key << "error" << YAML::Value << Str{r.contains}; break;
        case Reaction::Kind::close: e << YAML::Key << "close" << YAML::Value << true; break;
        case Reaction::Kind::silence: e << YAML::Key << "silence" << YAML::Value << true; break;
    }
    if (!r.contains.empty() && r.kind != Reaction::Kind::error) e << YAML::Key << "contains" << YAML::Value << Str{r.contains};
    if (!r.field.empty()) e << YAML::Key << "field" << YAML::Value << Str{r.field};
    if (r.equals) e << YAML::Key << "equals" << YAML::Value, emit_value(e, *r.equals);
    if (r.differs) e << YAML::Key << "differs" << YAML::Value, emit_value(e, *r.differs);
}

}  // namespace

std::string to_yaml(const Scenario& s) {
    YAML::Emitter e;
    e << YAML::BeginMap;
    e << YAML::Key << "id" << YAML::Value << Str{s.id};
    e << YAML::Key << "title" << YAML::Value << Str{s.title};
    e << YAML::Key << "protocol" << YAML::Value << Str{s.protocol};
    e << YAML::Key << "severity" << YAML::Value << severity_name(s.severity);
    e << YAML::Key << "cwe" << YAML::Value << s.cwe;
    e << YAML::Key << "finding" << YAML::Value << Str{s.finding};
    if (!s.description.empty()) {
        e << YAML::Key << "description" << YAML::Value;
        if (literal_block_ok(s.description))
            e << YAML::Literal << s.description;
        else
            e << Str{s.description};
    }
    if (!s.references.empty()) {
        e << YAML::Key << "references" << YAML::Value << YAML::BeginSeq;
        for (const auto& r : s.references) e << Str{r};
        e << YAML::EndSeq;
    }
    if (!s.covers.empty()) {
        e << YAML::Key << "covers" << YAML::Value << YAML::Flow << YAML::BeginSeq;
        for (const auto& c : s.covers) e << Str{c};
        e << YAML::EndSeq;
    }
    if (s.xfail) e << YAML::Key << "xfail" << YAML::Value << Str{*s.xfail};
    if (s.sanity) e << YAML::Key << "sanity" << YAML::Value << true;
    e << YAML::Key << "timeout_ms" << YAML::Value << s.timeout_ms;
    if (s.result && !s.result.IsNull()) e << YAML::Key << "result" << YAML::Value << s.result;
    e << YAML::Key << "steps" << YAML::Value << YAML::BeginSeq;
    for (const Step& st : s.steps) {
        e << YAML::BeginMap << YAML::Key << kStepNames[static_cast<int>(st.kind)] << YAML::Value << YAML::Flow
          << YAML::BeginMap;
        switch (st.kind) {
            case Step::Kind::connect:
            case Step::Kind::reconnect:
            case Step::Kind::handshake:
            case Step::Kind::close:
            case Step::Kind::alive:
                if (st.timeout_ms) e << YAML::Key << "timeout_ms" << YAML::Value << *st.timeout_ms;
                break;
            case Step::Kind::probe:
                e << YAML::Key << "check" << YAML::Value << Str{st.type};
                if (st.timeout_ms) e << YAML::Key << "timeout_ms" << YAML::Value << *st.timeout_ms;
                break;
            case Step::Kind::stall:
                if (st.raw) e << YAML::Key << "raw" << YAML::Value << hex(*st.raw);
                if (st.timeout_ms) e << YAML::Key << "timeout_ms" << YAML::Value << *st.timeout_ms;
                break;
            case Step::Kind::send:
                if (st.raw) e << YAML::Key << "raw" << YAML::Value << hex(*st.raw);
                else e << YAML::Key << "type" << YAML::Value << Str{st.type};
                if (st.text) e << YAML::Key << "text" << YAML::Value << Str{*st.text};
                if (st.size) e << YAML::Key << "size" << YAML::Value << *st.size;
                if (st.timestamp) e << YAML::Key << "timestamp" << YAML::Value << *st.timestamp;
                if (st.age) e << YAML::Key << "age" << YAML::Value << *st.age;
                if (!st.fields.empty()) {
                    e << YAML::Key << "fields" << YAML::Value << YAML::BeginMap;
                    for (const auto& f : st.fields) e << YAML::Key << Str{f.field} << YAML::Value, emit_value(e, f.value);
                    e << YAML::EndMap;
                }
                break;
            case Step::Kind::expect:
                if (st.any.size() == 1) {
                    emit_reaction_keys(e, st.any[0]);
                } else {
                    e << YAML::Key << "any" << YAML::Value << YAML::BeginSeq;
                    for (const auto& r : st.any) e << YAML::BeginMap, emit_reaction_keys(e, r), e << YAML::EndMap;
                    e << YAML::EndSeq;
                }
                if (st.timeout_ms) e << YAML::Key << "timeout_ms" << YAML::Value << *st.timeout_ms;
                break;
            case Step::Kind::replay: e << YAML::Key << "step" << YAML::Value << Str{st.ref}; break;
            case Step::Kind::tamper:
                e << YAML::Key << "step" << YAML::Value << Str{st.ref} << YAML::Key << "field" << YAML::Value << Str{st.field};
                if (st.set) e << YAML::Key << "set" << YAML::Value, emit_value(e, *st.set);
                if (st.xor_mask) e << YAML::Key << "xor" << YAML::Value << hex(*st.xor_mask);
                break;
            case Step::Kind::wait: e << YAML::Key << "ms" << YAML::Value << st.ms; break;
        }
        if (!st.as.empty()) e << YAML::Key << "as" << YAML::Value << Str{st.as};
        e << YAML::EndMap;
        if (st.trace && !st.trace.IsNull()) e << YAML::Key << "trace" << YAML::Value << YAML::Block << st.trace;
        e << YAML::EndMap;
    }
    e << YAML::EndSeq << YAML::EndMap;
    if (!e.good()) throw ScenarioError(s.id, 0, "cannot be written as YAML: " + e.GetLastError());
    return std::string(e.c_str()) + "\n";
}

std::vector<std::string> scenario_files(const std::string& path) {
    std::vector<std::string> out;
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) return {path};
    if (!fs::is_directory(path, ec)) return {};
    for (const auto& e : fs::recursive_directory_iterator(path, ec)) {
        auto ext = e.path().extension().string();
        if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml")) out.push_back(e.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

}  // namespace msglab::scenario
