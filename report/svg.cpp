// The message sequence diagram as inline SVG. Colours and fonts come from the
// page's stylesheet (classes only, no style attributes), so the diagram
// follows the page into dark mode and print, and a strict Content Security
// Policy needs no exception for it.
#include <sstream>

#include "report/report.hpp"
#include "report/text.hpp"

namespace msglab::report {

namespace {

constexpr int kWidth = 760;
constexpr int kClientX = 210, kServerX = 630;
constexpr int kHeaderBottom = 52;
constexpr int kMessageRow = 46, kGapRow = 26;

std::string gap_text(std::uint64_t n) {
    return "\xe2\x8b\xaf " + std::to_string(n) + (n == 1 ? " message" : " messages") + " left out \xe2\x8b\xaf";
}

class Svg {
public:
    explicit Svg(const SessionDiagram& d) : m_d(d) {}

    std::string render() {
        int y = kHeaderBottom + 12;
        std::uint64_t next = 0;  // the stream index after the last row drawn
        for (const auto& m : m_d.messages) {
            if (m.index > next) y = gap(y, m.index - next);
            y = message(y, m);
            next = m.index + 1;
        }
        if (m_d.total > next) y = gap(y, m_d.total - next);
        int height = y + 8;

        std::ostringstream out;
        std::size_t evidence = 0;
        for (const auto& m : m_d.messages) evidence += m.evidence;
        out << "<svg class=\"seq\" role=\"img\" width=\"" << kWidth << "\" height=\"" << height << "\" viewBox=\"0 0 "
            << kWidth << " " << height << "\" aria-label=\""
            << html_escape("message sequence of TCP stream " + std::to_string(m_d.stream) + ": " +
                           std::to_string(m_d.messages.size()) + " of " + std::to_string(m_d.total) + " messages, " +
                           std::to_string(evidence) + " of them evidence")
            << "\">\n";
        for (int x : {kClientX, kServerX})
            out << "<line class=\"life\" x1=\"" << x << "\" y1=\"" << kHeaderBottom << "\" x2=\"" << x << "\" y2=\""
                << height - 4 << "\"/>\n";
        head(out, kClientX, "client", m_d.client);
        head(out, kServerX, "server", m_d.server);
        out << m_rows.str() << "</svg>";
        return out.str();
    }

private:
    static void head(std::ostringstream& out, int x, const char* role, const std::string& address) {
        out << "<rect class=\"box\" x=\"" << x - 95 << "\" y=\"6\" width=\"190\" height=\"" << kHeaderBottom - 10
            << "\" rx=\"4\"/>\n"
            << "<text class=\"role\" x=\"" << x << "\" y=\"24\" text-anchor=\"middle\">" << role << "</text>\n"
            << "<text x=\"" << x << "\" y=\"40\" text-anchor=\"middle\">" << html_escape(shorten(address, 26))
            << "</text>\n";
    }

    int gap(int y, std::uint64_t n) {
        int mid = y + kGapRow / 2;
        m_rows << "<g class=\"gap\"><line x1=\"" << kClientX - 60 << "\" y1=\"" << mid << "\" x2=\"" << kServerX + 60
               << "\" y2=\"" << mid << "\"/><rect x=\"" << (kClientX + kServerX) / 2 - 110 << "\" y=\"" << mid - 9
               << "\" width=\"220\" height=\"18\"/><text x=\"" << (kClientX + kServerX) / 2 << "\" y=\"" << mid + 4
               << "\" text-anchor=\"middle\">" << gap_text(n) << "</text></g>\n";
        return y + kGapRow;
    }

    int message(int y, const DiagramMessage& m) {
        bool right = m.from == Peer::client;
        int from_x = right ? kClientX : kServerX, to_x = right ? kServerX : kClientX;
        int arrow_y = y + 22, mid = (kClientX + kServerX) / 2;
        std::string frames = m.first_frame == m.last_frame
                                 ? "frame " + std::to_string(m.first_frame)
                                 : "frames " + std::to_string(m.first_frame) + "\xe2\x80\x93" + std::to_string(m.last_frame);
        std::string hover = frames + ", message " + std::to_string(m.index) + " of the stream, " +
                            (right ? "client to server" : "server to client") + ", " + std::to_string(m.length) +
                            " bytes";
        for (const auto& a : m.anomalies) hover += "\n[!] " + a;

        m_rows << "<g class=\"msg" << (m.evidence ? " ev" : "") << "\"><title>" << html_escape(visible(hover))
               << "</title>";
        if (m.evidence)
            m_rows << "<rect class=\"evbg\" x=\"2\" y=\"" << y + 1 << "\" width=\"" << kWidth - 4 << "\" height=\""
                   << kMessageRow - 2 << "\" rx=\"3\"/><text class=\"evtag\" x=\"" << kWidth - 8 << "\" y=\""
                   << arrow_y + 4 << "\" text-anchor=\"end\">evidence</text>";
        m_rows << "<text class=\"meta\" x=\"8\" y=\"" << y + 19 << "\">" << frames << "</text>"
               << "<text class=\"meta\" x=\"8\" y=\"" << y + 34 << "\">+" << fixed(m.offset, 6) << " s</text>";
        std::string label = shorten(m.type, 32) + " \xc2\xb7 " + std::to_string(m.length) + " B" +
                            (m.anomalies.empty() ? "" : " \xe2\x9a\xa0");
        m_rows << "<text class=\"label\" x=\"" << mid << "\" y=\"" << y + 15 << "\" text-anchor=\"middle\">"
               << html_escape(label) << "</text>";
        int tip = right ? to_x - 1 : to_x + 1, base = right ? tip - 9 : tip + 9;
        m_rows << "<line class=\"arrow\" x1=\"" << from_x << "\" y1=\"" << arrow_y << "\" x2=\"" << base << "\" y2=\""
               << arrow_y << "\"/><polygon class=\"head\" points=\"" << tip << "," << arrow_y << " " << base << ","
               << arrow_y - 4 << " " << base << "," << arrow_y + 4 << "\"/>";
        if (m.preview)
            m_rows << "<text class=\"pt\" x=\"" << mid << "\" y=\"" << y + 38 << "\" text-anchor=\"middle\">"
                   << html_escape("\xe2\x80\x9c" + *m.preview + "\xe2\x80\x9d") << "</text>";
        m_rows << "</g>\n";
        return y + kMessageRow;
    }

    const SessionDiagram& m_d;
    std::ostringstream m_rows;
};

}  // namespace

std::string render_svg(const SessionDiagram& d) { return Svg(d).render(); }

}  // namespace msglab::report
