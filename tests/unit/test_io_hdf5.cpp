// io/hdf5 and io/nexus, checked against independent readers and writers:
// h5py (Debian's /usr/bin/python3) and h5dump read what opx writes, and opx
// reads what h5py writes.
#define BOOST_TEST_MODULE io_hdf5
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.hpp"
#include "io/hdf5.hpp"
#include "io/nexus.hpp"
#include "io_test_support.hpp"

namespace fs = std::filesystem;
using namespace opx;
using opx::test::error_of;
using opx::test::quoted;
using opx::test::run;
using opx::test::ScratchDir;

namespace {

// Describes every link of an HDF5 file as JSON, as h5py sees it: kind, link
// type, shape, dtype, chunking, compression, attributes and values.
const char* k_h5py_dump = R"PY(
import sys, json, h5py, numpy as np

def conv(v):
    if isinstance(v, (bytes, np.bytes_)): return v.decode()
    if isinstance(v, np.ndarray): return conv(v.tolist())
    if isinstance(v, list): return [conv(x) for x in v]
    if isinstance(v, np.generic): return conv(v.item())
    if isinstance(v, float) and v != v: return "nan"
    return v

def attrs(obj):
    out = {}
    for k in obj.attrs:
        a = obj.attrs.get_id(k)
        s = h5py.check_string_dtype(a.dtype)
        out[k] = {"value": conv(obj.attrs[k]), "dtype": ("str-" + s.encoding) if s else str(a.dtype),
                  "shape": list(a.shape)}
    return out

def dtype_name(d):
    s = h5py.check_string_dtype(d.dtype)
    if s: return "str-%s-%s" % (s.encoding, "vlen" if s.length is None else "fixed")
    return str(d.dtype)

out = {}
def walk(group, path):
    for name in group:
        link = group.get(name, getlink=True)
        p = path.rstrip("/") + "/" + name
        entry = {"link": type(link).__name__}
        if isinstance(link, h5py.SoftLink): entry["target"] = link.path
        obj = group.get(name)
        entry["attrs"] = attrs(obj)
        if isinstance(obj, h5py.Dataset):
            entry.update(kind="dataset", shape=list(obj.shape), dtype=dtype_name(obj),
                         maxshape=list(obj.maxshape), chunks=obj.chunks,
                         compression=obj.compression, shuffle=obj.shuffle)
            entry["value"] = conv(obj.asstr()[()] if h5py.check_string_dtype(obj.dtype) else obj[()])
        else:
            entry["kind"] = "group"
            if not isinstance(link, h5py.SoftLink): walk(obj, p)
        out[p] = entry

with h5py.File(sys.argv[1], "r") as f:
    out["/"] = {"kind": "group", "attrs": attrs(f)}
    walk(f, "/")
print(json.dumps(out))
)PY";

nlohmann::json h5py_dump(const ScratchDir& scratch, const fs::path& file) {
  const fs::path script = scratch / "dump.py";
  test::write_text(script, k_h5py_dump);
  const test::Output out = run(fmt::format("{} {} {}", test::python, quoted(script), quoted(file)));
  BOOST_REQUIRE_EQUAL(out.status, 0);
  return nlohmann::json::parse(out.text);
}

// Runs a Python snippet with h5py; the files are its sys.argv[1:], the first also `path`.
test::Output h5py_run(const ScratchDir& scratch, const std::string& code, const std::vector<fs::path>& files) {
  const fs::path script = scratch / "snippet.py";
  test::write_text(script, "import sys, json, h5py, numpy as np\npath = sys.argv[1]\n" + code);
  std::string command = fmt::format("{} {}", test::python, quoted(script));
  for (const fs::path& file : files) command += fmt::format(" {}", quoted(file));
  return run(command);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hdf5)

