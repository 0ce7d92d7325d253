// A value or a typed error, for APIs that must not throw across their boundary.
#pragma once

#include <utility>
#include <variant>

namespace msglab {

template <class E>
struct Unexpected {
    E error;
};
template <class E>
Unexpected<E> unexpected(E e) {
    return Unexpected<E>{std::move(e)};
}

template <class T, class E>
class Result {
public:
    Result(T value) : m_v(std::in_place_index<0>, std::move(value)) {}
    template <class G>
    Result(Unexpected<G> e) : m_v(std::in_place_index<1>, E(std::move(e.error))) {}

    bool ok() const { return m_v.index() == 0; }
    explicit operator bool() const { return ok(); }
    T& value() & { return std::get<0>(m_v); }
    const T& value() const& { return std::get<0>(m_v); }
    T&& value() && { return std::get<0>(std::move(m_v)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    const E& error() const { return std::get<1>(m_v); }

private:
    std::variant<T, E> m_v;
};

}  // namespace msglab
