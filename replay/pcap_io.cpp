#include "replay/pcap_io.hpp"

#include <pcap/pcap.h>

#include <algorithm>
#include <stdexcept>

namespace msglab::replay {

PcapReader::PcapReader(const std::string& path) : m_path(path) {
    char err[PCAP_ERRBUF_SIZE] = {};
    m_pcap = pcap_open_offline(path.c_str(), err);
    if (!m_pcap) throw std::runtime_error("cannot open capture " + path + ": " + err);
}

PcapReader::PcapReader(std::FILE* file, const std::string& name) : m_path(name) {
    char err[PCAP_ERRBUF_SIZE] = {};
    m_pcap = pcap_fopen_offline(file, err);
    if (!m_pcap) {
        std::fclose(file);
        throw std::runtime_error("cannot open capture " + name + ": " + err);
    }
}

PcapReader::~PcapReader() {
    if (m_pcap) pcap_close(m_pcap);
}

int PcapReader::linktype() const { return pcap_datalink(m_pcap); }

bool PcapReader::next(ByteView& frame, FrameInfo& info) {
    for (;;) {
        pcap_pkthdr* header = nullptr;
        const u_char* data = nullptr;
        int rc = pcap_next_ex(m_pcap, &header, &data);
        if (rc == 1) {
            frame = ByteView(data, header->caplen);
            info.frame = ++m_frame;
            info.ts_sec = static_cast<std::uint64_t>(header->ts.tv_sec);
            info.ts_usec = static_cast<std::uint32_t>(header->ts.tv_usec);
            return true;
        }
        if (rc == PCAP_ERROR_BREAK) return false;
        // 0 is a live-capture timeout; a savefile never returns it, but retrying is the documented answer.
        if (rc == 0) continue;
        throw std::runtime_error("damaged capture " + m_path + " after frame " + std::to_string(m_frame) + ": " +
                                 pcap_geterr(m_pcap));
    }
}

PcapWriter::PcapWriter(const std::string& path, int linktype, int snaplen) : m_path(path), m_snaplen(snaplen) {
    m_dead = pcap_open_dead(linktype, snaplen);
    if (!m_dead) throw std::runtime_error("cannot create capture " + path + ": pcap_open_dead failed");
    m_dumper = pcap_dump_open(m_dead, path.c_str());
    if (!m_dumper) {
        std::string reason = pcap_geterr(m_dead);
        pcap_close(m_dead);
        throw std::runtime_error("cannot create capture " + path + ": " + reason);
    }
}

PcapWriter::~PcapWriter() {
    if (m_dumper) pcap_dump_close(m_dumper);
    if (m_dead) pcap_close(m_dead);
}

void PcapWriter::write(ByteView frame, std::uint64_t ts_sec, std::uint32_t ts_usec) {
    pcap_pkthdr header{};
    header.ts.tv_sec = static_cast<decltype(header.ts.tv_sec)>(ts_sec);
    header.ts.tv_usec = static_cast<decltype(header.ts.tv_usec)>(ts_usec);
    header.len = static_cast<bpf_u_int32>(frame.size());
    header.caplen = static_cast<bpf_u_int32>(std::min<std::size_t>(frame.size(), static_cast<std::size_t>(m_snaplen)));
    pcap_dump(reinterpret_cast<u_char*>(m_dumper), &header, frame.data());
    ++m_frames;
}

void PcapWriter::flush() {
    if (pcap_dump_flush(m_dumper) != 0) throw std::runtime_error("cannot write capture " + m_path);
}

}  // namespace msglab::replay
