// Tokenizing the corpus and the token cache file. Format (host byte order, i.e. little-endian on the
// CPUs we build for): "QATTOKS\0", then 12 u64: version | corpus hash | tokenizer fingerprint | vocab
// size | train tokens, bytes, docs | val tokens, bytes, docs | FNV-1a 64 of the payload | 0 (reserved);
// then the payload: train tokens, then val tokens, int32 each. Written in one pass while encoding
// (the header last) and read by mmap.
// Read next: data/corpus.h.
#include "data/dataset.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "data/encode_chunks.h"
#include "src/io/file.h"
#include "src/io/mapped_file.h"
#include "src/util/error.h"

namespace qat {
namespace {

constexpr char kMagic[8] = {'Q', 'A', 'T', 'T', 'O', 'K', 'S', '\0'};
constexpr uint64_t kVersion = 1;
constexpr size_t kHeaderWords = 12;  // u64 fields after the magic
constexpr size_t kHeaderBytes = sizeof(kMagic) + kHeaderWords * 8;

enum Field { kVer, kCorpus, kTok, kVocab, kTrainN, kTrainBytes, kTrainDocs, kValN, kValBytes, kValDocs, kSum, kReserved };

// Maps the cache file; returns an empty string when it is valid (out's arrays then view the mapping),
// else why not.
std::string read_cache(const std::string& path, uint64_t corpus_hash, const Vocab& tok, TokenizedData& out) {
  std::shared_ptr<Bytes> file;
  try {
    file = Bytes::map_file(path);
  } catch (const Error& e) {
    return e.what();
  }
  const std::string_view data = file->view();
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
  // The payload starts at byte 104 of a page-aligned mapping: int32-aligned.
  const auto* ids = reinterpret_cast<const int32_t*>(p);
  for (uint64_t i = 0; i < h[kTrainN] + h[kValN]; i++)
    if (ids[i] < 0 || ids[i] >= tok.vocab_size()) return "token id " + std::to_string(ids[i]) + " out of range";
  out.train = {TokenArray(file, ids, size_t(h[kTrainN]), true), h[kTrainBytes], h[kTrainDocs]};
  out.val = {TokenArray(file, ids + h[kTrainN], size_t(h[kValN]), true), h[kValBytes], h[kValDocs]};
  return "";
}

// Encodes `docs` into `w` (appending int32 ids); adds the ids' count to *n and updates the checksum.
void encode_into(AtomicWriter& w, const std::vector<std::string>& docs, const Vocab& tok, bool eot, uint64_t* n,
                 uint64_t* sum) {
  std::vector<std::string_view> views(docs.begin(), docs.end());
  encode_documents(tok, views, eot, kEncodeChunkBytes, 0, [&](const std::vector<int32_t>& ids) {
    std::string_view bytes(reinterpret_cast<const char*>(ids.data()), ids.size() * 4);
    w.write(bytes);
    *sum = fnv1a64(bytes.data(), bytes.size(), *sum);
    *n += ids.size();
  });
}

// Tokenizes the corpus straight into the cache file: a placeholder header, the train ids, the val ids,
// then the header with the counts and checksum. Only the ids of one group of chunks are in memory.
void write_cache(const std::string& path, const Corpus& corpus, const Vocab& tok) {
  AtomicWriter w(path);
  w.write(std::string(kHeaderBytes, '\0'));
  uint64_t h[kHeaderWords] = {};
  h[kSum] = fnv1a64(nullptr, 0);
  encode_into(w, corpus.train, tok, !corpus.stream(), &h[kTrainN], &h[kSum]);
  encode_into(w, corpus.val, tok, !corpus.stream(), &h[kValN], &h[kSum]);
  h[kVer] = kVersion;
  h[kCorpus] = corpus.content_hash();
  h[kTok] = tok.fingerprint();
  h[kVocab] = uint64_t(tok.vocab_size());
  h[kTrainBytes] = corpus.train_bytes();
  h[kTrainDocs] = corpus.train.size();
  h[kValBytes] = corpus.val_bytes();
  h[kValDocs] = corpus.val.size();
  std::string header(kMagic, sizeof kMagic);
  header.append(reinterpret_cast<const char*>(h), sizeof h);
  w.write_at(0, header);
  w.commit();
}

}  // namespace

TokenizedSplit tokenize_split(const std::vector<std::string>& docs, const Vocab& tok, bool eot) {
  TokenizedSplit s;
  std::vector<int32_t> tokens;
  std::vector<std::string_view> views(docs.begin(), docs.end());
  encode_documents(tok, views, eot, kEncodeChunkBytes, 0,
                   [&](const std::vector<int32_t>& ids) { tokens.insert(tokens.end(), ids.begin(), ids.end()); });
  s.tokens = std::move(tokens);
  for (const std::string& d : docs) s.bytes += d.size();
  s.docs = docs.size();
  return s;
}

std::string token_cache_path(const Corpus& corpus, const Vocab& tok, const std::string& cache_dir) {
  uint64_t key[2] = {corpus.content_hash(), tok.fingerprint()};
  char name[48];
  std::snprintf(name, sizeof name, "tokens-%016" PRIx64 ".bin", fnv1a64(key, sizeof key));
  return cache_dir + "/" + name;
}

TokenizedData load_or_tokenize(const Corpus& corpus, const Vocab& tok, const std::string& cache_dir) {
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
    try {  // the cache only saves time: failing to write it is not a reason to stop
      make_dirs(cache_dir);
      write_cache(d.cache_path, corpus, tok);
      const std::string problem = read_cache(d.cache_path, corpus_hash, tok, d);
      if (problem.empty()) return d;
      std::fprintf(stderr, "warning: token cache %s just written is unusable (%s)\n", d.cache_path.c_str(), problem.c_str());
    } catch (const Error& e) {
      std::fprintf(stderr, "warning: token cache not written: %s\n", e.what());
    }
  }
  d.train = tokenize_split(corpus.train, tok, !corpus.stream());
  d.val = tokenize_split(corpus.val, tok, !corpus.stream());
  return d;
}

}  // namespace qat
