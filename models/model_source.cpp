// --model loading (see model_source.h).
#include "models/model_source.h"

#include "models/import.h"
#include "models/model_size.h"
#include "src/io/file.h"

namespace qat {

ModelSource open_model(const std::string& path) {
  ModelSource m;
  m.path = path;
  QAT_CHECK(file_exists(path), "--model: ", path, " does not exist");
  if (is_directory(path)) {
    m.checkpoint = load_start_model(path);  // a checkpoint of ours or a Hugging Face directory
    QAT_CHECK(m.checkpoint->vocab || file_exists(m.checkpoint->tokenizer_path), "--model: ", path, " has no tokenizer.json");
    m.tokenizer = checkpoint_vocab(*m.checkpoint);
    if (!m.checkpoint->quantization.is_null())
      m.qat = QatConfig::from_json(m.checkpoint->quantization, m.checkpoint->config.n_layers, m.checkpoint->config.tied);
  } else {
    m.gguf = read_gguf_model(path, GgufLoad::lazy);  // served: codes never held next to the packed panels
    m.tokenizer = m.gguf->tokenizer;
  }
  QAT_CHECK(m.tokenizer->vocab_size() == m.config().vocab, "--model: ", path, ": the tokenizer has ",
            m.tokenizer->vocab_size(), " tokens but the model ", m.config().vocab);
  return m;
}

std::unique_ptr<Transformer> ModelSource::transformer() const {
  QAT_CHECK(checkpoint.has_value(), path, " is a GGUF file: this needs a training checkpoint directory");
  auto t = std::make_unique<Transformer>(checkpoint->config, qat ? &*qat : nullptr);
  load_params(t->params, checkpoint->weights, path + "/model.safetensors");
  return t;
}

std::string ModelSource::describe() const {
  // The parameter count of model_size.h; sizes are the binaries' to print (weights_figure()).
  if (gguf) return str("GGUF ", path, " (", gguf->model.scheme, ", ", parameter_count(config()), " parameters)");
  return str("checkpoint ", path, " (", qat ? "QAT " + qat->scheme : std::string("FP32"), ", ",
             parameter_count(config()), " parameters)");
}

}  // namespace qat
