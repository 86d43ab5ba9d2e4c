/*
 * tel/value.hpp: the values of event properties and their JSON text, for tel/tel.hpp.
 *
 * `tel::Value` is null, a boolean, an integer, a double, a UTF-8 string, a `tel::Array` or a
 * `tel::Object`; `to_json()` writes it as compact JSON, so that users of the wrapper need no JSON
 * library. `tel::detail::JsonReader` reads JSON back (the library's stats). Standard library only.
 */

#ifndef TEL_VALUE_HPP
#define TEL_VALUE_HPP

#if defined(_MSVC_LANG) ? (_MSVC_LANG < 201703L) : (__cplusplus < 201703L)
#error "tel/value.hpp needs C++17 or later"
#endif

#include <algorithm>
#include <charconv>
#include <clocale>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace tel {
namespace detail {

/// Character types, which `tel::Value` refuses: `'x'` is rarely meant as the number 120.
template <typename T>
struct is_character
    : std::bool_constant<std::is_same_v<T, char> || std::is_same_v<T, signed char> ||
                         std::is_same_v<T, unsigned char> || std::is_same_v<T, wchar_t> ||
                         std::is_same_v<T, char16_t> || std::is_same_v<T, char32_t>> {};

}  // namespace detail

// ------------------------------------------------------------------------------------------
// Values: what event properties are made of
// ------------------------------------------------------------------------------------------

class Value;

/// A JSON array of values: `tel::Array{1, "two", 3.0, nullptr}`.
using Array = std::vector<Value>;

/// A JSON object: members in the order given, written as they are (a repeated key is written
/// twice). `tel::Object{{"key", value}, ...}`; `tel::Properties` is the same type.
class Object {
public:
    using Member = std::pair<std::string, Value>;
    using const_iterator = std::vector<Member>::const_iterator;

    Object() = default;
    Object(std::initializer_list<Member> members);

    /// Appends a member (chainable).
    Object& add(std::string key, Value value);
    /// Replaces the value of `key`, or appends it when absent.
    Object& set(std::string key, Value value);
    /// The value of the first member named `key`, or nullptr.
    const Value* find(std::string_view key) const noexcept;
    Value* find(std::string_view key) noexcept;

    bool empty() const noexcept;
    std::size_t size() const noexcept;
    const_iterator begin() const noexcept;
    const_iterator end() const noexcept;

    /// The object as compact JSON text.
    std::string to_json() const;

private:
    std::vector<Member> members_;
};

/// The properties of an event: a JSON object.
using Properties = Object;

/// One JSON value: null, a boolean, an integer (signed or unsigned 64-bit), a double, a UTF-8
/// string, an array or an object. Constructed implicitly from the matching C++ types;
/// characters, enumerations and pointers other than C strings are refused at compile time, so
/// that neither `'x'` nor a stray pointer silently becomes a number or `true`.
class Value {
public:
    enum class Kind { null, boolean, integer, unsigned_integer, number, string, array, object };

    Value() noexcept : v_(nullptr) {}
    Value(std::nullptr_t) noexcept : v_(nullptr) {}
    Value(bool b) noexcept : v_(b) {}
    template <typename T,
              std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> &&
                                   !detail::is_character<T>::value,
                               int> = 0>
    Value(T n) noexcept {
        if constexpr (std::is_signed_v<T>)
            v_ = static_cast<std::int64_t>(n);
        else
            v_ = static_cast<std::uint64_t>(n);
    }
    template <typename T, std::enable_if_t<std::is_floating_point_v<T>, int> = 0>
    Value(T x) noexcept : v_(static_cast<double>(x)) {}
    /// A NULL `const char*` is JSON null.
    Value(const char* s) {
        if (s != nullptr)
            v_ = std::string(s);
        else
            v_ = nullptr;
    }
    Value(char* s) : Value(static_cast<const char*>(s)) {}
    Value(std::string s) : v_(std::move(s)) {}
    Value(std::string_view s) : v_(std::string(s)) {}
    Value(Array a) : v_(std::move(a)) {}
    Value(Object o) : v_(std::move(o)) {}
    /// Any `std::vector` of convertible elements is an array.
    template <typename T, std::enable_if_t<!std::is_same_v<T, Value>, int> = 0>
    Value(const std::vector<T>& items) : v_(Array(items.begin(), items.end())) {}
    /// An empty optional is null.
    template <typename T>
    Value(const std::optional<T>& o) : Value(o ? Value(*o) : Value()) {}
    /// Refused: other pointers, characters and enumerations would silently become `true` or a
    /// number. Convert them explicitly.
    template <typename T>
    Value(T*) = delete;
    template <typename T, std::enable_if_t<detail::is_character<T>::value || std::is_enum_v<T>,
                                           int> = 0>
    Value(T) = delete;

