// The data-free corpus (see data_free.h): sampled from the FP teacher, cached as a fortune-format file.
#include "models/train/data_free.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "data/corpus.h"
#include "data/unicode.h"
#include "models/decode.h"
#include "models/from_checkpoint.h"
#include "models/import.h"
#include "models/model_source.h"
#include "models/sampler.h"
#include "src/core/parallel.h"
#include "src/io/file.h"
#include "src/util/error.h"

namespace qat {

namespace {

// What names the teacher's bytes without reading them: its weights file's path, size and time.
uint64_t teacher_key(const std::string& teacher) {
  namespace fs = std::filesystem;
  const fs::path weights = fs::is_directory(teacher) ? fs::path(teacher) / "model.safetensors" : fs::path(teacher);
  std::error_code ec;
  const std::string canon = fs::weakly_canonical(weights, ec).string();
  const uint64_t size = fs::file_size(weights, ec);
  QAT_CHECK(!ec, "--data-free: cannot read the teacher ", weights.string(), ": ", ec.message());
  const int64_t time = int64_t(fs::last_write_time(weights, ec).time_since_epoch().count());
  uint64_t h = fnv1a64(canon.data(), canon.size());
  h = fnv1a64(&size, sizeof size, h);
  return fnv1a64(&time, sizeof time, h);
}

// The text of a sampled sequence as a corpus may hold it: byte-level tokens can end (or start) inside
// a UTF-8 character, and a NUL is refused by the corpus reader: such bytes are dropped, the rest kept.
std::string corpus_text(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const Utf8Unit u = next_utf8_unit(s, i);
    const bool invalid = u.cp == 0xFFFD && u.len == 1;  // a real U+FFFD is 3 bytes long
    if (!invalid && u.cp != 0) out.append(s, i, u.len);
    i += u.len;
  }
  return out;
}

// One sequence's sampler: temperature 1, nothing cut, its own seed.
SamplerConfig sequence_sampling(uint64_t seed, int64_t i) {
  SamplerConfig c;
  c.temperature = 1.0f;
  c.top_k = 0;
  c.top_p = 1.0f;
  c.seed = seed * 0x9e3779b97f4a7c15ull + uint64_t(i) + 1;
  return c;
}

}  // namespace

std::string data_free_corpus(const DataFreeSpec& spec, const std::string& cache_dir, bool quiet) {
  QAT_CHECK(spec.sequences >= 1, "--data-free: at least one sequence");
  uint64_t h = teacher_key(spec.teacher);
  for (uint64_t v : {uint64_t(spec.sequences), uint64_t(spec.length), spec.seed}) h = fnv1a64(&v, sizeof v, h);
  char name[64];
  std::snprintf(name, sizeof name, "data-free-%016llx.txt", (unsigned long long)h);
  const std::string path = cache_dir + "/" + name;
  if (file_exists(path)) return path;

  ModelSource src = open_model(spec.teacher);
  QAT_CHECK(!src.qat, "--data-free: ", spec.teacher, " is a QAT checkpoint; sample from the FP model it came from");
  // bin/train samples while it parses its arguments, before set_num_threads: OpenBLAS would still run its
  // own threads inside every token's sgemv (threaded, spinning against ours: 13 min for 2000 x 128 tokens
  // on a loaded 2-core host). The teacher's f32 matvecs take row chunks on our threads instead.
  blas_single_threaded();
  const DecodeModel model = decode_model_from_checkpoint(src.is_gguf() ? import_gguf(spec.teacher) : *src.checkpoint);
  const Vocab& tok = *src.tokenizer;
  const int64_t len = spec.length > 0 ? std::min(spec.length, model.cfg.context) : model.cfg.context;
  std::vector<int32_t> start = tok.encode_prompt("");
  if (start.empty()) start.push_back(tok.start_token());  // a model that adds no BOS: its start token
  QAT_CHECK(int64_t(start.size()) < len, "--data-free: sequences of ", len, " tokens leave no room to sample");

  DecodeSession session(model, len);
  std::string text;
  int64_t tokens = 0, empty = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double last = -1;
  for (int64_t i = 0; i < spec.sequences; i++) {
    session.reset();
    Sampler sampler(sequence_sampling(spec.seed, i));
    Tensor logits = session.forward(start.data(), int64_t(start.size()));
    std::vector<int32_t> ids;
    for (int64_t n = int64_t(start.size()); n < len; n++) {
      const int32_t id = sampler.sample(logits.f32(), model.cfg.vocab);
      if (tok.is_end(id)) break;
      ids.push_back(id);
      if (n + 1 < len) logits = session.forward(&id, 1);
    }
    tokens += int64_t(ids.size());
    std::string doc = corpus_text(tok.decode(ids));
    // A '%' line would cut the document in two; a document of nothing is none (the end came first).
    if (doc.find_first_not_of(" \t\r\n") == std::string::npos) {
      empty++;
      continue;
    }
    if (doc.back() != '\n') doc += '\n';
    text += doc;
    text += "%\n";
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!quiet && (s - last >= 1.0 || i + 1 == spec.sequences)) {
      std::fprintf(stderr, "\rdata-free: sampled %lld/%lld sequences from %s (%lld tokens, %.0f tok/s)   ",
                   (long long)(i + 1), (long long)spec.sequences, spec.teacher.c_str(), (long long)tokens,
                   double(tokens) / std::max(s, 1e-9));
      last = s;
    }
  }
  if (!quiet) std::fprintf(stderr, "\n");
  QAT_CHECK(!text.empty(), "--data-free: every sequence the teacher sampled ended at once (", empty, " of ",
            spec.sequences, "); nothing to train on");
  make_dirs(cache_dir);
  write_file_atomic(path, text);
  if (!quiet)
    std::fprintf(stderr, "data-free: %lld sequences, %lld tokens (%lld ended before their first token) -> %s\n",
                 (long long)(spec.sequences - empty), (long long)tokens, (long long)empty, path.c_str());
  return path;
}

}  // namespace qat
