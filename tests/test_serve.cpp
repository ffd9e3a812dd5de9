// bin/serve end to end (issue 21), driven on loopback by curl exactly as an OpenAI client would: the
// endpoints and their fields, a completion equal to bin/generate's text, streaming (server-sent events
// ending with [DONE]), concurrent requests each getting the tokens it gets alone, 400 / 401 / 404 / 413,
// 503 with Retry-After when the queue is full, a client that goes away freeing its sequence, and
// SIGTERM finishing the responses in flight; `bin/bench serve-load` on a small run. Each server listens on a
// free port (--port 0).
// Code under test: tools/serve.cpp, models/serve_engine.cpp, models/batch_decode.cpp.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "models/serve_engine.h"
#include "tests/helpers.h"
#include "tests/proc.h"

using namespace qat;
using namespace qat::test;
using json = nlohmann::json;

namespace {

// A tiny model with a 2048-token context (room for a stalled stream to fill its buffers), q8_0 GGUF.
struct ServeFixture {
  ScratchDir dir{"serve"};
  std::string gguf;
  ServeFixture() : gguf(tiny_q8_0_gguf(dir, 2500, 2048, 1)) {}
};
// curl is the client (what a user of the OpenAI API would run); where it is missing, the cases say so
// and skip (WARN), as kernel tests skip an ISA the CPU lacks.
bool have_curl() {
  static const bool ok = ::access("/usr/bin/curl", X_OK) == 0;
  if (!ok) WARN("skipped: /usr/bin/curl is missing (apt-get install curl)");
  return ok;
}
const ServeFixture& fx() {
  static ServeFixture f;
  return f;
}
int g_n = 0;
std::string log_prefix() { return fx().dir.path + "/p" + std::to_string(g_n++); }

// A running bin/serve; its port is read from the "listening on" line.
struct ServeProc {
  std::string log = log_prefix();
  Child child;
  int port = 0;
  explicit ServeProc(std::vector<std::string> extra)
      : child(with_model(std::move(extra)), log) {
    for (double t_end = monotonic_s() + 60; monotonic_s() < t_end && !child.done(); sleep_s(0.01)) {
      const std::string err = read_file(log + ".err");
      if (err.find("serve: ready") != std::string::npos) {
        port = std::stoi(err.substr(err.find("http://127.0.0.1:") + 17));
        return;
      }
    }
    fail("bin/serve did not start: ", read_file(log + ".err"));
  }
  static std::vector<std::string> with_model(std::vector<std::string> extra) {
    std::vector<std::string> argv{"bin/serve", "--model", fx().gguf, "--port", "0", "--threads", "1"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port) + path; }
};

// An HTTP exchange through curl: status, headers, body.
struct Http {
  int status = 0;
  std::string headers, body;
  json j() const { return json::parse(body); }
};
std::vector<std::string> curl_argv(const ServeProc& s, const std::string& path, const std::string& body,
                                   const std::vector<std::string>& headers = {}) {
  std::vector<std::string> argv{"/usr/bin/curl", "-sS", "-N", "-i", "--max-time", "60"};
  for (const std::string& h : headers) argv.insert(argv.end(), {"-H", h});
  if (!body.empty()) argv.insert(argv.end(), {"-H", "Content-Type: application/json", "--data-binary", body});
  argv.push_back(s.url(path));
  return argv;
}
Http parse_http(const ProcResult& r) {
  INFO(r.what());
  REQUIRE(r.code == 0);
  Http h;
  const size_t split = r.out.find("\r\n\r\n");
  REQUIRE(split != std::string::npos);
  h.headers = r.out.substr(0, split);
  h.body = r.out.substr(split + 4);
  h.status = std::stoi(h.headers.substr(h.headers.find(' ') + 1));
  return h;
}
Http request(const ServeProc& s, const std::string& path, const std::string& body = "", const std::vector<std::string>& headers = {}) {
  return parse_http(run_proc(curl_argv(s, path, body, headers), log_prefix()));
}

// The text of a completion: non-streaming "text" / message content, or the streamed deltas joined.
std::string streamed_text(const std::string& sse, json* last = nullptr) {
  std::string text;
  std::vector<std::string> lines = lines_of(sse);
  std::vector<std::string> data;
  for (const std::string& l : lines)
    if (!l.empty()) data.push_back(l);
  REQUIRE(!data.empty());
  CHECK(data.back() == "data: [DONE]");
  for (size_t i = 0; i + 1 < data.size(); i++) {
    REQUIRE(data[i].rfind("data: ", 0) == 0);
    json c = json::parse(data[i].substr(6));
    const json& ch = c["choices"][0];
    if (ch.contains("text")) text += ch["text"].get<std::string>();
    if (ch.contains("delta") && ch["delta"].contains("content")) text += ch["delta"]["content"].get<std::string>();
    if (last) *last = c;
  }
  return text;
}

double metric(const ServeProc& s, const std::string& name) {
  Http h = request(s, "/metrics");
  const size_t at = h.body.find("\n" + name + " ");
  REQUIRE(at != std::string::npos);
  return std::stod(h.body.substr(at + name.size() + 2));
}

// The requests of the concurrency test: different prompts, seeds, sampling and lengths.
std::vector<json> mixed_requests() {
  std::vector<json> rs;
  const char* prompts[] = {"the cat", "a dog ran", "on the mat", "it rained all day", "home", "far away from"};
  for (int i = 0; i < 6; i++) {
    json r = {{"prompt", prompts[i]}, {"max_tokens", 40 + 25 * i}, {"seed", 100 + i}, {"ignore_eos", true},
              {"temperature", i == 2 ? 0.0 : 0.9}, {"top_k", i == 3 ? 0 : 40}, {"stream", i % 2 == 1}};
    if (i == 4) r["repeat_penalty"] = 1.3, r["min_p"] = 0.05;
    rs.push_back(r);
  }
  return rs;
}
std::string text_of(const Http& h, bool stream) {
  REQUIRE(h.status == 200);
  return stream ? streamed_text(h.body) : h.j()["choices"][0]["text"].get<std::string>();
}

}  // namespace

