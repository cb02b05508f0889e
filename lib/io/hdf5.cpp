#include "io/hdf5.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <utility>

#include <fmt/format.h>

#include "core/error.hpp"

namespace opx::h5 {
namespace fs = std::filesystem;

namespace {

// --- errors -----------------------------------------------------------------

herr_t collect_message(unsigned, const H5E_error2_t* entry, void* messages) {
  if (entry->desc && *entry->desc)
    static_cast<std::vector<std::string>*>(messages)->emplace_back(entry->desc);
  return 0;
}

// The innermost message on HDF5's error stack: the API function's own message
// ("unable to open dataset") says less than the bottom one ("component not
// found", "truncated file: eof = ..."). Clears the stack.
std::string stack_reason() {
  std::vector<std::string> messages;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect_message, &messages);
  H5Eclear2(H5E_DEFAULT);
  if (messages.empty()) return "the HDF5 library reported a failure";
  return messages.back();
}

std::string location(const std::string& where) { return where; }
std::string location(const Object& object) { return object.where(); }

// Throws when an HDF5 call returned a negative id or status. `where` is a
// string or an Object, whose location is only worked out on failure.
template <typename Result, typename Where>
Result check(Result result, ExitCode code, const char* what, const Where& where) {
  if (result < 0) throw Error(code, what, location(where), stack_reason());
  return result;
}

// --- types and spaces --------------------------------------------------------

hid_t native(DType type) {
  switch (type) {
    case DType::int8: return H5T_NATIVE_INT8;
    case DType::uint8: return H5T_NATIVE_UINT8;
    case DType::int16: return H5T_NATIVE_INT16;
    case DType::uint16: return H5T_NATIVE_UINT16;
    case DType::int32: return H5T_NATIVE_INT32;
    case DType::uint32: return H5T_NATIVE_UINT32;
    case DType::int64: return H5T_NATIVE_INT64;
    case DType::uint64: return H5T_NATIVE_UINT64;
    case DType::float32: return H5T_NATIVE_FLOAT;
    case DType::float64: return H5T_NATIVE_DOUBLE;
    case DType::string:
    case DType::other: break;
  }
  throw internal_error("HDF5 type", to_string(type), "no native numeric type");
}

DType classify(hid_t type) {
  const std::size_t bytes = H5Tget_size(type);
  switch (H5Tget_class(type)) {
    case H5T_INTEGER: {
      const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
      switch (bytes) {
        case 1: return is_signed ? DType::int8 : DType::uint8;
        case 2: return is_signed ? DType::int16 : DType::uint16;
        case 4: return is_signed ? DType::int32 : DType::uint32;
        case 8: return is_signed ? DType::int64 : DType::uint64;
        default: return DType::other;
      }
    }
    case H5T_FLOAT:
      return bytes == 4 ? DType::float32 : bytes == 8 ? DType::float64 : DType::other;
    case H5T_STRING: return DType::string;
    default: return DType::other;
  }
}

Handle owned_type(hid_t id) { return Handle(id, H5Tclose); }
Handle owned_space(hid_t id) { return Handle(id, H5Sclose); }
Handle owned_plist(hid_t id) { return Handle(id, H5Pclose); }

Handle utf8_string_type() {
  Handle type = owned_type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  return type;
}

Handle make_space(const Shape& shape, bool extendable = false) {
  if (shape.empty()) return owned_space(H5Screate(H5S_SCALAR));
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  std::vector<hsize_t> max_dims = dims;
  if (extendable) max_dims[0] = H5S_UNLIMITED;
  return owned_space(H5Screate_simple(int(dims.size()), dims.data(), max_dims.data()));
}

std::vector<hsize_t> dims_of(hid_t space, std::vector<hsize_t>* max_dims = nullptr) {
  const int rank = std::max(0, H5Sget_simple_extent_ndims(space));
  std::vector<hsize_t> dims(rank);
  if (max_dims) max_dims->resize(rank);
  H5Sget_simple_extent_dims(space, dims.data(), max_dims ? max_dims->data() : nullptr);
  return dims;
}

std::size_t points_of(hid_t space) {
  return std::size_t(std::max<hssize_t>(0, H5Sget_simple_extent_npoints(space)));
}

// Link creation that makes missing parent groups, so "a/b/c" can be created at once.
Handle intermediate_groups() {
  Handle lcpl = owned_plist(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  H5Pset_char_encoding(lcpl.get(), H5T_CSET_UTF8);
  return lcpl;
}

// Refuses to read strings or compound data as numbers.
void require_numeric(DType stored, const char* what, const std::string& where) {
  if (stored == DType::string)
    throw data_error(what, where, "holds text, not numbers");
  if (stored == DType::other)
    throw data_error(what, where, "holds values of a type opx does not read as numbers (compound, enum or unusual size)");
}

// A transfer property list whose conversion callback turns HDF5's silent
// clamping and truncation (300 into a uint8, 1.5 into an int) into a failure,
// and remembers why, so numbers never change value on the way in or out.
class ExactConversion {
 public:
  ExactConversion() : plist_(owned_plist(H5Pcreate(H5P_DATASET_XFER))) {
    H5Pset_type_conv_cb(plist_.get(), &on_exception, &exception_);
  }
  ExactConversion(const ExactConversion&) = delete;
  ExactConversion& operator=(const ExactConversion&) = delete;

  hid_t get() const { return plist_.get(); }

  [[noreturn]] void fail(ExitCode code, const char* what, const std::string& where, DType stored,
                         DType wanted) const {
    if (!exception_) throw Error(code, what, where, stack_reason());
    H5Eclear2(H5E_DEFAULT);
    const char* problem = "cannot be converted exactly";
    switch (*exception_) {
      case H5T_CONV_EXCEPT_RANGE_HI: problem = "is too large"; break;
      case H5T_CONV_EXCEPT_RANGE_LOW: problem = "is too small"; break;
      case H5T_CONV_EXCEPT_TRUNCATE: problem = "has a fractional part"; break;
      case H5T_CONV_EXCEPT_PINF:
      case H5T_CONV_EXCEPT_NINF: problem = "is infinite"; break;
      case H5T_CONV_EXCEPT_NAN: problem = "is NaN"; break;
      case H5T_CONV_EXCEPT_PRECISION: break;
    }
    throw data_error(what, where, fmt::format("a {} value {} for {}", to_string(stored), problem, to_string(wanted)));
  }

 private:
  static H5T_conv_ret_t on_exception(H5T_conv_except_t kind, hid_t, hid_t, void*, void*, void* seen) {
    *static_cast<std::optional<H5T_conv_except_t>*>(seen) = kind;
    return H5T_CONV_ABORT;
  }
  Handle plist_;
  std::optional<H5T_conv_except_t> exception_;
};

// Reads `count` strings stored with `stored_type` through `read(memory_type, buffer)`,
// for datasets and attributes alike. Variable-length strings come back as
// pointers HDF5 allocated; fixed-length ones (h5py's numpy bytes, many
// instrument files) as padded blocks.
std::vector<std::string> read_string_values(hid_t stored_type, hid_t space, std::size_t count,
                                            const std::function<herr_t(hid_t, void*)>& read,
                                            const char* what, const std::string& where) {
  if (H5Tget_class(stored_type) != H5T_STRING) {
    require_numeric(classify(stored_type), what, where);  // throws for compound types
    throw data_error(what, where, fmt::format("holds {} numbers, not text", to_string(classify(stored_type))));
  }
  const H5T_cset_t cset = H5Tget_cset(stored_type);
  std::vector<std::string> values;
  values.reserve(count);
  if (H5Tis_variable_str(stored_type) > 0) {
    Handle memory = owned_type(H5Tcopy(H5T_C_S1));
    H5Tset_size(memory.get(), H5T_VARIABLE);
    H5Tset_cset(memory.get(), cset);
    std::vector<char*> pointers(count, nullptr);
    check(read(memory.get(), pointers.data()), ExitCode::data_error, what, where);
    for (const char* p : pointers) values.emplace_back(p ? p : "");
    H5Dvlen_reclaim(memory.get(), space, H5P_DEFAULT, pointers.data());
    return values;
  }
  const std::size_t length = H5Tget_size(stored_type);
  Handle memory = owned_type(H5Tcopy(H5T_C_S1));
  H5Tset_size(memory.get(), length);
  H5Tset_strpad(memory.get(), H5T_STR_NULLPAD);
  H5Tset_cset(memory.get(), cset);
  std::vector<char> buffer(count * length);
  check(read(memory.get(), buffer.data()), ExitCode::data_error, what, where);
  const bool space_padded = H5Tget_strpad(stored_type) == H5T_STR_SPACEPAD;
  for (std::size_t i = 0; i < count; ++i) {
    std::string value(buffer.data() + i * length, length);
    value.resize(std::min(value.find('\0'), value.size()));
    if (space_padded) value.erase(value.find_last_not_of(' ') + 1);
    values.push_back(std::move(value));
  }
  return values;
}

// Replaces attribute `name` of `object` with `data` of `type` over `space`.
void write_attribute_data(const Object& object, const std::string& name, hid_t type, hid_t space,
                          const void* data) {
  const std::string where = object.where() + "@" + name;
  if (H5Aexists(object.id(), name.c_str()) > 0)
    check(H5Adelete(object.id(), name.c_str()), ExitCode::io_error, "cannot replace attribute", where);
  Handle attribute(check(H5Acreate2(object.id(), name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT),
                         ExitCode::io_error, "cannot create attribute", where),
                   H5Aclose);
  check(H5Awrite(attribute.get(), type, data), ExitCode::io_error, "cannot write attribute", where);
}

Handle open_attribute(const Object& object, const std::string& name) {
  const std::string where = object.where() + "@" + name;
  if (H5Aexists(object.id(), name.c_str()) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw data_error("cannot read attribute", where, "no such attribute");
  }
  return Handle(check(H5Aopen(object.id(), name.c_str(), H5P_DEFAULT), ExitCode::data_error,
                      "cannot read attribute", where),
                H5Aclose);
}

herr_t collect_name(hid_t, const char* name, const void*, void* names) {
  static_cast<std::vector<std::string>*>(names)->emplace_back(name);
  return 0;
}
herr_t collect_link(hid_t group, const char* name, const H5L_info_t* info, void* names) {
  return collect_name(group, name, info, names);
}
herr_t collect_attribute(hid_t object, const char* name, const H5A_info_t* info, void* names) {
  return collect_name(object, name, info, names);
}

// Rows per chunk: about 512 KiB, small enough for HDF5's default 1 MiB chunk
// cache, and at most 4096 rows so a short log does not reserve much space.
hsize_t default_chunk_rows(std::size_t row_bytes) {
  return std::clamp<hsize_t>(hsize_t(512 * 1024) / std::max<std::size_t>(row_bytes, 1), 1, 4096);
}

// "truncated file: eof = 1024, sblock->base_addr = 0, stored_eof = 6144"
// becomes a sentence that says what happened and what to do.
std::string explain_open_failure(const std::string& reason) {
  unsigned long long eof = 0, stored_eof = 0;
  if (reason.starts_with("truncated file") &&
      std::sscanf(reason.c_str(), "truncated file: eof = %llu, sblock->base_addr = %*u, stored_eof = %llu",
                  &eof, &stored_eof) == 2)
    return fmt::format("file is truncated: it has {} bytes but HDF5 expects {}; was it copied or written completely?",
                       eof, stored_eof);
  return reason;
}

}  // namespace

// --- public helpers -------------------------------------------------------------

const char* to_string(DType type) {
  switch (type) {
    case DType::int8: return "int8";
    case DType::uint8: return "uint8";
    case DType::int16: return "int16";
    case DType::uint16: return "uint16";
    case DType::int32: return "int32";
    case DType::uint32: return "uint32";
    case DType::int64: return "int64";
    case DType::uint64: return "uint64";
    case DType::float32: return "float32";
    case DType::float64: return "float64";
    case DType::string: return "string";
    case DType::other: return "other";
  }
  return "other";
}

void quiet_errors() {
  thread_local bool quiet = false;
  if (!quiet) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    quiet = true;
  }
}