    Kind kind() const noexcept { return static_cast<Kind>(v_.index()); }
    bool is_null() const noexcept { return kind() == Kind::null; }

    /// The stored alternative, or nullptr: one of std::nullptr_t, bool, std::int64_t,
    /// std::uint64_t, double, std::string, tel::Array, tel::Object.
    template <typename T>
    const T* get_if() const noexcept { return std::get_if<T>(&v_); }
    template <typename T>
    T* get_if() noexcept { return std::get_if<T>(&v_); }

    /// The value as compact JSON text.
    std::string to_json() const;

    /// JSON equality: integers compare by value whatever their signedness, doubles by value,
    /// objects whatever their member order.
    friend bool operator==(const Value& a, const Value& b) noexcept;
    friend bool operator!=(const Value& a, const Value& b) noexcept { return !(a == b); }

private:
    std::variant<std::nullptr_t, bool, std::int64_t, std::uint64_t, double, std::string, Array,
                 Object>
        v_;
};

// Object's members are defined here, where Value is complete.
inline Object::Object(std::initializer_list<Member> members) : members_(members) {}
inline bool Object::empty() const noexcept { return members_.empty(); }
inline std::size_t Object::size() const noexcept { return members_.size(); }
inline Object::const_iterator Object::begin() const noexcept { return members_.begin(); }
inline Object::const_iterator Object::end() const noexcept { return members_.end(); }

inline Object& Object::add(std::string key, Value value) {
    members_.emplace_back(std::move(key), std::move(value));
    return *this;
}

inline Object& Object::set(std::string key, Value value) {
    if (Value* existing = find(key))
        *existing = std::move(value);
    else
        add(std::move(key), std::move(value));
    return *this;
}

inline const Value* Object::find(std::string_view key) const noexcept {
    for (const auto& member : members_)
        if (member.first == key) return &member.second;
    return nullptr;
}

inline Value* Object::find(std::string_view key) noexcept {
    for (auto& member : members_)
        if (member.first == key) return &member.second;
    return nullptr;
}

inline bool operator==(const Object& a, const Object& b) noexcept {
    if (a.size() != b.size()) return false;
    for (const auto& member : a) {
        const Value* other = b.find(member.first);
        if (other == nullptr || *other != member.second) return false;
    }
    return true;
}

inline bool operator!=(const Object& a, const Object& b) noexcept { return !(a == b); }

inline bool operator==(const Value& a, const Value& b) noexcept {
    using Kind = Value::Kind;
    const auto as_signed = [](const Value& v, std::int64_t& out) {
        if (const auto* i = v.get_if<std::int64_t>()) return out = *i, true;
        if (const auto* u = v.get_if<std::uint64_t>())
            if (*u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                return out = static_cast<std::int64_t>(*u), true;
        return false;
    };
    const bool a_int = a.kind() == Kind::integer || a.kind() == Kind::unsigned_integer;
    const bool b_int = b.kind() == Kind::integer || b.kind() == Kind::unsigned_integer;
    if (a_int && b_int && a.kind() != b.kind()) {
        std::int64_t x = 0, y = 0;
        return as_signed(a, x) && as_signed(b, y) && x == y;
    }
    return a.v_ == b.v_;
}

// ------------------------------------------------------------------------------------------
// JSON text: written here so that users need no JSON library
// ------------------------------------------------------------------------------------------

namespace detail {

/// A JSON string: `"` and `\` escaped, control characters as `\n`-style or `\u00XX`
/// escapes (NUL included, so that a C string can carry it), everything else (UTF-8 included)
/// as is. Invalid UTF-8 is the library's to refuse (`TEL_ERR_INVALID_ARGUMENT`).
inline void write_string(std::string& out, std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    out += '"';
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out += hex[c >> 4];
                    out += hex[c & 0xf];
                } else {
                    out += ch;
                }
        }
    }
    out += '"';
}

template <typename Int>
void write_integer(std::string& out, Int n) {
    char buf[24];
    const auto end = std::to_chars(buf, buf + sizeof buf, n).ptr;
    out.append(buf, end);
}

