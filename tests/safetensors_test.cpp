#include "engine/safetensors.h"

#include "engine/error.h"
#include "tests/testing.h"

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ffr {
namespace {

namespace fs = std::filesystem;

// ---- bytes built by hand, following the format's description ----

std::string le_bytes(uint64_t value, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) out.push_back(char(uint8_t(value >> (8 * i))));
  return out;
}
std::string f32_bytes(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return le_bytes(bits, 4);
}
std::string file_bytes(const std::string& header, const std::string& data = "") {
  return le_bytes(header.size(), 8) + header + data;
}
std::string padded(std::string header) { return header.append((8 - header.size() % 8) % 8, ' '); }

// One tensor entry of a header, for the malformed-file cases.
std::string entry(const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offsets) {
  return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
}

class Safetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ffr_safetensors_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  static std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  }
  static void write(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
  }

  // Both readers (file and memory) refuse `bytes` with one InputError naming the file and
  // containing `problem`.
  void expect_refused(const std::string& bytes, const std::string& problem) {
    SCOPED_TRACE("expecting: " + problem);
    const std::string file = path("bad.safetensors");
    write(file, bytes);
    try {
      load_safetensors(file);
      ADD_FAILURE() << "load_safetensors accepted a malformed file";
    } catch (const InputError& error) {
      EXPECT_NE(std::string(error.what()).find(file), std::string::npos) << error.what();
      EXPECT_NE(std::string(error.what()).find(problem), std::string::npos) << error.what();
    }
    try {
      parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "memory.safetensors");
      ADD_FAILURE() << "parse_safetensors accepted a malformed file";
    } catch (const InputError& error) {
      EXPECT_NE(std::string(error.what()).find("memory.safetensors"), std::string::npos) << error.what();
      EXPECT_NE(std::string(error.what()).find(problem), std::string::npos) << error.what();
    }
  }

  fs::path dir_;
};

void expect_same_tensors(const NamedTensors& actual, const NamedTensors& expected) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    SCOPED_TRACE(expected[i].first);
    EXPECT_EQ(actual[i].first, expected[i].first);
    const Tensor a = actual[i].second.cpu(), e = expected[i].second.cpu();
    EXPECT_EQ(a.dtype(), e.dtype());
    EXPECT_EQ(a.shape(), e.shape());
    ASSERT_EQ(a.nbytes(), e.nbytes());
    if (a.nbytes() > 0) EXPECT_EQ(std::memcmp(a.raw_data(), e.raw_data(), a.nbytes()), 0);
  }
}

NamedTensors every_dtype() {
  return {
      {"conv.weight", Tensor::from_vector(std::vector<float>{1.5f, -2, 3, 0.25f, 5, -6}, {2, 3})},
      {"scale", Tensor::from_vector(std::vector<float>{1, -2, 0.5f}, {3}, DType::BFloat16)},  // odd byte count
      {"running_mean", Tensor::from_vector(std::vector<double>{0.1, -1e300, 3}, {3})},
      {"labels", Tensor::from_vector(std::vector<int64_t>{1, -7, 3, 2}, {2, 2}, DType::Int32)},
      {"num_batches_tracked", Tensor::from_vector(std::vector<int64_t>{123456789012LL}, {})},  // a scalar
      {"empty", Tensor::zeros({0, 4})},
  };
}

// ---- round trips ----

TEST_F(Safetensors, RoundTripsEveryDtypeAndMetadata) {
  const NamedTensors tensors = every_dtype();
  const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"epoch", "3"}, {"note", "ünï \"quoted\""}};
  save_safetensors(path("model.safetensors"), tensors, metadata);

  const SafetensorsFile loaded = load_safetensors(path("model.safetensors"));
  EXPECT_EQ(loaded.metadata, metadata);
  expect_same_tensors(loaded.tensors, tensors);  // same order as given

  const std::string bytes = read(path("model.safetensors"));
  const SafetensorsFile parsed =
      parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "model.safetensors");
  EXPECT_EQ(parsed.metadata, metadata);
  expect_same_tensors(parsed.tensors, tensors);
}

