// The model against PyTorch (the llm.c way): tests/fixtures/golden_tiny.safetensors is written by
// tests/reference/make_golden.py (python3-torch 1.13) with the same architecture and weights. Logits
// and loss must agree within 1e-5 relative, every gradient within 1e-4 of its tensor's largest
// magnitude, and 5 AdamW steps must give PyTorch's losses.
#include <cmath>

#include "models/transformer.h"
#include "src/io/safetensors.h"
#include "src/optim/adamw.h"
#include "tests/helpers.h"

using namespace qat;

namespace {
struct Golden {
  SafeTensors st = load_safetensors("tests/fixtures/golden_tiny.safetensors");
  ModelConfig cfg = ModelConfig::from_json(Json::parse(st.metadata.at("config")));
  Json adamw = Json::parse(st.metadata.at("adamw"));
};

void load_weights(Transformer& m, const SafeTensors& st) {
  for (int i = 0; i < m.params.size(); i++) m.params[i].copy_from(st.at(m.params.info(i).name));
}

float rel_diff(const Tensor& a, const Tensor& b) { return test::max_abs_diff(a, b) / std::max(1e-12f, test::max_abs(b)); }
}  // namespace

TEST_CASE("tiny model matches PyTorch: logits, loss, every gradient", "[golden]") {
  Golden g;
  Transformer m(g.cfg);
  load_weights(m, g.st);
  const Tensor& ids = g.st.at("ids");
  const Tensor& targets = g.st.at("targets");
  Tensor logits = m.forward(ids);
  Tensor loss = cross_entropy(logits.reshape({ids.numel(), g.cfg.vocab}), targets.reshape({ids.numel()}));
  loss.backward();
  float dl = rel_diff(logits, g.st.at("logits"));
  INFO("logits maxdiff (relative to max |logit|) " << dl);
  CHECK(dl < 1e-5f);
  float ref_loss = g.st.at("loss").f32()[0];
  INFO("loss " << loss.item() << " vs PyTorch " << ref_loss);
  CHECK(std::fabs(loss.item() - ref_loss) <= 1e-5f * std::fabs(ref_loss));
  for (int i = 0; i < m.params.size(); i++) {
    const std::string& name = m.params.info(i).name;
    float d = rel_diff(m.params[i].grad(), g.st.at("grad." + name));
    INFO("grad " << name << " maxdiff/max " << d);
    CHECK(d < 1e-4f);
  }
}

TEST_CASE("tiny model: 5 AdamW steps give PyTorch's losses", "[golden]") {
  Golden g;
  Transformer m(g.cfg);
  load_weights(m, g.st);
  const Json& a = g.adamw;
  AdamW opt(m.params, {float(a.at("lr").as_double()), float(a.at("beta1").as_double()), float(a.at("beta2").as_double()),
                       float(a.at("eps").as_double()), float(a.at("weight_decay").as_double())});
  const float* ref = g.st.at("adamw_losses").f32();
  for (int s = 0; s < int(a.at("steps").as_int()); s++) {
    m.params.zero_grad();
    Tensor loss = m.loss(g.st.at("ids"), g.st.at("targets"));
    INFO("step " << s << ": loss " << loss.item() << " vs PyTorch " << ref[s]);
    CHECK(std::fabs(loss.item() - ref[s]) <= 1e-5f * std::fabs(ref[s]) + 1e-6f);
    loss.backward();
    opt.step(float(a.at("lr").as_double()));
  }
}

TEST_CASE("tiny q4_0 QAT model matches PyTorch's LSQ: logits, loss, weight and scale gradients", "[golden][qat]") {
  // PyTorch runs f32 matmuls of fake-quantized operands; we run the integer kernels on the same codes,
  // so logits differ only by summation order (an activation code flipping at a rounding boundary would
  // show up as a much larger difference).
  SafeTensors st = load_safetensors("tests/fixtures/golden_tiny_qat.safetensors");
  ModelConfig cfg = ModelConfig::from_json(Json::parse(st.metadata.at("config")));
  QatConfig q = QatConfig::make("q4_0", "", cfg.n_layers, cfg.tied);
  Transformer m(cfg, &q);
  load_weights(m, st);
  Tensor logits = m.forward(st.at("ids"));
  Tensor loss = cross_entropy(logits.reshape({st.at("ids").numel(), cfg.vocab}), st.at("targets").reshape({st.at("ids").numel()}));
  loss.backward();
  float dl = rel_diff(logits, st.at("logits"));
  INFO("logits maxdiff (relative to max |logit|) " << dl);
  CHECK(dl < 1e-5f);
  CHECK(std::fabs(loss.item() - st.at("loss").f32()[0]) <= 1e-5f * st.at("loss").f32()[0]);
  for (int i = 0; i < m.params.size(); i++) {
    const std::string& name = m.params.info(i).name;
    float d = rel_diff(m.params[i].grad(), st.at("grad." + name));
    INFO("grad " << name << " maxdiff/max " << d);
    CHECK(d < 1e-4f);
  }
}