BOOST_AUTO_TEST_CASE(numbers_strings_and_attributes_written_by_opx_read_by_h5py) {
  ScratchDir scratch;
  const fs::path path = scratch / "types.h5";
  {
    h5::File file = h5::File::create(path);
    h5::Group group = file.create_group("entry/values");
    group.write_dataset("f32", std::vector<float>{1.5f, -2.25f});
    group.write_dataset("f64", std::vector<double>{0.1, 1e300});
    group.write_dataset("i32", std::vector<std::int32_t>{-7, 2147483647});
    group.write_dataset("u32", std::vector<std::uint32_t>{4294967295u});
    group.write_dataset("i64", std::vector<std::int64_t>{-9007199254740993LL});
    group.write_dataset("u16", std::vector<std::uint16_t>{0, 65535});
    group.write_dataset("u8", std::vector<std::uint8_t>{0, 255});
    group.write_dataset("grid", std::vector<double>{1, 2, 3, 4, 5, 6}, h5::Shape{2, 3});
    group.write_scalar("live_time", 29.5);
    group.write_scalar("channels", std::uint32_t{2048});
    group.write_string("note", "Kα line, 8.04 keV");
    group.write_strings("elements", {"Mn", "Fe", "Ni"});
    group.write_attribute("units", "keV");
    group.write_attribute("gain", 0.01);
    group.write_attribute("calibration", std::vector<double>{0.0, 0.01, 1e-7});
    group.write_attribute("axes", std::vector<std::string>{"depth", "."});
    group.write_attribute("units", "eV");  // replaces the earlier value
    file.close();
  }
  const nlohmann::json dump = h5py_dump(scratch, path);
  const auto& v = [&](const char* name) -> const nlohmann::json& { return dump.at(std::string("/entry/values/") + name); };
  BOOST_CHECK_EQUAL(v("f32")["dtype"], "float32");
  BOOST_CHECK(v("f32")["value"] == nlohmann::json({1.5, -2.25}));
  BOOST_CHECK_EQUAL(v("f64")["value"][1].get<double>(), 1e300);
  BOOST_CHECK_EQUAL(v("i32")["dtype"], "int32");
  BOOST_CHECK_EQUAL(v("i32")["value"][1].get<std::int64_t>(), 2147483647);
  BOOST_CHECK_EQUAL(v("u32")["value"][0].get<std::uint64_t>(), 4294967295u);
  BOOST_CHECK_EQUAL(v("i64")["value"][0].get<std::int64_t>(), -9007199254740993LL);
  BOOST_CHECK_EQUAL(v("u16")["dtype"], "uint16");
  BOOST_CHECK_EQUAL(v("u8")["value"][1].get<int>(), 255);
  BOOST_CHECK(v("grid")["shape"] == nlohmann::json({2, 3}));
  BOOST_CHECK(v("grid")["value"] == nlohmann::json({{1.0, 2.0, 3.0}, {4.0, 5.0, 6.0}}));
  BOOST_CHECK(v("live_time")["shape"] == nlohmann::json::array());
  BOOST_CHECK_EQUAL(v("live_time")["value"].get<double>(), 29.5);
  BOOST_CHECK_EQUAL(v("channels")["dtype"], "uint32");
  BOOST_CHECK_EQUAL(v("note")["dtype"], "str-utf-8-vlen");
  BOOST_CHECK_EQUAL(v("note")["value"], "Kα line, 8.04 keV");
  BOOST_CHECK(v("elements")["value"] == nlohmann::json({"Mn", "Fe", "Ni"}));
  const nlohmann::json& attrs = dump.at("/entry/values")["attrs"];
  BOOST_CHECK_EQUAL(attrs["units"]["value"], "eV");
  BOOST_CHECK_EQUAL(attrs["units"]["dtype"], "str-utf-8");
  BOOST_CHECK_EQUAL(attrs["gain"]["value"].get<double>(), 0.01);
  BOOST_CHECK(attrs["calibration"]["value"] == nlohmann::json({0.0, 0.01, 1e-7}));
  BOOST_CHECK(attrs["axes"]["value"] == nlohmann::json({"depth", "."}));
  BOOST_CHECK(attrs["axes"]["shape"] == nlohmann::json({2}));

  // h5dump, a second independent reader, sees the same file.
  const test::Output header = run("h5dump -H " + quoted(path));
  BOOST_CHECK_EQUAL(header.status, 0);
  BOOST_CHECK(header.text.find("DATASET \"grid\"") != std::string::npos);
  BOOST_CHECK(header.text.find("SIMPLE { ( 2, 3 ) / ( 2, 3 ) }") != std::string::npos);
  const test::Output values = run("h5dump -d /entry/values/u16 " + quoted(path));
  BOOST_CHECK(values.text.find("0, 65535") != std::string::npos);

  // And opx reads back what it wrote.
  h5::File file = h5::File::open(path);
  h5::Group group = file.open_group("/entry/values");
  BOOST_CHECK(group.open_dataset("f32").read<float>() == std::vector<float>({1.5f, -2.25f}));
  BOOST_CHECK_EQUAL(group.open_dataset("live_time").read_scalar<double>(), 29.5);
  BOOST_CHECK_EQUAL(group.open_dataset("note").read_string(), "Kα line, 8.04 keV");
  BOOST_CHECK(group.open_dataset("elements").read_strings() == std::vector<std::string>({"Mn", "Fe", "Ni"}));
  BOOST_CHECK(group.open_dataset("grid").shape() == h5::Shape({2, 3}));
  BOOST_CHECK(group.open_dataset("u16").dtype() == h5::DType::uint16);
  BOOST_CHECK_EQUAL(group.read_attribute<std::string>("units"), "eV");
  BOOST_CHECK_EQUAL(group.read_attribute<double>("gain"), 0.01);
  BOOST_CHECK(group.read_attribute_array<double>("calibration") == std::vector<double>({0.0, 0.01, 1e-7}));
  BOOST_CHECK(group.read_attribute_array<std::string>("axes") == std::vector<std::string>({"depth", "."}));
  BOOST_CHECK(file.children() == std::vector<std::string>({"entry"}));
  BOOST_CHECK(group.kind("grid") == h5::Kind::dataset);
  BOOST_CHECK(file.kind("/entry") == h5::Kind::group);
  BOOST_CHECK(file.kind("/entry/values/grid/deeper") == h5::Kind::none);
  BOOST_CHECK(!file.exists("/nothing/here"));
}

