// Data-free QAT (LLM-QAT, Liu et al. 2023): when no text of a pretrained model's training distribution is
// at hand, the QAT corpus is sampled from the FP teacher itself, and QAT distills from that teacher on it
// (`bin/train --init M --distill M --qat q4_0 --data-free N`): the targets are the teacher's logits on
// text the teacher finds likely, so the quantized model is fitted where the FP model lives.
//
// N sequences, each from the model's start token(s) (ours: end-of-text; a pretrained model's: its BOS),
// sampled at temperature 1 with no top-k / top-p (the model's own distribution), until end-of-text or
// `length` tokens; seeded per sequence, so the corpus is a function of (teacher, N, length, seed). They
// are written as one fortune-format text file (documents between '%' lines) under the cache directory,
// named by a hash of that tuple and the teacher file's size and time, and reused when present (written
// atomically: a file that exists is whole). Read next: trainer.cpp (--distill), tools/train.cpp.
#pragma once
#include <cstdint>
#include <string>

namespace qat {

struct DataFreeSpec {
  std::string teacher;   // an FP32 checkpoint directory or a GGUF file (weights used as f32)
  int64_t sequences = 0;  // N
  int64_t length = 0;     // tokens per sequence at most, start tokens included (0: the teacher's context)
  uint64_t seed = 1337;
};

// The corpus file's path: found under cache_dir, or sampled now (a progress line on stderr unless
// quiet). Errors name the teacher (missing, a QAT checkpoint, unreadable).
std::string data_free_corpus(const DataFreeSpec& spec, const std::string& cache_dir, bool quiet);

}  // namespace qat
