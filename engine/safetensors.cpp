#include "engine/safetensors.h"

#include "engine/atomic_file.h"
#include "engine/error.h"

#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors elements are little-endian and are copied as they are"
#endif

namespace ffr {

namespace {

// The reference implementation's limit; a longer header is refused before anything is read.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// ---- dtypes ----

struct DTypeSpelling {
  const char* name;
  DType dtype;
  int rank;  // position in the reference's Dtype enum: higher ranks go first in the data buffer
};

constexpr DTypeSpelling kDTypes[] = {
    {"I64", DType::Int64, 13}, {"F64", DType::Float64, 12}, {"F32", DType::Float32, 11},
    {"I32", DType::Int32, 9},  {"BF16", DType::BFloat16, 8},
};

// Valid safetensors dtypes that no ffr DType can hold.
constexpr const char* kUnsupportedDTypes[] = {"BOOL",    "U8",      "I8",  "F8_E5M2", "F8_E4M3",
                                              "F8_E8M0", "F4",      "I16", "U16",     "F16",
                                              "U32",     "U64",     "C64", "F6_E2M3", "F6_E3M2"};

const DTypeSpelling& spelling_of(DType dtype) {
  for (const DTypeSpelling& s : kDTypes) {
    if (s.dtype == dtype) return s;
  }
  FFR_FAIL("no safetensors spelling for dtype ", dtype_name(dtype));
}

// Names and values from a file may be long or hold control characters: messages show a prefix.
std::string brief(const std::string& text) {
  constexpr size_t kMax = 80;
  return text.size() <= kMax ? text : text.substr(0, kMax) + "...";
}
std::string in_quotes(const std::string& text) { return "'" + brief(text) + "'"; }

std::string byte_range(uint64_t begin, uint64_t end) { return detail::concat("[", begin, ", ", end, "]"); }

[[noreturn]] void refuse(const std::string& file, const std::string& problem) {
  throw InputError(file + ": not a valid safetensors file: " + problem);
}

// ---- the header, as the file states it ----

struct HeaderEntry {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  std::vector<uint64_t> offsets;
  bool has_dtype = false, has_shape = false, has_offsets = false;
};

struct Header {
  std::map<std::string, std::string> metadata;
  std::vector<HeaderEntry> entries;
};

// A SAX handler for nlohmann::json::sax_parse that accepts exactly the safetensors header
// grammar. Streaming keeps memory proportional to the header (no DOM), sees duplicate keys
// (a DOM silently keeps one), and refuses nesting beyond the grammar's three levels at once.
class HeaderReader {
 public:
  explicit HeaderReader(const std::string& file) : file_(file) {}

  Header take() { return std::move(header_); }

  bool start_object(size_t) {
    if (in_ == In::Nothing) {
      in_ = In::Root;
    } else if (in_ == In::Root && key_ == "__metadata__") {
      in_ = In::Metadata;
    } else if (in_ == In::Root) {
      header_.entries.emplace_back();
      header_.entries.back().name = key_;
      in_ = In::Entry;
    } else {
      wrong_type("an object");
    }
    return true;
  }

  bool key(std::string& key) {
    if (in_ == In::Root) {
      if (!names_.insert(key).second) {
        refuse(file_, key == "__metadata__" ? "__metadata__ appears twice"
                                            : "tensor name " + in_quotes(key) + " appears twice in the header");
      }
      key_ = key;
    } else if (in_ == In::Metadata) {
      if (header_.metadata.count(key) != 0) refuse(file_, "__metadata__ key " + in_quotes(key) + " appears twice");
      key_ = key;
    } else {  // In::Entry
      HeaderEntry& entry = header_.entries.back();
      bool* seen = key == "dtype" ? &entry.has_dtype
                   : key == "shape" ? &entry.has_shape
                   : key == "data_offsets" ? &entry.has_offsets
                   : nullptr;
      if (seen == nullptr) {
        refuse(file_, "tensor " + in_quotes(entry.name) + " has an unexpected field " + in_quotes(key) +
                          " (expected dtype, shape, data_offsets)");
      }
      if (*seen) refuse(file_, "tensor " + in_quotes(entry.name) + " has field " + in_quotes(key) + " twice");
      *seen = true;
      field_ = key;
    }
    return true;
  }

