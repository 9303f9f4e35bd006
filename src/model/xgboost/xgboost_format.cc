#include "model/xgboost/xgboost_format.h"

#include <cstdint>
#include <cstring>
#include <exception>
#include <nlohmann/json.hpp>
#include <string>

#include "model/json_model_file.h"

namespace sluice {

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// Up to 16 bytes of the file for a message, non-printable bytes as \xNN.
std::string Preview(std::string_view bytes) {
  std::string out;
  for (size_t i = 0; i < bytes.size() && i < 16; ++i) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Status NotAModel(const std::string& path, const std::string& why) {
  return Status::Corruption(path + ": not an XGBoost model: " + why);
}

// ---- UBJSON ------------------------------------------------------------------

// Receives the parse events and keeps nothing. Counts are bounded by the bytes
// of the file: UBJSON containers whose elements take no bytes ('$Z', '$T'
// typed arrays) could otherwise declare 2^63 elements and spin for ever.
class UbjsonChecker final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit UbjsonChecker(size_t size) : max_events_(2 * size + 16) {}

  bool null() override { return Event(); }
  bool boolean(bool) override { return Event(); }
  bool number_integer(number_integer_t) override { return Event(); }
  bool number_unsigned(number_unsigned_t) override { return Event(); }
  bool number_float(number_float_t, const string_t&) override { return Event(); }
  bool string(string_t&) override { return Event(); }
  bool binary(binary_t&) override { return Event(); }
  bool start_object(std::size_t elements) override { return Container(elements); }
  bool key(string_t&) override { return Event(); }
  bool end_object() override { return Event(); }
  bool start_array(std::size_t elements) override { return Container(elements); }
  bool end_array() override { return Event(); }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) override {
    error_ = ex.what();
    // "[json.exception.parse_error.110] parse error at byte 2049: syntax error while
    // parsing UBJSON value: unexpected end of input" -> the part after the last ": ".
    const size_t colon = error_.rfind(": ");
    if (colon != std::string::npos) error_ = error_.substr(colon + 2);
    error_ += " at byte " + std::to_string(position);
    return false;
  }

  const std::string& error() const { return error_; }

 private:
  bool Event() {
    if (++events_ <= max_events_) return true;
    if (error_.empty()) error_ = "more values than its bytes can hold";
    return false;
  }
  bool Container(std::size_t elements) {
    // npos: the count is not given; the container ends with a marker.
    if (elements != static_cast<std::size_t>(-1) && elements > max_events_) {
      error_ = "a container declares " + std::to_string(elements) + " elements, more than its bytes can hold";
      return false;
    }
    return Event();
  }

  const size_t max_events_;
  size_t events_ = 0;
  std::string error_;
};

Status CheckUbjson(std::string_view bytes, const std::string& path) {
  UbjsonChecker checker(bytes.size());
  bool ok = false;
  try {
    ok = nlohmann::json::sax_parse(bytes.begin(), bytes.end(), &checker, nlohmann::json::input_format_t::ubjson,
                                   /*strict=*/true);
  } catch (const std::exception& e) {
    return NotAModel(path, std::string("invalid UBJSON: ") + e.what());
  }
  if (!ok) return NotAModel(path, "invalid UBJSON: " + (checker.error().empty() ? "unreadable" : checker.error()));
  return Status::OK();
}

// ---- legacy binary -----------------------------------------------------------

// Layout constants of XGBoost 1.x's binary format (see the header).
constexpr size_t kLearnerParamBytes = 136;
constexpr size_t kGbTreeParamBytes = 160;
constexpr size_t kTreeParamBytes = 148;
constexpr size_t kTreeNodeBytes = 20 + 16;  // RegTree::Node + RTreeNodeStat
constexpr size_t kGbLinearParamBytes = 136;
constexpr uint64_t kMaxNameBytes = 256;

class LegacyReader {
 public:
  LegacyReader(std::string_view bytes, const std::string& path) : bytes_(bytes), path_(path) {}

  size_t offset() const { return offset_; }
  size_t left() const { return bytes_.size() - offset_; }

  Status Skip(size_t n, std::string_view what) {
    if (n > left()) return Truncated(what, n);
    offset_ += n;
    return Status::OK();
  }
  template <typename T>
  Status Read(T* out, std::string_view what) {
    if (sizeof(T) > left()) return Truncated(what, sizeof(T));
    std::memcpy(out, bytes_.data() + offset_, sizeof(T));  // the format is little-endian, like x86/ARM hosts
    offset_ += sizeof(T);
    return Status::OK();
  }
  // A u64-length-prefixed string of printable ASCII, at most kMaxNameBytes.
  Status ReadName(std::string* out, std::string_view what) {
    const size_t at = offset_;
    uint64_t length = 0;
    RETURN_IF_ERROR(Read(&length, what));
    if (length == 0 || length > kMaxNameBytes || length > left()) {
      return NotAModel(path_, "read as the legacy binary format, the " + std::string(what) + " at byte " +
                                  std::to_string(at) + " has length " + std::to_string(length) +
                                  " (the file starts with \"" + Preview(bytes_) + "\")");
    }
    out->assign(bytes_.data() + offset_, length);
    offset_ += length;
    for (char c : *out) {
      if (c < 0x20 || c >= 0x7f) {
        return NotAModel(path_, "read as the legacy binary format, the " + std::string(what) + " at byte " +
                                    std::to_string(at) + " is not text (the file starts with \"" + Preview(bytes_) +
                                    "\")");
      }
    }
    return Status::OK();
  }
  Status Truncated(std::string_view what, size_t need) const {
    return Status::Corruption(path_ + ": truncated XGBoost model: the " + std::string(what) + " at byte " +
                              std::to_string(offset_) + " needs " + std::to_string(need) + " bytes, " +
                              std::to_string(left()) + " left");
  }

