// libFuzzer target: the tokenizer.json loader (Tokenizer::from_json) on hostile input (issue 8).
// Invariants checked:
//  1. it returns or throws qat::Error with a one-line message naming the file: no crash, no UB, no leak;
//  2. whatever it accepts is a working tokenizer: every token's bytes are readable, any byte string
//     (the input itself, and fixed samples) round-trips encode -> decode exactly, ids stay in range;
//  3. an accepted file re-serialized by to_json loads back to the same tokenizer (same fingerprint).
// Build and run: make fuzz (docs/RELIABILITY.md).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "src/util/error.h"
#include "tests/fuzz/fuzz_common.h"

using namespace qat;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::optional<Tokenizer> loaded;
  try {
    loaded = Tokenizer::from_json(text, "fuzz/tokenizer.json");
  } catch (const Error& e) {
    std::string m = e.what();
    FUZZ_CHECK(m.rfind("fuzz/tokenizer.json: ", 0) == 0, "the message names the file");
    FUZZ_CHECK(m.find('\n') == std::string::npos, "the message is one line");
    return 0;
  }
  const Tokenizer& t = *loaded;
  FUZZ_CHECK(t.vocab_size() >= 257 && t.eot_id() == t.vocab_size() - 1, "vocab and EOT id");
  size_t total = 0;
  for (int32_t id = 0; id < t.vocab_size(); id++) total += t.token_bytes(id).size();
  FUZZ_CHECK(total > 0, "token bytes");
  FUZZ_CHECK(t.gguf_tokens().size() == size_t(t.vocab_size()) && t.gguf_merges().size() == size_t(t.n_merges()),
             "GGUF views");
  for (std::string_view s : {text, std::string_view("hello world, it's 2024\n\xff\xfe\x00 <|endoftext|> \xe4\xb8\xad", 44)}) {
    std::vector<int32_t> ids = t.encode(s);
    for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < t.vocab_size() && id != t.eot_id(), "id range");
    FUZZ_CHECK(t.decode(ids) == s, "decode(encode(x)) == x");
  }
  Tokenizer again = [&] {
    try {
      return Tokenizer::from_json(t.to_json());
    } catch (const Error& e) {
      std::fprintf(stderr, "%s\n", e.what());
      FUZZ_CHECK(false, "an accepted tokenizer, re-serialized, must load");
    }
  }();
  FUZZ_CHECK(again.fingerprint() == t.fingerprint(), "to_json round trip");
  return 0;
}
