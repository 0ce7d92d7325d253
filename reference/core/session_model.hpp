// What a protocol tells the network fuzzer beyond its codec and live client:
// the target's session machine as a client sees it, and what the registry's
// named fields mean for mutation.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.hpp"

namespace msglab {

// The states of the endpoint the fuzzer talks to and its clean transitions.
// A transition's input is what the fuzzer sent, abstracted:
//
//   connect             the TCP connection was accepted
//   close               the client's orderly close (FIN)
//   TYPE                a message of that type (the codec's name) as the
//                       protocol's own client makes it
//   TYPE!replay         a copy of an authenticated message already sent, in
//                       this session or an earlier one
//   TYPE!reflection     the target's own authenticated message sent back
//   TYPE!tampered       an authenticated message changed after sealing: its
//                       MAC no longer fits
//   TYPE!stale          stamped more than a day from now, otherwise valid
//   TYPE!weak-key       a handshake carrying a weak key share, otherwise valid
//   TYPE!trailing       an unchanged message with more bytes after it in the
//                       same write (itself again, or junk)
//   TYPE!mutated        any other change (an unauthenticated field, or a field
//                       changed and the MAC recomputed): no fixed verdict
//   malformed           bytes the codec cannot frame
//   huge-length         a length field changed to announce more than 1 MiB
//   partial             an incomplete message: the codec needs more bytes
//   desync              anything after a partial message on one connection
//
// A pattern ending in '*' matches every input with that prefix
// ("HANDSHAKE*" is every class of both handshake types, "*" is anything);
// the most specific patterns win: exact ones, else the longest prefix. A
// transition's `to` may be "*": the target may stay or move anywhere.
struct SessionModel {
    struct Transition {
        std::string from;
        std::string input;
        std::string to;
        // The message type the target sends when it takes this transition;
        // empty when it may stay silent.
        std::string answer;
        // For a message a clean peer must refuse: the finding when the target
        // does not take this transition but keeps the connection open.
        std::string finding;
    };

    std::string role;  // the role of the endpoint under test: "responder"
    std::vector<std::string> states;
    std::string initial;  // before the connection
    std::string closed;   // after a close or a reset; nothing leaves it
    std::vector<Transition> transitions;

    bool empty() const { return states.empty(); }

    static bool matches(std::string_view pattern, std::string_view input) {
        if (!pattern.empty() && pattern.back() == '*')
            return input.substr(0, pattern.size() - 1) == pattern.substr(0, pattern.size() - 1);
        return pattern == input;
    }

    // The clean transitions from `from` on `input`: the most specific match.
    std::vector<const Transition*> expected(std::string_view from, std::string_view input) const {
        std::vector<const Transition*> best;
        std::size_t best_rank = 0;
        for (const auto& t : transitions) {
            if (t.from != from || !matches(t.input, input)) continue;
            // Exact matches rank above every prefix, longer prefixes above shorter.
            std::size_t rank = t.input.back() == '*' ? t.input.size() : std::string::npos;
            if (best.empty() || rank > best_rank) {
                best = {&t};
                best_rank = rank;
            } else if (rank == best_rank) {
                best.push_back(&t);
            }
        }
        return best;
    }
};

// The meaning of the registry's field paths, for field-aware mutation. Each
// role names a field path (ProtocolInfo::field_paths), or is empty when the
// protocol has no such field.
struct FuzzFields {
    std::string length;     // big-endian unsigned payload length
    std::string type;       // the message type code
    std::string timestamp;  // big-endian unsigned seconds since 1970
    std::string key_share;  // the handshake's public key value
    std::string mac;
    // Key shares a clean peer must refuse, each as wide as the field.
    std::vector<Bytes> weak_key_shares;
    // Plaintext sizes worth trying beside the usual edges (an original's
    // receive buffer, for instance).
    std::vector<std::size_t> payload_sizes;
    // The largest plaintext a clean endpoint takes.
    std::size_t max_payload = 0;
};

}  // namespace msglab