// --- Handle ------------------------------------------------------------------------

Handle::Handle(Handle&& other) noexcept : id_(other.id_), closer_(other.closer_) {
  other.id_ = H5I_INVALID_HID;
}

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = std::exchange(other.id_, H5I_INVALID_HID);
    closer_ = other.closer_;
  }
  return *this;
}

bool Handle::reset() noexcept {
  if (id_ < 0) return true;
  const herr_t status = closer_ ? closer_(id_) : 0;
  id_ = H5I_INVALID_HID;
  return status >= 0;
}

// --- Object -------------------------------------------------------------------------

std::string Object::path() const {
  quiet_errors();
  const ssize_t length = H5Iget_name(id(), nullptr, 0);
  if (length <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return "/";
  }
  std::string name(std::size_t(length) + 1, '\0');
  H5Iget_name(id(), name.data(), name.size());
  name.resize(std::size_t(length));
  return name;
}

std::string Object::where() const {
  return (file_label_ ? *file_label_ : std::string("(no file)")) + ":" + path();
}

std::string Object::where_child(const std::string& child) const {
  if (child.starts_with('/')) return (file_label_ ? *file_label_ : std::string()) + ":" + child;
  std::string parent = where();
  return parent + (parent.ends_with('/') ? "" : "/") + child;
}

