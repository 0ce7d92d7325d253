#include "core/pyjson.hpp"

namespace msglab {

using Json = nlohmann::ordered_json;

void python_dumps(const Json& j, std::string& out, bool ensure_ascii) {
    switch (j.type()) {
        case Json::value_t::object: {
            out += '{';
            bool first = true;
            for (auto it = j.begin(); it != j.end(); ++it) {
                if (!first) out += ", ";
                first = false;
                out += Json(it.key()).dump(-1, ' ', ensure_ascii, Json::error_handler_t::replace);
                out += ": ";
                python_dumps(it.value(), out, ensure_ascii);
            }
            out += '}';
            return;
        }
        case Json::value_t::array: {
            out += '[';
            for (std::size_t i = 0; i < j.size(); ++i) {
                if (i) out += ", ";
                python_dumps(j[i], out, ensure_ascii);
            }
            out += ']';
            return;
        }
        default: out += j.dump(-1, ' ', ensure_ascii, Json::error_handler_t::replace); return;
    }
}

std::string python_dumps(const Json& j, bool ensure_ascii) {
    std::string out;
    python_dumps(j, out, ensure_ascii);
    return out;
}

}  // namespace msglab
