// Tokenization at scale: the safe cuts of data/encode_chunks.h really leave the pre-tokenizer's pieces
// unchanged (checked at every position of texts built from tricky fragments), chunked and parallel
// encoding equals encoding each document whole (1 and 2 threads, chunk sizes from 1 byte up), and the
// deterministic sample of the BPE training text, and the token cache written while encoding and read by
// mmap. Code under test: data/encode_chunks.h, data/bpe_sample.h, data/dataset.h.
#include <algorithm>
#include <random>

#include <unistd.h>

#include "data/bpe_sample.h"
#include "data/corpus.h"
#include "data/dataset.h"
#include "data/encode_chunks.h"
#include "data/pretokenize.h"
#include "data/tokenizer.h"
#include "src/io/file.h"
#include "tests/helpers.h"

using namespace qat;

namespace {

// Text with every kind of line break the pre-tokenizer treats specially: runs of spaces and newlines,
// CRLF, tabs, contractions at line ends, non-ASCII letters and spaces (U+00A0, U+3000) around '\n'.
std::string tricky_text(uint64_t seed, size_t n_fragments) {
  static const char* frags[] = {"the", " cat", "'s", "'re", "\n", "\n\n", "  ", " ", "\t", "\r\n", "123", "!!",
                                "é", "日本", "\xc2\xa0", "\xe3\x80\x80", "'", "x", ".\n", "?", "\n  ", "ll"};
  std::mt19937_64 rng(seed);
  std::string s;
  for (size_t i = 0; i < n_fragments; i++) s += frags[rng() % (sizeof frags / sizeof *frags)];
  return s;
}

std::vector<std::string> pieces(std::string_view s) {
  std::vector<std::string> out;
  for (std::string_view p : pretokenize(s)) out.emplace_back(p);
  return out;
}

std::vector<int32_t> encode_chunked(const Tokenizer& tok, const std::vector<std::string>& docs, size_t chunk, int threads) {
  std::vector<std::string_view> views(docs.begin(), docs.end());
  std::vector<int32_t> out;
  encode_documents(tok, views, true, chunk, threads, [&](const std::vector<int32_t>& ids) { out.insert(out.end(), ids.begin(), ids.end()); });
  return out;
}

}  // namespace

TEST_CASE("a safe cut leaves the pre-tokenizer's pieces unchanged", "[tokenizer_scale]") {
  int cuts = 0;
  for (uint64_t seed = 1; seed <= 40; seed++) {
    const std::string s = tricky_text(seed, 60);
    const std::vector<std::string> whole = pieces(s);
    for (size_t p = 0; p <= s.size(); p++) {
      if (!is_safe_cut(s, p)) continue;
      cuts++;
      std::vector<std::string> split = pieces(std::string_view(s).substr(0, p));
      for (const std::string& q : pieces(std::string_view(s).substr(p))) split.push_back(q);
      INFO("seed " << seed << " cut at " << p);
      REQUIRE(split == whole);
    }
  }
  CHECK(cuts > 50);   // the texts do offer safe cuts: the check above is not vacuous
  CHECK(!is_safe_cut("a \nb", 3));   // a space before the newline would join the run " \n"
  CHECK(!is_safe_cut("a\n\nb", 2));  // "\n\n" is one run
  CHECK(!is_safe_cut("a\n b", 2));   // " b" would take the space
  CHECK(is_safe_cut("a\nb", 2));
}

TEST_CASE("chunked, parallel encoding equals encoding each document whole", "[tokenizer_scale]") {
  std::vector<std::string> docs;
  for (uint64_t seed = 100; seed < 130; seed++) docs.push_back(tricky_text(seed, seed % 7 == 0 ? 2000 : 40));
  const Tokenizer tok = Tokenizer::train(docs, 400);
  std::vector<int32_t> whole;
  for (const std::string& d : docs) {
    std::vector<int32_t> ids = tok.encode(d);
    whole.insert(whole.end(), ids.begin(), ids.end());
    whole.push_back(tok.eot_id());
  }
  for (int threads : {1, 2})
    for (size_t chunk : {size_t(1), size_t(7), size_t(64), size_t(1000), kEncodeChunkBytes}) {
      INFO("threads " << threads << ", chunk " << chunk);
      CHECK(encode_chunked(tok, docs, chunk, threads) == whole);
    }
  // The parts of a long text concatenate to it and are cut only at safe cuts.
  const std::string& big = docs[0];
  std::string joined;
  for (std::string_view part : split_at_safe_cuts(big, 50)) {
    if (!joined.empty()) CHECK(is_safe_cut(big, joined.size()));
    joined += part;
  }
  CHECK(joined == big);
}