TEST_F(Safetensors, EveryTensorStartsAlignedToItsElementSize) {
  save_safetensors(path("model.safetensors"), every_dtype());
  const std::string bytes = read(path("model.safetensors"));
  ASSERT_GE(bytes.size(), 8u);
  uint64_t header_bytes = 0;
  for (int i = 7; i >= 0; --i) header_bytes = header_bytes << 8 | uint8_t(bytes[size_t(i)]);
  ASSERT_EQ(header_bytes % 8, 0u);
  const auto header = nlohmann::json::parse(bytes.substr(8, header_bytes));
  for (const auto& [name, tensor] : every_dtype()) {
    const uint64_t begin = header.at(name).at("data_offsets").at(0);
    EXPECT_EQ(begin % dtype_size(tensor.dtype()), 0u) << name;
  }
}

TEST_F(Safetensors, EmptySetRoundTrips) {
  save_safetensors(path("empty.safetensors"), {});
  const SafetensorsFile loaded = load_safetensors(path("empty.safetensors"));
  EXPECT_TRUE(loaded.tensors.empty());
  EXPECT_TRUE(loaded.metadata.empty());
}

// ---- byte-exact compatibility with the reference implementation (safetensors.torch) ----

TEST_F(Safetensors, WritesTheReferenceBytes) {
  // Given in the reference's order (dtype rank I64 > F64 > F32 > I32 > BF16, then name), the file
  // must be exactly what safetensors.torch.save_file writes: header in layout order after
  // __metadata__, compact JSON padded with spaces to 8 bytes, then the raw little-endian data.
  const NamedTensors tensors = {
      {"step", Tensor::from_vector(std::vector<int64_t>{7}, {1})},
      {"attn.0", Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {1, 2, 3})},
      {"bias", Tensor::from_vector(std::vector<float>{0.5f, -1}, {2})},
      {"mask", Tensor::from_vector(std::vector<int64_t>{1, -3}, {2}, DType::Int32)},
      {"scale", Tensor::from_vector(std::vector<float>{1, -2, 0.5f}, {3}, DType::BFloat16)},
  };
  save_safetensors(path("ref.safetensors"), tensors, {{"format", "pt"}});

  const std::string header =
      "{\"__metadata__\":{\"format\":\"pt\"},"
      "\"step\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
      "\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[8,32]},"
      "\"bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[32,40]},"
      "\"mask\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[40,48]},"
      "\"scale\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[48,54]}}";
  std::string data = le_bytes(7, 8);
  for (float v : {0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 0.5f, -1.f}) data += f32_bytes(v);
  data += le_bytes(1, 4) + le_bytes(uint32_t(-3), 4);
  data += le_bytes(0x3F80, 2) + le_bytes(0xC000, 2) + le_bytes(0x3F00, 2);  // bf16 1, -2, 0.5
  ASSERT_EQ(padded(header).size(), 328u);
  EXPECT_EQ(read(path("ref.safetensors")), file_bytes(padded(header), data));
}

TEST_F(Safetensors, MatchesTheReferenceTestVectors) {
  // safetensors' own serialization tests: a 64-byte header needs no padding, a 65-byte one 7 spaces.
  std::string six_floats;
  for (float v : {0.f, 1.f, 2.f, 3.f, 4.f, 5.f}) six_floats += f32_bytes(v);
  const Tensor t = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {1, 2, 3});
  save_safetensors(path("a.safetensors"), {{"attn.0", t}});
  EXPECT_EQ(read(path("a.safetensors")),
            file_bytes("{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}", six_floats));
  save_safetensors(path("b.safetensors"), {{"attn0", t.view_as_shape({1, 1, 2, 3})}});
  EXPECT_EQ(read(path("b.safetensors")),
            file_bytes("{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}       ",
                       six_floats));
  save_safetensors(path("c.safetensors"), {});
  EXPECT_EQ(read(path("c.safetensors")), file_bytes("{}      "));
  save_safetensors(path("d.safetensors"), {}, {{"framework", "pt"}});
  EXPECT_EQ(read(path("d.safetensors")), file_bytes("{\"__metadata__\":{\"framework\":\"pt\"}}     "));
}

TEST_F(Safetensors, KeepsGivenOrderInHeaderAndPlacesLargeElementsFirst) {
  const NamedTensors tensors = {
      {"b", Tensor::from_vector(std::vector<float>{1, 2, 3}, {3}, DType::BFloat16)},
      {"a", Tensor::from_vector(std::vector<float>{4}, {1})},
  };
  save_safetensors(path("order.safetensors"), tensors);
  const std::string header =
      "{\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[4,10]},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
  EXPECT_EQ(read(path("order.safetensors")),
            file_bytes(padded(header), f32_bytes(4) + le_bytes(0x3F80, 2) + le_bytes(0x4000, 2) + le_bytes(0x4040, 2)));
  expect_same_tensors(load_safetensors(path("order.safetensors")).tensors, tensors);
}

