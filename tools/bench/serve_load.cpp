// `bench serve-load`: bin/serve under load, as its users load it. The bench writes random-weight q4_0
// GGUF files (the `base` preset, and a 309M-parameter DRAM-bound shape: 24 layers, C 1024, F 2816, the
// shape of docs/MEMORY.md's m300 file), starts bin/serve on loopback, and drives 1, 4, 16 and 64
// concurrent *streaming* clients (threads of this process, cpp-httplib's client, one request each, all
// sent at once): aggregate generated tokens/s, p50 / p99 time to first token and inter-token latency.
// llama-server of a llama.cpp build (--llama-server PATH, or $LLAMA_CPP/bin/llama-server) runs the same
// client on the same files. Goals of issue 21: 16 clients >= 4x one client's aggregate tokens/s; p99
// inter-token latency at 16 clients <= 3x one client's. Read next: tools/serve.cpp, models/serve_engine.h.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <latch>
#include <nlohmann/json.hpp>
#include <thread>

#include "models/gguf_model.h"
#include "models/quantized.h"
#include "models/transformer.h"
#include "src/core/rng.h"
#include "src/io/file.h"
#include "src/util/cli.h"
#include "src/util/error.h"
#include "tools/bench/bench.h"

namespace qat::bench {
namespace {

using json = nlohmann::json;

struct LoadArgs : ModelBenchArgs {
  std::string shapes = "base,300m", clients_list = "1,4,16,64", llama_server, tmp_dir = "/tmp";
  int64_t tokens = 64, prompt_words = 12, rounds = 3;
  double timeout = 300;  // seconds a client waits for the server's next bytes
  std::vector<int> clients;
  LoadArgs() { thread_list = "2"; }
};

bool parse_load_args(int argc, char** argv, LoadArgs* a) {
  ArgParser p("bench serve-load", "bin/serve on loopback under 1, 4, 16, 64 concurrent streaming clients: aggregate tokens/s,\n"
                                  "p50/p99 time to first token and inter-token latency; llama-server beside it when found\n"
                                  "(--llama-server PATH or $LLAMA_CPP/bin/llama-server). Random-weight q4_0 GGUF models.");
  a->declare(p, "clients 1,4,16,64 at 16 tokens each", false);
  p.option("--shapes", &a->shapes, "models: base (the preset) and/or 300m (24 layers, C 1024, F 2816: DRAM-bound)", "LIST");
  p.option("--clients", &a->clients_list, "concurrent client counts (the goals need 1 and 16)", "LIST");
  p.option("--tokens", &a->tokens, "tokens each client asks for (ignore_eos)", 2, 200);
  p.option("--rounds", &a->rounds, "rounds of every client level on one server (the table takes medians, the goals the median of each round's ratio)", 1, 100);
  p.option("--prompt-words", &a->prompt_words, "words in each client's prompt (random, distinct per client)", 1, 100);
  p.option("--timeout", &a->timeout, "seconds a client waits for the server's next bytes before it fails", 1.0, 3600.0);
  p.option("--llama-server", &a->llama_server, "llama.cpp's llama-server binary (default: $LLAMA_CPP/bin/llama-server)", "PATH");
  p.option("--tmp", &a->tmp_dir, "directory for the GGUF files (removed after)", "DIR");
  if (!p.parse(argc, argv)) return false;
  a->resolve();
  try {
    a->clients = parse_threads("--clients", a->clients_list);
  } catch (const UsageError&) {
    throw UsageError(str("--clients: expected client counts like 1,4,16,64, got '", a->clients_list, "'"));
  }
  if (a->quick) a->tokens = std::min<int64_t>(a->tokens, 16), a->rounds = 1;
  for (const std::string& s : split(a->shapes, ','))
    if (s != "base" && s != "300m") throw UsageError(str("--shapes: expected base and/or 300m, got '", s, "'"));
  if (a->llama_server.empty() && std::getenv("LLAMA_CPP") && *std::getenv("LLAMA_CPP"))
    a->llama_server = str(std::getenv("LLAMA_CPP"), "/bin/llama-server");
  return true;
}

// The model of a shape name: `base`, or the 309M DRAM-bound shape (166 MiB of q4_0 weights per token).
ModelConfig shape_config(const std::string& name) {
  ModelConfig c = ModelConfig::preset_named("base");
  if (name == "300m") {
    c.n_layers = 24, c.d_model = 1024, c.n_heads = 16, c.n_kv_heads = 16, c.ffn = 2816, c.context = 256, c.vocab = 1024;
    c.preset = "300m";
  }
  return c;
}

// Random FP32 weights, PTQ'd to q4_0 by the ggml rule, written as bin/quantize writes GGUF.
void write_random_q4_0(const ModelConfig& cfg, const std::string& path) {
  Transformer t(cfg, nullptr, Transformer::Frozen{});  // weights only: no gradient buffer
  t.init_weights(1337);
  write_gguf_model(path, quantized_from_ptq(t, QatConfig::make("q4_0", "", cfg.n_layers, cfg.tied), "minmax"),
                   bench_tokenizer(int(cfg.vocab)));
}

// ---- server processes ----

// A child process whose stdout and stderr go to `log`; killed (SIGTERM, then SIGKILL) when destroyed.
class ServerProc {
 public:
  ServerProc(const std::vector<std::string>& args, std::string log)
      : log_(std::move(log)), pid_(spawn_child(args, log_, "", false, "bench serve-load")) {}
  ~ServerProc() { stop(); }
  ServerProc(const ServerProc&) = delete;
  ServerProc& operator=(const ServerProc&) = delete;
  bool exited() {
    if (pid_ <= 0) return true;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) != pid_) return false;
    pid_ = -1;
    return true;
  }
  void stop() {
    if (exited()) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 300 && !exited(); i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!exited()) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  std::string log_tail() const {
    const std::string s = file_exists(log_) ? read_file(log_) : "";
    return s.substr(s.size() > 600 ? s.size() - 600 : 0);
  }
  const std::string& log() const { return log_; }