bool Object::has_attribute(const std::string& name) const {
  quiet_errors();
  const htri_t exists = H5Aexists(id(), name.c_str());
  if (exists < 0) H5Eclear2(H5E_DEFAULT);
  return exists > 0;
}

std::vector<std::string> Object::attribute_names() const {
  quiet_errors();
  std::vector<std::string> names;
  check(H5Aiterate2(id(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_attribute, &names),
        ExitCode::data_error, "cannot list attributes", *this);
  return names;
}

std::size_t Object::attribute_size(const std::string& name) const {
  quiet_errors();
  Handle attribute = open_attribute(*this, name);
  Handle space = owned_space(H5Aget_space(attribute.get()));
  return points_of(space.get());
}

DType Object::attribute_dtype(const std::string& name) const {
  quiet_errors();
  Handle attribute = open_attribute(*this, name);
  Handle type = owned_type(H5Aget_type(attribute.get()));
  return classify(type.get());
}

void Object::write_attribute(const std::string& name, std::string_view value) {
  quiet_errors();
  Handle type = utf8_string_type();
  Handle space = make_space({});
  const std::string text(value);
  const char* pointer = text.c_str();
  write_attribute_data(*this, name, type.get(), space.get(), &pointer);
}

void Object::write_attribute(const std::string& name, const std::vector<std::string>& values) {
  quiet_errors();
  Handle type = utf8_string_type();
  Handle space = make_space({values.size()});
  std::vector<const char*> pointers;
  for (const auto& v : values) pointers.push_back(v.c_str());
  write_attribute_data(*this, name, type.get(), space.get(), pointers.data());
}

void Object::write_attribute_raw(const std::string& name, DType type, const void* data, const Shape& shape) {
  quiet_errors();
  Handle space = make_space(shape);
  write_attribute_data(*this, name, native(type), space.get(), data);
}

void Object::read_attribute_raw(const std::string& name, DType type, void* out, std::size_t count,
                                bool scalar) const {
  quiet_errors();
  const std::string where = this->where() + "@" + name;
  Handle attribute = open_attribute(*this, name);
  Handle stored = owned_type(H5Aget_type(attribute.get()));
  Handle space = owned_space(H5Aget_space(attribute.get()));
  const DType stored_dtype = classify(stored.get());
  require_numeric(stored_dtype, "cannot read attribute", where);
  const std::size_t n = points_of(space.get());
  if (n != count)
    throw data_error("cannot read attribute", where,
                     scalar ? fmt::format("holds {} values, expected one", n)
                            : fmt::format("holds {} values, expected {}", n, count));
  // H5Aread has no transfer property list, so the values are read as stored
  // and converted with H5Tconvert, which does take one.
  const hid_t wanted = native(type);
  const hid_t as_stored = native(stored_dtype);
  std::vector<unsigned char> buffer(n * std::max(H5Tget_size(as_stored), H5Tget_size(wanted)));
  check(H5Aread(attribute.get(), as_stored, buffer.data()), ExitCode::data_error, "cannot read attribute", where);
  ExactConversion exact;
  if (H5Tconvert(as_stored, wanted, n, buffer.data(), nullptr, exact.get()) < 0)
    exact.fail(ExitCode::data_error, "cannot read attribute", where, stored_dtype, type);
  std::memcpy(out, buffer.data(), n * H5Tget_size(wanted));
}

std::vector<std::string> Object::read_attribute_strings(const std::string& name) const {
  quiet_errors();
  Handle attribute = open_attribute(*this, name);
  Handle stored = owned_type(H5Aget_type(attribute.get()));
  Handle space = owned_space(H5Aget_space(attribute.get()));
  return read_string_values(
      stored.get(), space.get(), points_of(space.get()),
      [&](hid_t memory, void* buffer) { return H5Aread(attribute.get(), memory, buffer); },
      "cannot read attribute", where() + "@" + name);
}

std::string Object::read_attribute_string(const std::string& name) const {
  std::vector<std::string> values = read_attribute_strings(name);
  if (values.size() != 1)
    throw data_error("cannot read attribute", where() + "@" + name,
                     fmt::format("holds {} strings, expected one", values.size()));
  return values.front();
}

// --- Group ------------------------------------------------------------------------------

Kind Group::kind(const std::string& path) const {
  quiet_errors();
  if (path.empty()) return Kind::none;
  // H5Lexists fails rather than answers when a parent is missing, so walk
  // down one link at a time.
  std::string prefix = path.starts_with('/') ? "/" : "";
  std::size_t begin = 0;
  while (begin <= path.size()) {
    std::size_t end = std::min(path.find('/', begin), path.size());
    if (end > begin) {
      const std::string component = path.substr(begin, end - begin);
      if (component != ".") {
        if (!prefix.empty() && !prefix.ends_with('/')) prefix += '/';
        prefix += component;
        if (H5Lexists(id(), prefix.c_str(), H5P_DEFAULT) <= 0) {
          H5Eclear2(H5E_DEFAULT);
          return Kind::none;
        }
      }
    }
    begin = end + 1;
  }
  // The link may be a dangling soft link.
  const hid_t object = H5Oopen(id(), path.c_str(), H5P_DEFAULT);
  if (object < 0) {
    H5Eclear2(H5E_DEFAULT);
    return Kind::none;
  }
  Handle owned(object, H5Oclose);
  switch (H5Iget_type(object)) {
    case H5I_GROUP: return Kind::group;
    case H5I_DATASET: return Kind::dataset;
    default: return Kind::other;
  }
}

bool Group::exists(const std::string& path) const { return kind(path) != Kind::none; }

std::vector<std::string> Group::children() const {
  quiet_errors();
  std::vector<std::string> names;
  check(H5Literate(id(), H5_INDEX_NAME, H5_ITER_INC, nullptr, collect_link, &names),
        ExitCode::data_error, "cannot list group", *this);
  return names;
}

Group Group::open_group(const std::string& path) const {
  const Kind found = kind(path);
  if (found == Kind::none) throw data_error("cannot open group", where_child(path), "no such group");
  if (found != Kind::group) throw data_error("cannot open group", where_child(path), "is not a group");
  const hid_t group = check(H5Gopen2(id(), path.c_str(), H5P_DEFAULT), ExitCode::data_error,
                            "cannot open group", where_child(path));
  return Group(Handle(group, H5Gclose), file_label_);
}

Group Group::create_group(const std::string& name) {
  quiet_errors();
  Handle lcpl = intermediate_groups();
  const hid_t group = check(H5Gcreate2(id(), name.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT),
                            ExitCode::io_error, "cannot create group", where_child(name));
  return Group(Handle(group, H5Gclose), file_label_);
}

Group Group::require_group(const std::string& name) {
  switch (kind(name)) {
    case Kind::none: return create_group(name);
    case Kind::group: return open_group(name);
    default: throw data_error("cannot create group", where_child(name), "a dataset of that name exists");
  }
}

Dataset Group::open_dataset(const std::string& path) const {
  const Kind found = kind(path);
  if (found == Kind::none) throw data_error("cannot open dataset", where_child(path), "no such dataset");
  if (found != Kind::dataset) throw data_error("cannot open dataset", where_child(path), "is a group, not a dataset");
  const hid_t dataset = check(H5Dopen2(id(), path.c_str(), H5P_DEFAULT), ExitCode::data_error,
                              "cannot open dataset", where_child(path));
  return Dataset(Handle(dataset, H5Dclose), file_label_);
}

void Group::remove(const std::string& name) {
  quiet_errors();
  check(H5Ldelete(id(), name.c_str(), H5P_DEFAULT), ExitCode::io_error, "cannot remove", where_child(name));
}

Dataset Group::create_raw(const std::string& name, DType type, const Shape& shape, bool extendable,
                          const Storage& storage) {
  quiet_errors();
  const std::string where = where_child(name);
  if (storage.gzip_level < 0 || storage.gzip_level > 9)
    throw internal_error("cannot create dataset", where, fmt::format("gzip level {} is not 0..9", storage.gzip_level));
  Handle space = make_space(shape, extendable);
  check(space.get(), ExitCode::io_error, "cannot create dataset", where);
  Handle dcpl = owned_plist(H5Pcreate(H5P_DATASET_CREATE));
  std::size_t elements = 1, row_elements = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    elements *= shape[i];
    if (i > 0) row_elements *= shape[i];
  }
  // Chunking needs at least one dimension and a non-empty fixed dataset.
  const bool chunked = extendable || ((storage.gzip_level > 0 || storage.chunk_rows > 0) && elements > 0);
  if (chunked) {
    if (shape.empty() || row_elements == 0)
      throw internal_error("cannot create dataset", where, "an extendable or compressed dataset needs rows of at least one value");
    std::vector<hsize_t> chunk(shape.begin(), shape.end());
    chunk[0] = storage.chunk_rows > 0 ? storage.chunk_rows
                                      : default_chunk_rows(row_elements * H5Tget_size(native(type)));
    if (!extendable) chunk[0] = std::min<hsize_t>(chunk[0], shape[0]);
    check(H5Pset_chunk(dcpl.get(), int(chunk.size()), chunk.data()), ExitCode::io_error, "cannot create dataset", where);
    if (storage.shuffle) H5Pset_shuffle(dcpl.get());
    if (storage.gzip_level > 0)
      check(H5Pset_deflate(dcpl.get(), unsigned(storage.gzip_level)), ExitCode::io_error, "cannot create dataset", where);
  }
  Handle lcpl = intermediate_groups();
  // A chunked dataset gets a chunk cache of a few chunks instead of HDF5's
  // 1 MiB default: a result file has dozens of datasets written in step,
  // and the default cache of each would grow memory with the stack size.
  Handle dapl = owned_plist(H5Pcreate(H5P_DATASET_ACCESS));
  if (chunked) {
    std::size_t chunk_bytes = row_elements * H5Tget_size(native(type)) *
                              (storage.chunk_rows > 0 ? storage.chunk_rows
                                                      : default_chunk_rows(row_elements * H5Tget_size(native(type))));
    check(H5Pset_chunk_cache(dapl.get(), 101, std::max<std::size_t>(2 * chunk_bytes, 64 * 1024), 1.0),
          ExitCode::io_error, "cannot create dataset", where);
  }
  const hid_t dataset = check(H5Dcreate2(id(), name.c_str(), native(type), space.get(), lcpl.get(), dcpl.get(), dapl.get()),
                              ExitCode::io_error, "cannot create dataset", where);
  return Dataset(Handle(dataset, H5Dclose), file_label_);
}