TEST_F(Safetensors, ReadsAHandBuiltFileInHeaderOrder) {
  // Header keys out of offset order, no padding, "__metadata__" last: all allowed by the format.
  const std::string header = "{" + entry("z", "F32", "[2]", "[4,12]") + "," + entry("y", "I32", "[1]", "[0,4]") +
                             ",\"__metadata__\":{\"k\":\"v\"}}";
  const std::string bytes = file_bytes(header, le_bytes(42, 4) + f32_bytes(1.5f) + f32_bytes(-2));
  write(path("hand.safetensors"), bytes);
  const SafetensorsFile loaded = load_safetensors(path("hand.safetensors"));
  ASSERT_EQ(loaded.tensors.size(), 2u);
  EXPECT_EQ(loaded.tensors[0].first, "z");
  EXPECT_EQ(loaded.tensors[0].second.to_vector<float>(), (std::vector<float>{1.5f, -2}));
  EXPECT_EQ(loaded.tensors[1].first, "y");
  EXPECT_EQ(loaded.tensors[1].second.dtype(), DType::Int32);
  EXPECT_EQ(loaded.tensors[1].second.to_vector<int64_t>(), (std::vector<int64_t>{42}));
  EXPECT_EQ(loaded.metadata, (std::map<std::string, std::string>{{"k", "v"}}));
}

// ---- malformed files: one InputError naming the file and the problem ----

TEST_F(Safetensors, RefusesBadHeaderLengths) {
  expect_refused("", "the file is empty");
  expect_refused(std::string("\x05\0\0\0", 4), "the file has 4 bytes, fewer than the 8");
  expect_refused(le_bytes(1000, 8) + "{}", "header length 1000 goes past the end of the file (10 bytes)");
  expect_refused(le_bytes(200'000'000, 8) + "{}", "over the 100 MB limit");
  expect_refused(le_bytes(~uint64_t(0), 8) + "{}", "over the 100 MB limit");
}

TEST_F(Safetensors, RefusesHeadersThatAreNotTheGrammar) {
  expect_refused(file_bytes("{\"a\":"), "the header is not valid JSON");
  expect_refused(file_bytes(""), "the header is not valid JSON");
  expect_refused(file_bytes("{} trailing"), "the header is not valid JSON");
  expect_refused(file_bytes("{\"\xff\":{}}"), "the header is not valid JSON");  // not UTF-8
  expect_refused(file_bytes("[1,2]"), "the header must be a JSON object, not an array");
  expect_refused(file_bytes("{\"a\":5}"), "entry 'a' must be an object");
  expect_refused(file_bytes("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd"), "tensor 'a' has no dtype");
  expect_refused(file_bytes("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", "abcd"), "tensor 'a' has no shape");
  expect_refused(file_bytes("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", "abcd"), "tensor 'a' has no data_offsets");
  expect_refused(file_bytes("{\"a\":{\"dtype\":3,\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd"),
                 "dtype of tensor 'a' must be a string, not a number");
  expect_refused(file_bytes("{\"a\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", "abcd"),
                 "shape of tensor 'a' must be an array of non-negative integers, not a string");
  expect_refused(file_bytes("{" + entry("a", "F32", "[1.5]", "[0,4]") + "}", "abcd"),
                 "shape of tensor 'a' must hold non-negative integers, not the number 1.5");
  expect_refused(file_bytes("{" + entry("a", "F32", "[[1]]", "[0,4]") + "}", "abcd"),
                 "shape of tensor 'a' must hold non-negative integers, not an array");
  expect_refused(file_bytes("{" + entry("a", "F32", "[1]", "[0]") + "}", "abcd"),
                 "data_offsets of tensor 'a' must be [begin, end]");
  expect_refused(file_bytes("{" + entry("a", "F32", "[1]", "[0,4,4]") + "}", "abcd"),
                 "data_offsets of tensor 'a' must be [begin, end]");
  expect_refused(file_bytes("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", "abcd"),
                 "tensor 'a' has an unexpected field 'extra'");
}

