#include "core/formats/safetensors.h"

#include <cstdint>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "core/formats/byte_reader.h"
#include "core/formats/json_limits.h"

namespace zeroth {
namespace {

using json = nlohmann::json;

struct DTypeSpelling {
  DType dtype;
  std::string_view name;
};
constexpr std::array<DTypeSpelling, 13> kSpellings = {{
    {DType::F32, "F32"}, {DType::F16, "F16"}, {DType::BF16, "BF16"}, {DType::F64, "F64"},
    {DType::I8, "I8"},   {DType::U8, "U8"},   {DType::I16, "I16"},   {DType::I32, "I32"},
    {DType::I64, "I64"}, {DType::U16, "U16"}, {DType::U32, "U32"},   {DType::U64, "U64"},
    {DType::BOOL, "BOOL"},
}};

// The reference implementation refuses headers over 100 MB; so do we, before
// handing the bytes to the JSON parser.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& path, const std::string& name, const json& v, uint64_t data_bytes) {
  auto bad = [&](const std::string& what) { throw FormatError(path, "tensor \"" + name + "\": " + what); };
  if (!v.is_object()) bad("header entry is not a JSON object");
  const auto dt = v.find("dtype");
  const auto sh = v.find("shape");
  const auto off = v.find("data_offsets");
  if (dt == v.end() || !dt->is_string()) bad("missing or non-string \"dtype\"");
  if (sh == v.end() || !sh->is_array()) bad("missing or non-array \"shape\"");
  if (off == v.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned())
    bad("\"data_offsets\" must be two non-negative integers [begin, end]");
  Entry e{name, DType::F32, {}, (*off)[0].get<uint64_t>(), (*off)[1].get<uint64_t>()};
  const auto dtype = parse_safetensors_dtype(dt->get<std::string>());
  if (!dtype) bad("unknown dtype \"" + dt->get<std::string>() + "\"");
  e.dtype = *dtype;
  uint64_t numel = 1;
  std::vector<uint64_t> dims;
  for (const auto& d : *sh) {
    if (!d.is_number_unsigned()) bad("shape entries must be non-negative integers");
    const uint64_t n = d.get<uint64_t>();
    if (n > uint64_t(INT64_MAX) || !checked_mul(numel, n, &numel)) bad("shape " + sh->dump() + " overflows");
    dims.push_back(n);
    e.shape.push_back(int64_t(n));
  }
  if (!shape_fits_int64(dims))
    bad(fmt::format("shape {} is too large: its non-zero dimensions multiply past 2^60 elements", sh->dump()));
  uint64_t want = 0;
  if (!checked_mul(numel, dtype_size(e.dtype), &want)) bad("shape " + sh->dump() + " overflows");
  if (e.begin > e.end || e.end > data_bytes)
    bad(fmt::format("data_offsets [{}, {}) lie outside the data section of {} bytes", e.begin, e.end, data_bytes));
  if (e.end - e.begin != want)
    bad(fmt::format("data_offsets [{}, {}) hold {} bytes but {}{} needs {}", e.begin, e.end, e.end - e.begin,
                    dt->get<std::string>(), sh->dump(), want));
  return e;
}

constexpr std::string_view kBlockPrefix = "zeroth.block.";

// zeroth's block formats travel as U8 [rows, row bytes] tensors plus a metadata
// entry "zeroth.block.NAME" = {"dtype": "nf3_b64", "shape": [...]}: readers
// that do not know zeroth still see a valid file of byte tensors.
void apply_block_metadata(const std::string& path, const SafetensorsMetadata& meta, TensorList& tensors) {
  for (const auto& [key, value] : meta) {
    if (!key.starts_with(kBlockPrefix)) continue;
    const std::string name = key.substr(kBlockPrefix.size());
    auto bad = [&](const std::string& what) { throw FormatError(path, "block tensor \"" + name + "\": " + what); };
    auto it = std::find_if(tensors.begin(), tensors.end(), [&](const NamedTensor& t) { return t.name == name; });
    if (it == tensors.end()) bad("metadata names a tensor the file does not hold");
    const json j = parse_json_bounded(path, value, "block tensor metadata");
    if (!j.is_object() || !j.contains("dtype") || !j["dtype"].is_string() || !j.contains("shape") ||
        !j["shape"].is_array() || j["shape"].empty())
      bad("metadata must be {\"dtype\": name, \"shape\": [dims]}");
    const auto dtype = parse_dtype(j["dtype"].get<std::string>());
    if (!dtype || !is_quantized(*dtype)) bad("\"" + j["dtype"].get<std::string>() + "\" is not a block format");
    Shape shape;
    std::vector<uint64_t> dims;
    for (const auto& d : j["shape"]) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t(1) << 40)) bad("shape entries must be integers below 2^40");
      dims.push_back(d.get<uint64_t>());
      shape.push_back(int64_t(dims.back()));
    }
    if (!shape_fits_int64(dims)) bad("shape " + j["shape"].dump() + " is too large");
    const int64_t cols = shape.back(), rows = cols == 0 ? 0 : shape_numel(shape) / cols;
    if (cols % dtype_info(*dtype).block_elems != 0)
      bad(fmt::format("rows of {} elements do not split into {}'s blocks", cols, dtype_name(*dtype)));
    const Tensor& raw = it->tensor;
    const auto rb = int64_t(row_bytes(*dtype, cols));
    if (raw.dtype() != DType::U8 || raw.rank() != 2 || raw.dim(0) != rows || raw.dim(1) != rb)
      bad(fmt::format("stored as {} but {}{} needs u8[{}, {}]", raw.describe(), dtype_name(*dtype), j["shape"].dump(),
                      rows, rb));
    it->tensor = Tensor::over(raw.storage(), 0, *dtype, shape);
  }
}

}  // namespace

