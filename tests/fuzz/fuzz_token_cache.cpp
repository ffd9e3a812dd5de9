// libFuzzer target: the tokenized-data cache loader (data/dataset.cpp, load_or_tokenize) on hostile
// cache files (issue 8). The input is the cache file; its last byte, when the input is long enough,
// says which header fields the harness sets to the values this corpus and tokenizer expect, so that
// the fuzzer gets past them: bit 0 the magic and version, bit 1 the corpus hash, tokenizer fingerprint
// and vocab size, bit 2 the payload checksum. Invariants checked:
//  1. no crash, no UB, no leak, no read outside the file (ASan/UBSan);
//  2. a file it uses (from_cache) gives token ids in [0, vocab) and exactly the counts the file holds;
//  3. a file it rejects gives the fresh tokenization, and the rewritten cache file is then used as is.
// Build and run: make fuzz (docs/RELIABILITY.md).
#include <cstdint>
#include <cstring>
#include <string>

#include "data/corpus.h"
#include "data/dataset.h"
#include "data/tokenizer.h"
#include "src/io/file.h"
#include "tests/fuzz/fuzz_common.h"

using namespace qat;

namespace {
struct World {
  Corpus corpus;
  Tokenizer tok = Tokenizer::train({"x"}, 257);
  TokenizedData fresh;
  std::string dir, path;
  World() {
    corpus.train = {"the cat sat on the mat", "a dog's life \xe4\xb8\xad", "it rained all day"};
    corpus.val = {"the end"};
    corpus.source = "fuzz";
    tok = Tokenizer::train(corpus.train, 300);
    fresh.train = tokenize_split(corpus.train, tok);
    fresh.val = tokenize_split(corpus.val, tok);
    dir = fuzz_scratch("token-cache");
    make_dirs(dir);
    path = token_cache_path(corpus, tok, dir);
  }
};
const World& world() {
  static World w;
  return w;
}
constexpr size_t kHeader = 8 + 12 * 8;  // magic, 12 u64 fields
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const World& w = world();
  std::string file(reinterpret_cast<const char*>(data), size);
  if (size > kHeader) {
    uint8_t flags = uint8_t(file.back());
    file.pop_back();
    auto put = [&](size_t field, uint64_t v) { std::memcpy(&file[8 + field * 8], &v, 8); };
    if (flags & 1) {
      std::memcpy(&file[0], "QATTOKS\0", 8);
      put(0, 1);
    }
    if (flags & 2) {
      put(1, w.corpus.content_hash());
      put(2, w.tok.fingerprint());
      put(3, uint64_t(w.tok.vocab_size()));
    }
    if (flags & 4) put(10, fnv1a64(file.data() + kHeader, file.size() - kHeader));
  }
  write_file_atomic(w.path, file);
  TokenizedData d = load_or_tokenize(w.corpus, w.tok, w.dir);
  if (d.from_cache) {
    FUZZ_CHECK(d.cache_problem.empty(), "no problem reported for a used cache");
    FUZZ_CHECK(kHeader + 4 * (d.train.tokens.size() + d.val.tokens.size()) == file.size(), "counts match the file");
    for (const auto* s : {&d.train, &d.val})
      for (int32_t id : s->tokens) FUZZ_CHECK(id >= 0 && id < w.tok.vocab_size(), "id range");
    return 0;
  }
  FUZZ_CHECK(!d.cache_problem.empty(), "a rejected cache says why");
  FUZZ_CHECK(d.train.tokens == w.fresh.train.tokens && d.val.tokens == w.fresh.val.tokens &&
                 d.train.bytes == w.fresh.train.bytes && d.val.docs == w.fresh.val.docs,
             "a rejected cache gives the fresh tokenization");
  TokenizedData again = load_or_tokenize(w.corpus, w.tok, w.dir);
  FUZZ_CHECK(again.from_cache && again.train.tokens == w.fresh.train.tokens && again.val.tokens == w.fresh.val.tokens,
             "the rewritten cache is used");
  return 0;
}
