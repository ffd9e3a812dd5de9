// Every op's backward against central finite differences (tests/helpers.h: check_gradients), on shapes
// that are not multiples of 8 and on broadcast cases.
#include "tests/helpers.h"

using namespace qat;
using test::check_gradients;
using test::FdTol;
using test::randn;
using V = std::vector<Tensor>;

TEST_CASE("gradcheck: matmul and linear", "[grad][matmul]") {
  check_gradients("matmul 2-d", {randn({5, 7}, 1), randn({7, 3}, 2)}, [](const V& x) { return matmul(x[0], x[1]); });
  check_gradients("matmul batched", {randn({2, 3, 5, 9}, 3), randn({2, 3, 9, 4}, 4)},
                  [](const V& x) { return matmul(x[0], x[1]); });
  check_gradients("matmul batched x shared 2-d", {randn({3, 5, 9}, 5), randn({9, 6}, 6)},
                  [](const V& x) { return matmul(x[0], x[1]); });
  check_gradients("matmul of a transposed view", {randn({7, 5}, 7), randn({7, 3}, 8)},
                  [](const V& x) { return matmul(x[0].transpose(0, 1), x[1]); });
  check_gradients("linear", {randn({2, 3, 11}, 9), randn({13, 11}, 10)}, [](const V& x) { return linear(x[0], x[1]); });
}

TEST_CASE("gradcheck: elementwise with broadcasting", "[grad][elementwise]") {
  auto shapes = std::vector<std::pair<Shape, Shape>>{
      {{3, 13}, {3, 13}}, {{3, 13}, {13}}, {{4, 1, 5}, {3, 1}}, {{2, 3}, {}}, {{1}, {6, 7}}};
  uint64_t seed = 100;
  for (auto& [sa, sb] : shapes) {
    check_gradients("add", {randn(sa, seed++), randn(sb, seed++)}, [](const V& x) { return add(x[0], x[1]); });
    check_gradients("sub", {randn(sa, seed++), randn(sb, seed++)}, [](const V& x) { return sub(x[0], x[1]); });
    check_gradients("mul", {randn(sa, seed++), randn(sb, seed++)}, [](const V& x) { return mul(x[0], x[1]); });
    // div: keep the denominator away from zero
    Tensor den = Tensor::uniform(sb, seed++, 0.5f, 2.0f).set_requires_grad();
    check_gradients("div", {randn(sa, seed++), den}, [](const V& x) { return div(x[0], x[1]); });
  }
  check_gradients("scale", {randn({17}, 5)}, [](const V& x) { return scale(x[0], -1.5f); });
  check_gradients("mul of strided views", {randn({6, 5}, 6), randn({5, 6}, 7)},
                  [](const V& x) { return mul(x[0], x[1].transpose(0, 1)); });
}

TEST_CASE("gradcheck: reductions", "[grad][reduce]") {
  check_gradients("sum all", {randn({3, 7}, 1)}, [](const V& x) { return sum(x[0]); });
  check_gradients("sum dim 1", {randn({3, 7, 5}, 2)}, [](const V& x) { return sum(x[0], {1}); });
  check_gradients("sum dims 0,2 keepdim", {randn({3, 7, 5}, 3)}, [](const V& x) { return sum(x[0], {0, -1}, true); });
  check_gradients("mean all", {randn({9, 3}, 4)}, [](const V& x) { return mean(x[0]); });
  check_gradients("mean last", {randn({4, 9}, 5)}, [](const V& x) { return mean(x[0], {-1}); });
  check_gradients("sum of a permuted view", {randn({4, 5, 6}, 6)},
                  [](const V& x) { return sum(x[0].permute({2, 0, 1}), {1}); });
}

TEST_CASE("gradcheck: shape ops", "[grad][shape]") {
  check_gradients("reshape", {randn({4, 6}, 1)}, [](const V& x) { return mul(x[0].reshape({3, 8}), x[0].reshape({3, 8})); });
  check_gradients("transpose + contiguous", {randn({3, 5, 2}, 2)}, [](const V& x) { return contiguous(x[0].transpose(0, 2)); });
  check_gradients("permute then reshape", {randn({2, 3, 5}, 3)}, [](const V& x) { return x[0].permute({1, 2, 0}).reshape({15, 2}); });
  check_gradients("slice", {randn({5, 9}, 4)}, [](const V& x) { return x[0].slice(1, 2, 7); });
  check_gradients("concat", {randn({2, 3}, 5), randn({2, 5}, 6), randn({2, 1}, 7)},
                  [](const V& x) { return concat({x[0], x[1], x[2]}, 1); });
  check_gradients("concat dim 0 with reuse", {randn({2, 3}, 8)}, [](const V& x) { return concat({x[0], x[0]}, 0); });
}