TEST_F(Safetensors, RefusesBadDtypesAndShapes) {
  expect_refused(file_bytes("{" + entry("a", "F17", "[1]", "[0,4]") + "}", "abcd"), "tensor 'a' has unknown dtype 'F17'");
  expect_refused(file_bytes("{" + entry("h", "F16", "[2]", "[0,4]") + "}", "abcd"),
                 "tensor 'h' has dtype F16, which ffr-engine cannot hold");
  expect_refused(file_bytes("{" + entry("a", "F32", "[-2]", "[0,4]") + "}", "abcd"),
                 "shape of tensor 'a' holds a negative number -2");
  expect_refused(file_bytes("{" + entry("a", "F32", "[4294967296,4294967296]", "[0,4]") + "}", "abcd"),
                 "of tensor 'a' has too many elements to count");
  expect_refused(file_bytes("{" + entry("a", "F32", "[4611686018427387904,2]", "[0,4]") + "}", "abcd"),
                 "of tensor 'a' has too many elements to count");
  expect_refused(file_bytes("{" + entry("a", "F64", "[2305843009213693952]", "[0,4]") + "}", "abcd"),
                 "tensor 'a' has too many bytes to count");
  expect_refused(file_bytes("{" + entry("a", "F32", "[9223372036854775808]", "[0,4]") + "}", "abcd"),
                 "has a dimension 9223372036854775808 too large to index");
  expect_refused(file_bytes("{" + entry("a", "F32", "[2,2]", "[0,12]") + "}", std::string(12, 'x')),
                 "tensor 'a' is float32[2,2] (16 bytes) but its data_offsets [0, 12] hold 12 bytes");
}

TEST_F(Safetensors, RefusesOffsetsThatDoNotTileTheBuffer) {
  expect_refused(file_bytes("{" + entry("a", "F32", "[4]", "[0,16]") + "}", std::string(8, 'x')),
                 "data_offsets [0, 16] of tensor 'a' go past the end of the data buffer (8 bytes)");
  expect_refused(file_bytes("{" + entry("a", "F32", "[0]", "[8,0]") + "}", std::string(8, 'x')),
                 "data_offsets [8, 0] of tensor 'a' begin after they end");
  expect_refused(
      file_bytes("{" + entry("a", "F32", "[2]", "[0,8]") + "," + entry("b", "F32", "[2]", "[4,12]") + "}",
                 std::string(12, 'x')),
      "tensor 'b' at bytes [4, 12] overlaps tensor 'a' at bytes [0, 8]");
  expect_refused(
      file_bytes("{" + entry("a", "F32", "[1]", "[0,4]") + "," + entry("b", "F32", "[1]", "[8,12]") + "}",
                 std::string(12, 'x')),
      "a gap of 4 bytes at data offset 4, before tensor 'b'");
  expect_refused(file_bytes("{" + entry("a", "F32", "[1]", "[0,4]") + "}", std::string(8, 'x')),
                 "the last 4 bytes of the data buffer (8 bytes) belong to no tensor");
  expect_refused(file_bytes("{}", "x"), "the last 1 bytes of the data buffer (1 bytes) belong to no tensor");

  // A real file cut short loses the end of its data buffer.
  save_safetensors(path("good.safetensors"), every_dtype());
  const std::string good = read(path("good.safetensors"));
  expect_refused(good.substr(0, good.size() - 3), "go past the end of the data buffer");
}

TEST_F(Safetensors, RefusesDuplicatesAndBadMetadata) {
  expect_refused(
      file_bytes("{" + entry("a", "F32", "[1]", "[0,4]") + "," + entry("a", "F32", "[1]", "[4,8]") + "}",
                 std::string(8, 'x')),
      "tensor name 'a' appears twice in the header");
  expect_refused(file_bytes("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", "abcd"),
                 "tensor 'a' has field 'dtype' twice");
  expect_refused(file_bytes("{\"__metadata__\":{},\"__metadata__\":{}}"), "__metadata__ appears twice");
  expect_refused(file_bytes("{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}"), "__metadata__ key 'k' appears twice");
  expect_refused(file_bytes("{\"__metadata__\":{\"epoch\":3}}"),
                 "__metadata__ value of 'epoch' must be a string, not a number");
  expect_refused(file_bytes("{\"__metadata__\":{\"k\":{}}}"), "__metadata__ value of 'k' must be a string, not an object");
  expect_refused(file_bytes("{\"__metadata__\":[\"a\"]}"), "__metadata__ must be an object of strings, not an array");
}

