#include "io/json_schema.hpp"

// Without this valijson reports a malformed schema by calling abort().
// valijson is used in this file only, so the setting is the same everywhere.
#define VALIJSON_USE_EXCEPTIONS 1
// GCC 12 reports a false -Wrestrict in valijson's JSON pointer code once
// std::string::replace is inlined (GCC bug 105329).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>
#pragma GCC diagnostic pop

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <regex>
#include <sstream>

#include <fmt/format.h>

#include "core/config.hpp"
#include "core/error.hpp"

namespace opx {
namespace fs = std::filesystem;

namespace {

std::string read_stream(std::istream& in) {
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// "<line>:<column>" (both from 1) of the character at 0-based `offset`.
std::string line_column(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  std::size_t line = 1, line_start = 0;
  for (std::size_t i = 0; i < offset; ++i)
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  return fmt::format("{}:{}", line, offset - line_start + 1);
}

// nlohmann's message without its "[json.exception.parse_error.101] parse
// error at line 1, column 5: " prefix, since the location is given separately.
std::string parse_problem(const std::string& message) {
  const std::size_t colon = message.find(": ");
  return colon == std::string::npos ? message : message.substr(colon + 2);
}

// valijson's context ["<root>", "[detector]", "[fano]"] as the JSON pointer
// "/detector/fano" (RFC 6901: "~" and "/" in names are escaped).
std::string json_pointer(const std::vector<std::string>& context) {
  std::string pointer;
  for (const std::string& step : context) {
    if (step.size() < 2 || step.front() != '[' || step.back() != ']') continue;  // "<root>"
    pointer += '/';
    for (char c : step.substr(1, step.size() - 2)) {
      if (c == '~') pointer += "~0";
      else if (c == '/') pointer += "~1";
      else pointer += c;
    }
  }
  return pointer;
}

// valijson prints limits with printf's %f ("greater than or equal to
// 0.000000"); people write 0.
std::string tidy_numbers(const std::string& text) {
  static const std::regex padded(R"((\d+\.\d*[1-9])0+\b|(\d+)\.0+\b)");
  return std::regex_replace(text, padded, "$1$2");
}

fs::path schema_path(std::string_view schema_name) {
  std::string file(schema_name);
  if (!file.ends_with(".json")) file += ".schema.json";
  return schema_dir() / file;
}

nlohmann::json load_schema_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    throw internal_error("cannot load JSON schema", path.string(),
                         "no such file; is opx installed completely? OPX_SCHEMA_DIR can point to the schemas folder");
  // A schema that does not parse is a bug in opx, not in the user's input.
  try {
    return read_json_file(path, ExitCode::software);
  } catch (const Error& e) {
    throw internal_error("cannot load JSON schema", e.where(), e.why());
  }
}

}  // namespace

nlohmann::json parse_json(std::string_view text, const std::string& source_label, ExitCode code) {
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte counts the characters read, the offending one included.
    const std::size_t offset = e.byte > 0 ? e.byte - 1 : 0;
    throw Error(code, "invalid JSON", fmt::format("{}:{}", source_label, line_column(text, offset)),
                parse_problem(e.what()));
  }
}

