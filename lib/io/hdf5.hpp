#pragma once
// HDF5 access for every opx program, over the HDF5 C API.
//
// - Every HDF5 id lives in a move-only RAII object and is closed exactly once.
// - HDF5's own error printing is switched off; every failure becomes an
//   opx::Error naming the file and object ("scan.h5:/entry/data/counts") and
//   the reason found on HDF5's error stack. Exit codes: a missing file is
//   no_input (66); a corrupt, truncated or non-HDF5 file, a missing dataset or
//   a dataset of the wrong type is data_error (65); a failed write is io_error
//   (74); a file that cannot be created is cannot_create (73).
// - Numbers are converted on the way in and out (a uint16 stack reads straight
//   into floats), but only exactly: a value that does not fit the target type
//   (300 into uint8, 1.5 into an integer, NaN into an integer) is an error,
//   never HDF5's silent clamp or truncation.
// - Strings are written as variable-length UTF-8; fixed-length strings, as
//   h5py and other tools write them, are read too.
//
// Files written for others to follow (acquisition, logging) use SWMR: create
// with CreateOptions::swmr, create every dataset, call start_swmr_write(),
// then append() and flush(). A reader opens with Access::swmr_read and calls
// Dataset::refresh() to see new rows. Under SWMR no object or attribute may
// be added once writing has started (an HDF5 1.10 rule).
//
// The HDF5 build is thread-safe, but calls are serialized inside the library:
// read in one thread and hand the arrays to the others.
#include <hdf5.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <ranges>
#include <string>
#include <string_view>
#include <vector>

namespace opx::h5 {

// Dimensions of a dataset or attribute; empty for a scalar.
using Shape = std::vector<std::size_t>;

// Element types opx reads and writes; `other` is anything else (compound,
// enum, half float...), which opx reports instead of guessing.
enum class DType { int8, uint8, int16, uint16, int32, uint32, int64, uint64, float32, float64, string, other };
const char* to_string(DType type);

template <typename T> inline constexpr DType dtype_of = DType::other;
template <> inline constexpr DType dtype_of<std::int8_t> = DType::int8;
template <> inline constexpr DType dtype_of<std::uint8_t> = DType::uint8;
template <> inline constexpr DType dtype_of<std::int16_t> = DType::int16;
template <> inline constexpr DType dtype_of<std::uint16_t> = DType::uint16;
template <> inline constexpr DType dtype_of<std::int32_t> = DType::int32;
template <> inline constexpr DType dtype_of<std::uint32_t> = DType::uint32;
template <> inline constexpr DType dtype_of<std::int64_t> = DType::int64;
template <> inline constexpr DType dtype_of<std::uint64_t> = DType::uint64;
template <> inline constexpr DType dtype_of<float> = DType::float32;
template <> inline constexpr DType dtype_of<double> = DType::float64;

template <typename T>
concept Numeric = dtype_of<T> != DType::other;

// A contiguous container of numbers: std::vector<float>, std::array, std::span...
template <typename R>
concept NumericRange = std::ranges::contiguous_range<R> && std::ranges::sized_range<R> &&
                       Numeric<std::remove_cv_t<std::ranges::range_value_t<R>>>;

// Switches off HDF5's automatic error printing for the calling thread (the
// error stack is per thread in a thread-safe build). Every function here
// calls it; call it yourself before using the raw HDF5 API on a new thread.
void quiet_errors();

// Owns one HDF5 id and closes it with the matching H5?close function.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) noexcept : id_(id), closer_(closer) {}
  Handle(Handle&& other) noexcept;
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }

  hid_t get() const noexcept { return id_; }
  bool valid() const noexcept { return id_ >= 0; }
  // Closes now; returns false when HDF5 reports a failure (e.g. a failed flush).
  bool reset() noexcept;

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

class Dataset;

// What is stored at a path, without opening it as a particular kind.
enum class Kind { none, group, dataset, other };

// Common part of groups and datasets: the id, where it is, its attributes.
class Object {
 public:
  hid_t id() const noexcept { return handle_.get(); }
  // The object's path inside the file ("/entry/data").
  std::string path() const;
  // The file as named to the user (the output's final name, not a temporary).
  const std::string& file_label() const { return *file_label_; }
  // "scan.h5:/entry/data", the `where` of error messages.
  std::string where() const;

  bool has_attribute(const std::string& name) const;
  std::vector<std::string> attribute_names() const;

  // Writing replaces an attribute of the same name.
  void write_attribute(const std::string& name, std::string_view value);
  void write_attribute(const std::string& name, const std::vector<std::string>& values);
  template <Numeric T>
  void write_attribute(const std::string& name, T value) {
    write_attribute_raw(name, dtype_of<T>, &value, Shape{});
  }
  template <NumericRange R>
  void write_attribute(const std::string& name, const R& values) {
    write_attribute_raw(name, dtype_of<std::ranges::range_value_t<R>>, std::ranges::data(values),
                        Shape{std::ranges::size(values)});
  }

