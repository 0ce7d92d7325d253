// Live capture with libpcap into a pcap file Wireshark opens.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>

struct pcap;
struct pcap_dumper;

namespace msglab::replay {

struct CaptureOptions {
    std::string iface = "lo";
    std::optional<std::uint16_t> port;  // adds "tcp port P" to the filter
    std::string filter;                 // any BPF expression, ANDed with the port
    std::string out;                    // the pcap file to write
    std::optional<double> duration;     // seconds
    std::optional<std::uint64_t> count; // packets
    int snaplen = 262144;
};

struct CaptureError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class LiveCapture {
public:
    // Opens the interface, installs the filter and creates the file; throws
    // CaptureError saying what failed and, for permissions, what to do.
    explicit LiveCapture(const CaptureOptions& options);
    ~LiveCapture();
    LiveCapture(const LiveCapture&) = delete;
    LiveCapture& operator=(const LiveCapture&) = delete;

    // Captures until stop(), the duration or the count; `progress` is called
    // with the running packet count at most ten times a second. Returns the
    // number of packets written.
    std::uint64_t run(const std::function<void(std::uint64_t)>& progress = {});
    // From any thread or a signal handler.
    void stop();
    std::string filter() const { return m_filter; }
    // Packets the kernel dropped, as libpcap counts them.
    std::uint64_t dropped() const;

private:
    pcap* m_pcap = nullptr;
    pcap_dumper* m_dumper = nullptr;
    CaptureOptions m_options;
    std::string m_filter;
    std::atomic<bool> m_stop{false};
    std::uint64_t m_written = 0;
};

}  // namespace msglab::replay
