// bin/serve: an OpenAI-compatible HTTP server (llama-server's endpoints and names) on the integer
// kernels, with continuous batching (models/serve_engine.h). HTTP is cpp-httplib, request and response
// bodies are nlohmann-json (Debian's libcpp-httplib-dev, nlohmann-json3-dev; the project's own
// src/io/json stays for its file formats, where it checks every field as the loaders need). Endpoints:
// POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /health, GET /metrics.
// Read next: models/serve_engine.h (the scheduler), models/batch_decode.h (the batched forward).
#include <netdb.h>
#include <poll.h>
#include <signal.h>

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "kernels/kernels.h"
#include "models/chat.h"
#include "models/from_checkpoint.h"
#include "models/model_source.h"
#include "models/quantized.h"
#include "models/serve_engine.h"
#include "src/core/parallel.h"
#include "src/io/file.h"
#include "src/util/cli.h"
#include "src/util/error.h"

using namespace qat;
using json = nlohmann::json;

namespace {

struct Args {
  std::string model_path, host = "127.0.0.1", api_key, isa, alias;
  int64_t port = 8080, threads = 0, max_batch = 16, queue = 64, max_body = 1 << 20, max_prompt = 0, prefill_chunk = 64, prefill_idle = 512;
  double timeout = 600;
};

bool parse_args(int argc, char** argv, Args* a) {
  ArgParser p("serve", "Serves a model over HTTP with the OpenAI API (as llama-server does): /v1/completions,\n"
                       "/v1/chat/completions (streaming with stream: true), /v1/models, /health, /metrics.\n"
                       "Requests decode together (continuous batching); each gets the tokens it would get alone.");
  p.option("--model", &a->model_path, "GGUF file or checkpoint directory (required)", "PATH");
  p.alias("-m", "--model");
  p.option("--host", &a->host, "address to listen on", "ADDR");
  p.option("--port", &a->port, "port to listen on (0: any free port, printed at start)", 0, 65535);
  p.option("--api-key", &a->api_key, "require 'Authorization: Bearer KEY' on /v1/ endpoints", "KEY");
  p.option("--alias", &a->alias, "the model's name in /v1/models and responses (default: the file name)", "NAME");
  p.option("--max-batch", &a->max_batch, "requests decoding together", 1, 1024);
  p.option("--queue", &a->queue, "requests waiting for a place; beyond, 503 with Retry-After", 0, 100000);
  p.option("--max-body", &a->max_body, "largest request body in bytes (beyond: 413)", 1, int64_t(1) << 30);
  p.option("--max-prompt", &a->max_prompt, "longest prompt in tokens (0: the model's context - 1)", 0, 1 << 24);
  p.option("--prefill-chunk", &a->prefill_chunk, "prompt tokens per step, all requests together, while at least as many decode as wait for a first token", 1, 1 << 20);
  p.option("--prefill-idle", &a->prefill_idle, "prompt tokens per step while fewer decode than wait (a burst of new requests)", 1, 1 << 20);
  p.option("--timeout", &a->timeout, "seconds a request may take (0: none)", 0.0, 1e6);
  p.option("--threads", &a->threads, "threads (0: all cores)", 0, 4096);
  p.option("--isa", &a->isa, "kernel table: scalar, avx2, avx512, avx512vnni, avxvnni (default: the best this CPU has)", "ISA");
  if (!p.parse(argc, argv)) return false;
  if (a->model_path.empty()) throw UsageError("--model: required (a .gguf file or a checkpoint directory)");
  return true;
}

// A request the client got wrong: 400 with OpenAI's error body.
struct BadRequest : Error {
  using Error::Error;
};

json error_body(const std::string& message, const std::string& type, const std::string& code = "") {
  json e = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  if (!code.empty()) e["code"] = code;
  return json{{"error", e}};
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

// A number field in [lo, hi], or `def` when absent or null.
double number(const json& j, const char* key, double lo, double hi, double def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_number()) throw BadRequest(str("'", key, "': expected a number"));
  const double v = j[key].get<double>();
  if (!(v >= lo && v <= hi)) throw BadRequest(str("'", key, "': expected a number in [", lo, ", ", hi, "], got ", v));
  return v;
}
int64_t integer(const json& j, const char* key, int64_t lo, int64_t hi, int64_t def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_number_integer()) throw BadRequest(str("'", key, "': expected an integer"));
  const int64_t v = j[key].get<int64_t>();
  if (v < lo || v > hi) throw BadRequest(str("'", key, "': expected an integer in [", lo, ", ", hi, "], got ", v));
  return v;
}
bool boolean(const json& j, const char* key, bool def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_boolean()) throw BadRequest(str("'", key, "': expected true or false"));
  return j[key].get<bool>();
}
std::string text_field(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string()) throw BadRequest(str("'", key, "': expected a string"));
  return j[key].get<std::string>();
}
std::vector<std::string> stop_list(const json& j) {
  if (!j.contains("stop") || j["stop"].is_null()) return {};
  if (j["stop"].is_string()) return {j["stop"].get<std::string>()};
  if (!j["stop"].is_array() || j["stop"].size() > 16) throw BadRequest("'stop': expected a string or up to 16 strings");
  std::vector<std::string> out;
  for (const json& s : j["stop"]) {
    if (!s.is_string()) throw BadRequest("'stop': expected a string or up to 16 strings");
    out.push_back(s.get<std::string>());
  }
  return out;
}

