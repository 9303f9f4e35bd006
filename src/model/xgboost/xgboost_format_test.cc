#include "model/xgboost/xgboost_format.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sluice {
namespace {

// ---- building legacy binary models by hand (layout in xgboost_format.h) ----

template <typename T>
void Put(std::string* out, T value) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(T));
}

void PutString(std::string* out, const std::string& s) {
  Put<uint64_t>(out, s.size());
  out->append(s);
}

// Trees declare `nodes_per_tree` nodes; the node bytes written are capped at 64
// per tree so that a test can declare absurd counts.
std::string LegacyTreeModel(int32_t num_trees, int32_t nodes_per_tree, bool header = true) {
  std::string out = header ? "binf" : "";
  out.append(136, '\0');  // LearnerModelParamLegacy
  PutString(&out, "binary:logistic");
  PutString(&out, "gbtree");
  std::string gbtree_param(160, '\0');
  std::memcpy(gbtree_param.data(), &num_trees, sizeof(num_trees));
  out += gbtree_param;
  for (int32_t t = 0; t < num_trees; ++t) {
    std::string tree_param(148, '\0');
    std::memcpy(tree_param.data() + 4, &nodes_per_tree, sizeof(nodes_per_tree));
    out += tree_param;
    out.append(static_cast<size_t>(std::min(nodes_per_tree, 64)) * 36, '\x01');
  }
  for (int32_t t = 0; t < num_trees; ++t) Put<int32_t>(&out, 0);  // tree_info
  PutString(&out, "objective");                                   // an attribute or two follow; not walked
  return out;
}

std::string LegacyLinearModel(uint64_t num_weights) {
  std::string out = "binf";
  out.append(136, '\0');
  PutString(&out, "reg:squarederror");
  PutString(&out, "gblinear");
  out.append(136, '\0');
  Put<uint64_t>(&out, num_weights);
  for (uint64_t i = 0; i < num_weights && i < 100; ++i) Put<float>(&out, 0.5f);
  return out;
}

std::string Ubjson(const nlohmann::json& doc) {
  // Keys as 'i' + length + bytes, like XGBoost's 'L' + length: '{' then a letter.
  std::vector<uint8_t> bytes = nlohmann::json::to_ubjson(doc);
  return std::string(bytes.begin(), bytes.end());
}

const nlohmann::json kSmallModel = {
    {"learner", {{"feature_names", {"a", "b"}}, {"weights", {1.5, 2.5, 3.5}}, {"name", "gbtree"}}},
    {"version", {1, 7, 4}}};

void ExpectOneLine(const Status& status) {
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.message().find('\n'), std::string::npos) << status.message();
  EXPECT_EQ(status.message().rfind("m.x: ", 0), 0u) << status.message();
}

TEST(XgboostFormatTest, TellsJsonFromUbjsonFromLegacy) {
  const std::string path = "m.x";
  EXPECT_EQ(*CheckXgboostModelBytes(R"({"learner": {}})", path), XgboostFormat::kJson);
  EXPECT_EQ(*CheckXgboostModelBytes("{\n  \"learner\": {}}", path), XgboostFormat::kJson);
  EXPECT_EQ(*CheckXgboostModelBytes(Ubjson(kSmallModel), path), XgboostFormat::kUbjson);
  EXPECT_EQ(*CheckXgboostModelBytes(LegacyTreeModel(3, 7), path), XgboostFormat::kLegacyBinary);
  EXPECT_EQ(*CheckXgboostModelBytes(LegacyTreeModel(3, 7, /*header=*/false), path), XgboostFormat::kLegacyBinary);
  EXPECT_EQ(*CheckXgboostModelBytes(LegacyTreeModel(0, 1), path), XgboostFormat::kLegacyBinary);
  EXPECT_EQ(*CheckXgboostModelBytes(LegacyLinearModel(21), path), XgboostFormat::kLegacyBinary);
  EXPECT_EQ(XgboostFormatName(XgboostFormat::kUbjson), "ubj");
}

TEST(XgboostFormatTest, TrimsWhitespaceAndByteOrderMarkBeforeJsonOnly) {
  EXPECT_EQ(TrimJsonPrefix("\xEF\xBB\xBF \n {\"learner\": 1}"), "{\"learner\": 1}");
  EXPECT_EQ(TrimJsonPrefix("{\"a\": 1}"), "{\"a\": 1}");
  EXPECT_EQ(TrimJsonPrefix("  binf"), "  binf");  // not JSON: bytes left alone
  EXPECT_EQ(TrimJsonPrefix(""), "");
}

TEST(XgboostFormatTest, EveryTruncationOfUbjsonIsCaught) {
  const std::string full = Ubjson(kSmallModel);
  for (size_t n = 1; n < full.size(); ++n) {
    Result<XgboostFormat> format = CheckXgboostModelBytes(full.substr(0, n), "m.x");
    ASSERT_FALSE(format.ok()) << "prefix of " << n << " bytes passed";
    EXPECT_EQ(format.status().code(), StatusCode::kCorruption);
    ExpectOneLine(format.status());
  }
  Result<XgboostFormat> cut = CheckXgboostModelBytes(full.substr(0, full.size() / 2), "m.x");
  EXPECT_NE(cut.status().message().find("unexpected end of input"), std::string::npos) << cut.status().message();
}