Dataset Group::write_string(const std::string& name, std::string_view value) {
  quiet_errors();
  const std::string where = where_child(name);
  Handle type = utf8_string_type();
  Handle space = make_space({});
  Handle lcpl = intermediate_groups();
  Dataset ds(Handle(check(H5Dcreate2(id(), name.c_str(), type.get(), space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT),
                          ExitCode::io_error, "cannot create dataset", where),
                    H5Dclose),
             file_label_);
  const std::string text(value);
  const char* pointer = text.c_str();
  check(H5Dwrite(ds.id(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &pointer), ExitCode::io_error,
        "cannot write dataset", where);
  return ds;
}

Dataset Group::write_strings(const std::string& name, const std::vector<std::string>& values) {
  quiet_errors();
  const std::string where = where_child(name);
  Handle type = utf8_string_type();
  Handle space = make_space({values.size()});
  Handle lcpl = intermediate_groups();
  Dataset ds(Handle(check(H5Dcreate2(id(), name.c_str(), type.get(), space.get(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT),
                          ExitCode::io_error, "cannot create dataset", where),
                    H5Dclose),
             file_label_);
  std::vector<const char*> pointers;
  for (const auto& v : values) pointers.push_back(v.c_str());
  check(H5Dwrite(ds.id(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()), ExitCode::io_error,
        "cannot write dataset", where);
  return ds;
}

Dataset Group::copy_dataset(const Dataset& source, const std::string& name) {
  quiet_errors();
  Handle lcpl = intermediate_groups();
  check(H5Ocopy(source.id(), ".", id(), name.c_str(), H5P_DEFAULT, lcpl.get()), ExitCode::io_error,
        "cannot copy dataset", fmt::format("{} to {}", source.where(), where_child(name)));
  return open_dataset(name);
}

void Group::link_soft(const std::string& name, const std::string& target_path) {
  quiet_errors();
  Handle lcpl = intermediate_groups();
  check(H5Lcreate_soft(target_path.c_str(), id(), name.c_str(), lcpl.get(), H5P_DEFAULT), ExitCode::io_error,
        "cannot create link", where_child(name));
}

void Group::link_hard(const std::string& name, const std::string& target_path) {
  quiet_errors();
  Handle lcpl = intermediate_groups();
  check(H5Lcreate_hard(id(), target_path.c_str(), id(), name.c_str(), lcpl.get(), H5P_DEFAULT),
        ExitCode::io_error, "cannot create link", where_child(name));
}

// --- Dataset ----------------------------------------------------------------------------

Shape Dataset::shape() const {
  quiet_errors();
  Handle space = owned_space(check(H5Dget_space(id()), ExitCode::data_error, "cannot read dataset shape", *this));
  const std::vector<hsize_t> dims = dims_of(space.get());
  return Shape(dims.begin(), dims.end());
}

std::size_t Dataset::size() const {
  std::size_t n = 1;
  for (std::size_t d : shape()) n *= d;
  return n;
}

std::size_t Dataset::rows() const {
  const Shape s = shape();
  return s.empty() ? 1 : s.front();
}

std::size_t Dataset::row_size() const {
  const Shape s = shape();
  std::size_t n = 1;
  for (std::size_t i = 1; i < s.size(); ++i) n *= s[i];
  return n;
}

DType Dataset::dtype() const {
  quiet_errors();
  Handle type = owned_type(check(H5Dget_type(id()), ExitCode::data_error, "cannot read dataset type", *this));
  return classify(type.get());
}

void Dataset::read_raw(DType type, void* out, std::size_t count) const {
  quiet_errors();
  const DType stored = dtype();
  require_numeric(stored, "cannot read dataset", where());
  const std::size_t n = size();
  if (n != count)
    throw data_error("cannot read dataset", where(),
                     count == 1 ? fmt::format("holds {} values, expected a single value", n)
                                : fmt::format("holds {} values, expected {}", n, count));
  if (n == 0) return;
  ExactConversion exact;
  if (H5Dread(id(), native(type), H5S_ALL, H5S_ALL, exact.get(), out) < 0)
    exact.fail(ExitCode::data_error, "cannot read dataset", where(), stored, type);
}

void Dataset::read_rows_raw(DType type, std::size_t first, std::size_t count, void* out) const {
  quiet_errors();
  const DType stored = dtype();
  require_numeric(stored, "cannot read dataset", where());
  Handle file_space = owned_space(check(H5Dget_space(id()), ExitCode::data_error, "cannot read dataset", *this));
  std::vector<hsize_t> dims = dims_of(file_space.get());
  if (dims.empty()) throw data_error("cannot read rows", where(), "a scalar dataset has no rows");
  if (first > dims[0] || count > dims[0] - first)
    throw data_error("cannot read rows", where(),
                     fmt::format("rows {} to {} asked for, but the dataset has {} rows", first, first + count, dims[0]));
  if (count == 0) return;
  std::vector<hsize_t> start(dims.size(), 0);
  start[0] = first;
  dims[0] = count;
  check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, dims.data(), nullptr),
        ExitCode::data_error, "cannot read rows", *this);
  Handle memory_space = owned_space(H5Screate_simple(int(dims.size()), dims.data(), nullptr));
  if (read_integers_as_floats(stored, type, memory_space.get(), file_space.get(), dims, out)) return;
  ExactConversion exact;
  if (H5Dread(id(), native(type), memory_space.get(), file_space.get(), exact.get(), out) < 0)
    exact.fail(ExitCode::data_error, "cannot read rows", where(), stored, type);
}

// Spectra and images are stored as integers and read as floats. HDF5 converts
// element by element through its exception-checking path, which is slower
// than the disk; read the stored type as it is and convert here, with the
// same exactness rule (a float holds integers up to 2^24 exactly).
bool Dataset::read_integers_as_floats(DType stored, DType wanted, hid_t memory_space, hid_t file_space,
                                      const std::vector<hsize_t>& dims, void* out) const {
  if (wanted != DType::float32 && wanted != DType::float64) return false;
  std::size_t n = 1;
  for (auto d : dims) n *= d;
  auto convert = [&](auto tag, auto out_tag) {
    using T = decltype(tag);
    using U = decltype(out_tag);
    static_assert(sizeof(T) <= sizeof(U));
    // The stored values go to the end of the output buffer and are widened
    // in place from the front: element i is written only over values already
    // read, so no second buffer is needed (memory stays one chunk).
    unsigned char* bytes = static_cast<unsigned char*>(out);
    unsigned char* raw = bytes + n * (sizeof(U) - sizeof(T));
    if (H5Dread(id(), native(dtype_of<T>), memory_space, file_space, H5P_DEFAULT, raw) < 0)
      throw data_error("cannot read rows", where(), stack_reason());
    constexpr double exact_limit = sizeof(U) == 4 ? 16777216.0 : 9007199254740992.0;  // 2^24, 2^53
    for (std::size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, raw + i * sizeof(T), sizeof(T));
      if constexpr (sizeof(T) >= 4 && sizeof(U) == 4) {
        if (std::abs(static_cast<double>(v)) > exact_limit)
          throw data_error("cannot read rows", where(),
                           fmt::format("a {} value {} cannot be converted exactly for float32", to_string(stored), v));
      }
      const U w = static_cast<U>(v);
      std::memcpy(bytes + i * sizeof(U), &w, sizeof(U));
    }
  };
  auto dispatch = [&](auto tag) {
    if (wanted == DType::float32) convert(tag, float{});
    else convert(tag, double{});
  };
  switch (stored) {
    case DType::uint8: dispatch(std::uint8_t{}); return true;
    case DType::int8: dispatch(std::int8_t{}); return true;
    case DType::uint16: dispatch(std::uint16_t{}); return true;
    case DType::int16: dispatch(std::int16_t{}); return true;
    case DType::uint32: dispatch(std::uint32_t{}); return true;
    case DType::int32: dispatch(std::int32_t{}); return true;
    default: return false;
  }
}

