#include "sluice/batch.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace sluice {
namespace {

// Bits [first, first + n) of a validity mask set from `valid`, the rest of the
// words holding the opposite of what the rows next to them hold.
std::vector<uint64_t> Mask(size_t first, const std::vector<bool>& valid) {
  std::vector<uint64_t> mask((first + valid.size() + 63) / 64 + 1, ~uint64_t{0});
  for (size_t i = 0; i < valid.size(); ++i) {
    const size_t bit = first + i;
    if (!valid[i]) mask[bit >> 6] &= ~(uint64_t{1} << (bit & 63));
  }
  if (first > 0) mask[(first - 1) >> 6] &= ~(uint64_t{1} << ((first - 1) & 63));
  return mask;
}

TEST(ColumnTest, BulkAppendWithoutMaskIsAllValid) {
  Column c(DataType::kFloat64);
  c.AppendFloat64(1.5);
  const std::vector<double> values = {2.5, -3.0, 4.25};
  c.AppendFloat64s(values.data(), values.size());
  ASSERT_EQ(c.size(), 4u);
  EXPECT_EQ(c.null_count(), 0u);
  EXPECT_EQ(std::vector<double>(c.float64s().begin(), c.float64s().end()), (std::vector<double>{1.5, 2.5, -3.0, 4.25}));
  c.AppendFloat64s(values.data(), 0);
  EXPECT_EQ(c.size(), 4u);
}

TEST(ColumnTest, BulkAppendMatchesOneByOneAcrossMaskWords) {
  // 150 values from bit 61 on: the mask spans four words; every 7th value is null.
  std::vector<int64_t> values;
  std::vector<bool> valid;
  for (int64_t i = 0; i < 150; ++i) {
    values.push_back(i * 1000 - 7);
    valid.push_back(i % 7 != 3);
  }
  const std::vector<uint64_t> mask = Mask(61, valid);
  Column bulk(DataType::kInt64);
  Column one(DataType::kInt64);
  bulk.AppendInt64(42);
  one.AppendInt64(42);
  bulk.AppendInt64s(values.data(), values.size(), mask.data(), 61);
  for (size_t i = 0; i < values.size(); ++i) {
    if (valid[i]) {
      one.AppendInt64(values[i]);
    } else {
      one.AppendNull();
    }
  }
  ASSERT_EQ(bulk.size(), one.size());
  for (size_t i = 0; i < bulk.size(); ++i) {
    EXPECT_EQ(bulk.IsValid(i), one.IsValid(i)) << i;
    EXPECT_EQ(bulk.int64s()[i], one.int64s()[i]) << i;  // a null's slot is 0, not the value under it
  }
  EXPECT_EQ(bulk.null_count(), 21u);  // i = 3, 10, …, 143
}

TEST(ColumnTest, BulkAppendOtherTypes) {
  const std::vector<uint64_t> mask = Mask(0, {true, false, true});
  Column f32(DataType::kFloat32);
  const std::vector<float> floats = {1.0f, 9.0f, -2.0f};
  f32.AppendFloat32s(floats.data(), 3, mask.data());
  EXPECT_EQ(std::vector<float>(f32.float32s().begin(), f32.float32s().end()), (std::vector<float>{1.0f, 0.0f, -2.0f}));
  EXPECT_TRUE(f32.IsNull(1));

  Column b(DataType::kBool);
  const bool bools[] = {true, true, false};
  b.AppendBools(bools, 3, mask.data());
  EXPECT_EQ(std::vector<uint8_t>(b.bools().begin(), b.bools().end()), (std::vector<uint8_t>{1, 0, 0}));
  EXPECT_EQ(std::vector<uint8_t>(b.validity().begin(), b.validity().end()), (std::vector<uint8_t>{1, 0, 1}));

  Column ts(DataType::kTimestamp);
  const int64_t micros[] = {-5, 6};
  ts.AppendInt64s(micros, 2);
  EXPECT_EQ(ts.int64s()[0], -5);
  EXPECT_EQ(ts.int64s()[1], 6);
}

TEST(ColumnTest, BulkAppendAfterClearReusesTheColumn) {
  Column c(DataType::kFloat64);
  const double values[] = {1.0, 2.0};
  c.AppendFloat64s(values, 2);
  c.Clear();
  c.AppendFloat64s(values + 1, 1);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c.float64s()[0], 2.0);
}

}  // namespace
}  // namespace sluice