 private:
  std::string log_;  // before pid_: the constructor spawns into it
  pid_t pid_ = -1;
};

// A port that was free a moment ago (llama-server needs a number; bin/serve takes --port 0).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  const bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  if (fd >= 0) ::close(fd);
  QAT_CHECK(ok, "bench serve-load: cannot find a free port on 127.0.0.1");
  return ntohs(a.sin_port);
}

// Waits until GET /health answers 200 (both servers answer 503 while loading); the port of bin/serve
// is read from its "listening on" line first.
int wait_ready(ServerProc& s, int port, const std::string& name) {
  for (double t = 0; t < 300; t += 0.05) {
    QAT_CHECK(!s.exited(), "bench serve-load: ", name, " exited: ", s.log_tail());
    if (port == 0) {
      const std::string log = read_file(s.log()), key = "listening on http://127.0.0.1:";
      if (log.find(key) != std::string::npos) port = std::atoi(log.c_str() + log.find(key) + key.size());
    }
    if (port > 0) {
      httplib::Client cli("127.0.0.1", port);
      cli.set_connection_timeout(1);
      auto r = cli.Get("/health");
      if (r && r->status == 200) return port;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  fail("bench serve-load: ", name, " was not ready after 300 s: ", s.log_tail());
}

// ---- the client ----

// What one streaming request saw: seconds from its send to the first token, and between tokens.
struct ClientRun {
  double ttft = -1, end = 0;
  std::vector<double> itl;
  int64_t tokens = 0;  // usage.completion_tokens of the last chunk, else the token events
  int retries = 0;     // connections that failed before any token, sent again
  std::string error;
};

// One streamed completion: a token is a server-sent event whose choices[0].text is not empty (a token
// that ends inside a UTF-8 character arrives with the next one: one gap counts both).
ClientRun stream_one(int port, const std::string& body, double timeout, Clock::time_point t0) {
  ClientRun run;
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(time_t(timeout));
  std::string buf;
  double last = 0;
  int64_t events = 0;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body;
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buf.append(data, n);
    for (size_t at; (at = buf.find("\n\n")) != std::string::npos; buf.erase(0, at + 2)) {
      const std::string ev = buf.substr(0, at);
      if (ev.rfind("data: ", 0) != 0 || ev == "data: [DONE]") continue;
      const json j = json::parse(ev.substr(6), nullptr, false);
      if (j.is_discarded() || !j.contains("choices")) {
        run.error = "bad event: " + ev.substr(0, 200);
        return false;
      }
      if (j.contains("usage")) run.tokens = j["usage"].value("completion_tokens", int64_t(0));
      const json& c = j["choices"][0];
      if (!c.contains("text") || !c["text"].is_string() || c["text"].get<std::string>().empty()) continue;
      const double t = seconds_since(t0);
      if (events++ == 0) run.ttft = t;
      else run.itl.push_back(t - last);
      last = t;
    }
    return true;
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  if (!cli.send(req, res, err) && run.error.empty())
    run.error = str(httplib::to_string(err), " after ", seconds_since(t0), " s and ", events, " tokens");
  if (run.error.empty() && res.status != 200) run.error = str("HTTP ", res.status, ": ", res.body.substr(0, 200));
  if (run.tokens == 0) run.tokens = events;
  run.end = seconds_since(t0);
  return run;
}

// Random lowercase words: a prompt of its own per client (no server can reuse another's prefix).
std::string prompt_words(uint64_t seed, int64_t words) {
  Rng rng(seed);
  std::string s;
  for (int64_t w = 0; w < words; w++) {
    const int len = 2 + int(rng.below(7));
    for (int i = 0; i < len; i++) s += char('a' + rng.below(26));
    s += w + 1 < words ? " " : "";
  }
  return s;
}

// Nearest-rank percentile (p in (0, 1]) of v, in milliseconds; 0 for no samples.
double pct_ms(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t k = size_t(std::ceil(p * double(v.size())));
  return v[std::min(v.size(), std::max<size_t>(k, 1)) - 1] * 1e3;
}

// One load level: n clients, each one streaming request, sent together.
struct Level {
  int clients = 0, retries = 0;
  int64_t tokens = 0;
  double seconds = 0, tok_s = 0, ttft50 = 0, ttft99 = 0, itl50 = 0, itl99 = 0;
  std::vector<Level> rounds;  // a level of several rounds: each round's figures (the fields are their medians)
};

// Rounds of one level -> their medians (tokens and clients are the same in every round; retries add up).
Level median_level(std::vector<Level> rs) {
  Level m = rs[0];
  auto med = [&](double Level::*f) {
    std::vector<double> v;
    for (const Level& r : rs) v.push_back(r.*f);
    return median(v);
  };
  m.seconds = med(&Level::seconds), m.tok_s = med(&Level::tok_s), m.ttft50 = med(&Level::ttft50);
  m.ttft99 = med(&Level::ttft99), m.itl50 = med(&Level::itl50), m.itl99 = med(&Level::itl99);
  m.retries = 0;
  for (const Level& r : rs) m.retries += r.retries;
  m.rounds = std::move(rs);
  return m;
}

// The median over rounds of a per-round ratio num.f / den.f (the rounds of two levels of one server pair up).
double median_ratio(const Level& num, const Level& den, double Level::*f) {
  std::vector<double> v;
  for (size_t r = 0; r < num.rounds.size() && r < den.rounds.size(); r++) v.push_back(num.rounds[r].*f / den.rounds[r].*f);
  return v.empty() ? num.*f / den.*f : median(v);
}

// "54.7-61.0": the range of a level's aggregate tokens/s over its rounds.
std::string tok_range(const Level& l) {
  std::vector<double> v{l.tok_s};
  for (const Level& r : l.rounds) v.push_back(r.tok_s);
  const Stats st = stats(v);
  return fmt("%.1f", st.min) + "-" + fmt("%.1f", st.max);
}

Level run_level(int port, int n, const LoadArgs& a, uint64_t salt) {
  std::vector<ClientRun> runs(static_cast<size_t>(n));
  std::vector<std::string> bodies;
  for (int i = 0; i < n; i++)
    bodies.push_back(json{{"prompt", prompt_words(salt * 1000 + uint64_t(i), a.prompt_words)}, {"max_tokens", a.tokens},
                          {"stream", true}, {"ignore_eos", true}, {"seed", i}, {"temperature", 0.8}, {"top_k", 40},
                          {"top_p", 0.95}}.dump());
  std::latch go(n + 1);
  std::vector<std::thread> threads;
  Clock::time_point t0;
  for (int i = 0; i < n; i++)
    threads.emplace_back([&, i] {
      go.arrive_and_wait();
      // A connection the server drops before any token (its accept queue full: cpp-httplib listens
      // with a backlog of 5, and llama-server keeps that) is sent again, counted; the time still runs.
      ClientRun& r = runs[size_t(i)];
      for (int tries = 0; tries < 5; tries++) {
        r = stream_one(port, bodies[size_t(i)], a.timeout, t0);
        r.retries = tries;
        if (r.error.empty() || r.tokens > 0) break;
      }
    });
  t0 = Clock::now();
  go.arrive_and_wait();
  for (std::thread& t : threads) t.join();
  Level l;
  l.clients = n;
  std::vector<double> ttft, itl;
  for (const ClientRun& r : runs) {
    QAT_CHECK(r.error.empty(), "bench serve-load: a client at ", n, " clients failed: ", r.error);
    l.tokens += r.tokens;
    l.retries += r.retries;
    l.seconds = std::max(l.seconds, r.end);
    ttft.push_back(r.ttft);
    itl.insert(itl.end(), r.itl.begin(), r.itl.end());
  }
  l.tok_s = double(l.tokens) / l.seconds;
  l.ttft50 = pct_ms(ttft, 0.5), l.ttft99 = pct_ms(ttft, 0.99), l.itl50 = pct_ms(itl, 0.5), l.itl99 = pct_ms(itl, 0.99);
  return l;
}

// The largest batch bin/serve has run (its /metrics); -1 for a server without that gauge.
int64_t largest_batch(int port) {
  httplib::Client cli("127.0.0.1", port);
  auto r = cli.Get("/metrics");
  const std::string key = "\nqat_serve_batch_size_max ";
  if (!r || r->status != 200 || r->body.find(key) == std::string::npos) return -1;
  return std::atoll(r->body.c_str() + r->body.find(key) + key.size());
}

// ---- the report ----

struct Report {
  std::string table = "| model | threads | server | clients | tokens | seconds | aggregate tok/s | x 1 client | "
                      "TTFT p50 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms | largest batch | retries | rounds: tok/s range | note |\n"
                      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  std::vector<Goal> goals;
  std::string skipped;  // why llama-server did not run, when it did not
};

void add_rows(Report* rep, const std::string& shape, int th, const std::string& server, const std::vector<Level>& ls,
              const std::vector<int64_t>& batches, const std::string& note) {
  for (size_t i = 0; i < ls.size(); i++) {
    const Level& l = ls[i];
    rep->table += str("| ", shape, " | ", th, " | ", server, " | ", l.clients, " | ", l.tokens, " | ", fmt("%.2f", l.seconds),
                      " | ", fmt("%.1f", l.tok_s), " | ", fmt("%.2f", median_ratio(l, ls[0], &Level::tok_s)), " | ", fmt("%.1f", l.ttft50),
                      " | ", fmt("%.1f", l.ttft99), " | ", fmt("%.1f", l.itl50), " | ", fmt("%.1f", l.itl99), " | ",
                      batches[i] < 0 ? std::string("-") : std::to_string(batches[i]), " | ", l.retries, " | ",
                      std::max<size_t>(1, l.rounds.size()), ": ", tok_range(l), " | ", note, " |\n");
  }
}

// The goals of one (model, threads) for bin/serve: they need the 1- and 16-client levels.
void add_goals(Report* rep, const std::string& shape, int th, const std::vector<Level>& ls, const std::string& note) {
  const Level *one = nullptr, *sixteen = nullptr;
  for (const Level& l : ls) {
    if (l.clients == 1) one = &l;
    if (l.clients == 16) sixteen = &l;
  }
  if (!one || !sixteen) return;
  rep->goals.push_back({str("serve ", shape, " 16 clients tok/s / 1 client, ", th, " thr"),
                        median_ratio(*sixteen, *one, &Level::tok_s), 4.0, false, note});
  rep->goals.push_back({str("serve ", shape, " p99 ITL 16 clients / 1 client, ", th, " thr"),
                        median_ratio(*sixteen, *one, &Level::itl99), 3.0, true, note});
}

// Every load level against one running server (a short request first warms it: page faults, threads),
// a.rounds times over (round r runs 1, 4, 16, 64 clients, then round r + 1: the rounds interleave, so a
// slow minute of a shared host lands on all levels alike); *ls gets each level's medians. A failure
// keeps the levels of the rounds before it.
void run_levels(int port, const LoadArgs& a, std::vector<Level>* ls, std::vector<int64_t>* batches) {
  stream_one(port, json{{"prompt", "warm up"}, {"max_tokens", 4}, {"stream", true}, {"ignore_eos", true}}.dump(), a.timeout,
             Clock::now());
  std::vector<std::vector<Level>> by_level(a.clients.size());
  auto publish = [&] {
    ls->clear();
    for (const auto& rs : by_level)
      if (!rs.empty()) ls->push_back(median_level(rs));
  };
  for (int64_t r = 0; r < a.rounds; r++)
    for (size_t i = 0; i < a.clients.size(); i++) {
      const int n = a.clients[i];
      const Level l = run_level(port, n, a, uint64_t(n) + 1000 * uint64_t(r));
      by_level[i].push_back(l);
      if (r == 0) batches->push_back(largest_batch(port));  // the server's gauge: the levels' own in round 1 only
      publish();
      std::printf("  round %lld, %d clients: %.1f tok/s aggregate, TTFT p50 %.1f ms, ITL p50 %.1f / p99 %.1f ms\n",
                  (long long)r + 1, n, l.tok_s, l.ttft50, l.itl50, l.itl99);
      std::fflush(stdout);
    }
}

// bin/serve next to this binary.
std::string serve_binary() {
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("bin/serve") : (self.parent_path() / "serve").string();
}

// Both servers on one model file at one thread count.
void bench_model(Report* rep, const LoadArgs& a, const std::string& shape, const std::string& gguf, int64_t ctx, int th,
                 const std::string& note, const std::string& dir) {
  const int most = *std::max_element(a.clients.begin(), a.clients.end());
  std::printf("%s, %d thread(s), bin/serve:\n", shape.c_str(), th);
  std::vector<int64_t> batches;
  std::vector<Level> ls;
  {
    ServerProc s({serve_binary(), "--model", gguf, "--port", "0", "--threads", std::to_string(th), "--max-batch",
                  std::to_string(most), "--queue", std::to_string(most)},
                 dir + "/serve.log");
    run_levels(wait_ready(s, 0, "bin/serve"), a, &ls, &batches);
  }
  add_rows(rep, shape, th, "bin/serve", ls, batches, note);
  add_goals(rep, shape, th, ls, note);
  if (!rep->skipped.empty()) return;
  // llama-server: one slot per client, each slot the model's context (its -c is divided among slots).
  std::printf("%s, %d thread(s), llama-server:\n", shape.c_str(), th);
  const int port = free_port();
  std::vector<int64_t> none;
  std::vector<Level> ll;
  ServerProc s({a.llama_server, "-m", gguf, "--host", "127.0.0.1", "--port", std::to_string(port), "-np", std::to_string(most),
                "-c", std::to_string(ctx * most), "-t", std::to_string(th), "-tb", std::to_string(th)},
               dir + "/llama-server.log");
  try {
    run_levels(wait_ready(s, port, "llama-server"), a, &ll, &none);
  } catch (const Error& e) {  // the comparison's failure is reported, not ours: the rows so far stay
    std::printf("llama-server failed: %s\nits log ends with:\n%s\n", e.what(), s.log_tail().c_str());
    add_rows(rep, shape, th, "llama-server", ll, none, note);
    rep->table += str("| ", shape, " | ", th, " | llama-server | failed: ", e.what(), " | | | | | | | | | | | | |\n");
    return;
  }
  add_rows(rep, shape, th, "llama-server", ll, none, note);
}

}  // namespace

int bench_serve_load(int argc, char** argv) {
  LoadArgs a;
  if (!parse_load_args(argc, argv, &a)) return 0;
  Report rep;
  if (a.llama_server.empty()) rep.skipped = "no --llama-server PATH and no $LLAMA_CPP (a llama.cpp build directory)";
  else if (::access(a.llama_server.c_str(), X_OK) != 0) rep.skipped = str(a.llama_server, " is not an executable file");
  const std::string dir = str(a.tmp_dir, "/qat-bench-serve-load-", ::getpid());
  make_dirs(dir);
  std::printf("Serving under load: random-weight q4_0 GGUF models; %lld tokens per client (ignore_eos), a %lld-word prompt of "
              "its own; all clients send at once and stream (/v1/completions); clients are threads of bin/bench on the same "
              "host; llama-server: %s.\n\n",
              (long long)a.tokens, (long long)a.prompt_words,
              rep.skipped.empty() ? a.llama_server.c_str() : str("skipped: ", rep.skipped).c_str());
  try {
    for (const std::string& shape : split(a.shapes, ',')) {
      const ModelConfig cfg = shape_config(shape);
      const std::string gguf = str(dir, "/", shape, "-q4_0.gguf");
      write_random_q4_0(cfg, gguf);
      std::printf("%s: %lld parameters, %lld layers, C %lld, F %lld, vocab %lld, ctx %lld; q4_0 file %.1f MiB\n", shape.c_str(),
                  (long long)cfg.n_params(), (long long)cfg.n_layers, (long long)cfg.d_model, (long long)cfg.ffn,
                  (long long)cfg.vocab, (long long)cfg.context, double(std::filesystem::file_size(gguf)) / (1 << 20));
      for (int th : a.threads) {
        ParallelCheck pc;
        if (th > 1) {
          pc = parallel_check();
          std::printf("%s\n", pc.line().c_str());
        }
        bench_model(&rep, a, shape, gguf, cfg.context, th, thread_note(th, pc), dir);
      }
      remove_tree(gguf);
    }
  } catch (...) {
    remove_tree(dir);
    throw;
  }
  remove_tree(dir);
  std::printf("\nTTFT: from the request's send to its first token event; ITL: between a client's token events (all "
              "clients' gaps together); x 1 client: the median over rounds of each round's aggregate tokens/s over its 1-client level's; the other columns: medians over rounds; retries: connections dropped before any token and sent again (all rounds).\n\n%s\nGoals:\n\n%s",
              rep.table.c_str(), goals_table(rep.goals).c_str());
  append_goals(a.goals_path, rep.goals);
  return 0;
}

}  // namespace qat::bench
