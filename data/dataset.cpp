// Tokenizing the corpus and the token cache file. Format (host byte order, i.e. little-endian on the
// CPUs we build for): "QATTOKS\0", then 12 u64: version | corpus hash | tokenizer fingerprint | vocab
// size | train tokens, bytes, docs | val tokens, bytes, docs | FNV-1a 64 of the payload | 0 (reserved);
// then the payload: train tokens, then val tokens, int32 each.
// Read next: data/corpus.h.
#include "data/dataset.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "src/io/file.h"
#include "src/util/error.h"

namespace qat {
namespace {

constexpr char kMagic[8] = {'Q', 'A', 'T', 'T', 'O', 'K', 'S', '\0'};
constexpr uint64_t kVersion = 1;
constexpr size_t kHeaderWords = 12;  // u64 fields after the magic
constexpr size_t kHeaderBytes = sizeof(kMagic) + kHeaderWords * 8;

enum Field { kVer, kCorpus, kTok, kVocab, kTrainN, kTrainBytes, kTrainDocs, kValN, kValBytes, kValDocs, kSum, kReserved };

// Reads the cache file; returns an empty string when it is valid, else why not.
std::string read_cache(const std::string& path, uint64_t corpus_hash, const Tokenizer& tok, TokenizedData& out) {
  std::string data;
  try {
    data = read_file(path, uint64_t(1) << 36);
  } catch (const Error& e) {
    return e.what();
  }
  if (data.size() < kHeaderBytes) return "shorter than its header";
  if (std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) return "bad magic";
  uint64_t h[kHeaderWords];
  std::memcpy(h, data.data() + sizeof kMagic, sizeof h);
  if (h[kVer] != kVersion) return "version " + std::to_string(h[kVer]) + ", expected " + std::to_string(kVersion);
  if (h[kCorpus] != corpus_hash || h[kTok] != tok.fingerprint() || h[kVocab] != uint64_t(tok.vocab_size()))
    return "made for another corpus or tokenizer";
  const uint64_t payload = data.size() - kHeaderBytes;
  // Counts are checked against the real size before any multiplication can overflow.
  if (h[kTrainN] > payload / 4 || h[kValN] > payload / 4 || (h[kTrainN] + h[kValN]) * 4 != payload)
    return "token counts do not match the file size";
  const char* p = data.data() + kHeaderBytes;
  if (fnv1a64(p, payload) != h[kSum]) return "checksum mismatch";
  auto fill = [&](TokenizedSplit& s, uint64_t n, uint64_t bytes, uint64_t docs, const char* src) {
    s.tokens.resize(n);
    if (n) std::memcpy(s.tokens.data(), src, n * 4);  // an empty split: data() may be null (UB in memcpy)
    s.bytes = bytes;
    s.docs = docs;
  };
  fill(out.train, h[kTrainN], h[kTrainBytes], h[kTrainDocs], p);
  fill(out.val, h[kValN], h[kValBytes], h[kValDocs], p + h[kTrainN] * 4);
  for (const auto* s : {&out.train, &out.val})
    for (int32_t id : s->tokens)
      if (id < 0 || id >= tok.vocab_size()) return "token id " + std::to_string(id) + " out of range";
  return "";
}

void write_cache(const std::string& path, uint64_t corpus_hash, const Tokenizer& tok, const TokenizedData& d) {
  std::string_view train(reinterpret_cast<const char*>(d.train.tokens.data()), d.train.tokens.size() * 4);
  std::string_view val(reinterpret_cast<const char*>(d.val.tokens.data()), d.val.tokens.size() * 4);
  uint64_t h[kHeaderWords] = {};
  h[kVer] = kVersion;
  h[kCorpus] = corpus_hash;
  h[kTok] = tok.fingerprint();
  h[kVocab] = uint64_t(tok.vocab_size());
  h[kTrainN] = d.train.tokens.size();
  h[kTrainBytes] = d.train.bytes;
  h[kTrainDocs] = d.train.docs;
  h[kValN] = d.val.tokens.size();
  h[kValBytes] = d.val.bytes;
  h[kValDocs] = d.val.docs;
  h[kSum] = fnv1a64(val.data(), val.size(), fnv1a64(train.data(), train.size()));
  std::string header(kMagic, sizeof kMagic);
  header.append(reinterpret_cast<const char*>(h), sizeof h);
  write_file_atomic(path, {header, train, val});
}

}  // namespace

TokenizedSplit tokenize_split(const std::vector<std::string>& docs, const Tokenizer& tok, bool eot) {
  TokenizedSplit s;
  EncodeCache cache;
  for (const std::string& d : docs) {
    tok.encode_append(d, s.tokens, &cache);
    if (eot) s.tokens.push_back(tok.eot_id());
    s.bytes += d.size();
  }
  s.docs = docs.size();
  return s;
}

std::string token_cache_path(const Corpus& corpus, const Tokenizer& tok, const std::string& cache_dir) {
  uint64_t key[2] = {corpus.content_hash(), tok.fingerprint()};
  char name[48];
  std::snprintf(name, sizeof name, "tokens-%016" PRIx64 ".bin", fnv1a64(key, sizeof key));
  return cache_dir + "/" + name;
}

TokenizedData load_or_tokenize(const Corpus& corpus, const Tokenizer& tok, const std::string& cache_dir) {
  TokenizedData d;
  const uint64_t corpus_hash = corpus.content_hash();
  if (!cache_dir.empty()) {
    remove_stale_temp_files(cache_dir);  // left by a run killed while writing its cache
    d.cache_path = token_cache_path(corpus, tok, cache_dir);
    if (file_exists(d.cache_path)) {
      d.cache_problem = read_cache(d.cache_path, corpus_hash, tok, d);
      if (d.cache_problem.empty()) {
        d.from_cache = true;
        return d;
      }
      std::fprintf(stderr, "warning: token cache %s is unusable (%s); re-tokenizing\n", d.cache_path.c_str(),
                   d.cache_problem.c_str());
    }
  }
  d.train = tokenize_split(corpus.train, tok, !corpus.stream());
  d.val = tokenize_split(corpus.val, tok, !corpus.stream());
  if (!cache_dir.empty()) {
    try {  // the cache only saves time: failing to write it is not a reason to stop
      make_dirs(cache_dir);
      write_cache(d.cache_path, corpus_hash, tok, d);
    } catch (const Error& e) {
      std::fprintf(stderr, "warning: token cache not written: %s\n", e.what());
    }
  }
  return d;
}

}  // namespace qat