TEST_CASE("bin/serve: endpoints and fields; a completion is bin/generate's text", "[serve]") {
  if (!have_curl()) return;
  ServeProc s({});
  CHECK(request(s, "/health").status == 200);
  Http models = request(s, "/v1/models");
  CHECK(models.j()["data"][0]["id"] == "model.gguf");
  // The same request through bin/generate (--keep-going = ignore_eos): the same text.
  Http c = request(s, "/v1/completions", R"({"prompt":"the cat","max_tokens":20,"seed":5,"temperature":0.9,"ignore_eos":true})");
  REQUIRE(c.status == 200);
  json cj = c.j();
  ProcResult g = run_proc({"bin/generate", "--model", fx().gguf, "--threads", "1", "-p", "the cat", "-n", "20", "--seed", "5",
                           "--temp", "0.9", "--keep-going"},
                          log_prefix());
  REQUIRE(g.code == 0);
  CHECK("the cat" + cj["choices"][0]["text"].get<std::string>() + "\n" == g.out);
  CHECK(cj["object"] == "text_completion");
  CHECK(cj["choices"][0]["finish_reason"] == "length");
  CHECK(cj["usage"]["completion_tokens"] == 20);
  CHECK(cj["usage"]["total_tokens"] == cj["usage"]["prompt_tokens"].get<int>() + 20);
  // Chat: the template's text, the stop string, logprobs with the top tokens asked for.
  Http chat = request(s, "/v1/chat/completions",
                      R"({"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"max_tokens":5,"logprobs":true,"top_logprobs":3})");
  REQUIRE(chat.status == 200);
  json ch = chat.j();
  CHECK(ch["object"] == "chat.completion");
  CHECK(ch["choices"][0]["message"]["role"] == "assistant");
  const json& lp = ch["choices"][0]["logprobs"]["content"];
  REQUIRE(lp.size() == ch["usage"]["completion_tokens"].get<size_t>());
  for (const json& t : lp) {
    CHECK(t["logprob"].get<double>() <= 0.0);
    CHECK(t["top_logprobs"].size() == 3);
  }
  // A stop string: the text ends before it, finish_reason "stop".
  const std::string full = cj["choices"][0]["text"];
  const std::string stop = full.substr(full.size() / 2, 2);
  json req = {{"prompt", "the cat"}, {"max_tokens", 20}, {"seed", 5}, {"temperature", 0.9}, {"ignore_eos", true}, {"stop", {stop}}};
  json cut = request(s, "/v1/completions", req.dump()).j();
  CHECK(cut["choices"][0]["text"] == full.substr(0, full.find(stop)));
  CHECK(cut["choices"][0]["finish_reason"] == "stop");
}