// What a request asks for, checked.
struct Parsed {
  GenRequest gen;
  bool chat = false, stream = false, want_logprobs = false;
};

// The sampling and stopping fields shared by both endpoints (OpenAI's names, llama-server's extras).
void parse_sampling(const json& j, int64_t V, int64_t ctx, Parsed* p) {
  SamplerConfig& c = p->gen.sampling;
  c.temperature = float(number(j, "temperature", 0, 100, 0.8));
  c.top_p = float(number(j, "top_p", 0, 1, 0.95));
  c.top_k = integer(j, "top_k", 0, V, 40);
  c.min_p = float(number(j, "min_p", 0, 1, 0));
  c.repeat_penalty = float(number(j, "repeat_penalty", 0.01, 100, 1));
  c.repeat_last_n = integer(j, "repeat_last_n", 0, ctx, 64);
  c.frequency_penalty = float(number(j, "frequency_penalty", -2, 2, 0));
  c.presence_penalty = float(number(j, "presence_penalty", -2, 2, 0));
  c.seed = uint64_t(integer(j, "seed", 0, INT64_MAX, 42));
  p->gen.max_tokens = integer(j, "max_tokens", -1, 1 << 24, -1);
  if (j.contains("max_completion_tokens")) p->gen.max_tokens = integer(j, "max_completion_tokens", -1, 1 << 24, -1);
  if (integer(j, "n", 1, 1, 1) != 1) throw BadRequest("'n': only 1 is supported");
  p->gen.stops = stop_list(j);
  p->stream = boolean(j, "stream", false);
  p->gen.ignore_eos = boolean(j, "ignore_eos", false);  // llama-server's name
}

// The server's state, shared by the handlers.
struct Server {
  Args args;
  std::atomic<bool> ready{false}, draining{false};
  std::optional<ModelSource> src;
  DecodeModel model;
  std::unique_ptr<ServeEngine> engine;
  std::string name;
  std::atomic<int64_t> next_id{1}, bad_requests{0};
  int64_t created = 0;  // unix time of the start, as OpenAI's "created"
};

// A message's content: a string, or OpenAI's array of parts of which the "text" ones count.
std::string message_content(const json& m) {
  if (m.contains("content") && m["content"].is_string()) return m["content"].get<std::string>();
  if (!m.contains("content") || !m["content"].is_array()) throw BadRequest("'messages': each content must be a string or an array of parts");
  std::string text;
  for (const json& part : m["content"])
    if (part.is_object() && part.value("type", "") == "text" && part.contains("text") && part["text"].is_string())
      text += part["text"].get<std::string>();
  return text;
}

// The text the model continues: the chat template over "messages", or "prompt" (a string, or an array of one).
std::string prompt_text(const json& j, bool chat, Parsed* p) {
  if (chat) {
    if (!j.contains("messages") || !j["messages"].is_array() || j["messages"].empty())
      throw BadRequest("'messages': expected a non-empty array");
    std::vector<ChatMessage> msgs;
    for (const json& m : j["messages"]) {
      if (!m.is_object()) throw BadRequest("'messages': each message must be an object with role and content");
      msgs.push_back({text_field(m, "role"), message_content(m)});
    }
    p->gen.stops.push_back(kChatStop);
    p->want_logprobs = boolean(j, "logprobs", false);
    p->gen.n_probs = integer(j, "top_logprobs", 0, 20, 0);
    try {
      return chat_prompt(msgs);
    } catch (const Error& e) {
      throw BadRequest(str("'messages': ", e.what()));
    }
  }
  const int64_t lp = integer(j, "logprobs", 0, 20, -1);  // completions: an integer, the top tokens wanted
  p->want_logprobs = lp >= 0;
  p->gen.n_probs = std::max<int64_t>(lp, 0);
  if (j.contains("prompt") && j["prompt"].is_array() && j["prompt"].size() == 1 && j["prompt"][0].is_string())
    return j["prompt"][0].get<std::string>();
  if (!j.contains("prompt") || !j["prompt"].is_string()) throw BadRequest("'prompt': expected a string (one prompt per request)");
  return j["prompt"].get<std::string>();
}