TEST(XgboostFormatTest, UbjsonCountsLargerThanTheFileAreRejectedAtOnce) {
  // {"a": [$Z #L 2^62]}: an array of 2^62 nulls that take no bytes.
  std::string bytes =
      "{i\x01"
      "a[$Z#L";
  const uint64_t count = uint64_t{1} << 62;
  for (int shift = 56; shift >= 0; shift -= 8) bytes.push_back(static_cast<char>((count >> shift) & 0xff));
  bytes += "}";
  Result<XgboostFormat> format = CheckXgboostModelBytes(bytes, "m.x");
  ASSERT_FALSE(format.ok());
  EXPECT_NE(format.status().message().find("declares 4611686018427387904 elements"), std::string::npos)
      << format.status().message();
}

TEST(XgboostFormatTest, EveryTruncationOfLegacyBinaryIsCaught) {
  const std::string full = LegacyTreeModel(4, 5);
  // The attribute string at the end is not walked; everything before it is.
  const size_t walked = full.size() - (8 + std::strlen("objective"));
  for (size_t n = 1; n < walked; ++n) {
    Result<XgboostFormat> format = CheckXgboostModelBytes(full.substr(0, n), "m.x");
    ASSERT_FALSE(format.ok()) << "prefix of " << n << " bytes passed";
    EXPECT_EQ(format.status().code(), StatusCode::kCorruption);
    ExpectOneLine(format.status());
  }
  const std::string linear = LegacyLinearModel(10);
  for (size_t n = 1; n < linear.size(); ++n) {
    ASSERT_FALSE(CheckXgboostModelBytes(linear.substr(0, n), "m.x").ok()) << n;
  }
}

TEST(XgboostFormatTest, ImplausibleLegacyLengthsAreRejected) {
  Result<XgboostFormat> nodes = CheckXgboostModelBytes(LegacyTreeModel(2, 1 << 30), "m.x");
  ASSERT_FALSE(nodes.ok());
  EXPECT_NE(nodes.status().message().find("tree 0 at byte"), std::string::npos) << nodes.status().message();
  EXPECT_NE(nodes.status().message().find("declares 1073741824 nodes"), std::string::npos);

  Result<XgboostFormat> trees = CheckXgboostModelBytes(LegacyTreeModel(-1, 3), "m.x");
  ASSERT_FALSE(trees.ok());
  EXPECT_NE(trees.status().message().find("-1 trees declared"), std::string::npos) << trees.status().message();

  Result<XgboostFormat> weights = CheckXgboostModelBytes(LegacyLinearModel(uint64_t{1} << 40), "m.x");
  ASSERT_FALSE(weights.ok());
  EXPECT_NE(weights.status().message().find("1099511627776 weights declared"), std::string::npos)
      << weights.status().message();

  std::string booster = LegacyTreeModel(1, 1);
  booster.replace(booster.find("gbtree"), 6, "gbxxxx");
  Result<XgboostFormat> unknown = CheckXgboostModelBytes(booster, "m.x");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("the booster is 'gbxxxx'"), std::string::npos);
}

TEST(XgboostFormatTest, ForeignFilesAreNotModels) {
  const std::string csv = "id,amount,age\n1,2.5,30\n2,3.5,41\n" + std::string(200, 'x');
  for (const char* path : {"m.x", "model.bin", "model.model"}) {
    Result<XgboostFormat> format = CheckXgboostModelBytes(csv, path);
    ASSERT_FALSE(format.ok()) << path;
    EXPECT_EQ(format.status().code(), StatusCode::kCorruption);
    EXPECT_NE(format.status().message().find("not an XGBoost model"), std::string::npos) << format.status().message();
    EXPECT_NE(format.status().message().find("the file starts with \"id,amount,age\\x0a1"), std::string::npos)
        << format.status().message();
  }
  for (const char* path : {"model.json", "model.ubj", "MODEL.UBJ"}) {
    Result<XgboostFormat> format = CheckXgboostModelBytes(csv, path);
    ASSERT_FALSE(format.ok()) << path;
    EXPECT_NE(format.status().message().find("is a JSON object starting with '{'"), std::string::npos)
        << format.status().message();
  }
  std::string random(5000, '\0');
  uint32_t state = 12345;
  for (char& c : random) c = static_cast<char>((state = state * 1664525u + 1013904223u) >> 24);
  random[0] = 'b', random[1] = 'i', random[2] = 'n', random[3] = 'f';
  EXPECT_FALSE(CheckXgboostModelBytes(random, "m.x").ok());

  EXPECT_EQ(CheckXgboostModelBytes("", "m.x").status().message(), "m.x: not an XGBoost model: the file is empty");
  EXPECT_EQ(CheckXgboostModelBytes("{", "m.x").status().message(),
            "m.x: truncated XGBoost model: the file ends after '{'");
  EXPECT_EQ(CheckXgboostModelBytes("{1}", "m.x").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(CheckXgboostModelBytes("bs64AAAA", "m.x").status().code(), StatusCode::kNotSupported);
}

}  // namespace
}  // namespace sluice