/// A double in its shortest round-trip form, independent of the C locale, with `.0` kept on
/// integral values so that a receiver still sees a floating-point number. JSON has no NaN or
/// infinity: those are written as null, as JavaScript's JSON.stringify does.
inline void write_double(std::string& out, double x) {
    if (!std::isfinite(x)) {
        out += "null";
        return;
    }
    char buf[64];
    std::size_t length = 0;
#if defined(__cpp_lib_to_chars) && __cpp_lib_to_chars >= 201611L && \
    (defined(__GLIBCXX__) || defined(_MSC_VER))
    length = static_cast<std::size_t>(std::to_chars(buf, buf + sizeof buf, x).ptr - buf);
#else
    // printf honours LC_NUMERIC; the shortest precision that reads back exactly is kept, and
    // the locale's decimal point is turned into '.'.
    for (int precision = 15; precision <= 17; ++precision) {
        length = static_cast<std::size_t>(std::snprintf(buf, sizeof buf, "%.*g", precision, x));
        if (std::strtod(buf, nullptr) == x) break;
    }
    const char* point = std::localeconv()->decimal_point;
    const std::size_t point_length = point ? std::strlen(point) : 0;
    if (point_length > 0 && !(point_length == 1 && point[0] == '.')) {
        std::string text(buf, length);
        const std::size_t at = text.find(point);
        if (at != std::string::npos) text.replace(at, point_length, ".");
        length = std::min(text.size(), sizeof buf);
        std::memcpy(buf, text.data(), length);
    }
#endif
    out.append(buf, length);
    if (std::find_if(buf, buf + length, [](char c) { return c == '.' || c == 'e' || c == 'E'; }) ==
        buf + length)
        out += ".0";
}

inline void write_value(std::string& out, const Value& value);

inline void write_object(std::string& out, const Object& object) {
    out += '{';
    bool first = true;
    for (const auto& member : object) {
        if (!first) out += ',';
        first = false;
        write_string(out, member.first);
        out += ':';
        write_value(out, member.second);
    }
    out += '}';
}

inline void write_value(std::string& out, const Value& value) {
    if (value.get_if<std::nullptr_t>()) {
        out += "null";
    } else if (const auto* b = value.get_if<bool>()) {
        out += *b ? "true" : "false";
    } else if (const auto* i = value.get_if<std::int64_t>()) {
        write_integer(out, *i);
    } else if (const auto* u = value.get_if<std::uint64_t>()) {
        write_integer(out, *u);
    } else if (const auto* d = value.get_if<double>()) {
        write_double(out, *d);
    } else if (const auto* s = value.get_if<std::string>()) {
        write_string(out, *s);
    } else if (const auto* a = value.get_if<Array>()) {
        out += '[';
        for (std::size_t k = 0; k < a->size(); ++k) {
            if (k > 0) out += ',';
            write_value(out, (*a)[k]);
        }
        out += ']';
    } else if (const auto* o = value.get_if<Object>()) {
        write_object(out, *o);
    }
}

/// A strict reader of JSON text into a `tel::Value`, used for `tel_stats_json`. Throws
/// `std::invalid_argument` on malformed text.
class JsonReader {
public:
    explicit JsonReader(std::string_view text) : text_(text) {}

    Value read_document() {
        Value value = read_value(0);
        skip_space();
        if (at_ != text_.size()) fail("trailing characters");
        return value;
    }

private:
    static constexpr int max_depth = 256;

    [[noreturn]] void fail(const char* what) const {
        throw std::invalid_argument(std::string("malformed JSON: ") + what + " at offset " +
                                    std::to_string(at_));
    }

    void skip_space() {
        while (at_ < text_.size() && (text_[at_] == ' ' || text_[at_] == '\t' ||
                                      text_[at_] == '\n' || text_[at_] == '\r'))
            ++at_;
    }

    bool consume(std::string_view word) {
        if (text_.substr(at_, word.size()) != word) return false;
        at_ += word.size();
        return true;
    }

    Value read_value(int depth) {
        if (depth > max_depth) fail("nesting too deep");
        skip_space();
        if (at_ >= text_.size()) fail("unexpected end");
        const char c = text_[at_];
        if (c == '{') return read_object(depth);
        if (c == '[') return read_array(depth);
        if (c == '"') return read_string();
        if (consume("null")) return Value();
        if (consume("true")) return Value(true);
        if (consume("false")) return Value(false);
        return read_number();
    }

    Value read_object(int depth) {
        ++at_;
        Object object;
        skip_space();
        if (at_ < text_.size() && text_[at_] == '}') return ++at_, Value(std::move(object));
        for (;;) {
            skip_space();
            if (at_ >= text_.size() || text_[at_] != '"') fail("expected a member name");
            std::string key = *read_string().get_if<std::string>();
            skip_space();
            if (at_ >= text_.size() || text_[at_] != ':') fail("expected ':'");
            ++at_;
            object.add(std::move(key), read_value(depth + 1));
            skip_space();
            if (at_ < text_.size() && text_[at_] == ',') {
                ++at_;
                continue;
            }
            if (at_ < text_.size() && text_[at_] == '}') return ++at_, Value(std::move(object));
            fail("expected ',' or '}'");
        }
    }