TEST_CASE("bin/serve: streaming sends the same text as events ending with [DONE]", "[serve]") {
  if (!have_curl()) return;
  ServeProc s({});
  json req = {{"prompt", "a dog"}, {"max_tokens", 30}, {"seed", 3}, {"ignore_eos", true}};
  const std::string whole = request(s, "/v1/completions", req.dump()).j()["choices"][0]["text"];
  req["stream"] = true;
  Http st = request(s, "/v1/completions", req.dump());
  CHECK_THAT(st.headers, Catch::Contains("text/event-stream"));
  json last;
  CHECK(streamed_text(st.body, &last) == whole);
  CHECK(last["choices"][0]["finish_reason"] == "length");
  CHECK(last["usage"]["completion_tokens"] == 30);
  Http chat = request(s, "/v1/chat/completions", R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":6,"stream":true})");
  CHECK_THAT(chat.body, Catch::Contains("\"object\":\"chat.completion.chunk\""));
  CHECK_THAT(chat.body, Catch::Contains("\"role\":\"assistant\""));
  streamed_text(chat.body);
}

TEST_CASE("bin/serve: concurrent requests each get the tokens they get alone", "[serve]") {
  if (!have_curl()) return;
  ServeProc s({"--max-batch", "8"});
  std::vector<json> rs = mixed_requests();
  std::vector<std::string> alone;
  for (const json& r : rs) alone.push_back(text_of(request(s, "/v1/completions", r.dump()), r["stream"]));
  for (int round = 0; round < 2; round++) {
    std::vector<std::unique_ptr<Child>> kids;
    std::vector<std::string> logs;
    for (const json& r : rs) {
      logs.push_back(log_prefix());
      kids.push_back(std::make_unique<Child>(curl_argv(s, "/v1/completions", r.dump()), logs.back()));
    }
    for (size_t i = 0; i < rs.size(); i++) {
      INFO("request " << i << " round " << round);
      CHECK(text_of(parse_http(kids[i]->wait(60)), rs[i]["stream"]) == alone[i]);
    }
  }
  // How much the requests overlapped depends on timing; the bit-identity of a batch is also checked
  // without timing by tests/test_batch_decode.cpp.
  INFO("largest batch: " << metric(s, "qat_serve_batch_size_max"));
  CHECK(metric(s, "qat_serve_batch_size_max") >= 1);
}

TEST_CASE("bin/serve: a prompt is prefilled in one step while nothing decodes, in chunks beside decodes", "[serve]") {
  if (!have_curl()) return;
  // --prefill-chunk 2 bounds the prompt tokens a step may carry while another request decodes; alone,
  // the request's prompt is one step (--prefill-idle, default 512): steps = 1 + max_tokens - 1. With
  // --prefill-idle at the chunk it takes ceil(P / 2) steps, and the text is the same.
  const std::string body = R"({"prompt":"the cat sat on the mat and looked at the dog","max_tokens":4,"seed":3,"ignore_eos":true})";
  std::string texts[2];
  for (int idle = 0; idle < 2; idle++) {
    ServeProc s(idle == 0 ? std::vector<std::string>{"--prefill-chunk", "2"}
                          : std::vector<std::string>{"--prefill-chunk", "2", "--prefill-idle", "2"});
    json r = request(s, "/v1/completions", body).j();
    const int P = r["usage"]["prompt_tokens"].get<int>();
    REQUIRE(P >= 5);
    texts[idle] = r["choices"][0]["text"];
    INFO("prompt tokens " << P << ", --prefill-idle " << (idle == 0 ? "512" : "2"));
    CHECK(metric(s, "qat_serve_decode_steps_total") == (idle == 0 ? 4 : (P + 1) / 2 + 3));
  }
  CHECK(texts[0] == texts[1]);
}