BOOST_AUTO_TEST_CASE(reads_what_h5py_writes_including_fixed_length_strings) {
  ScratchDir scratch;
  const fs::path path = scratch / "from_h5py.h5";
  const test::Output made = h5py_run(scratch, R"PY(
with h5py.File(path, "w") as f:
    f["stack"] = np.arange(100 * 64, dtype=np.uint16).reshape(100, 64)
    f["fixed"] = np.array([b"Cu-K", b"Rh-L"], dtype="S8")
    f["one_fixed"] = np.bytes_(b"keV")
    f["vlen"] = "depth profile"
    f["halves"] = np.array([1.0, 2.5])
    f["wholes"] = np.array([1.0, -2.0])
    f["big"] = np.array([300], dtype=np.int32)
    f["counts"] = np.array([7, 8], dtype=np.int64)
    f["u32"] = np.array([[0, 16777216], [4294967295, 3]], dtype=np.uint32)
    f["i8"] = np.array([[-128, 127]], dtype=np.int8)
    f["stack"].attrs["units"] = np.bytes_(b"counts")
    f["stack"].attrs["axes"] = "x:y"
    f["stack"].attrs["offsets"] = np.array([1, 2, 3], dtype=np.int16)
)PY", {path});
  BOOST_REQUIRE_EQUAL(made.status, 0);

  h5::File file = h5::File::open(path);
  h5::Dataset stack = file.open_dataset("stack");
  BOOST_CHECK(stack.shape() == h5::Shape({100, 64}));
  BOOST_CHECK(stack.dtype() == h5::DType::uint16);
  // Streams the stack 7 rows at a time, converted to float on read.
  std::vector<float> block;
  std::size_t rows_seen = 0;
  bool all_equal = true;
  for (std::size_t first = 0; first < stack.rows(); first += 7) {
    const std::size_t count = std::min<std::size_t>(7, stack.rows() - first);
    stack.read_rows(first, count, block);
    BOOST_REQUIRE_EQUAL(block.size(), count * 64);
    for (std::size_t i = 0; i < block.size(); ++i) all_equal &= block[i] == float(first * 64 + i);
    rows_seen += count;
  }
  BOOST_CHECK_EQUAL(rows_seen, 100u);
  BOOST_CHECK(all_equal);
  const std::vector<double> last = stack.read_rows<double>(99, 1);
  BOOST_CHECK_EQUAL(last.back(), 6399.0);
  // 32-bit integers: exact as double; as float only up to 2^24.
  h5::Dataset u32 = file.open_dataset("u32");
  BOOST_CHECK(u32.read_rows<double>(0, 2) == std::vector<double>({0, 16777216, 4294967295.0, 3}));
  BOOST_CHECK(u32.read_rows<float>(0, 1) == std::vector<float>({0, 16777216}));
  const Error u32_float = error_of([&] { u32.read_rows<float>(0, 2); });
  BOOST_CHECK(u32_float.code() == ExitCode::data_error);
  BOOST_CHECK_EQUAL(u32_float.why(), "a uint32 value 4294967295 cannot be converted exactly for float32");
  BOOST_CHECK(file.open_dataset("i8").read_rows<float>(0, 1) == std::vector<float>({-128, 127}));

  BOOST_CHECK(file.open_dataset("fixed").read_strings() == std::vector<std::string>({"Cu-K", "Rh-L"}));
  BOOST_CHECK_EQUAL(file.open_dataset("one_fixed").read_string(), "keV");
  BOOST_CHECK_EQUAL(file.open_dataset("vlen").read_string(), "depth profile");
  BOOST_CHECK_EQUAL(stack.read_attribute<std::string>("units"), "counts");
  BOOST_CHECK(stack.read_attribute_array<std::string>("axes") == std::vector<std::string>({"x:y"}));
  BOOST_CHECK(stack.read_attribute_array<float>("offsets") == std::vector<float>({1, 2, 3}));
  BOOST_CHECK(file.open_dataset("counts").read<std::uint32_t>() == std::vector<std::uint32_t>({7, 8}));
  // Whole floating values may be read as integers; anything inexact is refused.
  BOOST_CHECK(file.open_dataset("wholes").read<std::int32_t>() == std::vector<std::int32_t>({1, -2}));
  const Error fraction = error_of([&] { file.open_dataset("halves").read<std::int32_t>(); });
  BOOST_CHECK(fraction.code() == ExitCode::data_error);
  BOOST_CHECK_EQUAL(fraction.why(), "a float64 value has a fractional part for int32");
  const Error too_big = error_of([&] { file.open_dataset("big").read<std::uint8_t>(); });
  BOOST_CHECK_EQUAL(too_big.why(), "a int32 value is too large for uint8");
  const Error negative = error_of([&] { file.open_dataset("wholes").read<std::uint16_t>(); });
  BOOST_CHECK_EQUAL(negative.why(), "a float64 value is too small for uint16");
  const Error text = error_of([&] { file.open_dataset("vlen").read<double>(); });
  BOOST_CHECK_EQUAL(text.why(), "holds text, not numbers");
  const Error numbers = error_of([&] { file.open_dataset("counts").read_strings(); });
  BOOST_CHECK_EQUAL(numbers.why(), "holds int64 numbers, not text");
  const Error scalar = error_of([&] { file.open_dataset("counts").read_scalar<double>(); });
  BOOST_CHECK_EQUAL(scalar.why(), "holds 2 values, expected a single value");
  const Error rows = error_of([&] { stack.read_rows<float>(95, 10); });
  BOOST_CHECK_EQUAL(rows.where(), path.string() + ":/stack");
  BOOST_CHECK_EQUAL(rows.why(), "rows 95 to 105 asked for, but the dataset has 100 rows");
}

