#pragma once
// PyMca fit configurations (.cfg) converted to opx fit configurations, so
// that users bring the setup they already tuned in PyMca
// (cmx-fit --import-pymca FILE.cfg).
//
// A PyMca .cfg is a ConfigDict file (PyMca5/PyMcaIO/ConfigDict.py): Python's
// configparser syntax ([section], "key = value" or "key: value", indented
// continuation lines, '#' and ';' comment lines, "%%" for '%'), with
// sub-sections written as [materials.Kapton], and values that ConfigDict
// turns into Python literals: an int, else a float, else a string; a value
// containing a comma is a list ("K, L", "1, Si1, 2.33, 0.035"); "[a b c]" is
// a numpy array; several lines are a list of rows.
//
// The meaning of each entry is PyMca's fit model, ClassMcaTheory.py; the
// mapping onto opx and everything approximated in it is documented in
// pymca_import.cpp.
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace opx::xrf {

// One "key = value" as written, split the way ConfigDict splits it.
struct PymcaValue {
  std::string text;                // the value, continuation lines joined by '\n'
  std::vector<std::string> items;  // comma- (or, in arrays, blank-) separated items, trimmed
  bool is_list = false;            // written as a list (a comma, several lines, or [array])
  int line = 0;                    // where the key is, 1-based
};

struct PymcaSection {
  std::string name;  // as in the header: "fit", "materials.Kapton"
  int line = 0;
  std::vector<std::pair<std::string, PymcaValue>> entries;  // in file order, keys unique
  const PymcaValue* find(std::string_view key) const;
};

struct PymcaConfig {
  std::string source;  // file name for messages
  std::vector<PymcaSection> sections;
  const PymcaSection* section(std::string_view name) const;
};

// Parses ConfigDict text. Tolerant where Python's configparser is strict but
// the meaning is clear (a repeated section or key: the later value wins, with
// a warning); anything else that is not a section header, an entry, a
// continuation line, a comment or a blank line is a data_error naming
// `source` and the line.
PymcaConfig parse_pymca_config(std::string_view text, const std::string& source);

// The result of a conversion: the opx configuration (already validated
// against schemas/fit-config.schema.json and accepted by
// fit_config_from_json) and, one sentence each, what was converted only
// approximately and what has no opx equivalent. Nothing is dropped silently:
// an entry is either mapped, listed here, or one that PyMca itself ignores
// under the configuration's own flags (e.g. strip-algorithm settings when
// SNIP is selected, disabled attenuators).
struct PymcaImport {
  nlohmann::json config;
  std::vector<std::string> approximations;
  std::vector<std::string> unmapped;
};

PymcaImport import_pymca_config(const PymcaConfig& cfg);

// Reads and converts a file; a missing file is input_missing (66), a
// malformed one data_error (65).
PymcaImport import_pymca_file(const std::string& path);

}  // namespace opx::xrf