TEST_CASE("serve engine: a step's prompt budget is the chunk while decoders are as many as the waiting, else the idle budget", "[serve]") {
  EngineLimits lim;
  lim.prefill_chunk = 64;
  lim.prefill_idle = 512;
  CHECK(prefill_budget(0, 1, lim) == 512);   // nothing decodes
  CHECK(prefill_budget(0, 0, lim) == 512);
  CHECK(prefill_budget(1, 15, lim) == 512);  // a burst behind one stream: one step for all of it
  CHECK(prefill_budget(3, 4, lim) == 512);
  CHECK(prefill_budget(4, 4, lim) == 64);    // as many decode as wait: their stall is bounded
  CHECK(prefill_budget(15, 1, lim) == 64);
  CHECK(prefill_budget(2, 0, lim) == 64);
  lim.prefill_idle = 16;                      // an idle budget below the chunk never shrinks a step
  CHECK(prefill_budget(1, 15, lim) == 64);
}

TEST_CASE("bin/serve: bad requests get 400 with an OpenAI error body; 404, 413, 401", "[serve]") {
  if (!have_curl()) return;
  ServeProc s({"--max-body", "4096"});
  auto expect_400 = [&](const std::string& body, const std::string& part) {
    Http h = request(s, "/v1/completions", body);
    INFO(body << " -> " << h.body);
    CHECK(h.status == 400);
    json e = json::parse(h.body);
    CHECK(e["error"]["type"] == "invalid_request_error");
    CHECK_THAT(e["error"]["message"].get<std::string>(), Catch::Contains(part));
  };
  expect_400(R"({"prompt": "x",)", "not valid JSON");
  expect_400(R"([1,2])", "JSON object");
  expect_400(R"({"max_tokens": 3})", "'prompt'");
  expect_400(R"({"prompt": "x", "temperature": -1})", "'temperature'");
  expect_400(R"({"prompt": "x", "top_k": "many"})", "'top_k'");
  expect_400(R"({"prompt": "x", "n": 2})", "'n'");
  expect_400(R"({"prompt": "x", "stop": [1]})", "'stop'");
  expect_400(R"({"prompt": "x", "stream": "yes"})", "'stream'");
  std::string longp(3000, 'x');  // ~3000 tokens > the context
  Http big = request(s, "/v1/completions", json{{"prompt", std::string(2100, 'x')}}.dump());
  CHECK(big.status == 400);
  Http chat = request(s, "/v1/chat/completions", R"({"messages":[{"role":"robot","content":"x"}]})");
  CHECK(chat.status == 400);
  CHECK_THAT(chat.body, Catch::Contains("role 'robot'"));
  CHECK(request(s, "/v1/completions", json{{"prompt", std::string(5000, 'y')}}.dump()).status == 413);
  Http nf = request(s, "/v1/nothing", "{}");
  CHECK(nf.status == 404);
  CHECK(nf.j()["error"]["message"] == "no such endpoint: /v1/nothing");
  CHECK(request(s, "/health").status == 200);  // still serving
  ServeProc keyed({"--api-key", "sekrit"});
  CHECK(request(keyed, "/v1/models").status == 401);
  CHECK(request(keyed, "/v1/models", "", {"Authorization: Bearer wrong"}).status == 401);
  CHECK(request(keyed, "/v1/models", "", {"Authorization: Bearer sekrit"}).status == 200);
  CHECK(request(keyed, "/health").status == 200);
}

namespace {
// A client that sends a streaming request and never reads: a tiny receive buffer fills, the server's
// writes block, the sequence's backlog fills and it waits, holding its place in the batch.
int stalled_client(const ServeProc& s, const std::string& body) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int small = 2048;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(s.port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  const std::string req = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
  REQUIRE(::send(fd, req.data(), req.size(), 0) == ssize_t(req.size()));
  return fd;
}
bool wait_for(const std::function<bool()>& cond, double seconds) {
  for (double t_end = monotonic_s() + seconds; monotonic_s() < t_end; sleep_s(0.01))
    if (cond()) return true;
  return false;
}
}  // namespace