  bool end_object() {
    if (in_ == In::Entry) {
      const HeaderEntry& entry = header_.entries.back();
      for (auto [present, field] : {std::pair{entry.has_dtype, "dtype"}, std::pair{entry.has_shape, "shape"},
                                    std::pair{entry.has_offsets, "data_offsets"}}) {
        if (!present) refuse(file_, "tensor " + in_quotes(entry.name) + " has no " + field);
      }
    }
    in_ = in_ == In::Root ? In::Done : In::Root;  // an entry or __metadata__ ends back in the root
    return true;
  }

  bool start_array(size_t) {
    if (in_ == In::Entry && field_ == "shape") {
      in_ = In::Shape;
    } else if (in_ == In::Entry && field_ == "data_offsets") {
      in_ = In::Offsets;
    } else {
      wrong_type("an array");
    }
    return true;
  }

  bool end_array() {
    if (in_ == In::Offsets && header_.entries.back().offsets.size() != 2) {
      refuse(file_, "data_offsets of tensor " + in_quotes(header_.entries.back().name) + " must be [begin, end]");
    }
    in_ = In::Entry;
    return true;
  }

  bool number_unsigned(uint64_t value) {
    HeaderEntry* entry = header_.entries.empty() ? nullptr : &header_.entries.back();
    if (in_ == In::Shape) {
      if (value > uint64_t(std::numeric_limits<int64_t>::max())) {
        refuse(file_, detail::concat("shape of tensor ", in_quotes(entry->name), " has a dimension ", value,
                                     " too large to index"));
      }
      entry->shape.push_back(value);
    } else if (in_ == In::Offsets) {
      if (entry->offsets.size() == 2) {
        refuse(file_, "data_offsets of tensor " + in_quotes(entry->name) + " must be [begin, end]");
      }
      entry->offsets.push_back(value);
    } else {
      wrong_type("a number");
    }
    return true;
  }

  bool number_integer(int64_t value) {
    if (value >= 0) return number_unsigned(uint64_t(value));  // "-0"
    if (in_ == In::Shape || in_ == In::Offsets) {
      refuse(file_, detail::concat(in_ == In::Shape ? "shape" : "data_offsets", " of tensor ",
                                   in_quotes(header_.entries.back().name), " holds a negative number ", value));
    }
    wrong_type("a number");
  }

  bool number_float(double, const std::string& text) { wrong_type("the number " + text); }

  bool string(std::string& value) {
    if (in_ == In::Entry && field_ == "dtype") {
      header_.entries.back().dtype = value;
    } else if (in_ == In::Metadata) {
      header_.metadata.emplace(key_, value);
    } else {
      wrong_type("a string");
    }
    return true;
  }

  bool null() {
    if (in_ == In::Root && key_ == "__metadata__") return true;  // the reference reads null as no metadata
    wrong_type("null");
  }

  bool boolean(bool) { wrong_type("a boolean"); }
  bool binary(nlohmann::json::binary_t&) { wrong_type("binary data"); }

  bool parse_error(size_t, const std::string&, const nlohmann::detail::exception& error) {
    // what() reads "[json.exception.parse_error.101] parse error at line 1, column 9: ...".
    std::string what = error.what();
    const size_t tag_end = what.find("] ");
    if (tag_end != std::string::npos) what = what.substr(tag_end + 2);
    refuse(file_, "the header is not valid JSON: " + what);
  }

 private:
  enum class In { Nothing, Root, Metadata, Entry, Shape, Offsets, Done };

  // A value of the wrong kind where the grammar expects something else.
  [[noreturn]] void wrong_type(const std::string& found) {
    switch (in_) {
      case In::Nothing:
        refuse(file_, "the header must be a JSON object, not " + found);
      case In::Root:
        if (key_ == "__metadata__") refuse(file_, "__metadata__ must be an object of strings, not " + found);
        refuse(file_, "entry " + in_quotes(key_) + " must be an object {dtype, shape, data_offsets}, not " + found);
      case In::Metadata:
        refuse(file_, "__metadata__ value of " + in_quotes(key_) + " must be a string, not " + found);
      case In::Entry:
        break;
      case In::Shape:
        refuse(file_, "shape of tensor " + in_quotes(header_.entries.back().name) +
                          " must hold non-negative integers, not " + found);
      case In::Offsets:
        refuse(file_, "data_offsets of tensor " + in_quotes(header_.entries.back().name) +
                          " must hold non-negative integers, not " + found);
      case In::Done:
        break;
    }
    const std::string& name = header_.entries.empty() ? key_ : header_.entries.back().name;
    const char* expected = field_ == "dtype"   ? "a string"
                           : field_ == "shape" ? "an array of non-negative integers"
                                               : "an array [begin, end]";
    refuse(file_, field_ + " of tensor " + in_quotes(name) + " must be " + expected + ", not " + found);
  }

