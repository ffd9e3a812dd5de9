// bin/generate as a llama-cli user drives it (issue 21): stop strings (the stop text never printed),
// the stop reason on the final line, -m / -p aliases, the repetition penalty, a default -n that runs to
// the end of the context, and --chat, a REPL whose turns share one KV cache. Code under test:
// tools/generate.cpp, models/sampler.cpp, models/chat.cpp.
#include <cstdio>

#include "tests/helpers.h"
#include "tests/proc.h"

using namespace qat;
using namespace qat::test;

namespace {

// A tiny trained checkpoint (2 steps) exported as q8_0 GGUF, made once; context 96.
struct GenFixture {
  ScratchDir dir{"generate"};
  std::string gguf;
  GenFixture() : gguf(tiny_q8_0_gguf(dir, 120, 96, 2)) {}
};
const GenFixture& gen_fixture() {
  static GenFixture f;
  return f;
}

int g_gen_run = 0;
ProcResult gen(std::vector<std::string> extra, const std::string& stdin_path = "/dev/null") {
  std::vector<std::string> argv{"bin/generate", "--model", gen_fixture().gguf, "--threads", "1"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  Child c(argv, gen_fixture().dir.path + "/gen" + std::to_string(g_gen_run++), {}, stdin_path);
  return c.wait(60);
}

// The generated text: stdout without the prompt and generate's closing newline.
std::string text_of(const ProcResult& r, const std::string& prompt) {
  REQUIRE(r.out.size() >= prompt.size() + 1);
  REQUIRE(r.out.back() == '\n');
  return r.out.substr(prompt.size(), r.out.size() - prompt.size() - 1);
}

// "prompt N tokens" / "decode N tokens" from the final line.
long long figure(const std::string& err, const char* what) {
  size_t at = err.find(std::string(what) + " ");
  REQUIRE(at != std::string::npos);
  return std::stoll(err.substr(at + std::strlen(what) + 1));
}

}  // namespace

TEST_CASE("bin/generate: stop strings end the text before them; the final line says why it stopped", "[generate]") {
  const std::string prompt = "the cat";
  ProcResult full = gen({"-p", prompt, "-n", "24", "--seed", "5", "--keep-going"});
  INFO(full.what());
  REQUIRE(full.code == 0);
  CHECK_THAT(full.err, Catch::Contains("stopped: max tokens (finish_reason length)"));
  CHECK(figure(full.err, "decode") == 24);
  const std::string text = text_of(full, prompt);
  REQUIRE(text.size() >= 8);
  const std::string stop = text.substr(text.size() / 2, 2);  // a piece from the middle of the text
  ProcResult cut = gen({"-p", prompt, "-n", "24", "--seed", "5", "--keep-going", "--stop", "zzzz", "--stop", stop});
  INFO(cut.what() << "\nstop '" << stop << "'");
  REQUIRE(cut.code == 0);
  CHECK(text_of(cut, prompt) == text.substr(0, text.find(stop)));
  CHECK_THAT(cut.err, Catch::Contains("stopped: stop string (finish_reason stop)"));
  // -m / -p are --model / --prompt; the long names give the same bytes.
  ProcResult longs = run_proc({"bin/generate", "--model", gen_fixture().gguf, "--threads", "1", "--prompt", prompt, "--tokens",
                               "24", "--seed", "5", "--keep-going"},
                              gen_fixture().dir.path + "/long");
  CHECK(longs.out == full.out);
}

TEST_CASE("bin/generate: the default -n runs to the end of the context; penalties change the text", "[generate]") {
  ProcResult r = gen({"-p", "the", "--seed", "2", "--keep-going"});
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK_THAT(r.err, Catch::Contains("stopped: context full (finish_reason length)"));
  CHECK(figure(r.err, "prompt") + figure(r.err, "decode") == 96 + 1);  // the last token is printed, not run
  ProcResult plain = gen({"-p", "the", "-n", "20", "--temp", "0", "--keep-going"});
  ProcResult same = gen({"-p", "the", "-n", "20", "--temp", "0", "--keep-going", "--repeat-penalty", "1"});
  ProcResult pen = gen({"-p", "the", "-n", "20", "--temp", "0", "--keep-going", "--repeat-penalty", "3", "--repeat-last-n", "8"});
  INFO(plain.out << "\n---\n" << pen.out);
  REQUIRE(plain.code == 0);
  REQUIRE(pen.code == 0);
  CHECK(same.out == plain.out);
  CHECK(pen.out != plain.out);
  ProcResult again = gen({"-p", "the", "-n", "20", "--temp", "0", "--keep-going", "--repeat-penalty", "3", "--repeat-last-n", "8"});
  CHECK(again.out == pen.out);
}

TEST_CASE("bin/generate --chat: a turn is the template's prompt; later turns run only their own tokens", "[generate]") {
  const GenFixture& f = gen_fixture();
  const std::string turns = f.dir.path + "/turns.txt";
  write_file_atomic(turns, "hi\nok\n");
  ProcResult chat = gen({"--chat", "-n", "4", "--seed", "9"}, turns);
  INFO(chat.what() << "\nstdout: " << chat.out);
  REQUIRE(chat.code == 0);
  std::vector<std::string> replies = lines_of(chat.out);
  REQUIRE(replies.size() >= 2);
  // The first reply is what generate gives for the template's text as a prompt, with the chat's stop.
  const std::string prompt = "User: hi\nAssistant:";
  ProcResult one = gen({"-p", prompt, "-n", "4", "--seed", "9", "--stop", "\nUser:"});
  REQUIRE(one.code == 0);
  CHECK(chat.out.substr(0, chat.out.find('\n')) == one.out.substr(prompt.size(), one.out.find('\n', prompt.size()) - prompt.size()));
  // The second turn's prompt is its own line (and the last reply's token), not the conversation again.
  CHECK(figure(chat.err, "prompt") < figure(one.err, "prompt") + 4);
  ProcResult bad = gen({"--chat", "--stdin"});
  CHECK(bad.code == 2);
}
