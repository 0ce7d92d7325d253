#include "replay/capture.hpp"

#include <pcap/pcap.h>

#include <poll.h>

#include <chrono>

namespace msglab::replay {

LiveCapture::LiveCapture(const CaptureOptions& options) : m_options(options) {
    char err[PCAP_ERRBUF_SIZE] = {0};
    m_pcap = pcap_create(options.iface.c_str(), err);
    if (!m_pcap) throw CaptureError("cannot open interface " + options.iface + ": " + err);
    pcap_set_snaplen(m_pcap, options.snaplen);
    pcap_set_promisc(m_pcap, 0);
    pcap_set_timeout(m_pcap, 100);
    pcap_set_immediate_mode(m_pcap, 1);
    pcap_set_buffer_size(m_pcap, 32 << 20);
    int rc = pcap_activate(m_pcap);
    if (rc < 0) {
        std::string why = pcap_geterr(m_pcap);
        pcap_close(m_pcap);
        m_pcap = nullptr;
        if (rc == PCAP_ERROR_PERM_DENIED || rc == PCAP_ERROR_PROMISC_PERM_DENIED)
            throw CaptureError("not allowed to capture on " + options.iface + " (" + why +
                               "); run as root or give the binary CAP_NET_RAW and CAP_NET_ADMIN "
                               "(setcap cap_net_raw,cap_net_admin=eip msglab)");
        if (rc == PCAP_ERROR_NO_SUCH_DEVICE)
            throw CaptureError("no such interface: " + options.iface + " (" + why + ")");
        throw CaptureError("cannot capture on " + options.iface + ": " + why);
    }
    if (options.port) m_filter = "tcp port " + std::to_string(*options.port);
    if (!options.filter.empty()) m_filter = m_filter.empty() ? options.filter : m_filter + " and (" + options.filter + ")";
    if (!m_filter.empty()) {
        bpf_program prog{};
        if (pcap_compile(m_pcap, &prog, m_filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
            std::string why = pcap_geterr(m_pcap);
            pcap_close(m_pcap);
            m_pcap = nullptr;
            throw CaptureError("bad capture filter '" + m_filter + "': " + why);
        }
        rc = pcap_setfilter(m_pcap, &prog);
        pcap_freecode(&prog);
        if (rc != 0) {
            std::string why = pcap_geterr(m_pcap);
            pcap_close(m_pcap);
            m_pcap = nullptr;
            throw CaptureError("cannot install filter: " + why);
        }
    }
    m_dumper = pcap_dump_open(m_pcap, options.out.c_str());
    if (!m_dumper) {
        std::string why = pcap_geterr(m_pcap);
        pcap_close(m_pcap);
        m_pcap = nullptr;
        throw CaptureError("cannot write " + options.out + ": " + why);
    }
}

LiveCapture::~LiveCapture() {
    if (m_dumper) {
        pcap_dump_flush(m_dumper);
        pcap_dump_close(m_dumper);
    }
    if (m_pcap) pcap_close(m_pcap);
}

void LiveCapture::stop() {
    m_stop = true;
    if (m_pcap) pcap_breakloop(m_pcap);
}

std::uint64_t LiveCapture::dropped() const {
    pcap_stat st{};
    if (!m_pcap || pcap_stats(m_pcap, &st) != 0) return 0;
    return st.ps_drop + st.ps_ifdrop;
}

std::uint64_t LiveCapture::run(const std::function<void(std::uint64_t)>& progress) {
    using Steady = std::chrono::steady_clock;
    auto start = Steady::now();
    auto last_report = start;
    auto handler = [](u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
        auto* self = reinterpret_cast<LiveCapture*>(user);
        pcap_dump(reinterpret_cast<u_char*>(self->m_dumper), h, bytes);
        ++self->m_written;
    };
    // Immediate mode makes libpcap ignore its read timeout, so a blocking
    // dispatch could wait forever on a quiet interface: poll ourselves.
    char err[PCAP_ERRBUF_SIZE] = {0};
    if (pcap_setnonblock(m_pcap, 1, err) != 0) throw CaptureError(std::string("cannot capture: ") + err);
    int fd = pcap_get_selectable_fd(m_pcap);
    while (!m_stop) {
        int want = -1;
        if (m_options.count) {
            if (m_written >= *m_options.count) break;
            want = static_cast<int>(std::min<std::uint64_t>(*m_options.count - m_written, 1 << 20));
        }
        int n = pcap_dispatch(m_pcap, want, handler, reinterpret_cast<u_char*>(this));
        if (n == PCAP_ERROR) throw CaptureError(std::string("capture failed: ") + pcap_geterr(m_pcap));
        if (n > 0) {
            pcap_dump_flush(m_dumper);
        } else if (fd >= 0) {
            pollfd p{fd, POLLIN, 0};
            poll(&p, 1, 100);  // EINTR from Ctrl-C just ends the wait
        }
        auto now = Steady::now();
        if (m_options.duration && std::chrono::duration<double>(now - start).count() >= *m_options.duration) break;
        if (progress && now - last_report >= std::chrono::milliseconds(100)) {
            progress(m_written);
            last_report = now;
        }
    }
    pcap_dump_flush(m_dumper);
    if (progress) progress(m_written);
    return m_written;
}

}  // namespace msglab::replay
