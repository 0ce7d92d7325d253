#include "core/registry.hpp"

#include <stdexcept>

namespace msglab {

void Registry::add_protocol(ProtocolInfo info) {
    if (protocol(info.id)) throw std::logic_error("protocol registered twice: " + info.id);
    m_protocols.push_back(std::move(info));
}

void Registry::add_plant(PlantInfo info) {
    if (plant(info.id)) throw std::logic_error("plant registered twice: " + info.id);
    if (!protocol(info.protocol)) throw std::logic_error("plant for an unknown protocol: " + info.id);
    if (info.id.rfind(info.protocol + ".", 0) != 0)
        throw std::logic_error("plant id must start with its protocol: " + info.id);
    for (const auto& code : info.detected_by)
        if (!find_finding_code(code)) throw std::logic_error("plant " + info.id + " names unknown finding " + code);
    m_plants.push_back(std::move(info));
}

const ProtocolInfo* Registry::protocol(std::string_view id) const {
    for (const auto& p : m_protocols)
        if (p.id == id) return &p;
    return nullptr;
}

const PlantInfo* Registry::plant(std::string_view id) const {
    for (const auto& p : m_plants)
        if (p.id == id) return &p;
    return nullptr;
}

std::vector<const PlantInfo*> Registry::plants_of(std::string_view protocol) const {
    std::vector<const PlantInfo*> out;
    for (const auto& p : m_plants)
        if (p.protocol == protocol) out.push_back(&p);
    return out;
}

PlantSet PlantSet::parse(const std::vector<std::string>& ids, std::string_view protocol, const Registry& registry) {
    PlantSet set;
    for (const auto& id : ids) {
        const PlantInfo* p = registry.plant(id);
        if (!p) {
            std::string known;
            for (const auto* q : registry.plants_of(protocol)) known += (known.empty() ? "" : ", ") + q->id;
            throw std::invalid_argument("unknown plant '" + id + "'" +
                                        (known.empty() ? std::string() : " (known for " + std::string(protocol) +
                                                                             ": " + known + ")"));
        }
        if (p->protocol != protocol)
            throw std::invalid_argument("plant '" + id + "' belongs to " + p->protocol + ", not " +
                                        std::string(protocol));
        set.m_ids.insert(id);
    }
    return set;
}

}  // namespace msglab