Parsed parse_request(const Server& sv, const std::string& body, bool chat) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    throw BadRequest(str("the body is not valid JSON: ", e.what()));
  }
  if (!j.is_object()) throw BadRequest("the body must be a JSON object");
  const ModelConfig& cfg = sv.model.cfg;
  Parsed p;
  p.chat = chat;
  parse_sampling(j, cfg.vocab, cfg.context, &p);
  const std::string text = prompt_text(j, chat, &p);
  if (j.contains("n_probs")) {  // llama-server's name for the top tokens wanted
    p.gen.n_probs = integer(j, "n_probs", 0, 20, 0);
    p.want_logprobs = p.want_logprobs || p.gen.n_probs > 0;
  }
  p.gen.logprobs = p.want_logprobs;
  p.gen.prompt = sv.src->tokenizer->encode_prompt(text);  // ours: after end-of-text, as a document starts in training
  const int64_t limit = sv.args.max_prompt > 0 ? std::min(sv.args.max_prompt, cfg.context - 1) : cfg.context - 1;
  if (int64_t(p.gen.prompt.size()) > limit)
    throw BadRequest(str("the prompt is ", p.gen.prompt.size(), " tokens; this server takes at most ", limit));
  p.gen.timeout_s = sv.args.timeout;
  return p;
}

// OpenAI's logprobs object of some tokens: completions' parallel arrays, or chat's "content" list.
json logprobs_json(const Server& sv, const std::vector<TokenEvent>& evs, bool chat) {
  const Vocab& tok = *sv.src->tokenizer;
  json tokens = json::array(), lps = json::array(), tops = json::array(), content = json::array();
  for (const TokenEvent& e : evs) {
    const std::string t = tok.decode({e.id});
    json top_obj = json::object(), top_list = json::array();
    for (auto [id, lp] : e.lp.top) {
      top_obj[tok.decode({id})] = lp;
      top_list.push_back({{"token", tok.decode({id})}, {"logprob", lp}});
    }
    tokens.push_back(t);
    lps.push_back(e.lp.chosen);
    tops.push_back(top_obj);
    content.push_back({{"token", t}, {"logprob", e.lp.chosen}, {"top_logprobs", top_list}});
  }
  if (chat) return {{"content", content}};
  return {{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}};
}

json usage_json(const RequestStream& st) {
  return {{"prompt_tokens", st.prompt_tokens}, {"completion_tokens", st.completion_tokens},
          {"total_tokens", st.prompt_tokens + st.completion_tokens}};
}

// One response object, or one streamed chunk: the text (or delta) of `evs`, finish_reason when `last`.
json choice_json(const Server& sv, const Parsed& p, const std::vector<TokenEvent>& evs, bool streaming, const char* finish) {
  std::string text;
  for (const TokenEvent& e : evs) text += e.text;
  json c = {{"index", 0}, {"finish_reason", finish ? json(finish) : json(nullptr)}};
  if (!p.chat) c["text"] = text;
  else if (streaming) c["delta"] = finish && text.empty() ? json::object() : json{{"content", text}};
  else c["message"] = {{"role", "assistant"}, {"content", text}};
  c["logprobs"] = p.want_logprobs && !evs.empty() ? logprobs_json(sv, evs, p.chat) : json(nullptr);
  return c;
}

