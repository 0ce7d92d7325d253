#include "report/capture.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <functional>
#include <set>
#include <stdexcept>

#include "core/registry.hpp"
#include "replay/extract.hpp"
#include "report/text.hpp"

namespace msglab::report {

namespace {

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// What the first pass learns about each stream.
struct StreamInfo {
    std::string protocol, client, server;
    std::set<std::string> session_ids;  // lower-case hex
    std::uint64_t count = 0;
    double first_time = 0;
};

// The messages of each stream that hold one of a finding's evidence frames:
// as their first or last frame (exact), or anywhere in between (range).
struct Hits {
    std::map<std::uint64_t, std::set<std::uint64_t>> exact, range;
};

// Streams the capture through the extractor; what was read before damage in
// the file is kept, and the damage returned.
std::string extract(const std::filesystem::path& pcap, const replay::ExtractOptions& options,
                    const std::function<void(const replay::ExtractedMessage&)>& on_message) {
    replay::MessageExtractor ex(Registry::builtin(), options, on_message);
    replay::TcpReassembler r(ex);
    try {
        replay::reassemble_file(pcap.string(), r);
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return {};
}

// The stream and evidence messages of one finding, or why there are none.
struct Choice {
    std::optional<std::uint64_t> stream;
    std::vector<std::uint64_t> evidence;
    std::string why_not;
};

Choice choose_stream(const Finding& f, const Hits& hits, const std::map<std::uint64_t, StreamInfo>& streams,
                     const std::string& pcap_name) {
    Choice c;
    // The stream holding most evidence frames; the lower number on a tie.
    for (const auto* by : {&hits.exact, &hits.range}) {
        std::size_t best = 0;
        for (const auto& [stream, indices] : *by) {
            if (indices.size() > best) {
                best = indices.size();
                c.stream = stream;
                c.evidence.assign(indices.begin(), indices.end());
            }
        }
        if (c.stream) return c;
    }
    if (!f.session_id.empty()) {
        std::string id = lower(f.session_id);
        for (const auto& [stream, info] : streams) {
            if (info.session_ids.count(id)) {
                c.stream = stream;
                return c;
            }
        }
    }
    if (!f.evidence.frames.empty())
        c.why_not = "no message of a known protocol in " + pcap_name + " is in frame(s) " + join(f.evidence.frames, ", ");
    else if (!f.session_id.empty())
        c.why_not = "no stream in " + pcap_name + " belongs to session " + f.session_id;
    else
        c.why_not = "the finding names neither evidence frames nor a session";
    if (!f.evidence.frames.empty() && !f.session_id.empty()) c.why_not += ", and none belongs to session " + f.session_id;
    return c;
}

}  // namespace

std::vector<std::uint64_t> choose_window(std::uint64_t total, const std::vector<std::uint64_t>& evidence, std::size_t max) {
    std::set<std::uint64_t> chosen;
    if (total <= max) {
        for (std::uint64_t i = 0; i < total; ++i) chosen.insert(i);
    } else if (evidence.empty()) {
        for (std::uint64_t i = 0; i < max; ++i) chosen.insert(i);
    } else {
        std::vector<std::uint64_t> ev;
        for (auto e : evidence)
            if (e < total) ev.push_back(e);
        std::sort(ev.begin(), ev.end());
        // Rings of growing distance around every evidence message.
        for (std::uint64_t d = 0; chosen.size() < max && d < total; ++d) {
            for (auto e : ev) {
                if (e >= d && chosen.size() < max) chosen.insert(e - d);
                if (e + d < total && chosen.size() < max) chosen.insert(e + d);
            }
        }
    }
    return {chosen.begin(), chosen.end()};
}

std::vector<SessionDiagram> session_diagrams(const std::filesystem::path& pcap, const std::vector<const Finding*>& findings,
                                             const KeyLog* keylog) {
    std::vector<SessionDiagram> diagrams(findings.size());
    const std::string name = pcap.filename().string();

    // Pass 1, without keys: which stream and messages hold each finding's evidence.
    std::map<std::uint64_t, std::vector<std::size_t>> by_frame;  // evidence frame -> findings
    for (std::size_t i = 0; i < findings.size(); ++i)
        for (auto fr : findings[i]->evidence.frames) by_frame[fr].push_back(i);
    std::map<std::uint64_t, StreamInfo> streams;
    std::vector<Hits> hits(findings.size());
    replay::ExtractOptions first;
    std::string damage = extract(pcap, first, [&](const replay::ExtractedMessage& m) {
        StreamInfo& s = streams[m.stream];
        if (s.count == 0) {
            s.protocol = m.protocol;
            s.client = (m.from == Peer::client ? m.src : m.dst).to_string();
            s.server = (m.from == Peer::client ? m.dst : m.src).to_string();
            s.first_time = m.time;
        }
        ++s.count;
        if (!m.decoded.session_id.empty()) s.session_ids.insert(lower(m.decoded.session_id));
        for (auto it = by_frame.lower_bound(m.first_frame); it != by_frame.end() && it->first <= m.last_frame; ++it) {
            bool exact = it->first == m.first_frame || it->first == m.last_frame;
            for (auto i : it->second) (exact ? hits[i].exact : hits[i].range)[m.stream].insert(m.index);
        }
    });
    if (streams.empty() && !damage.empty()) {
        for (auto& d : diagrams) d.unavailable = "the capture could not be read: " + damage;
        return diagrams;
    }

    // Which messages each diagram shows.
    std::vector<Choice> choices(findings.size());
    std::map<std::uint64_t, std::set<std::uint64_t>> wanted;
    for (std::size_t i = 0; i < findings.size(); ++i) {
        choices[i] = choose_stream(*findings[i], hits[i], streams, name);
        if (!choices[i].stream) {
            diagrams[i].unavailable = choices[i].why_not;
            continue;
        }
        const StreamInfo& s = streams.at(*choices[i].stream);
        for (auto index : choose_window(s.count, choices[i].evidence)) wanted[*choices[i].stream].insert(index);
    }
    if (wanted.empty()) return diagrams;

    // Pass 2, with keys: the messages shown, plaintexts included.
    std::map<std::pair<std::uint64_t, std::uint64_t>, DiagramMessage> shown;
    replay::ExtractOptions second;
    second.keylog = keylog;
    extract(pcap, second, [&](const replay::ExtractedMessage& m) {
        auto w = wanted.find(m.stream);
        if (w == wanted.end() || !w->second.count(m.index)) return;
        DiagramMessage d;
        d.index = m.index;
        d.first_frame = m.first_frame;
        d.last_frame = m.last_frame;
        d.offset = m.time - streams.at(m.stream).first_time;
        d.from = m.from;
        d.type = m.decoded.type;
        d.length = m.bytes.size();
        if (m.decoded.plaintext) d.preview = preview(*m.decoded.plaintext, kPreviewChars);
        d.anomalies = m.decoded.anomalies;
        shown.emplace(std::make_pair(m.stream, m.index), std::move(d));
    });

    for (std::size_t i = 0; i < findings.size(); ++i) {
        if (!choices[i].stream) continue;
        std::uint64_t stream = *choices[i].stream;
        const StreamInfo& s = streams.at(stream);
        SessionDiagram& d = diagrams[i];
        d.stream = stream;
        d.protocol = s.protocol;
        d.client = s.client;
        d.server = s.server;
        if (!s.session_ids.empty()) d.session_id = *s.session_ids.begin();
        d.total = s.count;
        std::set<std::uint64_t> evidence(choices[i].evidence.begin(), choices[i].evidence.end());
        for (auto index : choose_window(s.count, choices[i].evidence)) {
            auto it = shown.find({stream, index});
            if (it == shown.end()) continue;
            d.messages.push_back(it->second);
            d.messages.back().evidence = evidence.count(index) != 0;
        }
        if (!damage.empty()) d.note = "the capture is damaged (" + damage + "); messages after the damage are missing";
    }
    return diagrams;
}

std::map<std::uint64_t, ByteRegion> frame_regions(const std::filesystem::path& pcap,
                                                  const std::vector<std::uint64_t>& frames) {
    std::map<std::uint64_t, ByteRegion> regions;
    if (frames.empty()) return regions;
    std::ifstream in(pcap, std::ios::binary);
    unsigned char header[24];
    if (!in.read(reinterpret_cast<char*>(header), sizeof header)) return regions;
    // The magic number, in the writer's byte order, with micro- or nanosecond stamps.
    bool little;
    if ((header[0] == 0xd4 || header[0] == 0x4d) && header[1] == 0xc3 && header[2] == 0xb2 && header[3] == 0xa1)
        little = true;
    else if (header[0] == 0xa1 && header[1] == 0xb2 && header[2] == 0xc3 && (header[3] == 0xd4 || header[3] == 0x4d))
        little = false;
    else
        return regions;  // pcapng or not a capture
    auto u32 = [little](const unsigned char* p) -> std::uint32_t {
        return little ? p[0] | p[1] << 8 | p[2] << 16 | std::uint32_t(p[3]) << 24
                      : std::uint32_t(p[0]) << 24 | p[1] << 16 | p[2] << 8 | p[3];
    };
    std::error_code ec;
    const std::uint64_t size = std::filesystem::file_size(pcap, ec);
    if (ec) return regions;
    std::set<std::uint64_t> wanted(frames.begin(), frames.end());
    std::uint64_t offset = sizeof header, last = *wanted.rbegin();
    for (std::uint64_t frame = 1; frame <= last; ++frame) {
        unsigned char record[16];
        if (!in.read(reinterpret_cast<char*>(record), sizeof record)) break;
        std::uint32_t captured = u32(record + 8);
        offset += sizeof record;
        if (offset + captured > size) break;  // a record cut short
        if (wanted.count(frame)) regions[frame] = {offset, captured};
        offset += captured;
        if (!in.seekg(captured, std::ios::cur)) break;
    }
    return regions;
}

}  // namespace msglab::report
