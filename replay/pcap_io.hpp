// Reading and writing capture files through libpcap. Streaming: one frame at
// a time, so memory does not grow with the file.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "core/bytes.hpp"

struct pcap;
struct pcap_dumper;

namespace msglab::replay {

// Where a frame sits in its capture: numbered from 1, as Wireshark does.
struct FrameInfo {
    std::uint64_t frame = 0;
    std::uint64_t ts_sec = 0;
    std::uint32_t ts_usec = 0;
    double time() const { return static_cast<double>(ts_sec) + ts_usec / 1e6; }
};

class PcapReader {
public:
    // pcap or pcapng. Throws std::runtime_error naming the file and the reason.
    explicit PcapReader(const std::string& path);
    // From an open stream (for example fmemopen over a buffer); libpcap closes
    // it with the reader. `name` is used in error messages.
    PcapReader(std::FILE* file, const std::string& name);
    ~PcapReader();
    PcapReader(const PcapReader&) = delete;
    PcapReader& operator=(const PcapReader&) = delete;

    int linktype() const;  // DLT_*
    // The next frame; false at the end. The view is valid until the next call.
    // Throws std::runtime_error on a damaged file (after the frames before it).
    bool next(ByteView& frame, FrameInfo& info);

private:
    pcap* m_pcap = nullptr;
    std::uint64_t m_frame = 0;
    std::string m_path;
};

class PcapWriter {
public:
    // A classic pcap file Wireshark opens. Throws std::runtime_error.
    PcapWriter(const std::string& path, int linktype, int snaplen = 262144);
    ~PcapWriter();
    PcapWriter(const PcapWriter&) = delete;
    PcapWriter& operator=(const PcapWriter&) = delete;

    void write(ByteView frame, std::uint64_t ts_sec, std::uint32_t ts_usec);
    void flush();
    std::uint64_t frames() const { return m_frames; }

private:
    pcap* m_dead = nullptr;
    pcap_dumper* m_dumper = nullptr;
    std::uint64_t m_frames = 0;
    std::string m_path;
    int m_snaplen = 0;
};

}  // namespace msglab::replay
