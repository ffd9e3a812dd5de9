// f32 inference model from a checkpoint (see from_checkpoint.h).
#include "models/from_checkpoint.h"


namespace qat {

DecodeModel decode_model_from_checkpoint(const LoadedCheckpoint& ck) {
  QAT_CHECK(ck.quantization.is_null(), "checkpoint ", ck.dir,
            " is a QAT model: export it with bin/quantize --to-gguf and serve the GGUF file");
  Transformer t(ck.config, nullptr, Transformer::Frozen{});
  load_params(t.params, ck.weights, ck.dir + "/model.safetensors");
  return decode_model_from_transformer(t);
}

DecodeModel decode_model_from_transformer(const Transformer& t) {
  DecodeModel m;
  m.cfg = t.cfg;
  auto P = [&](int i) { return t.params[i].clone(); };  // own copies: the Transformer goes away
  m.tok_embd.f32 = P(t.tok_embd);
  m.tok_embd.C = t.cfg.d_model;
  for (const LayerParams& L : t.layers) {
    DecodeLayer d;
    d.attn_norm = P(L.attn_norm);
    d.mlp_norm = P(L.mlp_norm);
    for (Proj p : kBlockProj) d.lin[int(p)] = make_f32_linear(Backend::openblas, P(L.weight(p)));
    m.layers.push_back(std::move(d));
  }
  m.final_norm = P(t.final_norm);
  m.lm_head = make_f32_linear(Backend::openblas, t.lm_head == t.tok_embd ? m.tok_embd.f32 : P(t.lm_head));
  return m;
}

}  // namespace qat
