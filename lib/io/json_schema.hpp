#pragma once
// JSON read by opx programs: parse errors name the file, line and column, and
// every document is checked against its JSON Schema (draft-07) in schemas/,
// with failures naming the field: "fit.json:/detector/fano: ...".
//
// Exit codes are the caller's choice: ExitCode::config (78) for configuration
// files such as a fit configuration, ExitCode::data_error (65) for data.
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/exit_codes.hpp"

namespace opx {

// Reads and parses a JSON file; "-" reads standard input. A missing file is
// no_input; malformed JSON throws `code` with "<file>:<line>:<column>".
nlohmann::json read_json_file(const std::filesystem::path& path, ExitCode code = ExitCode::config);

// Parses `text` that came from `source_label` (used in messages).
nlohmann::json parse_json(std::string_view text, const std::string& source_label,
                          ExitCode code = ExitCode::config);

// Where schemas are loaded from: $OPX_SCHEMA_DIR when set, else the source
// tree's schemas/ when it exists (running from a build tree), else the
// installed share/opx/schemas.
std::filesystem::path schema_dir();

// Validates `document` against <schema_dir>/<schema_name>.schema.json
// (schema_name "manifest" or "manifest.schema.json"). On failure throws
// opx::Error with `code`, where = "<source_label>:<JSON pointer>" of the most
// specific problem, why = what is wrong there. References ($ref) to other
// files resolve to files of the same name in schema_dir().
void validate_json(const nlohmann::json& document, std::string_view schema_name,
                   std::string_view source_label, ExitCode code = ExitCode::config);

}  // namespace opx