TEST_F(Safetensors, LongNamesAreShortenedInMessages) {
  const std::string name(5000, 'n');
  try {
    const std::string bytes = file_bytes("{" + entry(name, "F17", "[1]", "[0,4]") + "}", "abcd");
    parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "long.safetensors");
    FAIL() << "expected an InputError";
  } catch (const InputError& error) {
    EXPECT_LT(std::string(error.what()).size(), 400u) << error.what();
  }
}

TEST_F(Safetensors, MissingOrUnreadableFileIsAnInputError) {
  EXPECT_THROW(load_safetensors(path("absent.safetensors")), InputError);
  try {
    load_safetensors(dir_.string());
    FAIL() << "a folder was read as a file";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("is a folder"), std::string::npos) << error.what();
  }
}

// ---- writing errors ----

TEST_F(Safetensors, RefusesToSaveAmbiguousNames) {
  const Tensor t = Tensor::zeros({2});
  EXPECT_THROW(save_safetensors(path("x.safetensors"), {{"a", t}, {"a", t}}), InputError);
  EXPECT_THROW(save_safetensors(path("x.safetensors"), {{"__metadata__", t}}), InputError);
  EXPECT_THROW(save_safetensors(path("x.safetensors"), {{"a", Tensor()}}), InputError);
  EXPECT_THROW(save_safetensors(path("x.safetensors"), {{"bad \xff name", t}}), InputError);
  EXPECT_FALSE(fs::exists(path("x.safetensors")));
  EXPECT_THROW(save_safetensors(path("no_folder/x.safetensors"), {{"a", t}}), Error);
}

// ---- checking a loaded set against a model ----

TEST_F(Safetensors, CheckTensorSetListsEveryDifference) {
  const NamedTensors loaded = {{"fc.weight", Tensor::zeros({10, 4})},
                               {"fc.bias", Tensor::zeros({10})},
                               {"extra.a", Tensor::zeros({1})},
                               {"bn.num_batches_tracked", Tensor::zeros({}, DType::Int64)}};
  check_tensor_set(loaded,
                   {{"fc.weight", {{10, 4}, DType::Float32}},
                    {"fc.bias", {{10}, DType::Float32}},
                    {"extra.a", {{1}, DType::Float32}},
                    {"bn.num_batches_tracked", {{}, DType::Int64}}},
                   "ok.safetensors");  // no throw

  try {
    check_tensor_set(loaded,
                     {{"fc.weight", {{10, 8}, DType::Float32}},
                      {"fc.bias", {{10}, DType::BFloat16}},
                      {"conv1.weight", {{64, 3, 7, 7}, DType::Float32}},
                      {"bn.num_batches_tracked", {{}, DType::Int64}}},
                     "ckpt.safetensors");
    FAIL() << "expected an InputError";
  } catch (const InputError& error) {
    const std::string message = error.what();
    for (const char* part :
         {"ckpt.safetensors: tensors do not match the model", "1 missing: conv1.weight", "1 unexpected: extra.a",
          "2 with another shape or dtype: fc.weight (file float32[10,4], expected float32[10,8]), "
          "fc.bias (file float32[10], expected bfloat16[10])"}) {
      EXPECT_NE(message.find(part), std::string::npos) << "missing '" << part << "' in: " << message;
    }
  }
}

// ---- device tensors ----

TEST(SafetensorsCuda, SavesFromAndLoadsOntoTheGpu) {
  FFR_REQUIRE_CUDA();
  const std::string file = (fs::temp_directory_path() / ("ffr_safetensors_cuda_" + std::to_string(::getpid()))).string();
  NamedTensors on_gpu;
  for (const auto& [name, tensor] : every_dtype()) on_gpu.emplace_back(name, tensor.cuda());
  save_safetensors(file, on_gpu);
  const SafetensorsFile loaded = load_safetensors(file, Device::cuda());
  fs::remove(file);
  for (const auto& [name, tensor] : loaded.tensors) EXPECT_TRUE(tensor.is_cuda()) << name;
  expect_same_tensors(loaded.tensors, every_dtype());
}

}  // namespace
}  // namespace ffr