TEST_CASE("gradcheck: embedding", "[grad][embedding]") {
  Tensor ids = Tensor::from_s32({2, 5}, {3, 1, 3, 0, 6, 6, 6, 2, 1, 3});  // repeated ids accumulate
  check_gradients("embedding", {randn({7, 13}, 1)}, [ids](const V& x) { return embedding(x[0], ids); });
  REQUIRE_THROWS_WITH(embedding(Tensor::zeros({7, 2}), Tensor::from_s32({1}, {7})), Catch::Contains("out of range"));
}

TEST_CASE("gradcheck: norms", "[grad][norm]") {
  Tensor w = Tensor::uniform({19}, 3, 0.5f, 1.5f).set_requires_grad();
  check_gradients("rmsnorm", {randn({3, 4, 19}, 1), w}, [](const V& x) { return rmsnorm(x[0], x[1], 1e-5f); });
  Tensor w2 = Tensor::uniform({11}, 4, 0.5f, 1.5f).set_requires_grad();
  check_gradients("layernorm", {randn({5, 11}, 2), w2, randn({11}, 5)},
                  [](const V& x) { return layernorm(x[0], x[1], x[2], 1e-5f); });
}

TEST_CASE("gradcheck: softmax family and cross-entropy", "[grad][softmax]") {
  check_gradients("softmax", {randn({4, 9}, 1)}, [](const V& x) { return softmax(x[0]); });
  check_gradients("log_softmax", {randn({3, 2, 13}, 2)}, [](const V& x) { return log_softmax(x[0]); });
  Tensor targets = Tensor::from_s32({6}, {0, 12, 5, -1, 7, 7});  // -1 is ignored
  check_gradients("cross_entropy", {randn({6, 13}, 3, 2.0f)}, [targets](const V& x) { return cross_entropy(x[0], targets); });
  // The fused op equals the composite -mean(log_softmax[target]) over the counted rows.
  Tensor logits = randn({6, 13}, 4, 2.0f, false);
  std::vector<float> ls = log_softmax(logits).to_vector();
  double ref = 0;
  int n = 0;
  for (int r = 0; r < 6; r++) {
    int t = std::vector<int>{0, 12, 5, -1, 7, 7}[size_t(r)];
    if (t >= 0) { ref -= ls[size_t(r * 13 + t)]; n++; }
  }
  REQUIRE(cross_entropy(logits, targets).item() == Approx(ref / n).epsilon(1e-6));
}

TEST_CASE("gradcheck: distillation KL, and agreement with its definition", "[grad][softmax]") {
  const std::vector<int32_t> tg = {0, 3, -1, 7, 1, 1, 2, -1, 4, 0};  // -1 rows are ignored
  Tensor targets = Tensor::from_s32({10}, tg);
  Tensor teacher = randn({10, 11}, 5, 2.0f);  // requires grad: the op must not give it any
  check_gradients("distill_kl", {randn({10, 11}, 6, 2.0f)},
                  [teacher, targets](const V& x) { return distill_kl(x[0], teacher, targets); });
  // The value: mean over counted rows of sum_i p_t (log p_t - log p_s), from log_softmax in double.
  Tensor logits = randn({10, 11}, 7, 2.0f);
  std::vector<float> ls = log_softmax(logits.detach()).to_vector(), lt = log_softmax(teacher.detach()).to_vector();
  double ref = 0;
  int n = 0;
  for (int r = 0; r < 10; r++) {
    if (tg[size_t(r)] < 0) continue;
    for (int i = 0; i < 11; i++) ref += std::exp(double(lt[size_t(r * 11 + i)])) * (double(lt[size_t(r * 11 + i)]) - ls[size_t(r * 11 + i)]);
    n++;
  }
  teacher.zero_grad();
  Tensor kl = distill_kl(logits, teacher, targets);
  REQUIRE(kl.item() == Approx(ref / n).epsilon(1e-5));
  kl.backward();
  REQUIRE(!teacher.grad().defined());
  // A student equal to its teacher: KL 0 and no gradient.
  logits.zero_grad();
  Tensor self = distill_kl(logits, logits.detach(), targets);
  REQUIRE(std::fabs(self.item()) < 1e-6f);
  self.backward();
  for (float g : logits.grad().to_vector()) REQUIRE(std::fabs(g) < 1e-7f);
}

TEST_CASE("gradcheck: activations", "[grad][activation]") {
  check_gradients("silu", {randn({5, 7}, 1, 2.0f)}, [](const V& x) { return silu(x[0]); });
  check_gradients("gelu", {randn({5, 7}, 2, 2.0f)}, [](const V& x) { return gelu(x[0]); });
  check_gradients("swiglu", {randn({3, 11}, 3, 2.0f), randn({3, 11}, 4)}, [](const V& x) { return swiglu(x[0], x[1]); });
  Tensor g = randn({3, 11}, 5, 2.0f, false), u = randn({3, 11}, 6, 1.0f, false);
  REQUIRE(test::max_abs_diff(swiglu(g, u), mul(silu(g), u)) < 1e-6f);
}

