#pragma once
// NeXus layout on top of io/hdf5.hpp, so silx, nexpy, PyMca and h5py users
// open opx files without help: @NX_class on groups, an NXentry per run with
// its standard fields, an NXdata group with @signal and @axes for the main
// result, @units on quantities, and @default attributes from the root down
// to the NXdata that should be plotted.
#include <string>
#include <string_view>
#include <vector>

#include "io/hdf5.hpp"

namespace opx::nexus {

// The group's @NX_class, or "" when it has none.
std::string nx_class(const h5::Object& object);

// Creates group `name` under `parent` with @NX_class = nx_class ("NXentry",
// "NXdata", "NXinstrument"...), or opens it when a group of that class exists.
h5::Group make_group(h5::Group& parent, const std::string& name, const std::string& nx_class);

// The standard NXentry fields.
struct EntryInfo {
  std::string title;
  std::string program_name;     // the tool, e.g. "cmx-fit"
  std::string program_version;  // empty: the version of opx
  std::string start_time;       // ISO 8601; empty: now
  std::string end_time;         // ISO 8601; empty: not written yet (see write_end_time)
};

// Creates the NXentry `name` with the fields of `info`. The first entry of a
// file becomes the root's @default, and the root gets the NXroot attributes
// file_name, file_time, creator and HDF5_Version.
h5::Group make_entry(h5::File& file, const std::string& name, const EntryInfo& info);
// Writes or replaces the entry's end_time, for runs that end after the entry was made.
void write_end_time(h5::Group& entry, const std::string& iso8601);

// Creates an NXdata group that plots dataset `signal` against `axes`: one name
// per dimension of the signal, "." for a dimension without an axis. Writes
// @signal, @axes and @<axis>_indices. The first NXdata made in an NXentry
// becomes the entry's @default. The datasets themselves are written after.
h5::Group make_data(h5::Group& parent, const std::string& name, const std::string& signal,
                    const std::vector<std::string>& axes);

// Points `parent`'s @default at its child `child` (overriding the automatic choice).
void set_default(h5::Group& parent, const std::string& child);

void set_units(h5::Object& object, std::string_view units);

// Writes a dataset with its @units (none when `units` is empty).
template <h5::NumericRange R>
h5::Dataset write_quantity(h5::Group& group, const std::string& name, const R& values,
                           std::string_view units, h5::Shape shape = {}, const h5::Storage& storage = {}) {
  h5::Dataset dataset = group.write_dataset(name, values, std::move(shape), storage);
  if (!units.empty()) set_units(dataset, units);
  return dataset;
}

// What an NXdata group plots.
struct DataInfo {
  std::string path;               // the NXdata group, e.g. "/entry/data"
  std::string signal;             // name of the signal dataset inside it
  std::vector<std::string> axes;  // one per dimension, "." where there is none
};

// Reads @signal and @axes, accepting the older conventions too (a dataset
// with @signal=1; @axes as one "x:y" or "x,y" string).
DataInfo read_data_info(const h5::Group& nxdata);

// Finds the NXdata to plot the way NeXus readers do: follow @default from the
// root; otherwise the first NXentry's @default, or its first NXdata child.
// Throws data_error when the file has none.
DataInfo find_default_data(const h5::File& file);

}  // namespace opx::nexus
