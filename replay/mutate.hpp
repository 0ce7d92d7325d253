// Mutations of a replay plan: the messages the replayer will send, in order.
//
// Spec syntax, OP or OP:key=value,...  (indexes count plan messages from 0;
// an index left out is drawn from the seeded generator among the
// authenticated messages):
//   verbatim                              send as captured (the default)
//   reflect                               also send the target's own messages back to it
//   reorder[:index=I,with=J]              swap two messages
//   drop[:index=I]                        leave one out
//   duplicate[:index=I]                   send one twice in a row
//   truncate[:index=I,length=N]           cut one to N bytes (default: half)
//   flip:field=F[,index=I,bit=B]          flip one bit of a named field
//   set:field=F,value=HEX[,index=I]       overwrite a named field
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/bytes.hpp"
#include "core/clock.hpp"
#include "core/result.hpp"
#include "core/stream_codec.hpp"

namespace msglab::replay {

// What the target's accepting a message would show.
enum class Probe { none, replay, reflection, tamper, stale };
const char* probe_name(Probe p);

struct PlannedMessage {
    Bytes bytes;
    std::string origin;   // "captured #3 (frames 7-7)", "duplicate of #2", ...
    Probe probe = Probe::none;
    bool authenticated = false;
    std::optional<std::size_t> captured_index;  // position among the captured messages of the stream
    std::vector<std::uint64_t> frames;          // capture frames it came from
    bool live_reflection = false;  // at send time: the target's latest message instead of `bytes`
};

struct MutationSpec {
    enum class Op { verbatim, reflect, reorder, drop, duplicate, truncate, flip, set };
    Op op = Op::verbatim;
    std::optional<std::size_t> index;
    std::optional<std::size_t> with;
    std::optional<std::size_t> length;
    std::optional<std::size_t> bit;
    std::string field;
    Bytes value;
    std::string text;  // as given
};

Result<MutationSpec, std::string> parse_mutation(std::string_view spec);

// Applies one mutation; returns a line saying what it did, or an error
// (an index out of range, a field the message does not have).
// `reflections` are the target's captured messages, for `reflect`.
Result<std::string, std::string> apply_mutation(const MutationSpec& spec, std::vector<PlannedMessage>& plan,
                                                const std::vector<PlannedMessage>& reflections,
                                                const StreamCodec& codec, Rng& rng);

}  // namespace msglab::replay
