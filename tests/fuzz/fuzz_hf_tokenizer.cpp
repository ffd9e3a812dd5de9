// libFuzzer target: Hugging Face tokenizer.json (ModelVocab::from_hf_tokenizer_json), on arbitrary bytes
// written to a scratch directory. Invariants:
//  1. the loader returns or throws qat::Error with one line: no crash, no UB, no leak, and memory sized
//     by the tokens the file defines (ids past them are refused);
//  2. an accepted vocabulary encodes a fixed set of texts (special tokens written out included) under
//     every add_special / parse_special setting to ids in [0, V), and decodes them.
// Build and run: make fuzz (docs/RELIABILITY.md).
#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <vector>

#include "data/model_vocab.h"
#include "src/io/file.h"
#include "src/util/error.h"
#include "tests/fuzz/fuzz_common.h"

using namespace qat;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    std::string d = fuzz_scratch("hf_tokenizer");
    ::mkdir(d.c_str(), 0700);
    return d;
  }();
  const std::string path = dir + "/tokenizer.json";
  write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(data), size));
  ModelVocab v;
  try {
    v = ModelVocab::from_hf_tokenizer_json(path);
  } catch (const Error& e) {
    FUZZ_CHECK(std::string(e.what()).find('\n') == std::string::npos, "one-line message");
    return 0;
  }
  for (const char* text : {"", "hello world!\n", " <s>x</s> <|endoftext|>\xe2\x96\x81\xff", "a  b\t\tc 123 'll"})
    for (int mode = 0; mode < 4; mode++) {
      std::vector<int32_t> ids = v.encode(text, mode & 1, mode & 2);
      for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < v.vocab_size(), "ids in the vocabulary");
      v.decode(ids);
    }
  return 0;
}