  const std::string& file_;
  Header header_;
  In in_ = In::Nothing;
  std::string key_;    // the last key in the root (an entry's name) or in __metadata__
  std::string field_;  // the last key inside an entry
  std::unordered_set<std::string> names_;
};

// ---- the header, checked: every tensor's place in the data buffer ----

struct TensorPlace {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin = 0;  // in the data buffer
  uint64_t end = 0;
};

struct Layout {
  std::map<std::string, std::string> metadata;
  std::vector<TensorPlace> tensors;  // header order
};

DType dtype_from_name(const std::string& name, const std::string& tensor, const std::string& file) {
  for (const DTypeSpelling& s : kDTypes) {
    if (name == s.name) return s.dtype;
  }
  const std::string supported = "F32, F64, BF16, I32, I64";
  for (const char* unsupported : kUnsupportedDTypes) {
    if (name == unsupported) {
      refuse(file, "tensor " + in_quotes(tensor) + " has dtype " + name +
                       ", which ffr-engine cannot hold (it reads " + supported + ")");
    }
  }
  refuse(file, "tensor " + in_quotes(tensor) + " has unknown dtype " + in_quotes(name) + " (ffr-engine reads " +
                   supported + ")");
}

TensorPlace place_tensor(const HeaderEntry& entry, uint64_t data_bytes, const std::string& file) {
  TensorPlace place;
  place.name = entry.name;
  place.dtype = dtype_from_name(entry.dtype, entry.name, file);
  // Element and byte counts in checked arithmetic: a hostile shape must not wrap around to a
  // size that happens to match its offsets.
  uint64_t numel = 1;
  for (uint64_t dim : entry.shape) {
    place.shape.push_back(int64_t(dim));
    if (__builtin_mul_overflow(numel, dim, &numel) || numel > uint64_t(std::numeric_limits<int64_t>::max())) {
      const std::string shape = shape_str(Shape(entry.shape.begin(), entry.shape.end()));
      refuse(file, "shape " + brief(shape) + " of tensor " + in_quotes(entry.name) + " has too many elements to count");
    }
  }
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, uint64_t(dtype_size(place.dtype)), &nbytes)) {
    refuse(file, "tensor " + in_quotes(entry.name) + " has too many bytes to count");
  }
  place.begin = entry.offsets[0];
  place.end = entry.offsets[1];
  const std::string offsets = byte_range(place.begin, place.end);
  if (place.begin > place.end) {
    refuse(file, "data_offsets " + offsets + " of tensor " + in_quotes(entry.name) + " begin after they end");
  }
  if (place.end > data_bytes) {
    refuse(file, detail::concat("data_offsets ", offsets, " of tensor ", in_quotes(entry.name),
                                " go past the end of the data buffer (", data_bytes, " bytes)"));
  }
  if (place.end - place.begin != nbytes) {
    refuse(file, detail::concat("tensor ", in_quotes(entry.name), " is ", dtype_name(place.dtype),
                                brief(shape_str(place.shape)), " (", nbytes, " bytes) but its data_offsets ",
                                offsets, " hold ", place.end - place.begin, " bytes"));
  }
  return place;
}

// Parses and checks the header: each tensor's dtype, shape and bytes agree, and together the
// tensors tile the data buffer [0, data_bytes) exactly, with no overlap and no gap (the
// reference implementation's rule; a gap would hide bytes no reader looks at).
Layout read_layout(const uint8_t* header, size_t header_bytes, uint64_t data_bytes, const std::string& file) {
  HeaderReader reader(file);
  nlohmann::json::sax_parse(header, header + header_bytes, &reader);
  Header parsed = reader.take();

  Layout layout;
  layout.metadata = std::move(parsed.metadata);
  for (const HeaderEntry& entry : parsed.entries) layout.tensors.push_back(place_tensor(entry, data_bytes, file));

  std::vector<const TensorPlace*> by_offset;
  for (const TensorPlace& place : layout.tensors) by_offset.push_back(&place);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorPlace* a, const TensorPlace* b) {
    return std::tie(a->begin, a->end) < std::tie(b->begin, b->end);
  });
  uint64_t covered = 0;
  const TensorPlace* previous = nullptr;
  for (const TensorPlace* place : by_offset) {
    if (place->begin < covered) {
      refuse(file, "tensor " + in_quotes(place->name) + " at bytes " + byte_range(place->begin, place->end) +
                       " overlaps tensor " + in_quotes(previous->name) + " at bytes " +
                       byte_range(previous->begin, previous->end));
    }
    if (place->begin > covered) {
      refuse(file, detail::concat("a gap of ", place->begin - covered, " bytes at data offset ", covered,
                                  ", before tensor ", in_quotes(place->name),
                                  ": every byte of the data buffer must belong to a tensor"));
    }
    covered = place->end;
    previous = place;
  }
  if (covered != data_bytes) {
    refuse(file, detail::concat("the last ", data_bytes - covered, " bytes of the data buffer (", data_bytes,
                                " bytes) belong to no tensor: every byte must belong to a tensor"));
  }
  return layout;
}