void Dataset::write_raw(DType type, const void* data, std::size_t count) {
  quiet_errors();
  const std::size_t n = size();
  if (n != count)
    throw internal_error("cannot write dataset", where(), fmt::format("{} values given for {} elements", count, n));
  if (n == 0) return;
  ExactConversion exact;
  if (H5Dwrite(id(), native(type), H5S_ALL, H5S_ALL, exact.get(), data) < 0)
    exact.fail(ExitCode::io_error, "cannot write dataset", where(), type, dtype());
}

void Dataset::append_raw(DType type, const void* data, std::size_t count) {
  quiet_errors();
  Handle space = owned_space(check(H5Dget_space(id()), ExitCode::io_error, "cannot append to dataset", *this));
  std::vector<hsize_t> max_dims;
  std::vector<hsize_t> dims = dims_of(space.get(), &max_dims);
  if (dims.empty() || max_dims[0] != H5S_UNLIMITED)
    throw internal_error("cannot append to dataset", where(), "it was not created extendable");
  hsize_t row_elements = 1;
  for (std::size_t i = 1; i < dims.size(); ++i) row_elements *= dims[i];
  if (count % row_elements != 0)
    throw internal_error("cannot append to dataset", where(),
                         fmt::format("{} values are not a whole number of rows of {}", count, row_elements));
  const hsize_t new_rows = count / row_elements;
  if (new_rows == 0) return;
  std::vector<hsize_t> start(dims.size(), 0);
  start[0] = dims[0];
  dims[0] += new_rows;
  check(H5Dset_extent(id(), dims.data()), ExitCode::io_error, "cannot append to dataset", *this);
  Handle file_space = owned_space(H5Dget_space(id()));
  std::vector<hsize_t> block = dims;
  block[0] = new_rows;
  check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, block.data(), nullptr),
        ExitCode::io_error, "cannot append to dataset", *this);
  Handle memory_space = owned_space(H5Screate_simple(int(block.size()), block.data(), nullptr));
  ExactConversion exact;
  if (H5Dwrite(id(), native(type), memory_space.get(), file_space.get(), exact.get(), data) < 0)
    exact.fail(ExitCode::io_error, "cannot append to dataset", where(), type, dtype());
}

