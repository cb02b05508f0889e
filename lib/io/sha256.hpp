#pragma once
// SHA-256 (FIPS 180-4) for the digests in manifests, so a Makefile or a
// reviewer can tell whether an input changed. Written here to keep opx free
// of a crypto library; checked against the FIPS vectors and sha256sum.
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace opx {

class Sha256 {
 public:
  using Digest = std::array<std::uint8_t, 32>;

  Sha256();
  void update(const void* data, std::size_t bytes);
  void update(std::string_view text) { update(text.data(), text.size()); }
  // Completes the hash; the object must not be updated afterwards.
  Digest finish();
  // finish() as 64 lowercase hex digits, as sha256sum prints it.
  std::string hex();

 private:
  void compress(const std::uint8_t* block);
  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t total_bytes_ = 0;
};

std::string sha256_hex(std::string_view data);

// Hashes a file in 1 MiB blocks. Missing file: no_input; read failure: io_error.
// Sets `bytes` to the file's size when given.
std::string sha256_file(const std::filesystem::path& path, std::uintmax_t* bytes = nullptr);

}  // namespace opx