uint64_t read_le64(const uint8_t* bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

// Checks the header length against the limit and the file size; returns it.
uint64_t check_header_length(const uint8_t* first8, uint64_t file_bytes, const std::string& file) {
  const uint64_t header_bytes = read_le64(first8);
  if (header_bytes > kMaxHeaderBytes) {
    refuse(file, detail::concat("header length ", header_bytes, " is over the 100 MB limit"));
  }
  if (header_bytes > file_bytes - 8) {
    refuse(file, detail::concat("header length ", header_bytes, " goes past the end of the file (", file_bytes,
                                " bytes)"));
  }
  return header_bytes;
}

[[noreturn]] void refuse_short_file(uint64_t file_bytes, const std::string& file) {
  refuse(file, file_bytes == 0 ? std::string("the file is empty")
                               : detail::concat("the file has ", file_bytes,
                                                " bytes, fewer than the 8 that give the header length"));
}

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};

}  // namespace

const char* safetensors_dtype_name(DType dtype) { return spelling_of(dtype).name; }

// ---- writing ----

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::unordered_set<std::string> names;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") {
      throw InputError(path + ": cannot save a tensor named __metadata__ (safetensors keeps that name for metadata)");
    }
    if (!names.insert(name).second) throw InputError(path + ": tensor name " + in_quotes(name) + " given twice");
    if (!tensor.defined()) throw InputError(path + ": tensor " + in_quotes(name) + " is undefined");
  }

  // Larger elements first (stable), so each tensor starts at a multiple of its element size.
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return spelling_of(tensors[a].second.dtype()).rank > spelling_of(tensors[b].second.dtype()).rank;
  });
  std::vector<uint64_t> begin(tensors.size());
  uint64_t offset = 0;
  for (size_t i : order) {
    begin[i] = offset;
    offset += tensors[i].second.nbytes();
  }

  // Compact JSON with keys in insertion order, as serde_json writes the reference's header.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& tensor = tensors[i].second;
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = safetensors_dtype_name(tensor.dtype());
    entry["shape"] = tensor.shape();
    entry["data_offsets"] = {begin[i], begin[i] + tensor.nbytes()};
    header[tensors[i].first] = std::move(entry);
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::type_error& error) {
    throw InputError(path + ": tensor names and metadata must be valid UTF-8 (" + error.what() + ")");
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // the data buffer starts 8-byte aligned

  write_file_atomically(path, [&](std::FILE* file) {
    uint8_t length[8];
    for (int i = 0; i < 8; ++i) length[i] = uint8_t(uint64_t(text.size()) >> (8 * i));
    std::fwrite(length, 1, sizeof length, file);
    std::fwrite(text.data(), 1, text.size(), file);
    for (size_t i : order) {
      const Tensor host = tensors[i].second.cpu();  // one host copy at a time
      if (host.nbytes() > 0) std::fwrite(host.raw_data(), 1, host.nbytes(), file);
    }
  });
}

// ---- reading ----

SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& name_for_errors,
                                  Device device) {
  if (size < 8) refuse_short_file(size, name_for_errors);
  const uint64_t header_bytes = check_header_length(data, size, name_for_errors);
  const uint8_t* buffer = data + 8 + header_bytes;
  Layout layout = read_layout(data + 8, header_bytes, size - 8 - header_bytes, name_for_errors);

  SafetensorsFile out;
  out.metadata = std::move(layout.metadata);
  for (const TensorPlace& place : layout.tensors) {
    Tensor host = Tensor::empty(place.shape, place.dtype);
    if (place.end > place.begin) std::memcpy(host.raw_data(), buffer + place.begin, place.end - place.begin);
    out.tensors.emplace_back(place.name, host.to(device));
  }
  return out;
}

