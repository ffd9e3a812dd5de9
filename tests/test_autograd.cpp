// Autograd engine: reuse, diamonds, accumulation across backward calls, no-grad, detach.
#include "tests/helpers.h"

using namespace qat;

TEST_CASE("a tensor used twice gets both contributions", "[autograd]") {
  Tensor x = Tensor::from({3}, {1, 2, 3}).set_requires_grad();
  sum(mul(x, x)).backward();  // d/dx sum(x^2) = 2x
  REQUIRE(x.grad().to_vector() == std::vector<float>{2, 4, 6});
}

TEST_CASE("diamond graph", "[autograd]") {
  // y = a*b + a/b with a = 2x, b = x + 1: both branches reach x twice.
  Tensor x = Tensor::from({2}, {0.5f, 1.5f}).set_requires_grad();
  Tensor a = scale(x, 2.0f);
  Tensor b = add(x, Tensor::full({1}, 1.0f));
  sum(add(mul(a, b), div(a, b))).backward();
  std::vector<float> g = x.grad().to_vector();
  for (int i = 0; i < 2; i++) {
    double xv = i ? 1.5 : 0.5;
    double expect = 2 * (xv + 1) + 2 * xv + 2 / (xv + 1) - 2 * xv / ((xv + 1) * (xv + 1));
    REQUIRE(g[size_t(i)] == Approx(expect).epsilon(1e-6));
  }
}

TEST_CASE("gradients accumulate over backward calls until zero_grad", "[autograd]") {
  Tensor w = Tensor::from({2}, {1, -1}).set_requires_grad();
  sum(scale(w, 3.0f)).backward();
  sum(scale(w, 3.0f)).backward();
  REQUIRE(w.grad().to_vector() == std::vector<float>{6, 6});
  w.zero_grad();
  REQUIRE(w.grad().to_vector() == std::vector<float>{0, 0});
}

TEST_CASE("NoGrad records nothing; detach cuts the graph", "[autograd]") {
  Tensor w = Tensor::from({2}, {1, 2}).set_requires_grad();
  {
    NoGrad ng;
    Tensor y = mul(w, w);
    REQUIRE_FALSE(y.requires_grad());
    REQUIRE(y.impl->grad_fn == nullptr);
  }
  Tensor d = w.detach();
  REQUIRE_FALSE(d.requires_grad());
  REQUIRE(d.impl->storage == w.impl->storage);
  Tensor y = sum(mul(w, d));  // gradient flows only through the first factor: dw = d
  y.backward();
  REQUIRE(w.grad().to_vector() == std::vector<float>{1, 2});
  REQUIRE_THROWS_WITH(sum(d).backward(), Catch::Contains("does not require grad"));
}

TEST_CASE("the graph is freed after backward, leaf grads stay", "[autograd]") {
  Tensor w = Tensor::from({2}, {1, 2}).set_requires_grad();
  Tensor h = mul(w, w);
  Tensor y = sum(h);
  y.backward();
  REQUIRE(h.impl->grad_fn == nullptr);
  REQUIRE_FALSE(h.grad().defined());  // intermediate grads are freed unless retained
  REQUIRE(w.grad().defined());
  Tensor h2 = mul(w, w);
  h2.retain_grad();
  sum(h2).backward();
  REQUIRE(h2.grad().to_vector() == std::vector<float>{1, 1});
}

TEST_CASE("a gradient buffer can be a view into one flat buffer", "[autograd]") {
  Tensor flat = Tensor::zeros({5});
  Tensor a = Tensor::from({2}, {1, 2}).set_requires_grad();
  Tensor b = Tensor::from({3}, {1, 2, 3}).set_requires_grad();
  a.set_grad(flat.slice(0, 0, 2));
  b.set_grad(flat.slice(0, 2, 5));
  sum(add(scale(a, 2.0f), sum(mul(b, b)))).backward();
  REQUIRE(flat.to_vector() == std::vector<float>{2, 2, 4, 8, 12});
}