nlohmann::json read_json_file(const fs::path& path, ExitCode code) {
  if (path == "-") return parse_json(read_stream(std::cin), "<stdin>", code);
  const std::string label = path.string();
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw input_missing("cannot read JSON", label, "is a folder, not a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw input_missing("cannot read JSON", label, std::strerror(errno));
  std::string text = read_stream(in);
  if (in.bad()) throw io_error("cannot read JSON", label, std::strerror(errno));
  return parse_json(text, label, code);
}

fs::path schema_dir() {
  if (const char* from_env = std::getenv("OPX_SCHEMA_DIR"); from_env && *from_env) return from_env;
  std::error_code ec;
  if (fs::is_directory(config::schema_dir_build, ec)) return config::schema_dir_build;
  return config::schema_dir_install;
}

namespace {

// The schema node that describes the value at a JSON pointer of the document
// (following properties, items and local "#/definitions/..." references).
const nlohmann::json* schema_node(const nlohmann::json& schema, const std::string& pointer,
                                  const nlohmann::json** parent = nullptr) {
  const nlohmann::json* node = &schema;
  auto resolve = [&](const nlohmann::json* n) {
    for (int guard = 0; n && n->is_object() && n->contains("$ref") && guard < 8; ++guard) {
      const std::string ref = (*n)["$ref"].get<std::string>();
      if (!ref.starts_with("#/")) return n;
      nlohmann::json::json_pointer jp(ref.substr(1));
      n = schema.contains(jp) ? &schema.at(jp) : nullptr;
    }
    return n;
  };
  node = resolve(node);
  std::size_t pos = 1;
  while (node && pos <= pointer.size() && pointer.size() > 1) {
    std::size_t next = pointer.find('/', pos);
    std::string token = pointer.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
    if (parent) *parent = node;
    if (node->contains("properties") && (*node)["properties"].contains(token)) node = &(*node)["properties"][token];
    else if (node->contains("items")) node = &(*node)["items"];
    else return nullptr;
    node = resolve(node);
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  return node;
}

// valijson's wording of the two most common mistakes, in a user's words.
std::string plain_words(std::string why, const nlohmann::json& schema, const std::string& pointer) {
  const std::string unknown = "Object contains a property that could not be validated using 'properties' or "
                              "'additionalProperties' constraints: ";
  if (why.starts_with(unknown)) {
    std::string name = why.substr(unknown.size());
    while (!name.empty() && (name.back() == '.' || name.back() == '\'')) name.pop_back();
    if (!name.empty() && name.front() == '\'') name.erase(0, 1);
    std::string known;
    if (const nlohmann::json* node = schema_node(schema, pointer); node && node->contains("properties"))
      for (auto it = (*node)["properties"].begin(); it != (*node)["properties"].end(); ++it)
        known += (known.empty() ? "" : ", ") + it.key();
    return known.empty() ? fmt::format("unknown field '{}'", name)
                         : fmt::format("unknown field '{}' (known here: {})", name, known);
  }
  if (why.starts_with("Failed to match regex specified by 'pattern' constraint")) {
    const nlohmann::json* parent = nullptr;
    const nlohmann::json* node = schema_node(schema, pointer, &parent);
    std::string hint;
    if (node && node->contains("description")) hint = (*node)["description"].get<std::string>();
    else if (parent && parent->contains("description")) hint = (*parent)["description"].get<std::string>();
    return hint.empty() ? "does not have the expected form" : "does not have the expected form: " + hint;
  }
  return why;
}

}  // namespace

void validate_json(const nlohmann::json& document, std::string_view schema_name, std::string_view source_label,
                   ExitCode code) {
  const fs::path path = schema_path(schema_name);
  const fs::path folder = path.parent_path();
  const nlohmann::json schema_document = load_schema_file(path);

  valijson::Schema schema;
  valijson::SchemaParser parser(valijson::SchemaParser::kDraft7);
  // A $ref such as "common.schema.json#/definitions/energy" resolves, through
  // the referring schema's $id, to a URI whose last segment names the file.
  auto fetch = [&folder](const std::string& uri) -> const nlohmann::json* {
    const std::string file = uri.substr(uri.find_last_of('/') + 1);
    return new nlohmann::json(load_schema_file(folder / file));
  };
  auto release = [](const nlohmann::json* fetched) { delete fetched; };
  try {
    parser.populateSchema(valijson::adapters::NlohmannJsonAdapter(schema_document), schema, fetch, release);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw internal_error("cannot load JSON schema", path.string(), e.what());
  }

  valijson::Validator validator;
  valijson::ValidationResults results;
  if (validator.validate(schema, valijson::adapters::NlohmannJsonAdapter(document), &results)) return;

  // valijson reports a problem and then, for every enclosing object, that the
  // object failed; the deepest report is the one that says what is wrong.
  valijson::ValidationResults::Error deepest;
  valijson::ValidationResults::Error error;
  while (results.popError(error))
    if (deepest.context.empty() || error.context.size() > deepest.context.size()) deepest = error;
  const std::string pointer = json_pointer(deepest.context);
  const std::string where = pointer.empty() ? std::string(source_label)
                                            : fmt::format("{}:{}", source_label, pointer);
  std::string why = plain_words(tidy_numbers(deepest.description), schema_document, pointer);
  if (why.ends_with('.')) why.pop_back();  // opx messages end without a full stop
  // valijson does not say what the value was; a number or a word is worth showing.
  const nlohmann::json::json_pointer at(pointer);
  if (!pointer.empty() && document.contains(at) && document.at(at).is_primitive()) {
    const std::string value = document.at(at).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (value.size() <= 60) why += fmt::format(" (found {})", value);
  }
  throw Error(code, code == ExitCode::config ? "invalid configuration" : "invalid input", where, why);
}

}  // namespace opx
