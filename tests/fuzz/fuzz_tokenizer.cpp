// libFuzzer target: the byte-level BPE tokenizer's encode / decode on arbitrary bytes (issue 8).
// Invariants checked, for a fixed tokenizer trained at start-up and for one trained on the input itself:
//  1. decode(encode(x)) == x, byte for byte: invalid UTF-8, NUL bytes, "<|endoftext|>" as text included;
//  2. every id is in [0, vocab) and never the end-of-text id (that text is encoded as plain text);
//  3. encode_append through a shared EncodeCache gives the ids encode gives (the cache is only a cache);
//  4. the tokenizer trained on the input survives to_json -> from_json: same fingerprint, same ids
//     (checked for the inputs whose first byte is a multiple of 8: the JSON round trip is slow).
// No crash, no UB, no leak (ASan/UBSan). Build and run: make fuzz (docs/RELIABILITY.md).
#include <cstdint>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "src/util/error.h"
#include "tests/fuzz/fuzz_common.h"

using namespace qat;

static const Tokenizer& fixed_tokenizer() {
  static const Tokenizer t = [] {
    std::vector<std::string> docs = {
        "The quick brown fox jumps over the lazy dog. The dog's 12 toys, 345 bones and 6789 sticks.",
        "  indented\tline\r\nwith CRLF and trailing spaces   ",
        "caf\xc3\xa9 na\xc3\xafve r\xc3\xa9sum\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 \xce\xb1\xce\xb2\xce\xb3",
        "it's I'm you're we've they'll he'd DON'T Won't",
        "<|endoftext|> is text here; so is <|endoftext|>.",
        "the the the the then them there these those thee"};
    return Tokenizer::train(docs, 400);
  }();
  return t;
}

static void round_trip(const Tokenizer& t, std::string_view text) {
  std::vector<int32_t> ids = t.encode(text);
  for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < t.vocab_size() && id != t.eot_id(), "id range");
  FUZZ_CHECK(t.decode(ids) == text, "decode(encode(x)) == x");
  std::vector<int32_t> cached;
  EncodeCache cache;
  t.encode_append(text, cached, &cache);
  t.encode_append(text, cached, &cache);  // second time from the cache
  FUZZ_CHECK(cached.size() == 2 * ids.size() && std::equal(ids.begin(), ids.end(), cached.begin()) &&
                 std::equal(ids.begin(), ids.end(), cached.begin() + ptrdiff_t(ids.size())),
             "the encode cache changes nothing");
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  round_trip(fixed_tokenizer(), text);
  if (size == 0 || size > 512) return 0;
  // A tokenizer learned from the input (documents at '\n'): merges of whatever bytes the fuzzer made.
  std::vector<std::string> docs;
  for (size_t pos = 0; pos <= size;) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = size;
    docs.emplace_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  const int vocab = 257 + int(data[0] % 64);
  Tokenizer t = Tokenizer::train(docs, vocab);
  FUZZ_CHECK(t.vocab_size() >= 257 && t.vocab_size() <= vocab, "trained vocab size");
  round_trip(t, text);
  // The tokenizer.json round trip costs ~10x the rest (the loader has its own target): one input in 8.
  if (data[0] % 8 != 0) return 0;
  Tokenizer again = [&] {
    try {
      return Tokenizer::from_json(t.to_json());
    } catch (const Error& e) {
      std::fprintf(stderr, "%s\n", e.what());
      FUZZ_CHECK(false, "a trained tokenizer's tokenizer.json must load");
    }
  }();
  FUZZ_CHECK(again.fingerprint() == t.fingerprint() && again.encode(text) == t.encode(text), "tokenizer.json round trip");
  return 0;
}