BOOST_AUTO_TEST_CASE(extendable_dataset_appends_rows_and_blocks_with_compression) {
  ScratchDir scratch;
  const fs::path path = scratch / "log.h5";
  {
    h5::File file = h5::File::create(path);
    h5::Storage storage;
    storage.chunk_rows = 3;
    storage.gzip_level = 4;
    storage.shuffle = true;
    h5::Dataset spectra = file.create_extendable<std::uint32_t>("spectra", {4}, storage);
    spectra.append(std::vector<std::uint32_t>{0, 1, 2, 3});                // one row
    spectra.append(std::vector<std::uint32_t>{10, 11, 12, 13, 20, 21, 22, 23});  // a block of two
    h5::Dataset force = file.create_extendable<double>("force_N");
    for (int i = 0; i < 5; ++i) force.append(0.5 * i);
    BOOST_CHECK(spectra.shape() == h5::Shape({3, 4}));
    const Error ragged = error_of([&] { spectra.append(std::vector<std::uint32_t>{1, 2, 3}); });
    BOOST_CHECK(ragged.code() == ExitCode::software);
    h5::Dataset fixed = file.write_dataset("fixed", std::vector<double>{1, 2});
    const Error not_extendable = error_of([&] { fixed.append(3.0); });
    BOOST_CHECK_EQUAL(not_extendable.why(), "it was not created extendable");
    file.close();
  }
  const nlohmann::json dump = h5py_dump(scratch, path);
  const nlohmann::json& spectra = dump.at("/spectra");
  BOOST_CHECK(spectra["value"] == nlohmann::json({{0, 1, 2, 3}, {10, 11, 12, 13}, {20, 21, 22, 23}}));
  BOOST_CHECK(spectra["maxshape"] == nlohmann::json({nullptr, 4}));
  BOOST_CHECK(spectra["chunks"] == nlohmann::json({3, 4}));
  BOOST_CHECK_EQUAL(spectra["compression"], "gzip");
  BOOST_CHECK_EQUAL(spectra["shuffle"], true);
  BOOST_CHECK(dump.at("/force_N")["value"] == nlohmann::json({0.0, 0.5, 1.0, 1.5, 2.0}));
  BOOST_CHECK(dump.at("/force_N")["maxshape"] == nlohmann::json({nullptr}));
}