TEST_CASE("gradcheck: rope", "[grad][rope]") {
  check_gradients("rope", {randn({2, 5, 3, 6}, 1)}, [](const V& x) { return rope(x[0], 3, 10000.0f); });
  // Rotations preserve the norm of every pair; position 0 is the identity.
  Tensor x = randn({1, 1, 1, 8}, 2, 1.0f, false);
  REQUIRE(test::max_abs_diff(rope(x, 0, 10000.0f), x) == 0.0f);
  Tensor y = rope(x, 5, 10000.0f);
  for (int i = 0; i < 4; i++) {
    float a = x.at({0, 0, 0, 2 * i}), b = x.at({0, 0, 0, 2 * i + 1});
    float c = y.at({0, 0, 0, 2 * i}), d = y.at({0, 0, 0, 2 * i + 1});
    REQUIRE(c * c + d * d == Approx(a * a + b * b).epsilon(1e-5));
  }
}

// Attention built from separate ops: the oracle the fused kernel is tested against.
static Tensor composite_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
  int64_t B = q.dim(0), T = q.dim(1), H = q.dim(2), D = q.dim(3), Hkv = k.dim(2);
  std::vector<float> mask(static_cast<size_t>(T * T));
  for (int64_t i = 0; i < T; i++)
    for (int64_t j = 0; j < T; j++) mask[size_t(i * T + j)] = j <= i ? 0.0f : -1e30f;
  Tensor m = Tensor::from({T, T}, mask);
  std::vector<Tensor> heads;
  Tensor qh = q.permute({0, 2, 1, 3});  // (B, H, T, D)
  Tensor kh = k.permute({0, 2, 3, 1});  // (B, Hkv, D, T)
  Tensor vh = v.permute({0, 2, 1, 3});  // (B, Hkv, T, D)
  for (int64_t h = 0; h < H; h++) {
    int64_t g = h / (H / Hkv);
    Tensor s = scale(matmul(qh.slice(1, h, h + 1), kh.slice(1, g, g + 1)), 1.0f / std::sqrt(float(D)));
    heads.push_back(matmul(softmax(add(s, m)), vh.slice(1, g, g + 1)));  // (B, 1, T, D)
  }
  return concat(heads, 1).permute({0, 2, 1, 3}).reshape({B, T, H, D});
}

TEST_CASE("gradcheck: fused causal attention, and agreement with the composite ops", "[grad][attention]") {
  for (auto [H, Hkv] : std::vector<std::pair<int64_t, int64_t>>{{2, 2}, {4, 2}, {3, 1}}) {
    Tensor q = randn({2, 7, H, 5}, 1), k = randn({2, 7, Hkv, 5}, 2), v = randn({2, 7, Hkv, 5}, 3);
    check_gradients("attention H=" + std::to_string(H) + " Hkv=" + std::to_string(Hkv), {q, k, v},
                    [](const V& x) { return causal_attention(x[0], x[1], x[2]); });
    for (Tensor* t : {&q, &k, &v}) t->zero_grad();
    Tensor R = Tensor::randn({2, 7, H, 5}, 9);
    Tensor fused = causal_attention(q, k, v);
    sum(mul(fused, R)).backward();
    Tensor gq = q.grad().clone(), gk = k.grad().clone(), gv = v.grad().clone();
    for (Tensor* t : {&q, &k, &v}) t->zero_grad();
    Tensor comp = composite_attention(q, k, v);
    sum(mul(comp, R)).backward();
    CHECK(test::max_abs_diff(fused, comp) < 1e-5f);
    CHECK(test::max_abs_diff(gq, q.grad()) < 1e-4f);
    CHECK(test::max_abs_diff(gk, k.grad()) < 1e-4f);
    CHECK(test::max_abs_diff(gv, v.grad()) < 1e-4f);
  }
}

TEST_CASE("gradcheck: dropout", "[grad][dropout]") {
  check_gradients("dropout", {randn({4, 33}, 1)}, [](const V& x) { return dropout(x[0], 0.25f, 7, 3); });
  Tensor x = Tensor::full({100000}, 1.0f);
  std::vector<float> y = dropout(x, 0.25f, 7, 3).to_vector();
  int64_t kept = 0;
  for (float v : y) {
    REQUIRE((v == 0.0f || v == Approx(1.0f / 0.75f)));
    kept += v != 0.0f;
  }
  REQUIRE(std::fabs(double(kept) / 100000.0 - 0.75) < 0.01);
  REQUIRE(test::same_bits(dropout(x, 0.25f, 7, 3), dropout(x, 0.25f, 7, 3)));
  REQUIRE_FALSE(test::same_bits(dropout(x, 0.25f, 7, 3), dropout(x, 0.25f, 7, 4)));
}