std::string Dataset::read_string() const {
  std::vector<std::string> values = read_strings();
  if (values.size() != 1)
    throw data_error("cannot read dataset", where(), fmt::format("holds {} strings, expected one", values.size()));
  return values.front();
}

std::vector<std::string> Dataset::read_strings() const {
  quiet_errors();
  Handle stored = owned_type(check(H5Dget_type(id()), ExitCode::data_error, "cannot read dataset", *this));
  Handle space = owned_space(check(H5Dget_space(id()), ExitCode::data_error, "cannot read dataset", *this));
  return read_string_values(
      stored.get(), space.get(), points_of(space.get()),
      [&](hid_t memory, void* buffer) { return H5Dread(id(), memory, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer); },
      "cannot read dataset", where());
}

void Dataset::flush() {
  quiet_errors();
  check(H5Dflush(id()), ExitCode::io_error, "cannot flush dataset", *this);
}

void Dataset::refresh() {
  quiet_errors();
  check(H5Drefresh(id()), ExitCode::data_error, "cannot refresh dataset", *this);
}

// --- File ----------------------------------------------------------------------------------

File File::open(const fs::path& path, Access access) {
  quiet_errors();
  const std::string label = path.string();
  const char* what = "cannot open HDF5 file";
  if (label == "-")
    throw usage_error(what, label, "HDF5 needs a real file, not a stream; save it to a file first");
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (!fs::exists(status)) throw input_missing(what, label, "no such file");
  if (fs::is_directory(status)) throw input_missing(what, label, "is a folder, not a file");
  const bool writing = access == Access::read_write || access == Access::swmr_write;
  if (::access(path.c_str(), writing ? R_OK | W_OK : R_OK) != 0)
    throw input_missing(what, label, std::strerror(errno));
  // H5Fis_hdf5 only looks for the signature; H5Fopen below catches truncation.
  if (H5Fis_hdf5(path.c_str()) == 0) throw data_error(what, label, "not an HDF5 file");
  H5Eclear2(H5E_DEFAULT);

  unsigned flags = H5F_ACC_RDONLY;
  Handle fapl = owned_plist(H5Pcreate(H5P_FILE_ACCESS));
  switch (access) {
    case Access::read: break;
    case Access::read_write: flags = H5F_ACC_RDWR; break;
    case Access::swmr_read: flags = H5F_ACC_RDONLY | H5F_ACC_SWMR_READ; break;
    case Access::swmr_write:
      flags = H5F_ACC_RDWR | H5F_ACC_SWMR_WRITE;
      H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
      break;
  }
  const hid_t file = H5Fopen(path.c_str(), flags, fapl.get());
  if (file < 0) throw data_error(what, label, explain_open_failure(stack_reason()));
  return File(Handle(file, H5Fclose), std::make_shared<const std::string>(label), path);
}