BOOST_AUTO_TEST_CASE(swmr_writer_is_followed_by_h5py_while_open) {
  ScratchDir scratch;
  const fs::path path = scratch / "swmr.h5";
  h5::CreateOptions options;
  options.swmr = true;
  h5::File file = h5::File::create(path, options);
  h5::Dataset log = file.create_extendable<double>("log", {2});
  file.start_swmr_write();
  const std::string follow = R"PY(
with h5py.File(path, "r", libver="latest", swmr=True) as f:
    d = f["log"]
    d.refresh()
    print(json.dumps(d[()].tolist()))
)PY";
  for (int row = 0; row < 3; ++row) log.append(std::vector<double>{double(row), 10.0 * row});
  log.flush();
  test::Output seen = h5py_run(scratch, follow, {path});
  BOOST_REQUIRE_EQUAL(seen.status, 0);
  BOOST_CHECK(nlohmann::json::parse(seen.text) == nlohmann::json({{0.0, 0.0}, {1.0, 10.0}, {2.0, 20.0}}));
  log.append(std::vector<double>{3.0, 30.0});
  log.flush();
  seen = h5py_run(scratch, follow, {path});
  BOOST_REQUIRE_EQUAL(seen.status, 0);
  BOOST_CHECK_EQUAL(nlohmann::json::parse(seen.text).size(), 4u);
  file.close();
}

