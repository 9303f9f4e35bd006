#include "source/source_common.h"

#include <simdjson.h>

#include <cstring>
#include <set>
#include <string>

#include "batch/value_parse.h"
#include "core/strings.h"

namespace sluice {

bool ParseTextCell(std::string_view text, DataType type, Cell* cell) {
  cell->is_null = false;
  if (type == DataType::kString) {
    cell->text = text;
    return true;
  }
  if (text.empty()) {
    cell->is_null = true;
    return true;
  }
  switch (type) {
    case DataType::kInt64: {
      const auto v = ParseInt64(text);
      if (!v) return false;
      cell->int_value = *v;
      return true;
    }
    case DataType::kTimestamp: {
      const auto v = ParseTimestamp(text);
      if (!v) return false;
      cell->int_value = *v;
      return true;
    }
    case DataType::kDate: {
      const auto v = ParseDate(text);
      if (!v) return false;
      cell->int_value = *v;
      return true;
    }
    case DataType::kFloat32:
    case DataType::kFloat64: {
      const auto v = ParseFloat64(text);
      if (!v) return false;
      cell->float_value = *v;
      return true;
    }
    case DataType::kBool: {
      const auto v = ParseBool(text);
      if (!v) return false;
      cell->bool_value = *v;
      return true;
    }
    case DataType::kString: break;
  }
  return false;
}

void TypeGuess::AddText(std::string_view text, bool json_string) {
  uint8_t candidates = kString;
  // Only test what can still win; a column already known to be a string costs nothing.
  if (!json_string) {
    if ((candidates_ & kInt) && ParseInt64(text)) {
      candidates |= kInt | kFloat;
    } else if ((candidates_ & kFloat) && ParseFloat64(text)) {
      candidates |= kFloat;
    }
    const std::string_view trimmed = TrimSpaces(text);
    if ((candidates_ & kBool) && (EqualsIgnoreCase(trimmed, "true") || EqualsIgnoreCase(trimmed, "false"))) {
      candidates |= kBool;
    }
  }
  if ((candidates_ & kTimestamp) && ParseTimestamp(text)) candidates |= kTimestamp;
  Add(candidates);
}

DataType TypeGuess::Type() const {
  if (!has_sample_) return DataType::kFloat64;
  if (candidates_ & kInt) return DataType::kInt64;
  if (candidates_ & kFloat) return DataType::kFloat64;
  if (candidates_ & kBool) return DataType::kBool;
  if (candidates_ & kTimestamp) return DataType::kTimestamp;
  return DataType::kString;
}

std::string InputLine(const std::string& path, int64_t line) {
  return "input '" + path + "' line " + std::to_string(line);
}

Reject MakeReject(const std::string& path, int64_t line, uint64_t offset, std::string_view reason,
                  const std::string& column, std::string_view value, const std::string& what) {
  Reject reject;
  reject.file = path;
  reject.line = line;
  reject.byte_offset = static_cast<int64_t>(offset);
  reject.column = column;
  reject.value = RejectValue(value);
  reject.reason = std::string(reason);
  reject.message = InputLine(path, line) + (column.empty() ? "" : ", column '" + column + "'") + ": " + what;
  return reject;
}

Result<Schema> SelectColumns(const std::string& path, const Schema& file_schema,
                             const SourceOptions& options, bool allow_declared_only) {
  std::vector<std::string> wanted = options.columns;
  if (wanted.empty()) {
    for (const Field& field : file_schema.fields()) wanted.push_back(field.name);
  }
  Schema selected;
  std::set<std::string> seen;
  for (const std::string& name : wanted) {
    if (!seen.insert(name).second) {
      return Status::InvalidArgument("input '" + path + "': column '" + name + "' is selected twice");
    }
    const auto declared = options.declared_types.find(name);
    const auto index = file_schema.FieldIndex(name);
    if (!index && !(allow_declared_only && declared != options.declared_types.end())) {
      std::vector<std::string> names;
      for (const Field& field : file_schema.fields()) names.push_back(field.name);
      return Status::NotFound("input '" + path + "': no column '" + name + "' (columns: " +
                              JoinNames(names) + ")");
    }
    const DataType type =
        declared != options.declared_types.end() ? declared->second : file_schema.field(*index).type;
    selected.AddField(Field{name, type});
  }
  return selected;
}

size_t FindInvalidUtf8(std::string_view text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t size = text.size();
  size_t pos = 0;
  while (pos < size) {
    const unsigned char lead = bytes[pos];
    if (lead < 0x80) {
      ++pos;
      continue;
    }
    size_t length = 0;
    unsigned char min_second = 0x80;
    unsigned char max_second = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) min_second = 0xA0;  // overlong
      if (lead == 0xED) max_second = 0x9F;  // surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) min_second = 0x90;  // overlong
      if (lead == 0xF4) max_second = 0x8F;  // above U+10FFFF
    } else {
      return pos;
    }
    if (pos + length > size) return pos;
    if (bytes[pos + 1] < min_second || bytes[pos + 1] > max_second) return pos;
    for (size_t cont_idx = 2; cont_idx < length; ++cont_idx) {
      if ((bytes[pos + cont_idx] & 0xC0) != 0x80) return pos;
    }
    pos += length;
  }
  return std::string_view::npos;
}

