// `bench tokenizer`: BPE training and encoding speed at several vocab sizes on the Debian English corpus
// (tools/corpus/debian-english.sh; absent: the bench says how to make it and skips). Training reads the
// deterministic sample bin/train uses (data/bpe_sample.h, --train-mb); encoding runs data/encode_chunks.h
// (what bin/train's token cache runs) over --mb MB of the corpus at each thread count, in rounds.
// Goal of the issue: encoding >= 10 MB/s per thread at 32K. Read next: data/encode_chunks.h.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "data/bpe_sample.h"
#include "data/corpus.h"
#include "data/encode_chunks.h"
#include "data/text_files.h"
#include "data/tokenizer.h"
#include "src/io/file.h"
#include "src/util/cli.h"
#include "src/util/error.h"
#include "models/train/memory.h"
#include "tools/bench/bench.h"

namespace qat::bench {
namespace {

struct TokArgs {
  std::string corpus = "/tmp/qat-corpus/debian-english", vocab_list = "1024,8192,32768", thread_list = "1,2", goals_path;
  int64_t mb = 100, train_mb = 64, rounds = 3;
  bool quick = false;
};

// The corpus's documents ("%"-separated, one file per source) until `max_bytes` are read.
std::vector<std::string> read_corpus(const std::string& dir, uint64_t max_bytes) {
  std::vector<std::string> docs;
  uint64_t bytes = 0;
  for (const std::string& f : list_text_files(dir, false).files) {
    if (f.size() < 4 || f.substr(f.size() - 4) != ".txt") continue;
    for (std::string& d : split_documents(read_text_file(f), DocMode::percent)) {
      if (bytes >= max_bytes) return docs;
      bytes += d.size();
      docs.push_back(std::move(d));
    }
  }
  return docs;
}

// "1024,8192" -> {1024, 8192}; UsageError on anything but sizes in [257, 1048576] (Tokenizer::train's range).
std::vector<int> parse_vocabs(const std::string& list) {
  std::vector<int> v;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) {
    char* end = nullptr;
    const long n = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != 0 || n < 257 || n > (1 << 20))
      throw UsageError(str("--vocabs: expected vocab sizes in [257, 1048576] like 1024,8192, got '", list, "'"));
    v.push_back(int(n));
  }
  if (v.empty()) throw UsageError("--vocabs: expected at least one vocab size");
  return v;
}

}  // namespace

int bench_tokenizer(int argc, char** argv) {
  TokArgs a;
  ArgParser p("bench tokenizer", "BPE training and encoding MB/s at several vocab sizes on the Debian English corpus\n"
                                 "(make it with tools/corpus/debian-english.sh DIR), with the peak RSS.");
  p.option("--corpus", &a.corpus, "the corpus directory", "DIR");
  p.option("--vocabs", &a.vocab_list, "vocab sizes", "LIST");
  p.option("--threads", &a.thread_list, "thread counts for encoding", "LIST");
  p.option("--mb", &a.mb, "MB of the corpus to encode", 1, 1 << 20);
  p.option("--train-mb", &a.train_mb, "MB of BPE training sample (bin/train's default: 64)", 1, 1 << 20);
  p.option("--rounds", &a.rounds, "encoding rounds", 1, 1000);
  p.option("--goals", &a.goals_path, "append the goals (tab-separated) to this file, for `bench all`", "FILE");
  p.flag("--quick", &a.quick, "1 round, 16 MB encoded, 8 MB of training sample");
  if (!p.parse(argc, argv)) return 0;
  if (a.quick) {
    a.rounds = 1;
    a.mb = std::min<int64_t>(a.mb, 16);
    a.train_mb = std::min<int64_t>(a.train_mb, 8);
  }
  const std::vector<int> threads = parse_threads("--threads", a.thread_list), vocabs = parse_vocabs(a.vocab_list);
  if (!file_exists(a.corpus)) {
    std::printf("bench tokenizer: skipped: no corpus at %s (make it with tools/corpus/debian-english.sh %s)\n",
                a.corpus.c_str(), a.corpus.c_str());
    return 0;
  }
  const std::vector<std::string> docs = read_corpus(a.corpus, uint64_t(a.mb) * 1000000);
  const std::vector<std::string_view> views(docs.begin(), docs.end());
  uint64_t bytes = 0;
  for (const std::string& d : docs) bytes += d.size();
  const BpeSample sample = sample_for_bpe(docs, uint64_t(a.train_mb) * 1000000);
  std::printf("corpus: %s, %.1f MB in %zu documents; %s\n%s\n\n", a.corpus.c_str(), double(bytes) / 1e6, docs.size(),
              sample.sampled ? sample.note().c_str() : "BPE trained on all of it", machine_summary().c_str());
  std::printf("| vocab | BPE train s | train MB/s | threads | encode MB/s | spread | MB/s per thread | tokens/byte | peak RSS MB | note |\n"
              "|---|---|---|---|---|---|---|---|---|---|\n");
  std::vector<Goal> goals;
  ParallelCheck pc;
  for (int v : vocabs) {
    auto t0 = Clock::now();
    const Tokenizer tok = Tokenizer::train(sample.docs, v);
    const double train_s = seconds_since(t0);
    for (int th : threads) {
      if (th > 1) pc = parallel_check();  // right before each 2-thread row, as the other benchmarks
      std::vector<double> mbs;
      uint64_t n_tokens = 0;
      for (int64_t r = 0; r < a.rounds; r++) {
        n_tokens = 0;
        auto t1 = Clock::now();
        encode_documents(tok, views, true, kEncodeChunkBytes, th, [&](const std::vector<int32_t>& ids) { n_tokens += ids.size(); });
        mbs.push_back(double(bytes) / 1e6 / seconds_since(t1));
      }
      const Stats s = stats(mbs);
      const std::string note = th > 1 ? thread_note(th, pc) : "";
      const std::string row = str("| ", v, " | ", fmt("%.1f", train_s), " | ", fmt("%.2f", double(sample.bytes) / 1e6 / train_s), " | ", th,
                   " | ", fmt("%.1f", s.median), " | ", fmt("%.0f%%", s.spread() * 100), " | ", fmt("%.1f", s.median / th),
                   " | ", fmt("%.3f", double(n_tokens) / double(bytes)), " | ", fmt("%.0f", peak_rss_bytes() / double(1 << 20)), " | ", note, " |\n");
      std::printf("%s", row.c_str());
      std::fflush(stdout);
      if (v >= 32768 && v < 65536)
        goals.push_back({str("encode MB/s per thread at ", v / 1024, "K, ", th, " thr"), s.median / th, 10.0, false, note});
    }
  }
  std::printf("\nencode MB/s: median over rounds of the whole text (EOT after each document); spread = (max - min) / "
              "median; peak RSS: the process's maximum so far (corpus text included). The machine is shared: "
              "numbers are noisy.\n\nGoals:\n\n%s", goals_table(goals).c_str());
  append_goals(a.goals_path, goals);
  return 0;
}

}  // namespace qat::bench