TEST_CASE("the BPE training sample is deterministic and about the size asked", "[tokenizer_scale]") {
  std::vector<std::string> docs;
  for (uint64_t seed = 1; seed <= 300; seed++) docs.push_back(tricky_text(seed, 200));
  docs.push_back(tricky_text(999, 100000));  // a long document: sampled by blocks
  BpeSample all = sample_for_bpe(docs, uint64_t(1) << 40);
  CHECK(!all.sampled);
  CHECK(all.docs == docs);
  const uint64_t want = all.total_bytes / 4;
  BpeSample a = sample_for_bpe(docs, want), b = sample_for_bpe(docs, want);
  CHECK(a.sampled);
  CHECK(a.docs == b.docs);
  CHECK(a.bytes > want / 2);
  CHECK(a.bytes < want * 2);
  // Order-independent: the kept text does not depend on the order of the documents.
  std::vector<std::string> reversed(docs.rbegin(), docs.rend());
  BpeSample r = sample_for_bpe(reversed, want);
  std::vector<std::string> x = a.docs, y = r.docs;
  std::sort(x.begin(), x.end());
  std::sort(y.begin(), y.end());
  CHECK(x == y);
  CHECK(a.note().find("sample") != std::string::npos);
}

TEST_CASE("the token cache is written while encoding, in the old format, and read by mmap", "[tokenizer_scale]") {
  const std::string dir = "/tmp/qat-test-tokscale-" + std::to_string(::getpid());
  remove_tree(dir);
  make_dirs(dir);
  for (bool stream : {false, true}) {
    Corpus c;
    for (uint64_t seed = 1; seed <= 60; seed++) (is_val_document(tricky_text(seed, 80)) ? c.val : c.train).push_back(tricky_text(seed, 80));
    if (c.val.empty()) c.val.push_back(c.train.back()), c.train.pop_back();
    c.mode = stream ? DocMode::none : DocMode::percent;
    const Tokenizer tok = Tokenizer::train(c.train, 320);
    // The expected file, built from in-memory encoding the way the whole-file writer did.
    const TokenizedSplit tr = tokenize_split(c.train, tok, !stream), va = tokenize_split(c.val, tok, !stream);
    std::string_view trb(reinterpret_cast<const char*>(tr.tokens.data()), tr.tokens.size() * 4);
    std::string_view vab(reinterpret_cast<const char*>(va.tokens.data()), va.tokens.size() * 4);
    const uint64_t h[12] = {1, c.content_hash(), tok.fingerprint(), uint64_t(tok.vocab_size()), tr.tokens.size(), tr.bytes,
                            tr.docs, va.tokens.size(), va.bytes, va.docs, fnv1a64(vab.data(), vab.size(), fnv1a64(trb.data(), trb.size())), 0};
    const std::string expected = std::string("QATTOKS\0", 8) + std::string(reinterpret_cast<const char*>(h), sizeof h) +
                                 std::string(trb) + std::string(vab);
    TokenizedData first = load_or_tokenize(c, tok, dir);
    INFO("stream " << stream);
    CHECK(!first.from_cache);
    CHECK(read_file(first.cache_path) == expected);
    CHECK((first.train.tokens.mapped() && first.val.tokens.mapped()));
    CHECK(first.train.tokens == tr.tokens);
    CHECK(first.val.tokens == va.tokens);
    TokenizedData again = load_or_tokenize(c, tok, dir);
    CHECK(again.from_cache);
    CHECK(again.train.tokens.mapped());
    CHECK(again.train.tokens == tr.tokens);
    CHECK(again.val.tokens == va.tokens);
    CHECK(again.train.bytes == tr.bytes);
    CHECK(again.val.docs == va.docs);
    TokenizedData nocache = load_or_tokenize(c, tok, "");
    CHECK(!nocache.train.tokens.mapped());
    CHECK(nocache.train.tokens == tr.tokens);
  }
  remove_tree(dir);
}
