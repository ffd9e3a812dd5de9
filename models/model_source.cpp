// --model loading (see model_source.h).
#include "models/model_source.h"

#include "models/import.h"
#include "models/model_size.h"
#include "src/io/file.h"

namespace qat {

ModelSource open_model(const std::string& path, bool served) {
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
    m.gguf = read_gguf_model(path, served ? GgufLoad::lazy : GgufLoad::header);  // lazy: codes never held next to the packed panels
    m.tokenizer = m.gguf->tokenizer;
  }
  QAT_CHECK(m.tokenizer->vocab_size() == m.config().vocab, "--model: ", path, ": the tokenizer has ",
            m.tokenizer->vocab_size(), " tokens but the model ", m.config().vocab);
  return m;
}

std::unique_ptr<Transformer> ModelSource::transformer() const {
  if (gguf) {  // imported: its weights as f32 (blocks dequantized), as bin/train --init reads it
    LoadedCheckpoint ck = import_gguf(path);
    auto t = std::make_unique<Transformer>(ck.config, nullptr, Transformer::Frozen{});
    load_params(t->params, ck.weights, path);
    return t;
  }
  auto t = std::make_unique<Transformer>(checkpoint->config, qat ? &*qat : nullptr, Transformer::Frozen{});
  load_params(t->params, checkpoint->weights, path + "/model.safetensors");
  return t;
}

std::string ModelSource::describe() const {
  // The parameter count of model_size.h; sizes are the binaries' to print (weights_figure()).
  if (gguf) return str("GGUF ", path, " (", gguf->model.scheme, ", ", parameter_count(config()), " parameters)");
  return str("checkpoint ", path, " (", qat ? "QAT " + qat->scheme : std::string("FP32"), ", ",
             parameter_count(config()), " parameters)");
}

TrainingText training_text(const ModelSource& src, const std::string& data, bool data_given, const std::string& documents,
                           bool documents_given) {
  const DocMode given_mode = parse_doc_mode(documents);
  if (data_given) return {data, given_mode, "--data"};
  const Json* opts = src.checkpoint && src.checkpoint->state.is_object() ? src.checkpoint->state.find("options") : nullptr;
  const Json* d = opts && opts->is_object() ? opts->find("data") : nullptr;
  if (!d || !d->is_string()) return {"", given_mode, "the default corpus: the model records no training data"};
  const std::string saved = d->as_string();
  QAT_CHECK(saved.empty() || file_exists(saved), "the checkpoint was trained on ", saved,
            " (its state.json), which does not exist here: pass --data or --text");
  const Json* m = opts->find("documents");
  const DocMode saved_mode = parse_doc_mode(m && m->is_string() ? m->as_string() : "blank-line");
  return {saved, documents_given ? given_mode : saved_mode, "the checkpoint's training data"};
}

}  // namespace qat
