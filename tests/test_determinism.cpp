// Bitwise identity at any thread count: a transformer-shaped graph (embedding, rmsnorm, linear, rope,
// attention, swiglu, cross-entropy) forward + backward at 1, 2, 3 and 4 threads gives the same bits
// for the loss and every gradient. Sizes are large enough that every op takes its threaded path.
#include "tests/helpers.h"

using namespace qat;

namespace {
struct Result {
  Tensor loss;
  std::vector<Tensor> grads;
};

Result run_block(int threads) {
  set_num_threads(threads);
  const int64_t B = 4, T = 64, C = 96, H = 4, Hkv = 2, D = C / H, F = 160, Vocab = 200;
  std::vector<Tensor> p = {
      Tensor::randn({Vocab, C}, 1, 0.1f), Tensor::uniform({C}, 2, 0.8f, 1.2f), Tensor::randn({C, C}, 3, 0.1f),
      Tensor::randn({Hkv * D, C}, 4, 0.1f), Tensor::randn({Hkv * D, C}, 5, 0.1f), Tensor::randn({C, C}, 6, 0.1f),
      Tensor::randn({F, C}, 7, 0.1f), Tensor::randn({F, C}, 8, 0.1f), Tensor::randn({C, F}, 9, 0.1f)};
  for (Tensor& t : p) t.set_requires_grad();
  std::vector<int32_t> ids(size_t(B * T)), tgt(size_t(B * T));
  for (size_t i = 0; i < ids.size(); i++) {
    ids[i] = int32_t((i * 7919) % Vocab);
    tgt[i] = int32_t((i * 104729 + 3) % Vocab);
  }
  Tensor x = embedding(p[0], Tensor::from_s32({B, T}, ids));
  Tensor h = rmsnorm(x, p[1], 1e-5f);
  Tensor q = rope(linear(h, p[2]).reshape({B, T, H, D}), 0, 10000.0f);
  Tensor k = rope(linear(h, p[3]).reshape({B, T, Hkv, D}), 0, 10000.0f);
  Tensor v = linear(h, p[4]).reshape({B, T, Hkv, D});
  x = add(x, linear(causal_attention(q, k, v).reshape({B, T, C}), p[5]));
  x = add(x, linear(swiglu(linear(x, p[6]), linear(x, p[7])), p[8]));
  Tensor logits = linear(x, p[0]);  // tied: the embedding gets two contributions
  Tensor loss = cross_entropy(logits.reshape({B * T, Vocab}), Tensor::from_s32({B * T}, tgt));
  loss.backward();
  Result r{loss, {}};
  for (Tensor& t : p) r.grads.push_back(t.grad());
  return r;
}
}  // namespace

TEST_CASE("forward + backward are bitwise identical at 1, 2, 3 and 4 threads", "[determinism]") {
  Result ref = run_block(1);
  for (int threads : {2, 3, 4}) {
    Result r = run_block(threads);
    INFO("threads " << threads << ": loss " << r.loss.item() << " vs " << ref.loss.item());
    CHECK(test::same_bits(r.loss, ref.loss));
    for (size_t i = 0; i < r.grads.size(); i++) {
      INFO("gradient " << i << " maxdiff " << test::max_abs_diff(r.grads[i], ref.grads[i]));
      CHECK(test::same_bits(r.grads[i], ref.grads[i]));
    }
  }
  set_num_threads(0);
}