  // T is a Numeric type or std::string. A scalar read needs exactly one value;
  // an array read of a scalar attribute gives one element (so an old-style
  // single-string NeXus @axes reads as a list of one).
  template <typename T>
  T read_attribute(const std::string& name) const {
    if constexpr (std::is_same_v<T, std::string>) {
      return read_attribute_string(name);
    } else {
      static_assert(Numeric<T>, "read_attribute<T>: T must be a number type or std::string");
      T value{};
      read_attribute_raw(name, dtype_of<T>, &value, 1, true);
      return value;
    }
  }
  template <typename T>
  std::vector<T> read_attribute_array(const std::string& name) const {
    if constexpr (std::is_same_v<T, std::string>) {
      return read_attribute_strings(name);
    } else {
      static_assert(Numeric<T>, "read_attribute_array<T>: T must be a number type or std::string");
      std::vector<T> values(attribute_size(name));
      read_attribute_raw(name, dtype_of<T>, values.data(), values.size(), false);
      return values;
    }
  }
  std::size_t attribute_size(const std::string& name) const;
  DType attribute_dtype(const std::string& name) const;

 protected:
  Object() = default;
  Object(Handle handle, std::shared_ptr<const std::string> file_label)
      : handle_(std::move(handle)), file_label_(std::move(file_label)) {}
  // "file:/parent/child" for an object that could not be opened or created.
  std::string where_child(const std::string& child) const;

  Handle handle_;
  std::shared_ptr<const std::string> file_label_;

 private:
  void write_attribute_raw(const std::string& name, DType type, const void* data, const Shape& shape);
  void read_attribute_raw(const std::string& name, DType type, void* out, std::size_t count,
                          bool scalar) const;
  std::string read_attribute_string(const std::string& name) const;
  std::vector<std::string> read_attribute_strings(const std::string& name) const;
};

// How a dataset is laid out on disk. A dataset is chunked when it is
// extendable, compressed, or chunk_rows is set.
struct Storage {
  std::size_t chunk_rows = 0;  // rows (first dimension) per chunk; 0 = about 512 KiB per chunk
  int gzip_level = 0;          // 0 = not compressed, 1..9 = deflate level
  bool shuffle = false;        // byte shuffle before deflate (helps integer and float data)
};

class Group : public Object {
 public:
  // `path` may be relative to this group or absolute ("/entry/data").
  bool exists(const std::string& path) const;
  Kind kind(const std::string& path) const;
  // Names of the links in this group, in name order.
  std::vector<std::string> children() const;

  Group open_group(const std::string& path) const;
  Group create_group(const std::string& name);
  // Opens `name` if it is a group, creates it if there is nothing there.
  Group require_group(const std::string& name);
  Dataset open_dataset(const std::string& path) const;
  // Removes the link `name` (the space is not reclaimed in the file).
  void remove(const std::string& name);

  // Writes a new dataset; `shape` defaults to one dimension of values.size().
  template <NumericRange R>
  Dataset write_dataset(const std::string& name, const R& values, Shape shape = {},
                        const Storage& storage = {});
  template <Numeric T>
  Dataset write_scalar(const std::string& name, T value);
  Dataset write_string(const std::string& name, std::string_view value);
  Dataset write_strings(const std::string& name, const std::vector<std::string>& values);

  // A dataset of T with an unlimited first dimension and zero rows, each row
  // of `row_shape` (empty: rows are single values); grow it with append().
  template <Numeric T>
  Dataset create_extendable(const std::string& name, const Shape& row_shape = {},
                            const Storage& storage = {});

  // Copies a dataset, attributes included, possibly from another file.
  Dataset copy_dataset(const Dataset& source, const std::string& name);

  // `name` becomes another name for `target_path` (a path in the same file).
  void link_soft(const std::string& name, const std::string& target_path);
  void link_hard(const std::string& name, const std::string& target_path);

 protected:
  using Object::Object;

 private:
  Dataset create_raw(const std::string& name, DType type, const Shape& shape, bool extendable,
                     const Storage& storage);
};

class Dataset : public Object {
 public:
  Shape shape() const;
  std::size_t rank() const { return shape().size(); }
  std::size_t size() const;     // number of elements
  std::size_t rows() const;     // first dimension (1 for a scalar)
  DType dtype() const;

  // The whole dataset, flattened in C order.
  template <Numeric T>
  std::vector<T> read() const {
    std::vector<T> values(size());
    read_raw(dtype_of<T>, values.data(), values.size());
    return values;
  }
  // A dataset holding exactly one value.
  template <Numeric T>
  T read_scalar() const {
    T value{};
    read_raw(dtype_of<T>, &value, 1);
    return value;
  }
  std::string read_string() const;
  std::vector<std::string> read_strings() const;