SafetensorsFile load_safetensors(const std::string& path, Device device) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) throw InputError(path + ": cannot open: " + std::strerror(errno));
  struct stat info {};
  if (::fstat(::fileno(file.get()), &info) != 0) throw InputError(path + ": cannot stat: " + std::strerror(errno));
  if (S_ISDIR(info.st_mode)) throw InputError(path + ": is a folder, expected a safetensors file");
  const uint64_t file_bytes = uint64_t(info.st_size);

  // Reads exactly `bytes` at `offset`, or says which part of the file could not be read.
  auto read_at = [&](void* into, uint64_t offset, uint64_t bytes, const std::string& what) {
    if (bytes == 0) return;
    if (::fseeko(file.get(), off_t(offset), SEEK_SET) != 0 || std::fread(into, 1, bytes, file.get()) != bytes) {
      const std::string why = std::ferror(file.get()) ? std::strerror(errno)
                                                      : "the file ended early (was it changed while being read?)";
      throw InputError(detail::concat(path, ": cannot read ", what, " (", bytes, " bytes at offset ", offset,
                                      "): ", why));
    }
  };

  if (file_bytes < 8) refuse_short_file(file_bytes, path);
  uint8_t first8[8];
  read_at(first8, 0, 8, "the header length");
  const uint64_t header_bytes = check_header_length(first8, file_bytes, path);
  std::vector<uint8_t> header(header_bytes);
  read_at(header.data(), 8, header_bytes, "the header");
  const Layout layout = read_layout(header.data(), header.size(), file_bytes - 8 - header_bytes, path);

  // Tensor bytes go from the file straight into their host tensors, in file order.
  std::vector<size_t> by_offset(layout.tensors.size());
  std::iota(by_offset.begin(), by_offset.end(), size_t(0));
  std::sort(by_offset.begin(), by_offset.end(),
            [&](size_t a, size_t b) { return layout.tensors[a].begin < layout.tensors[b].begin; });
  std::vector<Tensor> loaded(layout.tensors.size());
  for (size_t i : by_offset) {
    const TensorPlace& place = layout.tensors[i];
    Tensor host = Tensor::empty(place.shape, place.dtype);
    read_at(host.raw_data(), 8 + header_bytes + place.begin, place.end - place.begin,
            "tensor " + in_quotes(place.name));
    loaded[i] = host.to(device);
  }

  SafetensorsFile out;
  out.metadata = layout.metadata;
  for (size_t i = 0; i < loaded.size(); ++i) out.tensors.emplace_back(layout.tensors[i].name, std::move(loaded[i]));
  return out;
}

// ---- checking a loaded set against a model ----

void check_tensor_set(const NamedTensors& loaded, const ExpectedTensors& expected, const std::string& file) {
  std::unordered_map<std::string, const Tensor*> by_name;
  for (const auto& [name, tensor] : loaded) by_name.emplace(name, &tensor);
  std::unordered_set<std::string> expected_names;

  std::vector<std::string> missing, mismatched, unexpected;
  for (const auto& [name, shape_dtype] : expected) {
    expected_names.insert(name);
    const auto& [shape, dtype] = shape_dtype;
    const auto found = by_name.find(name);
    if (found == by_name.end()) {
      missing.push_back(name);
    } else if (found->second->shape() != shape || found->second->dtype() != dtype) {
      mismatched.push_back(name + " (file " + dtype_name(found->second->dtype()) + shape_str(found->second->shape()) +
                           ", expected " + dtype_name(dtype) + shape_str(shape) + ")");
    }
  }
  for (const auto& [name, tensor] : loaded) {
    if (expected_names.count(name) == 0) unexpected.push_back(name);
  }
  if (missing.empty() && mismatched.empty() && unexpected.empty()) return;

  auto list = [](const std::vector<std::string>& items) {
    std::string out;
    for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
    return out;
  };
  std::string message = file + ": tensors do not match the model:";
  if (!missing.empty()) message += detail::concat(" ", missing.size(), " missing: ", list(missing), ";");
  if (!unexpected.empty()) message += detail::concat(" ", unexpected.size(), " unexpected: ", list(unexpected), ";");
  if (!mismatched.empty()) {
    message += detail::concat(" ", mismatched.size(), " with another shape or dtype: ", list(mismatched), ";");
  }
  message.pop_back();
  throw InputError(message);
}

}  // namespace ffr