json envelope(const Server& sv, const Parsed& p, const std::string& id, bool streaming, json choice) {
  const char* object = p.chat ? (streaming ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  return {{"id", id}, {"object", object}, {"created", sv.created}, {"model", sv.name}, {"choices", json::array({choice})}};
}

const char* finish_of(const RequestStream& st) { return finish_reason(st.reason); }

// Server-sent events: one "data: {json}" per token (text or log-probabilities), a last chunk with
// finish_reason and usage, then "data: [DONE]". A failed write means the client went away: the
// sequence is cancelled and leaves the batch at the next step.
bool stream_events(Server& sv, const Parsed& p, const std::string& id, RequestStream& st, httplib::DataSink& sink) {
  auto send = [&](const json& j) {
    const std::string line = "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
    return sink.write(line.data(), line.size());
  };
  if (p.chat && !send(envelope(sv, p, id, true, {{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}},
                                                  {"finish_reason", nullptr}, {"logprobs", nullptr}}))) {
    st.cancel();
    return false;
  }
  std::vector<TokenEvent> evs;
  bool more = true;
  while (more) {
    evs.clear();
    more = st.take(&evs, 0.1);
    for (const TokenEvent& e : evs)
      if ((!e.text.empty() || p.want_logprobs) && !send(envelope(sv, p, id, true, choice_json(sv, p, {e}, true, nullptr)))) {
        st.cancel();
        return false;
      }
    if (more && evs.empty() && !sink.is_writable()) {
      st.cancel();
      return false;
    }
  }
  json last = st.error.empty() ? envelope(sv, p, id, true, choice_json(sv, p, {}, true, finish_of(st)))
                               : error_body(st.error, "server_error");
  if (st.error.empty()) last["usage"] = usage_json(st);
  const std::string done = "data: [DONE]\n\n";
  if (!send(last) || !sink.write(done.data(), done.size())) return false;
  sink.done();
  return true;
}

// The socket of the connection `req` came on: the one whose local port and peer are the request's.
// cpp-httplib 0.11 gives a handler no socket (its Request::is_connection_closed came later); the
// socket stays open until the handler returns. -1 when none matches (then only the end or the timeout).
int connection_socket(const httplib::Request& req) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    const int fd = std::atoi(e.path().filename().c_str());
    sockaddr_storage local{}, peer{};
    socklen_t ll = sizeof local, pl = sizeof peer;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0 || ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0)
      continue;
    auto port_of = [](const sockaddr_storage& a) {
      return a.ss_family == AF_INET ? ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port)
             : a.ss_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port) : -1;
    };
    char host[NI_MAXHOST];
    if (port_of(local) == req.local_port && port_of(peer) == req.remote_port &&
        ::getnameinfo(reinterpret_cast<sockaddr*>(&peer), pl, host, sizeof host, nullptr, 0, NI_NUMERICHOST) == 0 &&
        req.remote_addr == host)
      return fd;
  }
  return -1;
}

// The client closed its side: readable with nothing to read (end of stream), or hung up.
bool peer_closed(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) return true;
  char c;
  return ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

void complete(Server& sv, const httplib::Request& req, httplib::Response& res, bool chat) {
  const Parsed p = parse_request(sv, req.body, chat);
  std::shared_ptr<RequestStream> st = sv.engine->submit(p.gen);
  if (!st) {
    res.set_header("Retry-After", "1");
    return send_json(res, 503, error_body(sv.draining ? "the server is shutting down" : "the server is busy: the queue is full; retry later",
                                          "server_error", "queue_full"));
  }
  const std::string id = str(chat ? "chatcmpl-" : "cmpl-", sv.next_id++);
  if (p.stream) {
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream", [&sv, p, id, st](size_t, httplib::DataSink& sink) { return stream_events(sv, p, id, *st, sink); },
        [st](bool ok) {
          if (!ok) st->cancel();
        });
    return;
  }
  // A client that goes away while its whole response is being made frees its sequence at once: the
  // socket is checked whenever a token arrives, and every 50 ms.
  const int sock = connection_socket(req);
  std::vector<TokenEvent> evs;
  while (st->take(&evs, 0.05))
    if (sock >= 0 && peer_closed(sock)) {
      st->cancel();
      return send_json(res, 499, error_body("the client closed the connection", "server_error"));  // nginx's 499; nobody reads it
    }
  if (!st->error.empty()) return send_json(res, st->error.rfind("timed out", 0) == 0 ? 504 : 500, error_body(st->error, "server_error"));
  json body = envelope(sv, p, id, false, choice_json(sv, p, evs, false, finish_of(*st)));
  body["usage"] = usage_json(*st);
  send_json(res, 200, body);
}