  // Rows [first, first + count) of the first dimension, converted to T, into
  // `out` (resized, so a reused buffer does not reallocate): how a stack larger
  // than memory is streamed chunk by chunk.
  template <Numeric T>
  void read_rows(std::size_t first, std::size_t count, std::vector<T>& out) const {
    out.resize(count * row_size());
    read_rows_raw(dtype_of<T>, first, count, out.data());
  }
  template <Numeric T>
  std::vector<T> read_rows(std::size_t first, std::size_t count) const {
    std::vector<T> out;
    read_rows(first, count, out);
    return out;
  }

  // Overwrites the whole dataset; values.size() must equal size().
  template <NumericRange R>
  void write(const R& values) {
    write_raw(dtype_of<std::ranges::range_value_t<R>>, std::ranges::data(values), std::ranges::size(values));
  }

  // Appends one row or a block of rows to an extendable dataset; the number
  // of values must be a multiple of the row size.
  template <NumericRange R>
  void append(const R& values) {
    append_raw(dtype_of<std::ranges::range_value_t<R>>, std::ranges::data(values), std::ranges::size(values));
  }
  template <Numeric T>
  void append(T value) {
    append_raw(dtype_of<T>, &value, 1);
  }

  // Writer: makes appended rows visible to SWMR readers.
  void flush();
  // SWMR reader: picks up the rows the writer has flushed since.
  void refresh();

 private:
  friend class Group;
  using Object::Object;
  std::size_t row_size() const;  // elements per row of the first dimension
  void read_raw(DType type, void* out, std::size_t count) const;
  void read_rows_raw(DType type, std::size_t first, std::size_t count, void* out) const;
  bool read_integers_as_floats(DType stored, DType wanted, hid_t memory_space, hid_t file_space,
                               const std::vector<hsize_t>& dims, void* out) const;
  void write_raw(DType type, const void* data, std::size_t count);
  void append_raw(DType type, const void* data, std::size_t count);
};

enum class Access {
  read,        // read only
  read_write,  // modify an existing file
  swmr_read,   // read while another process writes under SWMR
  swmr_write,  // reopen a SWMR-capable file to append while others read
};

struct CreateOptions {
  bool swmr = false;   // latest file format, so start_swmr_write() can be called
  std::string label;   // name used in messages (e.g. the final name of an atomic output)
};

// A file; as a Group it is the root group "/".
class File : public Group {
 public:
  File() = default;
  // Missing file: no_input; not HDF5, truncated or corrupt: data_error; "-": usage.
  static File open(const std::filesystem::path& path, Access access = Access::read);
  // Creates or truncates. To write atomically, pass an AtomicOutput's temp_path()
  // and its target as the label, close(), then commit().
  static File create(const std::filesystem::path& path, const CreateOptions& options = {});

  const std::filesystem::path& file_path() const { return path_; }

  // Switches a file created with CreateOptions::swmr to SWMR writing.
  void start_swmr_write();
  void flush();
  // Flushes and closes, reporting any failure (the destructor cannot).
  void close();

 private:
  File(Handle handle, std::shared_ptr<const std::string> label, std::filesystem::path path)
      : Group(std::move(handle), std::move(label)), path_(std::move(path)) {}
  std::filesystem::path path_;
};

// A dataset named on a command line: "FILE.h5:/path/to/data".
struct Address {
  std::filesystem::path file;
  std::string dataset;  // absolute path inside the file
};
// Splits at the last ':' that is followed by '/'. Text without one is a file
// name alone, and `default_dataset` is used (usage error when that is empty).
Address parse_address(std::string_view text, std::string_view default_dataset = {});
std::string to_string(const Address& address);

// --- template definitions --------------------------------------------------

template <NumericRange R>
Dataset Group::write_dataset(const std::string& name, const R& values, Shape shape,
                             const Storage& storage) {
  if (shape.empty()) shape = {std::ranges::size(values)};
  Dataset ds = create_raw(name, dtype_of<std::ranges::range_value_t<R>>, shape, false, storage);
  ds.write(values);
  return ds;
}

template <Numeric T>
Dataset Group::write_scalar(const std::string& name, T value) {
  Dataset ds = create_raw(name, dtype_of<T>, Shape{}, false, Storage{});
  ds.write_raw(dtype_of<T>, &value, 1);
  return ds;
}

template <Numeric T>
Dataset Group::create_extendable(const std::string& name, const Shape& row_shape, const Storage& storage) {
  Shape shape{0};
  shape.insert(shape.end(), row_shape.begin(), row_shape.end());
  return create_raw(name, dtype_of<T>, shape, true, storage);
}

}  // namespace opx::h5
