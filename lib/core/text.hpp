#pragma once
// Small text helpers shared by the parsers (units, spectrum files, PyMca
// configurations). ASCII only: the formats they read are ASCII.
#include <string>
#include <string_view>

namespace opx::text {

// Without leading and trailing blanks (space, tab, CR, LF, FF, VT).
std::string_view trim(std::string_view s);
std::string lower(std::string_view s);
std::string upper(std::string_view s);

}  // namespace opx::text