std::optional<std::string_view> safetensors_dtype_name(DType t) {
  for (const auto& s : kSpellings)
    if (s.dtype == t) return s.name;
  return std::nullopt;
}

std::optional<DType> parse_safetensors_dtype(std::string_view name) {
  for (const auto& s : kSpellings)
    if (s.name == name) return s.dtype;
  return std::nullopt;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.file_ = MappedFile::open(path);
  ByteReader in(f.file_->bytes(), path);
  const uint64_t n = in.read<uint64_t>("header length (u64)");
  if (n > in.remaining() || n > kMaxHeaderBytes)
    in.fail(fmt::format("header length {} is impossible for a file of {} bytes (limit {} bytes)", n, in.size(),
                        std::min<uint64_t>(in.remaining(), kMaxHeaderBytes)));
  const std::string_view text = in.read_bytes(n, "JSON header");
  f.data_offset_ = in.pos();
  const uint64_t data_bytes = in.remaining();

  json header = parse_json_bounded(path, text, "safetensors header");
  if (!header.is_object()) in.fail("header is not a JSON object");

  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) in.fail("\"__metadata__\" is not a JSON object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) in.fail("\"__metadata__\" value of \"" + m.key() + "\" is not a string");
        f.metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, it.key(), *it, data_bytes));
  }

  // The data section is exactly the tensors laid end to end: no overlap, no gap,
  // no trailing bytes (a lying offset shows up as one of these).
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t cursor = 0;
  for (const auto& e : entries) {
    if (e.begin < cursor)
      in.fail(fmt::format("tensor \"{}\" at [{}, {}) overlaps the previous tensor ending at {}", e.name, e.begin,
                          e.end, cursor));
    if (e.begin > cursor)
      in.fail(fmt::format("gap in the data section: bytes [{}, {}) before tensor \"{}\" belong to no tensor", cursor,
                          e.begin, e.name));
    cursor = e.end;
  }
  if (cursor != data_bytes)
    in.fail(fmt::format("the tensors cover {} bytes but the data section holds {}", cursor, data_bytes));

  for (const auto& e : entries) {
    auto storage = Storage::mapped(f.file_, f.data_offset_ + e.begin, e.end - e.begin);
    f.tensors_.push_back({e.name, Tensor::over(std::move(storage), 0, e.dtype, e.shape)});
  }
  apply_block_metadata(path, f.metadata_, f.tensors_);
  return f;
}

bool SafetensorsFile::contains(std::string_view name) const {
  return std::any_of(tensors_.begin(), tensors_.end(), [&](const NamedTensor& t) { return t.name == name; });
}

const Tensor& SafetensorsFile::tensor(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return t.tensor;
  fail("{}: no tensor named \"{}\"", path(), name);
}

// ---- writing ---------------------------------------------------------------

namespace {

void write_all(int fd, const void* data, size_t n, const std::string& tmp) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("{}: write failed: {}", tmp, std::strerror(errno));
    p += w;
    n -= size_t(w);
  }
}

}  // namespace

void write_safetensors(const std::string& path, const TensorList& tensors, const SafetensorsMetadata& metadata) {
  // Build the header first: every check that can fail happens before any file exists.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  SafetensorsMetadata meta = metadata;
  for (const auto& [name, t] : tensors)
    if (t.defined() && is_quantized(t.dtype()))
      meta[std::string(kBlockPrefix) + name] = json{{"dtype", std::string(dtype_name(t.dtype()))}, {"shape", t.shape()}}.dump();
  if (!meta.empty()) header["__metadata__"] = meta;
  std::vector<Tensor> host;
  std::set<std::string_view> names;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    ZEROTH_CHECK(t.defined(), "{}: tensor \"{}\" is undefined", path, name);
    ZEROTH_CHECK(name != "__metadata__", "{}: \"__metadata__\" cannot name a tensor", path);
    ZEROTH_CHECK(names.insert(name).second, "{}: two tensors are named \"{}\"", path, name);
    const bool block = is_quantized(t.dtype());
    const auto dt = block ? std::optional<std::string_view>("U8") : safetensors_dtype_name(t.dtype());
    ZEROTH_CHECK(dt.has_value(), "{}: tensor \"{}\" is {}, which safetensors cannot hold", path, name,
                 dtype_name(t.dtype()));
    host.push_back(t.to(Device::CPU).contiguous());
    const uint64_t bytes = host.back().nbytes();
    const Shape shape = block ? Shape{t.rows(), int64_t(t.row_bytes())} : t.shape();
    header[name] = {{"dtype", std::string(*dt)}, {"shape", shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data section starts 8-byte aligned
  const uint64_t n = text.size();

  const std::filesystem::path target(path);
  const std::filesystem::path dir = target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  const std::string tmp = (dir / fmt::format(".{}.tmp-{}", target.filename().string(), ::getpid())).string();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("{}: cannot create temporary file {}: {}", path, tmp, std::strerror(errno));
  try {
    write_all(fd, &n, 8, tmp);
    write_all(fd, text.data(), text.size(), tmp);
    for (const auto& t : host) write_all(fd, t.raw(), t.nbytes(), tmp);
    if (::fsync(fd) != 0) fail("{}: fsync failed: {}", tmp, std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail("{}: close failed: {}", tmp, std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    fail("{}: cannot rename {} over it: {}", path, tmp, std::strerror(e));
  }
  // Make the rename itself durable.
  if (const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace zeroth