// Prometheus text format, version 0.0.4.
std::string metrics_text(const Server& sv) {
  const EngineStats s = sv.engine ? sv.engine->stats() : EngineStats{};
  std::string out;
  auto put = [&](const char* name, const char* type, const char* help, double v) {
    out += str("# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n", name, " ", v, "\n");
  };
  put("qat_serve_requests_total", "counter", "generation requests accepted", double(s.requests));
  put("qat_serve_requests_rejected_total", "counter", "requests refused with 503 (queue full or shutting down)", double(s.rejected));
  put("qat_serve_requests_cancelled_total", "counter", "requests whose client went away", double(s.cancelled));
  put("qat_serve_requests_timed_out_total", "counter", "requests ended by --timeout", double(s.timed_out));
  put("qat_serve_bad_requests_total", "counter", "requests answered 400", double(sv.bad_requests.load()));
  put("qat_serve_prompt_tokens_total", "counter", "prompt tokens run", double(s.prompt_tokens));
  put("qat_serve_generated_tokens_total", "counter", "tokens generated", double(s.generated_tokens));
  put("qat_serve_decode_steps_total", "counter", "batched forward steps", double(s.steps));
  put("qat_serve_generated_tokens_per_second", "gauge", "tokens generated per second of step time",
      s.busy_s > 0 ? double(s.generated_tokens) / s.busy_s : 0.0);
  put("qat_serve_queue_depth", "gauge", "requests waiting for a place in the batch", double(s.queued));
  put("qat_serve_batch_size", "gauge", "requests decoding now", double(s.active));
  put("qat_serve_batch_size_max", "gauge", "the most sequences one step has run", double(s.max_active));
  return out;
}

// Wraps a handler: a BadRequest becomes 400 with OpenAI's error body.
httplib::Server::Handler guarded(Server& sv, std::function<void(const httplib::Request&, httplib::Response&)> f) {
  return [&sv, f](const httplib::Request& req, httplib::Response& res) {
    try {
      f(req, res);
    } catch (const BadRequest& e) {
      sv.bad_requests++;
      send_json(res, 400, error_body(e.what(), "invalid_request_error"));
    }
  };
}

