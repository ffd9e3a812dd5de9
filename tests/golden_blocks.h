// Reading the block fixtures made by llama.cpp's own reference code (tests/fixtures/tq_golden.bin,
// kq_golden.bin; tools/golden/make-golden.sh) and comparing our blocks with them. Layout of each file
// (little-endian): u32 magic, version 1, NB, K (256), the byte sizes of its two block types; then the
// arrays the test names, in order.
#pragma once
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace qat::test {

// Opens tests/fixtures/<name> and checks its header; returns NB (blocks of K = 256).
inline size_t open_golden(std::ifstream& in, const std::string& name, uint32_t magic, size_t size_a, size_t size_b) {
  const std::string here = __FILE__;
  in.open(here.substr(0, here.find_last_of('/') + 1) + "fixtures/" + name, std::ios::binary);
  REQUIRE(in.good());
  uint32_t h[6];
  in.read(reinterpret_cast<char*>(h), sizeof h);
  REQUIRE(h[0] == magic);
  REQUIRE(h[1] == 1u);
  REQUIRE(h[3] == 256u);
  REQUIRE(h[4] == size_a);
  REQUIRE(h[5] == size_b);
  return h[2];
}

template <class T>
void read_into(std::ifstream& in, std::vector<T>& v, size_t n) {
  v.resize(n);
  in.read(reinterpret_cast<char*>(v.data()), std::streamsize(n * sizeof(T)));
}

// The whole file was read, no byte more.
inline void require_golden_end(std::ifstream& in) {
  REQUIRE(in.good());
  in.peek();
  REQUIRE(in.eof());
}

// Items (blocks, or runs of `per` floats) that differ, naming the first.
template <class T>
int count_different(const std::vector<T>& ours, const std::vector<T>& gold, size_t per) {
  int bad = 0, first = -1;
  for (size_t b = 0; b * per < gold.size(); b++)
    if (std::memcmp(&ours[b * per], &gold[b * per], per * sizeof(T)) != 0) {
      bad++;
      if (first < 0) first = int(b);
    }
  UNSCOPED_INFO(bad << " of " << gold.size() / per << " differ, the first " << first);
  return bad;
}

}  // namespace qat::test
