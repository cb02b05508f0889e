#include "io/nexus.hpp"

#include <algorithm>
#include <optional>

#include <fmt/format.h>

#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/error.hpp"

namespace opx::nexus {
namespace {

// Replaces a string field that may already exist (end_time written twice).
h5::Dataset write_text_field(h5::Group& group, const std::string& name, const std::string& value) {
  if (group.exists(name)) group.remove(name);
  return group.write_string(name, value);
}

std::vector<std::string> split_axes(const std::string& text) {
  std::vector<std::string> axes;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    std::size_t end = std::min(text.find_first_of(":,", begin), text.size());
    std::string axis = text.substr(begin, end - begin);
    axis.erase(0, axis.find_first_not_of(' '));
    axis.erase(axis.find_last_not_of(' ') + 1);
    if (!axis.empty()) axes.push_back(axis);
    begin = end + 1;
  }
  return axes;
}

// Follows @default links from `group` until an NXdata group, at most a few
// levels deep (root -> entry -> data, or through an NXsubentry).
std::optional<std::string> follow_default(const h5::Group& group, int depth = 0) {
  if (nx_class(group) == "NXdata") return group.path();
  if (depth > 4 || !group.has_attribute("default") || group.attribute_dtype("default") != h5::DType::string)
    return std::nullopt;
  const std::string target = group.read_attribute<std::string>("default");
  if (group.kind(target) != h5::Kind::group) return std::nullopt;
  return follow_default(group.open_group(target), depth + 1);
}

std::optional<std::string> first_child_of_class(const h5::Group& group, const std::string& wanted) {
  for (const std::string& child : group.children())
    if (group.kind(child) == h5::Kind::group && nx_class(group.open_group(child)) == wanted) return child;
  return std::nullopt;
}

}  // namespace

std::string nx_class(const h5::Object& object) {
  if (!object.has_attribute("NX_class") || object.attribute_dtype("NX_class") != h5::DType::string) return {};
  return object.read_attribute<std::string>("NX_class");
}

h5::Group make_group(h5::Group& parent, const std::string& name, const std::string& nx_class_name) {
  if (parent.kind(name) == h5::Kind::group) {
    h5::Group existing = parent.open_group(name);
    const std::string found = nx_class(existing);
    if (found != nx_class_name)
      throw internal_error("cannot create NeXus group", existing.where(),
                           fmt::format("exists with NX_class '{}', not '{}'", found, nx_class_name));
    return existing;
  }
  h5::Group group = parent.create_group(name);
  group.write_attribute("NX_class", nx_class_name);
  return group;
}

h5::Group make_entry(h5::File& file, const std::string& name, const EntryInfo& info) {
  h5::Group entry = make_group(file, name, "NXentry");
  if (!info.title.empty()) write_text_field(entry, "title", info.title);
  write_text_field(entry, "start_time", info.start_time.empty() ? clock::now_iso8601() : info.start_time);
  if (!info.end_time.empty()) write_text_field(entry, "end_time", info.end_time);
  if (!info.program_name.empty()) {
    h5::Dataset program = write_text_field(entry, "program_name", info.program_name);
    program.write_attribute("version", info.program_version.empty() ? std::string(config::version)
                                                                    : info.program_version);
  }
  if (!file.has_attribute("default")) file.write_attribute("default", name);
  if (!file.has_attribute("creator")) {
    unsigned major = 0, minor = 0, release = 0;
    H5get_libversion(&major, &minor, &release);
    file.write_attribute("file_name", file.file_label());
    file.write_attribute("file_time", clock::now_iso8601());
    file.write_attribute("creator", info.program_name.empty()
                                        ? fmt::format("opx {}", config::version)
                                        : fmt::format("{} (opx {})", info.program_name, config::version));
    file.write_attribute("HDF5_Version", fmt::format("{}.{}.{}", major, minor, release));
  }
  return entry;
}

void write_end_time(h5::Group& entry, const std::string& iso8601) { write_text_field(entry, "end_time", iso8601); }

h5::Group make_data(h5::Group& parent, const std::string& name, const std::string& signal,
                    const std::vector<std::string>& axes) {
  h5::Group data = make_group(parent, name, "NXdata");
  data.write_attribute("signal", signal);
  data.write_attribute("axes", axes);
  for (std::size_t dim = 0; dim < axes.size(); ++dim)
    if (axes[dim] != ".") data.write_attribute(axes[dim] + "_indices", std::int32_t(dim));
  if (nx_class(parent) == "NXentry" && !parent.has_attribute("default")) parent.write_attribute("default", name);
  return data;
}

void set_default(h5::Group& parent, const std::string& child) {
  if (parent.kind(child) != h5::Kind::group)
    throw internal_error("cannot set @default", parent.where(), fmt::format("'{}' is not a group in it", child));
  parent.write_attribute("default", child);
}

void set_units(h5::Object& object, std::string_view units) { object.write_attribute("units", units); }

DataInfo read_data_info(const h5::Group& nxdata) {
  DataInfo info;
  info.path = nxdata.path();
  if (nxdata.has_attribute("signal") && nxdata.attribute_dtype("signal") == h5::DType::string) {
    info.signal = nxdata.read_attribute<std::string>("signal");
  } else {
    // NeXus before 2014: the signal dataset carries @signal = 1.
    for (const std::string& child : nxdata.children()) {
      if (nxdata.kind(child) != h5::Kind::dataset) continue;
      h5::Dataset dataset = nxdata.open_dataset(child);
      if (dataset.has_attribute("signal")) {
        info.signal = child;
        break;
      }
    }
  }
  if (info.signal.empty())
    throw data_error("cannot find the signal", nxdata.where(), "the NXdata group has no @signal");
  if (nxdata.has_attribute("axes")) {
    std::vector<std::string> axes = nxdata.read_attribute_array<std::string>("axes");
    info.axes = axes.size() == 1 ? split_axes(axes.front()) : axes;
  }
  return info;
}

DataInfo find_default_data(const h5::File& file) {
  std::optional<std::string> path = follow_default(file);
  if (!path) {
    if (std::optional<std::string> entry_name = first_child_of_class(file, "NXentry")) {
      h5::Group entry = file.open_group(*entry_name);
      path = follow_default(entry);
      if (!path) {
        if (std::optional<std::string> data_name = first_child_of_class(entry, "NXdata"))
          path = entry.open_group(*data_name).path();
      }
    }
  }
  if (!path)
    throw data_error("no data to plot", file.file_label(),
                     "no NXdata group found through @default or in the first NXentry");
  return read_data_info(file.open_group(*path));
}

}  // namespace opx::nexus
