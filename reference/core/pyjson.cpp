#include "core/pyjson.hpp"

namespace msglab {

using Json = nlohmann::ordered_json;

namespace {

void dumps(const Json& j, std::string& out, bool ensure_ascii, const char* item_sep, const char* key_sep) {
    switch (j.type()) {
        case Json::value_t::object: {
            out += '{';
            bool first = true;
            for (auto it = j.begin(); it != j.end(); ++it) {
                if (!first) out += item_sep;
                first = false;
                out += Json(it.key()).dump(-1, ' ', ensure_ascii, Json::error_handler_t::replace);
                out += key_sep;
                dumps(it.value(), out, ensure_ascii, item_sep, key_sep);
            }
            out += '}';
            return;
        }
        case Json::value_t::array: {
            out += '[';
            for (std::size_t i = 0; i < j.size(); ++i) {
                if (i) out += item_sep;
                dumps(j[i], out, ensure_ascii, item_sep, key_sep);
            }
            out += ']';
            return;
        }
        default: out += j.dump(-1, ' ', ensure_ascii, Json::error_handler_t::replace); return;
    }
}

}  // namespace

void python_dumps(const Json& j, std::string& out, bool ensure_ascii) { dumps(j, out, ensure_ascii, ", ", ": "); }

std::string python_dumps(const Json& j, bool ensure_ascii) {
    std::string out;
    python_dumps(j, out, ensure_ascii);
    return out;
}

void python_dumps_compact(const Json& j, std::string& out, bool ensure_ascii) { dumps(j, out, ensure_ascii, ",", ":"); }

std::string python_dumps_compact(const Json& j, bool ensure_ascii) {
    std::string out;
    python_dumps_compact(j, out, ensure_ascii);
    return out;
}

}  // namespace msglab
