#include "model/onnx/onnx_proto.h"

#include <charconv>

namespace sluice {

namespace {

enum class Wire { kVarint = 0, kFixed64 = 1, kLen = 2, kStartGroup = 3, kEndGroup = 4, kFixed32 = 5 };

// Field numbers of the messages this file decodes (onnx.proto3).
constexpr uint32_t kModelIrVersion = 1;
constexpr uint32_t kModelProducerVersion = 3;
constexpr uint32_t kModelGraph = 7;
constexpr uint32_t kModelOpsetImport = 8;
constexpr uint32_t kOpsetDomain = 1;
constexpr uint32_t kOpsetVersion = 2;
constexpr uint32_t kGraphNode = 1;
constexpr uint32_t kNodeOutput = 2;
constexpr uint32_t kNodeOpType = 4;
constexpr uint32_t kNodeAttribute = 5;
constexpr uint32_t kNodeDomain = 7;
constexpr uint32_t kAttributeName = 1;
constexpr uint32_t kAttributeInts = 8;
constexpr uint32_t kAttributeStrings = 9;

struct Field {
  uint32_t number = 0;
  Wire wire = Wire::kVarint;
  uint64_t value = 0;      // kVarint, kFixed32, kFixed64
  std::string_view bytes;  // kLen
  size_t offset = 0;       // of the tag, from the start of the file
};

// Reads protobuf fields one after another from one message's bytes.
class WireReader {
 public:
  WireReader(std::string_view data, size_t base) : data_(data), base_(base) {}

  bool done() const { return pos_ >= data_.size(); }
  // True when the last error was running out of bytes (a cut-short head).
  bool truncated() const { return truncated_; }

  Status Next(Field* field) {
    field->offset = base_ + pos_;
    field->number = 0;
    uint64_t tag = 0;
    RETURN_IF_ERROR(ReadVarint(&tag));
    field->number = static_cast<uint32_t>(tag >> 3);
    if (field->number == 0 || (tag >> 3) > 0x1fffffff) return Error(field->offset, "invalid field number");
    field->wire = static_cast<Wire>(tag & 7);
    switch (field->wire) {
      case Wire::kVarint:
        return ReadVarint(&field->value);
      case Wire::kFixed64:
        return ReadFixed(8, &field->value);
      case Wire::kFixed32:
        return ReadFixed(4, &field->value);
      case Wire::kLen: {
        uint64_t length = 0;
        RETURN_IF_ERROR(ReadVarint(&length));
        if (length > data_.size() - pos_) {
          truncated_ = true;
          return Error(base_ + pos_, "length " + std::to_string(length) + " runs past the end");
        }
        field->bytes = data_.substr(pos_, length);
        pos_ += length;
        return Status::OK();
      }
      default:
        return Error(field->offset, "wire type " + std::to_string(tag & 7) + " is not used by ONNX");
    }
  }

  // Absolute offset of the first byte of `field.bytes`.
  size_t BytesOffset(const Field& field) const {
    return base_ + static_cast<size_t>(field.bytes.data() - data_.data());
  }

  Status ReadVarint(uint64_t* value) {
    const size_t start = base_ + pos_;
    uint64_t result = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (pos_ >= data_.size()) {
        truncated_ = true;
        return Error(start, "varint runs past the end");
      }
      const auto byte = static_cast<uint8_t>(data_[pos_++]);
      result |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *value = result;
        return Status::OK();
      }
    }
    return Error(start, "varint longer than 10 bytes");
  }

 private:
  Status ReadFixed(size_t width, uint64_t* value) {
    if (data_.size() - pos_ < width) {
      truncated_ = true;
      return Error(base_ + pos_, "fixed-width value runs past the end");
    }
    uint64_t result = 0;
    for (size_t i = 0; i < width; ++i) result |= static_cast<uint64_t>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
    pos_ += width;
    *value = result;
    return Status::OK();
  }

  static Status Error(size_t offset, const std::string& what) {
    return Status::Corruption("offset " + std::to_string(offset) + ": " + what);
  }

