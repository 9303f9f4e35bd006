#include "core/sha256.h"

#include <openssl/evp.h>

#include <vector>

namespace sluice {

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(std::make_unique<Impl>()) {
  impl_->ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(impl_->ctx, EVP_sha256(), nullptr);
}

Sha256::~Sha256() { EVP_MD_CTX_free(impl_->ctx); }

void Sha256::Update(std::string_view data) {
  EVP_DigestUpdate(impl_->ctx, data.data(), data.size());
}

std::string Sha256::HexDigest() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, digest, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.HexDigest();
}

Result<std::string> Sha256File(Env* env, const std::string& path) {
  ASSIGN_OR_RETURN(auto file, env->NewSequentialFile(path));
  Sha256 h;
  std::vector<char> buf(1 << 20);
  while (true) {
    ASSIGN_OR_RETURN(size_t n, file->Read(buf.size(), buf.data()));
    if (n == 0) break;
    h.Update(std::string_view(buf.data(), n));
  }
  return h.HexDigest();
}

}  // namespace sluice