 private:
  std::string_view bytes_;
  const std::string& path_;
  size_t offset_ = 0;
};

Status CheckLegacyBinary(std::string_view bytes, const std::string& path) {
  LegacyReader in(bytes, path);
  if (bytes.substr(0, 4) == "binf") RETURN_IF_ERROR(in.Skip(4, "header"));
  RETURN_IF_ERROR(in.Skip(kLearnerParamBytes, "learner parameters"));
  std::string objective, booster;
  RETURN_IF_ERROR(in.ReadName(&objective, "objective name"));
  RETURN_IF_ERROR(in.ReadName(&booster, "booster name"));

  if (booster == "gblinear") {
    RETURN_IF_ERROR(in.Skip(kGbLinearParamBytes, "gblinear parameters"));
    const size_t count_at = in.offset();
    uint64_t num_weights = 0;
    RETURN_IF_ERROR(in.Read(&num_weights, "weight count"));
    if (num_weights > in.left() / sizeof(float)) {
      return Status::Corruption(path + ": not an XGBoost model or truncated: " + std::to_string(num_weights) +
                                " weights declared at byte " + std::to_string(count_at) + " do not fit in the " +
                                std::to_string(in.left()) + " bytes left");
    }
    return in.Skip(num_weights * sizeof(float), "weights");
  }
  if (booster != "gbtree" && booster != "dart") {
    return NotAModel(
        path, "read as the legacy binary format, the booster is '" + booster + "' (expected gbtree, dart or gblinear)");
  }

  const size_t param_at = in.offset();
  int32_t num_trees = 0;
  RETURN_IF_ERROR(in.Read(&num_trees, "tree count"));
  RETURN_IF_ERROR(in.Skip(kGbTreeParamBytes - sizeof(int32_t), "booster parameters"));
  if (num_trees < 0 || static_cast<size_t>(num_trees) > in.left() / kTreeParamBytes) {
    return Status::Corruption(path + ": not an XGBoost model or truncated: " + std::to_string(num_trees) +
                              " trees declared at byte " + std::to_string(param_at) + " do not fit in the " +
                              std::to_string(in.left()) + " bytes left");
  }
  for (int32_t tree = 0; tree < num_trees; ++tree) {
    const size_t tree_at = in.offset();
    const std::string tree_name = "tree " + std::to_string(tree);
    RETURN_IF_ERROR(in.Skip(kTreeParamBytes, "parameters of " + tree_name));
    int32_t num_nodes = 0;  // TreeParam: deprecated_num_roots, then num_nodes
    std::memcpy(&num_nodes, bytes.data() + tree_at + sizeof(int32_t), sizeof(num_nodes));
    if (num_nodes <= 0 || static_cast<size_t>(num_nodes) > in.left() / kTreeNodeBytes) {
      return Status::Corruption(path + ": not an XGBoost model or truncated: " + tree_name + " at byte " +
                                std::to_string(tree_at) + " declares " + std::to_string(num_nodes) +
                                " nodes, which do not fit in the " + std::to_string(in.left()) + " bytes left");
    }
    RETURN_IF_ERROR(in.Skip(static_cast<size_t>(num_nodes) * kTreeNodeBytes, "nodes of " + tree_name));
  }
  return in.Skip(static_cast<size_t>(num_trees) * sizeof(int32_t), "tree groups");
}

}  // namespace

std::string_view XgboostFormatName(XgboostFormat format) {
  switch (format) {
    case XgboostFormat::kJson:
      return "json";
    case XgboostFormat::kUbjson:
      return "ubj";
    case XgboostFormat::kLegacyBinary:
      return "binary";
  }
  return "unknown";
}

std::string_view TrimJsonPrefix(std::string_view bytes) {
  std::string_view rest = bytes;
  if (rest.substr(0, 3) == "\xEF\xBB\xBF") rest.remove_prefix(3);
  while (!rest.empty() && IsSpace(rest.front())) rest.remove_prefix(1);
  return !rest.empty() && rest.front() == '{' ? rest : bytes;
}

Result<XgboostFormat> CheckXgboostModelBytes(std::string_view bytes, const std::string& path) {
  if (bytes.empty()) return NotAModel(path, "the file is empty");
  if (bytes.front() == '{') {
    size_t next = 1;
    while (next < bytes.size() && IsSpace(bytes[next])) ++next;
    if (next < bytes.size() && bytes[next] == '"') return XgboostFormat::kJson;
    if (next < bytes.size() && IsAlpha(bytes[next])) {
      RETURN_IF_ERROR(CheckUbjson(bytes, path));
      return XgboostFormat::kUbjson;
    }
    if (next >= bytes.size()) return Status::Corruption(path + ": truncated XGBoost model: the file ends after '{'");
    return NotAModel(
        path, "a '{' must be followed by a JSON or UBJSON key (the file starts with \"" + Preview(bytes) + "\")");
  }
  if (bytes.substr(0, 4) == "bs64") {
    return Status::NotSupported(path +
                                ": base64 legacy XGBoost models (\"bs64\") are not supported; "
                                "load it with XGBoost and save_model it as .json or .ubj");
  }
  if ((PathHasExtension(path, ".json") || PathHasExtension(path, ".ubj")) && bytes.substr(0, 4) != "binf") {
    return NotAModel(path, "a .json or .ubj model is a JSON object starting with '{'; the file starts with \"" +
                               Preview(bytes) + "\"");
  }
  RETURN_IF_ERROR(CheckLegacyBinary(bytes, path));
  return XgboostFormat::kLegacyBinary;
}

}  // namespace sluice