File File::create(const fs::path& path, const CreateOptions& options) {
  quiet_errors();
  const std::string label = options.label.empty() ? path.string() : options.label;
  if (path == "-")
    throw usage_error("cannot create HDF5 file", label, "HDF5 needs a real file, not a stream");
  Handle fapl = owned_plist(H5Pcreate(H5P_FILE_ACCESS));
  // SWMR needs the 1.10 file format; other files keep the oldest format that
  // holds their content, so older readers open them.
  if (options.swmr) H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  const hid_t file = check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()),
                           ExitCode::cannot_create, "cannot create HDF5 file", label);
  return File(Handle(file, H5Fclose), std::make_shared<const std::string>(label), path);
}

void File::start_swmr_write() {
  quiet_errors();
  check(H5Fstart_swmr_write(id()), ExitCode::io_error, "cannot start SWMR writing", file_label());
}

void File::flush() {
  quiet_errors();
  check(H5Fflush(id(), H5F_SCOPE_LOCAL), ExitCode::io_error, "cannot write HDF5 file", file_label());
}

void File::close() {
  if (!handle_.valid()) return;
  quiet_errors();
  if (H5Fflush(id(), H5F_SCOPE_LOCAL) < 0) {
    const std::string reason = stack_reason();
    handle_.reset();
    throw io_error("cannot write HDF5 file", file_label(), reason);
  }
  if (!handle_.reset()) throw io_error("cannot close HDF5 file", file_label(), stack_reason());
}

// --- addresses -------------------------------------------------------------------------------

Address parse_address(std::string_view text, std::string_view default_dataset) {
  const std::string given(text);
  const std::size_t split = text.rfind(":/");
  if (split == 0 || text.empty())
    throw usage_error("bad dataset address", given, "no file name; write FILE.h5:/path/to/data");
  if (split != std::string_view::npos)
    return Address{fs::path(text.substr(0, split)), std::string(text.substr(split + 1))};
  if (default_dataset.empty())
    throw usage_error("bad dataset address", given, "no dataset path; write FILE.h5:/path/to/data");
  return Address{fs::path(text), std::string(default_dataset)};
}

std::string to_string(const Address& address) { return address.file.string() + ":" + address.dataset; }

}  // namespace opx::h5