bool IsValidUtf8(std::string_view text) {
  // Most data is ASCII: check 8 bytes at a time before the full validator.
  const char* p = text.data();
  const char* end = p + text.size();
  uint64_t high_bits = 0;
  while (end - p >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    high_bits |= word;
    p += 8;
  }
  while (p < end) high_bits |= static_cast<unsigned char>(*p++);
  if ((high_bits & 0x8080808080808080ULL) == 0) return true;
  return simdjson::validate_utf8(text.data(), text.size());
}

namespace {

void AppendHexByte(unsigned char byte, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->append("\\x");
  out->push_back(kHex[byte >> 4]);
  out->push_back(kHex[byte & 0xF]);
}

// Copies up to `max_bytes` of text, invalid UTF-8 bytes as \xNN, and (when
// `escape_controls`) control characters escaped; cuts at a character boundary.
// Returns whether everything fit.
bool CopyPrintable(std::string_view text, size_t max_bytes, bool escape_controls, std::string* out) {
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t bad = FindInvalidUtf8(text.substr(pos, 4));
    const auto lead = static_cast<unsigned char>(text[pos]);
    size_t length = 1;
    if (lead >= 0x80 && bad != 0) length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    std::string piece;
    if (lead >= 0x80 && bad == 0) {
      AppendHexByte(lead, &piece);
    } else if (escape_controls && lead < 0x20) {
      if (lead == '\n') {
        piece = "\\n";
      } else if (lead == '\r') {
        piece = "\\r";
      } else if (lead == '\t') {
        piece = "\\t";
      } else {
        AppendHexByte(lead, &piece);
      }
    } else {
      piece.assign(text.substr(pos, length));
    }
    if (out->size() + piece.size() > max_bytes) return false;
    out->append(piece);
    pos += length;
  }
  return true;
}

}  // namespace

std::string MessageValue(std::string_view value) {
  std::string out;
  if (!CopyPrintable(value, 64, /*escape_controls=*/true, &out)) out += "...";
  return out;
}

std::string RejectValue(std::string_view value) {
  std::string out;
  (void)CopyPrintable(value, 256, /*escape_controls=*/false, &out);
  return out;
}

std::string BadValueMessage(std::string_view text, const Field& field, const SourceOptions& options) {
  std::string message = "cannot parse '" + MessageValue(text) + "' as " + std::string(DataTypeName(field.type));
  if (!options.declared_types.count(field.name)) {
    message += " (type inferred from the first " + std::to_string(options.infer_rows) +
               " rows; declare it under input.schema." + field.name + " to read it as another type)";
  }
  return message;
}

uint64_t HashCell(const Cell& cell, DataType type, uint64_t h) {
  if (cell.is_null) return HashKeyNull(h);
  switch (type) {
    case DataType::kInt64:
    case DataType::kTimestamp:
    case DataType::kDate: return HashKeyInt(cell.int_value, h);
    case DataType::kFloat32: return HashKeyDouble(static_cast<float>(cell.float_value), h);
    case DataType::kFloat64: return HashKeyDouble(cell.float_value, h);
    case DataType::kBool: return HashKeyBool(cell.bool_value, h);
    case DataType::kString: return HashKeyString(cell.text, h);
  }
  return h;
}

Status RowSampler::Init(const std::string& path, const Schema& schema, const SourceOptions& options) {
  path_ = path;
  fraction_ = options.sample;
  for (const std::string& key : options.sample_keys) {
    const auto index = schema.FieldIndex(key);
    if (!index) {
      std::vector<std::string> names;
      for (const Field& field : schema.fields()) names.push_back(field.name);
      return Status::InvalidArgument("input '" + path + "': sample key '" + key +
                                     "' is not among the columns read (" + JoinNames(names) + ")");
    }
    key_columns_.push_back(*index);
    key_types_.push_back(schema.field(*index).type);
  }
  return Status::OK();
}

uint64_t RowSampler::RowHash(const std::vector<Cell>& cells, int64_t line) const {
  if (key_columns_.empty()) return HashRowLocation(path_, line);
  uint64_t h = kHashSeed;
  for (size_t key_idx = 0; key_idx < key_columns_.size(); ++key_idx) {
    h = HashCell(cells[key_columns_[key_idx]], key_types_[key_idx], h);
  }
  return MixHash(h);
}

}  // namespace sluice