    Value read_array(int depth) {
        ++at_;
        Array array;
        skip_space();
        if (at_ < text_.size() && text_[at_] == ']') return ++at_, Value(std::move(array));
        for (;;) {
            array.push_back(read_value(depth + 1));
            skip_space();
            if (at_ < text_.size() && text_[at_] == ',') {
                ++at_;
                continue;
            }
            if (at_ < text_.size() && text_[at_] == ']') return ++at_, Value(std::move(array));
            fail("expected ',' or ']'");
        }
    }

    unsigned read_hex4() {
        if (text_.size() - at_ < 4) fail("short \\u escape");
        unsigned code = 0;
        for (int k = 0; k < 4; ++k) {
            const char h = text_[at_++];
            code <<= 4;
            if (h >= '0' && h <= '9')
                code |= static_cast<unsigned>(h - '0');
            else if (h >= 'a' && h <= 'f')
                code |= static_cast<unsigned>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F')
                code |= static_cast<unsigned>(h - 'A' + 10);
            else
                fail("bad \\u escape");
        }
        return code;
    }

    static void append_utf8(std::string& out, unsigned long cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    Value read_string() {
        ++at_;
        std::string out;
        for (;;) {
            if (at_ >= text_.size()) fail("unterminated string");
            const char c = text_[at_++];
            if (c == '"') return Value(std::move(out));
            if (static_cast<unsigned char>(c) < 0x20) fail("raw control character in a string");
            if (c != '\\') {
                out += c;
                continue;
            }
            if (at_ >= text_.size()) fail("unterminated escape");
            switch (text_[at_++]) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned long cp = read_hex4();
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (!consume("\\u")) fail("lone high surrogate");
                        const unsigned low = read_hex4();
                        if (low < 0xDC00 || low > 0xDFFF) fail("bad low surrogate");
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                        fail("lone low surrogate");
                    }
                    append_utf8(out, cp);
                    break;
                }
                default: fail("unknown escape");
            }
        }
    }

    Value read_number() {
        const std::size_t start = at_;
        bool integral = true;
        if (at_ < text_.size() && text_[at_] == '-') ++at_;
        const std::size_t digits = at_;
        while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') ++at_;
        if (at_ == digits) fail("expected a value");
        if (text_[digits] == '0' && at_ - digits > 1) fail("leading zero");
        if (at_ < text_.size() && text_[at_] == '.') {
            integral = false;
            const std::size_t fraction = ++at_;
            while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') ++at_;
            if (at_ == fraction) fail("expected fraction digits");
        }
        if (at_ < text_.size() && (text_[at_] == 'e' || text_[at_] == 'E')) {
            integral = false;
            ++at_;
            if (at_ < text_.size() && (text_[at_] == '+' || text_[at_] == '-')) ++at_;
            const std::size_t exponent = at_;
            while (at_ < text_.size() && text_[at_] >= '0' && text_[at_] <= '9') ++at_;
            if (at_ == exponent) fail("expected exponent digits");
        }
        const char* first = text_.data() + start;
        const char* last = text_.data() + at_;
        if (integral) {
            std::int64_t i = 0;
            if (std::from_chars(first, last, i).ec == std::errc()) return Value(i);
            std::uint64_t u = 0;
            if (std::from_chars(first, last, u).ec == std::errc()) return Value(u);
        }
        return Value(parse_double(std::string(first, last)));
    }

    static double parse_double(const std::string& text) {
        // strtod reads the C locale's decimal point: give it one it understands.
        const char* point = std::localeconv()->decimal_point;
        if (point == nullptr || std::strcmp(point, ".") == 0)
            return std::strtod(text.c_str(), nullptr);
        std::string local = text;
        const std::size_t at = local.find('.');
        if (at != std::string::npos) local.replace(at, 1, point);
        return std::strtod(local.c_str(), nullptr);
    }

    std::string_view text_;
    std::size_t at_ = 0;
};

}  // namespace detail

inline std::string Object::to_json() const {
    std::string out;
    detail::write_object(out, *this);
    return out;
}

inline std::string Value::to_json() const {
    std::string out;
    detail::write_value(out, *this);
    return out;
}

}  // namespace tel

#endif  // TEL_VALUE_HPP