  std::string_view data_;
  size_t base_;
  size_t pos_ = 0;
  bool truncated_ = false;
};

Status ExpectWire(const Field& field, Wire wire, const char* what) {
  if (field.wire == wire) return Status::OK();
  return Status::Corruption("offset " + std::to_string(field.offset) + ": " + what + " has wire type " +
                            std::to_string(static_cast<int>(field.wire)) + ", expected " +
                            std::to_string(static_cast<int>(wire)));
}

Status ScanOpset(std::string_view bytes, size_t base, OnnxProtoFacts* facts) {
  WireReader reader(bytes, base);
  std::pair<std::string, int64_t> opset;
  while (!reader.done()) {
    Field field;
    RETURN_IF_ERROR(reader.Next(&field));
    if (field.number == kOpsetDomain) {
      RETURN_IF_ERROR(ExpectWire(field, Wire::kLen, "opset_import.domain"));
      opset.first = std::string(field.bytes);
    } else if (field.number == kOpsetVersion) {
      RETURN_IF_ERROR(ExpectWire(field, Wire::kVarint, "opset_import.version"));
      opset.second = static_cast<int64_t>(field.value);
    }
  }
  facts->opsets.push_back(std::move(opset));
  return Status::OK();
}

// Reads a ZipMap node's class labels from its attributes.
Status ScanZipMapAttribute(std::string_view bytes, size_t base, std::vector<std::string>* labels) {
  WireReader reader(bytes, base);
  std::string_view name;
  std::vector<std::string> strings;
  std::vector<std::string> ints;
  while (!reader.done()) {
    Field field;
    RETURN_IF_ERROR(reader.Next(&field));
    if (field.number == kAttributeName) {
      RETURN_IF_ERROR(ExpectWire(field, Wire::kLen, "attribute.name"));
      name = field.bytes;
    } else if (field.number == kAttributeStrings) {
      RETURN_IF_ERROR(ExpectWire(field, Wire::kLen, "attribute.strings"));
      strings.emplace_back(field.bytes);
    } else if (field.number == kAttributeInts) {
      if (field.wire == Wire::kVarint) {
        ints.push_back(std::to_string(static_cast<int64_t>(field.value)));
      } else {
        // Packed: a run of varints without tags.
        RETURN_IF_ERROR(ExpectWire(field, Wire::kLen, "attribute.ints"));
        WireReader packed(field.bytes, reader.BytesOffset(field));
        while (!packed.done()) {
          uint64_t value = 0;
          RETURN_IF_ERROR(packed.ReadVarint(&value));
          ints.push_back(std::to_string(static_cast<int64_t>(value)));
        }
      }
    }
  }
  if (name == "classlabels_strings" && !strings.empty()) *labels = std::move(strings);
  if (name == "classlabels_int64s" && !ints.empty()) *labels = std::move(ints);
  return Status::OK();
}

Status ScanNode(std::string_view bytes, size_t base, OnnxProtoFacts* facts) {
  WireReader reader(bytes, base);
  std::string_view op_type;
  std::string_view domain;
  std::string_view first_output;
  bool has_output = false;
  std::vector<Field> attributes;
  while (!reader.done()) {
    Field field;
    RETURN_IF_ERROR(reader.Next(&field));
    switch (field.number) {
      case kNodeOutput:
        RETURN_IF_ERROR(ExpectWire(field, Wire::kLen, "node.output"));
        if (!has_output) first_output = field.bytes;
        has_output = true;
        break;
      case kNodeOpType:
        RETURN_IF_ERROR(ExpectWire(field, Wire::kLen, "node.op_type"));
        op_type = field.bytes;
        break;
      case kNodeDomain:
        RETURN_IF_ERROR(ExpectWire(field, Wire::kLen, "node.domain"));
        domain = field.bytes;
        break;
      case kNodeAttribute:
        RETURN_IF_ERROR(ExpectWire(field, Wire::kLen, "node.attribute"));
        field.offset = reader.BytesOffset(field);  // where the attribute's own fields start
        attributes.push_back(field);
        break;
      default:
        break;
    }
  }
  if (op_type != "ZipMap" || domain != "ai.onnx.ml" || !has_output) return Status::OK();
  std::vector<std::string> labels;
  for (const Field& attribute : attributes) {
    RETURN_IF_ERROR(ScanZipMapAttribute(attribute.bytes, attribute.offset, &labels));
  }
  if (!labels.empty()) facts->zipmap_labels[std::string(first_output)] = std::move(labels);
  return Status::OK();
}