// The routes, the API key check and the error bodies.
void install(httplib::Server& http, Server& sv) {
  http.set_pre_routing_handler([&sv](const httplib::Request& req, httplib::Response& res) {
    if (req.path.rfind("/v1/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
    if (!sv.args.api_key.empty() && req.get_header_value("Authorization") != "Bearer " + sv.args.api_key) {
      send_json(res, 401, error_body("invalid or missing API key (Authorization: Bearer KEY)", "invalid_request_error", "invalid_api_key"));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!sv.ready) {
      res.set_header("Retry-After", "1");
      send_json(res, 503, error_body("the model is loading", "unavailable_error"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.Post("/v1/completions", guarded(sv, [&sv](const auto& req, auto& res) { complete(sv, req, res, false); }));
  http.Post("/v1/chat/completions", guarded(sv, [&sv](const auto& req, auto& res) { complete(sv, req, res, true); }));
  http.Get("/v1/models", [&sv](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"object", "list"}, {"data", json::array({{{"id", sv.name}, {"object", "model"}, {"created", sv.created}, {"owned_by", "qat"}}})}});
  });
  http.Get("/health", [&sv](const httplib::Request&, httplib::Response& res) {
    if (sv.ready && !sv.draining) return send_json(res, 200, {{"status", "ok"}});
    send_json(res, 503, error_body(sv.draining ? "shutting down" : "the model is loading", "unavailable_error"));
  });
  http.Get("/metrics", [&sv](const httplib::Request&, httplib::Response& res) {
    res.set_content(metrics_text(sv), "text/plain; version=0.0.4");
  });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string msg = res.status == 413 ? "the request body is larger than --max-body"
                            : res.status == 404 ? "no such endpoint: " + req.path
                                                : str("HTTP ", res.status);
    send_json(res, res.status, error_body(msg, "invalid_request_error"));
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string msg = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      msg = e.what();
    } catch (...) {
    }
    send_json(res, 500, error_body(msg, "server_error"));
  });
}

// The model as served: a GGUF file or a QAT checkpoint on the integer kernels, an FP32 checkpoint on
// the native fixed-order f32 GEMM (not OpenBLAS, whose M = 1 and M > 1 paths round differently: a
// request's tokens must not depend on the batch).
void load(Server& sv) {
  sv.src.emplace(open_model(sv.args.model_path));
  const ModelSource& src = *sv.src;
  if (src.is_gguf()) sv.model = decode_model(src.gguf->model, Backend::native);
  else if (src.qat) sv.model = decode_model(quantized_from_qat(*src.transformer()), Backend::native);
  else sv.model = decode_model(quantized_from_f32(*src.transformer()), Backend::native);
  EngineLimits lim;
  lim.max_batch = sv.args.max_batch;
  lim.max_queue = sv.args.queue;
  lim.prefill_chunk = sv.args.prefill_chunk;
  lim.prefill_idle = sv.args.prefill_idle;
  sv.engine = std::make_unique<ServeEngine>(sv.model, *src.tokenizer, lim);
}

std::string file_name(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p.substr(p.find_last_of('/') == std::string::npos ? 0 : p.find_last_of('/') + 1);
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("serve", [&]() {
    Server sv;
    if (!parse_args(argc, argv, &sv.args)) return 0;
    const Args& a = sv.args;
    set_num_threads(int(a.threads));
    if (!a.isa.empty()) select_isa(a.isa);
    QAT_CHECK(file_exists(a.model_path) || is_directory(a.model_path), "--model: ", a.model_path, " does not exist");
    sv.name = a.alias.empty() ? file_name(a.model_path) : a.alias;
    sv.created = int64_t(std::time(nullptr));
    // SIGTERM / SIGINT are taken by sigwait below, so every thread started from here blocks them.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    ::signal(SIGPIPE, SIG_IGN);  // a client that went away is a failed write, not the end of the server
    httplib::Server http;
    install(http, sv);
    http.set_payload_max_length(size_t(a.max_body));
    // A bounded send buffer (accepted sockets inherit it): a client that stops reading blocks its
    // handler after ~256 KiB, and its sequence then waits (EngineLimits::max_backlog) instead of
    // generating into kernel memory. Token streams need far less.
    // Token events are small writes: without TCP_NODELAY, Nagle's algorithm holds each one until the
    // client acknowledges the last, and a stream arrives in bursts (accepted sockets inherit it).
    http.set_tcp_nodelay(true);
    int listener_fd = -1;
    http.set_socket_options([&listener_fd](socket_t sock) {
      listener_fd = sock;  // the last socket made is the one that listens
      httplib::default_socket_options(sock);
      int bytes = 128 << 10;
      ::setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
    });
    const size_t workers = size_t(a.max_batch + a.queue + 4);  // a thread for every request the engine holds
    http.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
    const int port = a.port == 0 ? http.bind_to_any_port(a.host) : (http.bind_to_port(a.host, int(a.port)) ? int(a.port) : -1);
    if (port < 0) fail("--host ", a.host, " --port ", a.port, ": cannot listen there (in use, or not an address of this machine)");
    // cpp-httplib listens with a backlog of 5: when more clients connect at once than the listener
    // thread accepts, the kernel drops their handshakes and they fail or wait seconds. A second
    // listen() on the socket raises the backlog (Linux).
    ::listen(listener_fd, SOMAXCONN);
    std::thread listener([&] { http.listen_after_bind(); });
    while (!http.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // else stop() could come first
    std::fprintf(stderr, "serve: listening on http://%s:%d (loading %s)\n", a.host.c_str(), port, a.model_path.c_str());
    try {
      // The load (GGUF parse, weight packing: OpenMP regions) on a thread that ends with it
      // (run_on_own_thread says why): loaded on main, one stream's step took 12-19 ms instead of 5-6.
      run_on_own_thread(int(a.threads), [&] { load(sv); });
    } catch (...) {
      http.stop();
      listener.join();
      throw;
    }
    sv.ready = true;
    std::fprintf(stderr, "serve: ready: %s, batch %lld, queue %lld, kernels %s\n", sv.src->describe().c_str(),
                 (long long)a.max_batch, (long long)a.queue, kernels().name);
    int sig = 0;
    sigwait(&sigs, &sig);
    sv.draining = true;
    const EngineStats s = sv.engine->stats();
    std::fprintf(stderr, "serve: %s: finishing %lld running and %lld queued requests, then exiting\n", strsignal(sig),
                 (long long)s.active, (long long)s.queued);
    sv.engine->drain();
    http.stop();  // the workers finish the responses in hand (the pool joins them)
    listener.join();
    std::fprintf(stderr, "serve: stopped after %lld requests, %lld tokens generated\n", (long long)sv.engine->stats().requests,
                 (long long)sv.engine->stats().generated_tokens);
    return 0;
  });
}
