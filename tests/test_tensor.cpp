// Tensor core: storage, views, contiguity, dtypes, f16 conversion, error messages.
#include <cstdint>

#include "tests/helpers.h"

using namespace qat;

TEST_CASE("storage is 64-byte aligned and views share it", "[tensor]") {
  Tensor a = Tensor::from({2, 3}, {0, 1, 2, 3, 4, 5});
  REQUIRE(reinterpret_cast<uintptr_t>(a.f32()) % 64 == 0);
  Tensor t = a.transpose(0, 1);
  REQUIRE(t.shape() == Shape{3, 2});
  REQUIRE_FALSE(t.is_contiguous());
  REQUIRE(t.impl->storage == a.impl->storage);
  REQUIRE(t.at({2, 1}) == 5.0f);
  REQUIRE(t.at({0, 1}) == 3.0f);
  Tensor s = a.slice(1, 1, 3);
  REQUIRE(s.shape() == Shape{2, 2});
  REQUIRE(s.to_vector() == std::vector<float>{1, 2, 4, 5});
  s.f32()[0] = 42;  // writes through the view
  REQUIRE(a.at({0, 1}) == 42.0f);
  Tensor c = t.contiguous();
  REQUIRE(c.is_contiguous());
  REQUIRE(c.impl->storage != a.impl->storage);
  REQUIRE(c.to_vector() == std::vector<float>{0, 3, 42, 4, 2, 5});
  Tensor r = a.reshape({3, -1});
  REQUIRE(r.shape() == Shape{3, 2});
  REQUIRE(r.impl->storage == a.impl->storage);  // contiguous: a view, no copy
  Tensor p = Tensor::zeros({2, 3, 4}).permute({2, 0, 1});
  REQUIRE(p.shape() == Shape{4, 2, 3});
  REQUIRE(p.strides() == Shape{1, 12, 4});
}

TEST_CASE("dtypes and their sizes", "[tensor]") {
  REQUIRE(Tensor::zeros({3}, DType::s8).nbytes() == 3);
  REQUIRE(Tensor::zeros({3}, DType::u8).nbytes() == 3);
  REQUIRE(Tensor::zeros({3}, DType::f16).nbytes() == 6);
  REQUIRE(Tensor::zeros({3}, DType::s32).nbytes() == 12);
  Tensor s = Tensor::zeros({4}, DType::s8);
  s.data<int8_t>()[1] = -127;
  REQUIRE(s.slice(0, 1, 2).data<int8_t>()[0] == -127);
  REQUIRE_THROWS_WITH(s.f32(), Catch::Contains("f32") && Catch::Contains("s8"));
}

TEST_CASE("f16 conversion rounds to nearest even and handles the edges", "[tensor][f16]") {
  REQUIRE(f32_to_f16(1.0f) == 0x3c00);
  REQUIRE(f32_to_f16(-2.0f) == 0xc000);
  REQUIRE(f32_to_f16(65504.0f) == 0x7bff);
  REQUIRE(f32_to_f16(65520.0f) == 0x7c00);       // rounds up to inf
  REQUIRE(f32_to_f16(65519.996f) == 0x7bff);
  REQUIRE(f32_to_f16(5.9604645e-08f) == 0x0001);  // smallest subnormal
  REQUIRE(f32_to_f16(2.9802322e-08f) == 0x0000);  // exactly half of it: ties to even -> 0
  REQUIRE(f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00);  // tie between 1 and 1+2^-10 -> even (1)
  REQUIRE(f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02);  // tie -> even (1 + 2^-9)
  REQUIRE(std::isnan(f16_to_f32(f32_to_f16(NAN))));
  REQUIRE(f16_to_f32(0x0001) == 5.9604645e-08f);
  REQUIRE(f16_to_f32(0x3555) == 0.333251953125f);
  // Every f16 value round-trips exactly.
  for (uint32_t h = 0; h < 0x10000; h++) {
    float f = f16_to_f32(uint16_t(h));
    if (std::isnan(f)) continue;
    REQUIRE(f32_to_f16(f) == h);
  }
}

TEST_CASE("shape errors name both shapes", "[tensor]") {
  Tensor a = Tensor::zeros({2, 3}), b = Tensor::zeros({4, 5});
  REQUIRE_THROWS_WITH(matmul(a, b), Catch::Contains("(2, 3)") && Catch::Contains("(4, 5)"));
  REQUIRE_THROWS_WITH(add(a, Tensor::zeros({2, 4})), Catch::Contains("(2, 3)") && Catch::Contains("(2, 4)"));
  REQUIRE_THROWS_WITH(a.reshape({7}), Catch::Contains("(2, 3)") && Catch::Contains("(7,)"));
  REQUIRE_THROWS(a.slice(1, 2, 5));
  REQUIRE_THROWS(a.transpose(0, 2));
}

TEST_CASE("counter-based random tensors do not depend on the thread count", "[tensor][determinism]") {
  set_num_threads(1);
  Tensor a = Tensor::randn({300, 301}, 7);
  set_num_threads(3);
  Tensor b = Tensor::randn({300, 301}, 7);
  set_num_threads(0);
  REQUIRE(test::same_bits(a, b));
  std::vector<float> v = a.to_vector();
  double m = 0, s2 = 0;
  for (float x : v) { m += x; s2 += double(x) * x; }
  m /= double(v.size());
  s2 = s2 / double(v.size()) - m * m;
  REQUIRE(std::fabs(m) < 0.01);
  REQUIRE(std::fabs(s2 - 1.0) < 0.02);
}