BOOST_AUTO_TEST_CASE(swmr_reader_follows_h5py_writer) {
  ScratchDir scratch;
  const fs::path path = scratch / "swmr_in.h5";
  const fs::path script = scratch / "writer.py";
  // h5py appends rows of 3 values (row i holds i) in four batches of five,
  // each flushed, and waits for this reader to acknowledge a batch (file
  // ack<rows>) before writing the next: the reader must see the file grow
  // while the writer keeps it open.
  test::write_text(script, R"PY(
import os, sys, time, h5py, numpy as np
path, folder = sys.argv[1:3]
with h5py.File(path, "w", libver="latest") as f:
    d = f.create_dataset("rows", shape=(0, 3), maxshape=(None, 3), chunks=(4, 3), dtype="f4")
    f.swmr_mode = True
    open(os.path.join(folder, "ready"), "w").close()
    for batch in range(4):
        rows = 5 * (batch + 1)
        d.resize((rows, 3))
        d[rows - 5:rows] = np.repeat(np.arange(rows - 5, rows), 3).reshape(5, 3)
        d.flush()
        ack = os.path.join(folder, "ack%d" % rows)
        deadline = time.time() + 60
        while not os.path.exists(ack) and time.time() < deadline: time.sleep(0.01)
open(os.path.join(folder, "done"), "w").close()
)PY");
  BOOST_REQUIRE_EQUAL(
      std::system(fmt::format("{} {} {} {} &", test::python, quoted(script), quoted(path), quoted(scratch.dir)).c_str()), 0);
  using namespace std::chrono_literals;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  auto wait_for = [&](const fs::path& file) {
    while (!fs::exists(file) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    return fs::exists(file);
  };
  BOOST_REQUIRE(wait_for(scratch / "ready"));

  h5::File file = h5::File::open(path, h5::Access::swmr_read);
  h5::Dataset rows = file.open_dataset("rows");
  for (std::size_t expected_rows = 5; expected_rows <= 20; expected_rows += 5) {
    // A reader may see the new extent before the new values land; wait for both.
    bool complete = false;
    while (!complete && std::chrono::steady_clock::now() < deadline) {
      rows.refresh();
      if (rows.rows() == expected_rows) {
        const std::vector<float> values = rows.read<float>();
        complete = true;
        for (std::size_t i = 0; i < values.size(); ++i) complete &= values[i] == float(i / 3);
      }
      if (!complete) std::this_thread::sleep_for(10ms);
    }
    BOOST_REQUIRE_MESSAGE(complete, "saw " << rows.rows() << " rows, waiting for " << expected_rows);
    test::write_text(scratch / fmt::format("ack{}", expected_rows), "");
  }
  BOOST_CHECK(wait_for(scratch / "done"));
}

BOOST_AUTO_TEST_CASE(missing_corrupt_and_truncated_files_give_clear_errors) {
  ScratchDir scratch;
  const Error missing = error_of([&] { h5::File::open(scratch / "absent.h5"); });
  BOOST_CHECK(missing.code() == ExitCode::no_input);
  BOOST_CHECK_EQUAL(missing.why(), "no such file");

  const Error stream = error_of([&] { h5::File::open("-"); });
  BOOST_CHECK(stream.code() == ExitCode::usage);

  test::write_text(scratch / "text.h5", "channel,counts\n1,2\n");
  const Error text = error_of([&] { h5::File::open(scratch / "text.h5"); });
  BOOST_CHECK(text.code() == ExitCode::data_error);
  BOOST_CHECK_EQUAL(text.why(), "not an HDF5 file");

  const fs::path whole = scratch / "whole.h5";
  {
    h5::File file = h5::File::create(whole);
    std::vector<double> values(20000);
    for (std::size_t i = 0; i < values.size(); ++i) values[i] = std::sin(double(i));
    file.write_dataset("entry/data/counts", values);
    file.close();
  }
  const auto size = fs::file_size(whole);
  for (const auto cut : {size / 2, std::uintmax_t(100)}) {
    const fs::path truncated = scratch / fmt::format("cut{}.h5", cut);
    fs::copy_file(whole, truncated);
    fs::resize_file(truncated, cut);
    const Error e = error_of([&] {
      h5::File file = h5::File::open(truncated);
      file.open_dataset("entry/data/counts").read<double>();
    });
    BOOST_TEST_MESSAGE("truncated at " << cut << ": " << e.what());
    BOOST_CHECK(e.code() == ExitCode::data_error);
    BOOST_CHECK_EQUAL(e.where(), truncated.string());
  }
  const Error half = error_of([&] { h5::File::open(scratch / fmt::format("cut{}.h5", size / 2)); });
  BOOST_CHECK(half.why().starts_with("file is truncated"));

  h5::File file = h5::File::open(whole);
  const Error no_dataset = error_of([&] { file.open_dataset("/entry/data/count"); });
  BOOST_CHECK(no_dataset.code() == ExitCode::data_error);
  BOOST_CHECK_EQUAL(no_dataset.where(), whole.string() + ":/entry/data/count");
  BOOST_CHECK_EQUAL(no_dataset.why(), "no such dataset");
  const Error relative = error_of([&] { file.open_group("entry").open_dataset("nope"); });
  BOOST_CHECK_EQUAL(relative.where(), whole.string() + ":/entry/nope");
  const Error group = error_of([&] { file.open_dataset("/entry/data"); });
  BOOST_CHECK_EQUAL(group.why(), "is a group, not a dataset");
  const Error attribute = error_of([&] { file.open_dataset("/entry/data/counts").read_attribute<std::string>("units"); });
  BOOST_CHECK_EQUAL(attribute.where(), whole.string() + ":/entry/data/counts@units");
  BOOST_CHECK_EQUAL(attribute.why(), "no such attribute");
}

BOOST_AUTO_TEST_CASE(atomic_create_names_the_final_file_and_links_and_copies) {
  ScratchDir scratch;
  const fs::path source_path = scratch / "source.h5";
  {
    h5::File source = h5::File::create(source_path);
    h5::Dataset depth = source.write_dataset("scan/depth", std::vector<double>{0, 5, 10});
    depth.write_attribute("units", "um");
    source.close();
  }
  const fs::path target = scratch / "result.h5";
  {
    AtomicOutput output(target);
    h5::CreateOptions options;
    options.label = target.string();
    h5::File file = h5::File::create(output.temp_path(), options);
    BOOST_CHECK_EQUAL(file.file_label(), target.string());
    h5::Group entry = file.create_group("entry");
    h5::File source = h5::File::open(source_path);
    entry.copy_dataset(source.open_dataset("/scan/depth"), "depth");
    entry.link_soft("depth_soft", "/entry/depth");
    entry.link_hard("depth_hard", "/entry/depth");
    const Error exists = error_of([&] { entry.create_group("depth"); });
    BOOST_CHECK_EQUAL(exists.where(), target.string() + ":/entry/depth");
    file.close();
    output.commit();
  }
  const nlohmann::json dump = h5py_dump(scratch, target);
  BOOST_CHECK(dump.at("/entry/depth")["value"] == nlohmann::json({0.0, 5.0, 10.0}));
  BOOST_CHECK_EQUAL(dump.at("/entry/depth")["attrs"]["units"]["value"], "um");
  BOOST_CHECK_EQUAL(dump.at("/entry/depth_soft")["link"], "SoftLink");
  BOOST_CHECK_EQUAL(dump.at("/entry/depth_soft")["target"], "/entry/depth");
  BOOST_CHECK(dump.at("/entry/depth_soft")["value"] == nlohmann::json({0.0, 5.0, 10.0}));
  BOOST_CHECK_EQUAL(dump.at("/entry/depth_hard")["link"], "HardLink");
}

BOOST_AUTO_TEST_CASE(dataset_addresses) {
  const h5::Address plain = h5::parse_address("scan.h5:/entry/data/counts");
  BOOST_CHECK_EQUAL(plain.file.string(), "scan.h5");
  BOOST_CHECK_EQUAL(plain.dataset, "/entry/data/counts");
  const h5::Address nested = h5::parse_address("run:3/scan.h5:/entry/data");
  BOOST_CHECK_EQUAL(nested.file.string(), "run:3/scan.h5");
  BOOST_CHECK_EQUAL(nested.dataset, "/entry/data");
  const h5::Address last = h5::parse_address("a:/b.h5:/c");
  BOOST_CHECK_EQUAL(last.file.string(), "a:/b.h5");
  BOOST_CHECK_EQUAL(last.dataset, "/c");
  const h5::Address defaulted = h5::parse_address("data/scan.h5", "/entry/data/counts");
  BOOST_CHECK_EQUAL(defaulted.file.string(), "data/scan.h5");
  BOOST_CHECK_EQUAL(defaulted.dataset, "/entry/data/counts");
  BOOST_CHECK_EQUAL(h5::to_string(plain), "scan.h5:/entry/data/counts");
  BOOST_CHECK(error_of([] { h5::parse_address("scan.h5"); }).code() == ExitCode::usage);
  BOOST_CHECK(error_of([] { h5::parse_address(":/entry"); }).code() == ExitCode::usage);
  BOOST_CHECK(error_of([] { h5::parse_address(""); }).code() == ExitCode::usage);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(nexus_layout)

BOOST_AUTO_TEST_CASE(entry_and_nxdata_follow_nexus_as_h5py_sees_them) {
  ScratchDir scratch;
  const fs::path path = scratch / "profile.h5";
  {
    h5::File file = h5::File::create(path);
    nexus::EntryInfo info;
    info.title = "depth profile 12";
    info.program_name = "cmx-fit";
    info.start_time = "2026-01-02T03:04:05.000Z";
    h5::Group entry = nexus::make_entry(file, "entry", info);
    h5::Group data = nexus::make_data(entry, "Ni_K", "net_count_rate", {"depth"});
    nexus::write_quantity(data, "net_count_rate", std::vector<double>{10, 20, 15}, "1/s");
    nexus::write_quantity(data, "depth", std::vector<double>{0, 5, 10}, "um");
    h5::Group map = nexus::make_data(entry, "map", "counts", {"y", "."});
    map.write_dataset("counts", std::vector<float>(6, 1.0f), h5::Shape{2, 3});
    map.write_dataset("y", std::vector<double>{0, 1});
    nexus::write_end_time(entry, "2026-01-02T03:05:00.000Z");
    nexus::write_end_time(entry, "2026-01-02T03:06:00.000Z");  // replaced, not duplicated
    file.close();
  }
  const nlohmann::json dump = h5py_dump(scratch, path);
  const nlohmann::json& root = dump.at("/")["attrs"];
  BOOST_CHECK_EQUAL(root["default"]["value"], "entry");
  BOOST_CHECK_EQUAL(root["creator"]["value"].get<std::string>().substr(0, 7), "cmx-fit");
  BOOST_CHECK(root.contains("HDF5_Version") && root.contains("file_time"));
  const nlohmann::json& entry = dump.at("/entry");
  BOOST_CHECK_EQUAL(entry["attrs"]["NX_class"]["value"], "NXentry");
  BOOST_CHECK_EQUAL(entry["attrs"]["default"]["value"], "Ni_K");  // the first NXdata
  BOOST_CHECK_EQUAL(dump.at("/entry/title")["value"], "depth profile 12");
  BOOST_CHECK_EQUAL(dump.at("/entry/start_time")["value"], "2026-01-02T03:04:05.000Z");
  BOOST_CHECK_EQUAL(dump.at("/entry/end_time")["value"], "2026-01-02T03:06:00.000Z");
  BOOST_CHECK_EQUAL(dump.at("/entry/program_name")["value"], "cmx-fit");
  BOOST_CHECK(dump.at("/entry/program_name")["attrs"].contains("version"));
  const nlohmann::json& ni = dump.at("/entry/Ni_K")["attrs"];
  BOOST_CHECK_EQUAL(ni["NX_class"]["value"], "NXdata");
  BOOST_CHECK_EQUAL(ni["signal"]["value"], "net_count_rate");
  BOOST_CHECK(ni["axes"]["value"] == nlohmann::json({"depth"}));
  BOOST_CHECK_EQUAL(ni["depth_indices"]["value"].get<int>(), 0);
  BOOST_CHECK_EQUAL(dump.at("/entry/Ni_K/depth")["attrs"]["units"]["value"], "um");
  const nlohmann::json& map = dump.at("/entry/map")["attrs"];
  BOOST_CHECK(map["axes"]["value"] == nlohmann::json({"y", "."}));
  BOOST_CHECK_EQUAL(map["y_indices"]["value"].get<int>(), 0);
  BOOST_CHECK(!map.contains("._indices"));

  h5::File file = h5::File::open(path);
  const nexus::DataInfo found = nexus::find_default_data(file);
  BOOST_CHECK_EQUAL(found.path, "/entry/Ni_K");
  BOOST_CHECK_EQUAL(found.signal, "net_count_rate");
  BOOST_CHECK(found.axes == std::vector<std::string>({"depth"}));
}

BOOST_AUTO_TEST_CASE(finds_data_in_files_from_other_tools) {
  ScratchDir scratch;
  const fs::path old_style = scratch / "old.h5";
  const fs::path no_default = scratch / "no_default.h5";
  const fs::path nothing = scratch / "nothing.h5";
  // NeXus before 2014: @signal=1 on the dataset, @axes as one "x:y" string,
  // fixed-length NX_class strings, no @default anywhere.
  const test::Output made = h5py_run(scratch, R"PY(
old, no_default, nothing = sys.argv[1:4]
with h5py.File(old, "w") as f:
    e = f.create_group("scan_1"); e.attrs["NX_class"] = np.bytes_(b"NXentry")
    d = e.create_group("plot"); d.attrs["NX_class"] = np.bytes_(b"NXdata")
    d["spectra"] = np.zeros((2, 3)); d["spectra"].attrs["signal"] = 1
    d.attrs["axes"] = "x:energy"
with h5py.File(no_default, "w") as f:
    e = f.create_group("entry"); e.attrs["NX_class"] = "NXentry"
    i = e.create_group("instrument"); i.attrs["NX_class"] = "NXinstrument"
    d = e.create_group("result"); d.attrs["NX_class"] = "NXdata"; d.attrs["signal"] = "area"
    d.attrs["axes"] = ["depth"]
with h5py.File(nothing, "w") as f:
    f.create_group("entry").attrs["NX_class"] = "NXentry"
)PY", {old_style, no_default, nothing});
  BOOST_REQUIRE_EQUAL(made.status, 0);

  const nexus::DataInfo old_info = nexus::find_default_data(h5::File::open(old_style));
  BOOST_CHECK_EQUAL(old_info.path, "/scan_1/plot");
  BOOST_CHECK_EQUAL(old_info.signal, "spectra");
  BOOST_CHECK(old_info.axes == std::vector<std::string>({"x", "energy"}));

  const nexus::DataInfo info = nexus::find_default_data(h5::File::open(no_default));
  BOOST_CHECK_EQUAL(info.path, "/entry/result");
  BOOST_CHECK_EQUAL(info.signal, "area");
  BOOST_CHECK(info.axes == std::vector<std::string>({"depth"}));

  const Error none = error_of([&] { nexus::find_default_data(h5::File::open(nothing)); });
  BOOST_CHECK(none.code() == ExitCode::data_error);
  BOOST_CHECK_EQUAL(none.where(), nothing.string());
}

BOOST_AUTO_TEST_SUITE_END()