TEST_CASE("bin/serve: a full queue answers 503 with Retry-After; a client that goes away frees its sequence", "[serve]") {
  if (!have_curl()) return;
  ServeProc s({"--max-batch", "1", "--queue", "1"});
  const std::string endless = R"({"prompt":"the","stream":true,"ignore_eos":true})";
  int fd = stalled_client(s, endless);
  REQUIRE(wait_for([&] { return metric(s, "qat_serve_batch_size") == 1; }, 10));
  // The stalled stream holds the only place: the next request waits in the queue, the one after is refused.
  Child queued(curl_argv(s, "/v1/completions", R"({"prompt":"a","max_tokens":3})"), log_prefix());
  REQUIRE(wait_for([&] { return metric(s, "qat_serve_queue_depth") == 1; }, 10));
  Http refused = request(s, "/v1/completions", R"({"prompt":"b","max_tokens":3})");
  CHECK(refused.status == 503);
  CHECK_THAT(refused.headers, Catch::Contains("Retry-After: 1"));
  CHECK(refused.j()["error"]["code"] == "queue_full");
  CHECK(metric(s, "qat_serve_batch_size") == 1);
  CHECK(metric(s, "qat_serve_generated_tokens_total") < 2000);  // stalled, not run to the context
  ::close(fd);  // the client goes away: its sequence is cancelled and the queued request runs
  CHECK(wait_for([&] { return metric(s, "qat_serve_requests_cancelled_total") == 1; }, 10));
  Http done = parse_http(queued.wait(30));
  CHECK(done.status == 200);
  CHECK(done.j()["usage"]["completion_tokens"].get<int>() <= 3);
  CHECK(metric(s, "qat_serve_batch_size") == 0);
}

TEST_CASE("bin/serve: a non-streaming client that goes away frees its sequence at once, queued or running", "[serve]") {
  if (!have_curl()) return;
  ServeProc s({"--max-batch", "1", "--queue", "2"});
  int stream = stalled_client(s, R"({"prompt":"the","stream":true,"ignore_eos":true})");
  REQUIRE(wait_for([&] { return metric(s, "qat_serve_batch_size") == 1; }, 10));
  // Queued behind the stalled stream, a whole-response request whose client leaves: it leaves the
  // queue while the stream still holds the only place (before, it stayed until a place freed up).
  const std::string whole = R"({"prompt":"a","ignore_eos":true})";  // until the context is full
  int queued = stalled_client(s, whole);
  REQUIRE(wait_for([&] { return metric(s, "qat_serve_queue_depth") == 1; }, 10));
  ::close(queued);
  CHECK(wait_for([&] { return metric(s, "qat_serve_requests_cancelled_total") == 1; }, 10));
  CHECK(metric(s, "qat_serve_queue_depth") == 0);
  CHECK(metric(s, "qat_serve_batch_size") == 1);
  ::close(stream);
  REQUIRE(wait_for([&] { return metric(s, "qat_serve_requests_cancelled_total") == 2; }, 10));
  // Running: a request for the whole context (2047 tokens) whose client leaves at once ends long
  // before its length (before, only at its end or its timeout).
  const double before = metric(s, "qat_serve_generated_tokens_total");
  ::close(stalled_client(s, whole));
  CHECK(wait_for([&] { return metric(s, "qat_serve_requests_cancelled_total") == 3; }, 10));
  CHECK(wait_for([&] { return metric(s, "qat_serve_batch_size") == 0; }, 10));
  CHECK(metric(s, "qat_serve_generated_tokens_total") - before < 1000);
}

