#include "replay/mutate.hpp"

#include <charconv>

namespace msglab::replay {

const char* probe_name(Probe p) {
    switch (p) {
        case Probe::none: return "none";
        case Probe::replay: return "replay";
        case Probe::reflection: return "reflection";
        case Probe::tamper: return "tamper";
        case Probe::stale: return "stale";
    }
    return "none";
}

namespace {

std::optional<std::size_t> number(std::string_view s) {
    std::size_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

std::string label(const PlannedMessage& m, std::size_t i) { return "#" + std::to_string(i) + " (" + m.origin + ")"; }

}  // namespace

Result<MutationSpec, std::string> parse_mutation(std::string_view text) {
    MutationSpec s;
    s.text = std::string(text);
    auto colon = text.find(':');
    std::string_view op = text.substr(0, colon);
    using Op = MutationSpec::Op;
    if (op == "verbatim") s.op = Op::verbatim;
    else if (op == "reflect") s.op = Op::reflect;
    else if (op == "reorder") s.op = Op::reorder;
    else if (op == "drop") s.op = Op::drop;
    else if (op == "duplicate") s.op = Op::duplicate;
    else if (op == "truncate") s.op = Op::truncate;
    else if (op == "flip") s.op = Op::flip;
    else if (op == "set") s.op = Op::set;
    else
        return unexpected("unknown mutation '" + std::string(op) +
                          "' (verbatim, reflect, reorder, drop, duplicate, truncate, flip, set)");
    if (colon != std::string_view::npos) {
        std::string_view rest = text.substr(colon + 1);
        while (!rest.empty()) {
            auto comma = rest.find(',');
            std::string_view kv = rest.substr(0, comma);
            rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
            auto eq = kv.find('=');
            if (eq == std::string_view::npos) return unexpected("expected key=value in '" + std::string(kv) + "'");
            std::string_view key = kv.substr(0, eq), val = kv.substr(eq + 1);
            if (key == "field") {
                s.field = std::string(val);
            } else if (key == "value") {
                if (!unhex(val, s.value)) return unexpected("value must be hex: '" + std::string(val) + "'");
            } else if (key != "index" && key != "with" && key != "length" && key != "bit") {
                return unexpected("unknown key '" + std::string(key) + "' in mutation " + std::string(op));
            } else {
                auto n = number(val);
                if (!n) return unexpected("'" + std::string(key) + "' needs a whole number, not '" + std::string(val) + "'");
                if (key == "index") s.index = n;
                else if (key == "with") s.with = n;
                else if (key == "length") s.length = n;
                else s.bit = n;
            }
        }
    }
    if ((s.op == Op::flip || s.op == Op::set) && s.field.empty())
        return unexpected(std::string(op) + " needs field=NAME (see 'msglab protocols --verbose')");
    if (s.op == Op::set && s.value.empty()) return unexpected("set needs value=HEX");
    return s;
}

Result<std::string, std::string> apply_mutation(const MutationSpec& spec, std::vector<PlannedMessage>& plan,
                                                const std::vector<PlannedMessage>& reflections,
                                                const StreamCodec& codec, Rng& rng) {
    using Op = MutationSpec::Op;
    auto pick = [&](std::optional<std::size_t> given) -> Result<std::size_t, std::string> {
        if (given) {
            if (*given >= plan.size())
                return unexpected("index " + std::to_string(*given) + " is out of range (the plan has " +
                                  std::to_string(plan.size()) + " messages)");
            return *given;
        }
        std::vector<std::size_t> candidates;
        for (std::size_t i = 0; i < plan.size(); ++i)
            if (plan[i].authenticated && !plan[i].live_reflection) candidates.push_back(i);
        if (candidates.empty())
            for (std::size_t i = 0; i < plan.size(); ++i) candidates.push_back(i);
        if (candidates.empty()) return unexpected(std::string("the plan has no message to mutate"));
        return candidates[rng.below(candidates.size())];
    };
    switch (spec.op) {
        case Op::verbatim:
            return std::string("verbatim: messages sent as captured");
        case Op::reflect: {
            std::size_t n = 0;
            for (const auto& r : reflections) {
                PlannedMessage m = r;
                m.probe = Probe::reflection;
                m.origin = "reflected " + r.origin;
                plan.push_back(std::move(m));
                ++n;
            }
            if (n == 0) {
                PlannedMessage m;
                m.origin = "the target's latest message, reflected";
                m.probe = Probe::reflection;
                m.authenticated = true;
                m.live_reflection = true;
                plan.push_back(std::move(m));
                return std::string("reflect: the target's latest message will be sent back to it");
            }
            return "reflect: " + std::to_string(n) + " of the target's messages appended";
        }
        case Op::reorder: {
            auto a = pick(spec.index);
            if (!a) return unexpected(a.error());
            std::size_t b;
            if (spec.with) {
                if (*spec.with >= plan.size()) return unexpected("with=" + std::to_string(*spec.with) + " is out of range");
                b = *spec.with;
            } else {
                if (plan.size() < 2) return unexpected(std::string("reorder needs two messages"));
                b = *a + 1 < plan.size() ? *a + 1 : *a - 1;
            }
            std::swap(plan[*a], plan[b]);
            return "reorder: swapped " + std::to_string(*a) + " and " + std::to_string(b);
        }
        case Op::drop: {
            auto a = pick(spec.index);
            if (!a) return unexpected(a.error());
            std::string what = label(plan[*a], *a);
            plan.erase(plan.begin() + static_cast<std::ptrdiff_t>(*a));
            return "drop: " + what;
        }
        case Op::duplicate: {
            auto a = pick(spec.index);
            if (!a) return unexpected(a.error());
            PlannedMessage copy = plan[*a];
            copy.origin = "duplicate of #" + std::to_string(*a);
            if (copy.authenticated) copy.probe = Probe::replay;
            plan.insert(plan.begin() + static_cast<std::ptrdiff_t>(*a) + 1, std::move(copy));
            return "duplicate: " + label(plan[*a], *a) + " sent twice";
        }
        case Op::truncate: {
            auto a = pick(spec.index);
            if (!a) return unexpected(a.error());
            auto& m = plan[*a];
            std::size_t len = spec.length.value_or(m.bytes.size() / 2);
            if (len >= m.bytes.size())
                return unexpected("length " + std::to_string(len) + " does not shorten a " +
                                  std::to_string(m.bytes.size()) + "-byte message");
            m.bytes.resize(len);
            m.origin += ", truncated to " + std::to_string(len) + " bytes";
            m.probe = Probe::tamper;
            return "truncate: #" + std::to_string(*a) + " to " + std::to_string(len) + " bytes";
        }
        case Op::flip:
        case Op::set: {
            auto a = pick(spec.index);
            if (!a) return unexpected(a.error());
            auto& m = plan[*a];
            auto span = codec.locate(m.bytes, spec.field);
            if (!span || span->length == 0)
                return unexpected("message #" + std::to_string(*a) + " has no field '" + spec.field + "'");
            if (spec.op == Op::set) {
                if (spec.value.size() != span->length)
                    return unexpected(spec.field + " is " + std::to_string(span->length) + " bytes; value has " +
                                      std::to_string(spec.value.size()));
                std::copy(spec.value.begin(), spec.value.end(), m.bytes.begin() + static_cast<std::ptrdiff_t>(span->offset));
                m.origin += ", " + spec.field + " set";
                m.probe = Probe::tamper;
                return "set: " + spec.field + " of #" + std::to_string(*a) + " = " + hex(spec.value);
            }
            std::size_t bit = spec.bit.value_or(rng.below(span->length * 8));
            if (bit >= span->length * 8)
                return unexpected("bit " + std::to_string(bit) + " is outside " + spec.field);
            m.bytes[span->offset + bit / 8] ^= static_cast<std::uint8_t>(0x80 >> (bit % 8));
            m.origin += ", bit " + std::to_string(bit) + " of " + spec.field + " flipped";
            m.probe = Probe::tamper;
            return "flip: bit " + std::to_string(bit) + " of " + spec.field + " in #" + std::to_string(*a);
        }
    }
    return unexpected(std::string("unhandled mutation"));
}

}  // namespace msglab::replay