Status ScanGraph(std::string_view bytes, size_t base, OnnxProtoFacts* facts) {
  WireReader reader(bytes, base);
  while (!reader.done()) {
    Field field;
    RETURN_IF_ERROR(reader.Next(&field));
    if (field.number != kGraphNode) continue;
    RETURN_IF_ERROR(ExpectWire(field, Wire::kLen, "graph.node"));
    RETURN_IF_ERROR(ScanNode(field.bytes, reader.BytesOffset(field), facts));
  }
  return Status::OK();
}

// Wire type of each ModelProto field, for detection (0 = not a ModelProto field).
int ModelFieldWire(uint32_t number) {
  switch (number) {
    case 1:   // ir_version
    case 5:   // model_version
      return static_cast<int>(Wire::kVarint) + 1;
    case 2:   // producer_name
    case 3:   // producer_version
    case 4:   // domain
    case 6:   // doc_string
    case 7:   // graph
    case 8:   // opset_import
    case 14:  // metadata_props
    case 20:  // training_info
    case 25:  // functions
    case 26:  // configuration
      return static_cast<int>(Wire::kLen) + 1;
    default:
      return 0;
  }
}

}  // namespace

Result<OnnxProtoFacts> ScanOnnxModel(std::string_view bytes) {
  OnnxProtoFacts facts;
  WireReader reader(bytes, 0);
  while (!reader.done()) {
    Field field;
    RETURN_IF_ERROR(reader.Next(&field));
    switch (field.number) {
      case kModelIrVersion:
        RETURN_IF_ERROR(ExpectWire(field, Wire::kVarint, "ir_version"));
        facts.ir_version = static_cast<int64_t>(field.value);
        break;
      case kModelProducerVersion:
        RETURN_IF_ERROR(ExpectWire(field, Wire::kLen, "producer_version"));
        facts.producer_version = std::string(field.bytes);
        break;
      case kModelGraph:
        RETURN_IF_ERROR(ExpectWire(field, Wire::kLen, "graph"));
        RETURN_IF_ERROR(ScanGraph(field.bytes, reader.BytesOffset(field), &facts));
        break;
      case kModelOpsetImport:
        RETURN_IF_ERROR(ExpectWire(field, Wire::kLen, "opset_import"));
        RETURN_IF_ERROR(ScanOpset(field.bytes, reader.BytesOffset(field), &facts));
        break;
      default:
        break;
    }
  }
  return facts;
}

bool LooksLikeOnnxModel(std::string_view head) {
  if (head.size() < 4 || head[0] != '\x08') return false;
  WireReader reader(head, 0);
  Field field;
  if (!reader.Next(&field).ok() || field.value < 1 || field.value > 100) return false;
  int fields_after_ir_version = 0;
  while (!reader.done()) {
    if (!reader.Next(&field).ok()) {
      // A head cut short inside a field still counts when the field's tag was sound.
      if (!reader.truncated()) return false;
      if (field.number == 0) return fields_after_ir_version >= 1;
      return ModelFieldWire(field.number) == static_cast<int>(field.wire) + 1;
    }
    if (ModelFieldWire(field.number) != static_cast<int>(field.wire) + 1) return false;
    ++fields_after_ir_version;
  }
  return fields_after_ir_version >= 1;
}

std::string DescribeOpsets(const std::vector<std::pair<std::string, int64_t>>& opsets) {
  std::string out;
  for (const auto& [domain, version] : opsets) {
    if (!out.empty()) out += ", ";
    out += domain.empty() ? "ai.onnx" : domain;
    out += ' ';
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), version);
    out.append(buf, end);
  }
  return out;
}

}  // namespace sluice