TEST_CASE("bin/serve: SIGTERM finishes the responses in flight, then exits 0", "[serve]") {
  if (!have_curl()) return;
  ServeProc s({});
  const std::string log = log_prefix();
  // A slow reader (curl at 20 kB/s): the response is still in flight when the signal arrives.
  std::vector<std::string> argv = curl_argv(s, "/v1/completions", R"({"prompt":"the","stream":true,"ignore_eos":true,"max_tokens":300})");
  argv.insert(argv.begin() + 1, {"--limit-rate", "20k"});
  Child slow(argv, log);
  REQUIRE(wait_for([&] { return read_file(log + ".out").find("data: ") != std::string::npos; }, 10));
  ::kill(s.child.pid(), SIGTERM);
  Http h = parse_http(slow.wait(60));
  json last;
  streamed_text(h.body, &last);
  CHECK(last["usage"]["completion_tokens"] == 300);
  ProcResult r = s.child.wait(30);
  CHECK(r.code == 0);
  CHECK_THAT(r.err, Catch::Contains("finishing"));
}

TEST_CASE("bin/serve: --help, and bad flags or an unusable address are one line on stderr", "[serve][cli]") {
  ProcResult help = run_proc({"bin/serve", "--help"}, log_prefix());
  CHECK(help.code == 0);
  CHECK_THAT(help.out, Catch::Contains("--api-key KEY"));
  auto one_line_error = [](const ProcResult& r, int code, const std::string& part) {
    INFO(r.what());
    CHECK(r.code == code);
    CHECK(r.err.find('\n') == r.err.size() - 1);
    CHECK_THAT(r.err, Catch::Contains(part));
  };
  one_line_error(run_proc({"bin/serve"}, log_prefix()), 2, "--model: required");
  one_line_error(run_proc({"bin/serve", "--model", "x.gguf", "--port", "70000"}, log_prefix()), 2, "--port: expected an integer in [0, 65535]");
  one_line_error(run_proc({"bin/serve", "--model", fx().gguf, "--host", "256.1.1.1", "--port", "1"}, log_prefix()), 1,
                 "cannot listen there");
  one_line_error(run_proc({"bin/serve", "--model", "no-such.gguf"}, log_prefix()), 1, "--model: no-such.gguf does not exist");
  // A model that fails to load after the server listens: the error, and the server stops (no hang).
  const std::string junk = fx().dir.path + "/junk.gguf";
  write_file_atomic(junk, "not a gguf file");
  ProcResult bad = run_proc({"bin/serve", "--model", junk, "--port", "0"}, log_prefix(), {}, 30);
  CHECK_FALSE(bad.timed_out);
  CHECK(bad.code == 1);
  CHECK_THAT(bad.err, Catch::Contains(junk));
}

TEST_CASE("bin/bench serve-load: streaming clients against bin/serve, every token counted; llama-server skipped with a reason", "[serve][bench]") {
  // The smallest run: the base preset (random weights), 1 and then 3 concurrent clients of 5 tokens each, twice.
  const std::string tmp = fx().dir.path + "/load", missing = fx().dir.path + "/no-such-llama-server";
  make_dirs(tmp);
  ProcResult r = run_proc({"bin/bench", "serve-load", "--shapes", "base", "--clients", "1,3", "--tokens", "5", "--threads", "1",
                           "--rounds", "2", "--llama-server", missing, "--tmp", tmp},
                          log_prefix(), {}, 300);
  INFO(r.what() << "\nstdout:\n" << r.out);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("llama-server: skipped: " + missing + " is not an executable file"));
  // | model | threads | server | clients | tokens | ...: each client's 5 tokens, from the streamed usage.
  CHECK_THAT(r.out, Catch::Contains("| base | 1 | bin/serve | 1 | 5 | "));
  CHECK_THAT(r.out, Catch::Contains("| base | 1 | bin/serve | 3 | 15 | "));
  CHECK_THAT(r.out, !Catch::Contains("| llama-server |"));
  // Two rounds of each level, interleaved (round 1: 1 then 3 clients; round 2 the same); the table has medians
  // and each level's range over its 2 rounds.
  CHECK_THAT(r.out, Catch::Contains("round 2, 3 clients:"));
  CHECK(r.out.find("round 1, 3 clients:") < r.out.find("round 2, 1 clients:"));
  CHECK_THAT(r.out, Catch::Contains(" | 0 | 2: "));
  CHECK(std::filesystem::is_empty(tmp));  // the model files and logs are removed
}
