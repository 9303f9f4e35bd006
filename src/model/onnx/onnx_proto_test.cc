#include "model/onnx/onnx_proto.h"

#include <string>

#include <gtest/gtest.h>

#include "sluice/env.h"

namespace sluice {
namespace {

// Minimal protobuf writer for hand-made ModelProtos.
std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
std::string VarintField(uint32_t number, uint64_t v) { return Varint(number << 3) + Varint(v); }
std::string LenField(uint32_t number, const std::string& bytes) {
  return Varint((number << 3) | 2) + Varint(bytes.size()) + bytes;
}

std::string Attribute(const std::string& name, const std::string& values) { return LenField(1, name) + values; }

std::string ZipMapNode(const std::string& output, const std::string& attribute) {
  return LenField(1, "probabilities") + LenField(2, output) + LenField(4, "ZipMap") + LenField(5, attribute) +
         LenField(7, "ai.onnx.ml");
}

std::string Model(const std::string& graph) {
  return VarintField(1, 8) + LenField(2, "test") + LenField(3, "1.2.3") + LenField(7, graph) +
         LenField(8, LenField(1, "") + VarintField(2, 17)) + LenField(8, LenField(1, "ai.onnx.ml") + VarintField(2, 3));
}

TEST(OnnxProtoTest, ReadsVersionsOpsetsAndZipMapLabels) {
  const std::string strings = Attribute("classlabels_strings", LenField(9, "low") + LenField(9, "medium") +
                                                                   LenField(9, "high"));
  // Packed int64s, one of them negative (a 10-byte varint).
  const std::string packed = Attribute("classlabels_int64s",
                                       LenField(8, Varint(30) + Varint(static_cast<uint64_t>(int64_t{-1})) + Varint(20)));
  const std::string graph = LenField(1, ZipMapNode("p_str", strings)) + LenField(1, ZipMapNode("p_int", packed)) +
                            LenField(2, "graph-name");
  Result<OnnxProtoFacts> facts = ScanOnnxModel(Model(graph));
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  EXPECT_EQ(facts->ir_version, 8);
  EXPECT_EQ(facts->producer_version, "1.2.3");
  ASSERT_EQ(facts->opsets.size(), 2u);
  EXPECT_EQ(DescribeOpsets(facts->opsets), "ai.onnx 17, ai.onnx.ml 3");
  EXPECT_EQ(facts->zipmap_labels.at("p_str"), (std::vector<std::string>{"low", "medium", "high"}));
  EXPECT_EQ(facts->zipmap_labels.at("p_int"), (std::vector<std::string>{"30", "-1", "20"}));
}

TEST(OnnxProtoTest, UnpackedIntsAndOtherNodesAreFine) {
  const std::string ints = Attribute("classlabels_int64s", VarintField(8, 2) + VarintField(8, 1));
  const std::string relu = LenField(1, "x") + LenField(2, "y") + LenField(4, "Relu");
  const std::string graph = LenField(1, relu) + LenField(1, ZipMapNode("p", ints));
  Result<OnnxProtoFacts> facts = ScanOnnxModel(Model(graph));
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  EXPECT_EQ(facts->zipmap_labels.size(), 1u);
  EXPECT_EQ(facts->zipmap_labels.at("p"), (std::vector<std::string>{"2", "1"}));
}

TEST(OnnxProtoTest, MalformedBytesAreCorruptionWithOffset) {
  const std::string model = Model(LenField(2, "g"));
  // Cut inside the graph: the graph's length runs past the end.
  Result<OnnxProtoFacts> cut = ScanOnnxModel(std::string_view(model).substr(0, model.size() - 20));
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.status().code(), StatusCode::kCorruption);
  EXPECT_NE(cut.status().message().find("offset "), std::string::npos) << cut.status().message();
  // A group wire type (3) is never used by ONNX.
  Result<OnnxProtoFacts> group = ScanOnnxModel(VarintField(1, 8) + std::string(1, '\x0b'));
  EXPECT_EQ(group.status().code(), StatusCode::kCorruption);
  // ir_version with the wrong wire type.
  Result<OnnxProtoFacts> wire = ScanOnnxModel(LenField(1, "x"));
  EXPECT_EQ(wire.status().code(), StatusCode::kCorruption);
  // An unterminated varint.
  Result<OnnxProtoFacts> varint = ScanOnnxModel(std::string("\x08\xff\xff", 3));
  EXPECT_EQ(varint.status().code(), StatusCode::kCorruption);
}

TEST(OnnxProtoTest, DetectionIsConservative) {
  const std::string model = Model(LenField(2, "g"));
  EXPECT_TRUE(LooksLikeOnnxModel(model));
  // A head cut anywhere after the second field still looks like a model.
  for (size_t cut = 6; cut < model.size(); ++cut) {
    EXPECT_TRUE(LooksLikeOnnxModel(std::string_view(model).substr(0, cut))) << cut;
  }
  EXPECT_FALSE(LooksLikeOnnxModel(""));
  EXPECT_FALSE(LooksLikeOnnxModel(VarintField(1, 8)));           // ir_version alone
  EXPECT_FALSE(LooksLikeOnnxModel(VarintField(1, 500) + LenField(7, "g")));  // absurd ir_version
  EXPECT_FALSE(LooksLikeOnnxModel(VarintField(1, 8) + LenField(9, "g")));    // not a ModelProto field
  EXPECT_FALSE(LooksLikeOnnxModel(VarintField(1, 8) + VarintField(7, 1)));   // graph as a varint
  EXPECT_FALSE(LooksLikeOnnxModel("id,f0,f1\n1,0.5,0.25\n"));
  EXPECT_FALSE(LooksLikeOnnxModel(R"({"learner": {"gradient_booster": {}}})"));
  EXPECT_FALSE(LooksLikeOnnxModel(std::string("{L\x00\x00\x00\x00\x00\x00\x00\x07learner", 17)));  // UBJSON
}

TEST(OnnxProtoTest, ScansGeneratedModels) {
  const std::string dir = std::string(SLUICE_BINARY_DIR) + "/test_models/onnx";
  Env* env = Env::Default();
  Result<std::string> mlp = ReadFileToString(env, dir + "/mlp.onnx");
  ASSERT_TRUE(mlp.ok()) << mlp.status().ToString() << " (run `ctest -R gen_onnx_models` first)";
  EXPECT_TRUE(LooksLikeOnnxModel(std::string_view(*mlp).substr(0, 1 << 20)));
  Result<OnnxProtoFacts> facts = ScanOnnxModel(*mlp);
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  EXPECT_EQ(facts->ir_version, 8);
  EXPECT_EQ(DescribeOpsets(facts->opsets), "ai.onnx 17");
  EXPECT_TRUE(facts->zipmap_labels.empty());

  Result<std::string> clf = ReadFileToString(env, dir + "/clf_zipmap_int.onnx");
  ASSERT_TRUE(clf.ok()) << clf.status().ToString();
  facts = ScanOnnxModel(*clf);
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  EXPECT_EQ(DescribeOpsets(facts->opsets), "ai.onnx 17, ai.onnx.ml 3");
  EXPECT_EQ(facts->zipmap_labels.at("output_probability"), (std::vector<std::string>{"30", "10", "20"}));
}

}  // namespace
}  // namespace sluice
