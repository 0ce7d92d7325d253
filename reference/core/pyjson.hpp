// JSON text as Python's json.dumps writes it with its default separators
// (", " between items, ": " after keys), which the originals put on the wire:
// CSMP's WebSocket messages and every SP-SimpleChat frame. `ensure_ascii`
// escapes non-ASCII as \uXXXX (UTF-16 surrogate pairs above U+FFFF), as
// json.dumps does by default; without it UTF-8 is kept as is, as the
// SP-SimpleChat client's ensure_ascii=False. Keys keep their order.
//
// Numbers: integers as Python writes them; floats as nlohmann writes them,
// which can differ from Python's repr (neither original sends floats).
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace msglab {

void python_dumps(const nlohmann::ordered_json& j, std::string& out, bool ensure_ascii = true);
std::string python_dumps(const nlohmann::ordered_json& j, bool ensure_ascii = true);

// The same with separators=(',', ':'): no space after either, as
// python-socketio writes every packet's JSON.
void python_dumps_compact(const nlohmann::ordered_json& j, std::string& out, bool ensure_ascii = true);
std::string python_dumps_compact(const nlohmann::ordered_json& j, bool ensure_ascii = true);

}  // namespace msglab
