// What the binaries write never destroys what a user has (issue 15, items 1, 3, 4, 5, 14): bin/train
// refuses a --out that is not its own checkpoint and carries a user's entries in a checkpoint through
// every save; a second trainer on the same --out is refused while the first runs; nothing is renamed
// over a device, a FIFO or a symlink (the link is written through); a trailing '/' works and a mount
// point is refused at start; read-only commands rename nothing; a killed writer's temp file is removed
// by the next write of that file. The binaries run as child processes (tests/proc.h).
// Code under test: src/io/file.cpp, models/checkpoint.cpp, models/train/trainer.cpp, tools/quantize.cpp.
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "src/io/json.h"
#include "tests/helpers.h"
#include "tests/proc.h"

using namespace qat;
using namespace qat::test;

namespace {

// The corpus and a tiny trained checkpoint (2 steps), made once.
struct Fixture {
  ScratchDir dir{"outputs"};
  std::string corpus, ckpt;
  Fixture() {
    corpus = dir.put("corpus.txt", synthetic_corpus(120));
    ckpt = dir.path + "/ckpt";
    ProcResult r = run_proc(train_args(ckpt, 2), dir.path + "/fixture");
    if (r.code != 0) fail("fixture: bin/train failed: ", r.what());
  }
  std::vector<std::string> train_args(const std::string& out, int steps) const {
    return {"bin/train", "--data", dir.path + "/corpus.txt", "--preset", "tiny", "--vocab", "280", "--ctx", "16",
            "--batch", "2", "--steps", std::to_string(steps), "--threads", "1", "--out", out, "--cache-dir",
            dir.path + "/cache", "--quiet", "--no-plot"};
  }
};
const Fixture& fixture() {
  static Fixture f;
  return f;
}

int g_run = 0;
ProcResult run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
  return run_proc(argv, fixture().dir.path + "/log" + std::to_string(g_run++), env, 120);
}

// The process exited 1 with exactly one line on stderr holding every one of `parts`.
void expect_refusal(const ProcResult& r, const std::vector<std::string>& parts) {
  INFO(r.what());
  REQUIRE(r.signal == 0);
  CHECK(r.code == 1);
  REQUIRE(!r.err.empty());
  CHECK(r.err.find('\n') == r.err.size() - 1);
  for (const std::string& p : parts) CHECK_THAT(r.err, Catch::Contains(p));
}

mode_t lmode(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 ? st.st_mode : 0;
}

// Copies the fixture's checkpoint files into `d` (a fresh directory).
void copy_checkpoint(const std::string& d) {
  make_dirs(d);
  for (const char* f : {"model.safetensors", "config.json", "tokenizer.json", "optimizer.safetensors", "state.json"})
    write_file_atomic(d + "/" + f, read_file(fixture().ckpt + "/" + f));
}

// The names in `dir` that start with `prefix`.
std::vector<std::string> names_with(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d))
      if (std::string(e->d_name).rfind(prefix, 0) == 0) out.push_back(e->d_name);
    ::closedir(d);
  }
  return out;
}

}  // namespace

TEST_CASE("bin/train --out: a foreign non-empty directory is refused and left as it was", "[outputs]") {
  const Fixture& f = fixture();
  ScratchDir d("outputs-foreign");
  // `--out runs` meant `--out runs/x`: another run's directory and a user file sit in it.
  const std::string v = d.path + "/v";
  make_dirs(v + "/other_run");
  write_file_atomic(v + "/other_run/m.txt", "x\n");
  expect_refusal(run(f.train_args(v, 2)), {"--out " + v, "not a bin/train checkpoint", "other_run"});
  CHECK(read_file(v + "/other_run/m.txt") == "x\n");
  CHECK(names_with(d.path, "v") == std::vector<std::string>{"v"});  // no v.ckpt-tmp, no v.lock
  // A directory of plain files is no checkpoint either; a regular file is not a directory.
  const std::string notes = d.path + "/notes";
  make_dirs(notes);
  write_file_atomic(notes + "/todo.txt", "keep\n");
  expect_refusal(run(f.train_args(notes, 2)), {"--out " + notes, "todo.txt"});
  CHECK(read_file(notes + "/todo.txt") == "keep\n");
  const std::string file = d.put("plain", "plain\n");
  expect_refusal(run(f.train_args(file, 2)), {"--out " + file, "not a directory"});
  CHECK(read_file(file) == "plain\n");
}

TEST_CASE("bin/train into its own checkpoint: a rerun and a resume keep every entry that is not the checkpoint's",
          "[outputs]") {
  const Fixture& f = fixture();
  ScratchDir d("outputs-carry");
  const std::string c = d.path + "/c";
  REQUIRE(run(f.train_args(c, 2)).code == 0);
  // A user's entries of every kind inside the checkpoint directory.
  make_dirs(c + "/notes/deep");
  write_file_atomic(c + "/notes/deep/n.txt", "deep\n");
  write_file_atomic(c + "/README", "mine\n");
  REQUIRE(::symlink("README", (c + "/readme-link").c_str()) == 0);
  REQUIRE(::symlink("/nonexistent-target", (c + "/dangling").c_str()) == 0);
  REQUIRE(::mkfifo((c + "/pipe").c_str(), 0644) == 0);
  auto check_kept = [&]() {
    CHECK(read_file(c + "/notes/deep/n.txt") == "deep\n");
    CHECK(read_file(c + "/README") == "mine\n");
    CHECK(S_ISLNK(lmode(c + "/readme-link")));
    CHECK(read_file(c + "/readme-link") == "mine\n");
    CHECK(S_ISLNK(lmode(c + "/dangling")));
    CHECK(S_ISFIFO(lmode(c + "/pipe")));
    CHECK_FALSE(file_exists(c + ".ckpt-tmp"));
    CHECK_FALSE(file_exists(c + ".lock"));
  };
  ProcResult r = run(f.train_args(c, 2));  // a fresh run replaces the checkpoint
  INFO(r.what());
  REQUIRE(r.code == 0);
  check_kept();
  std::vector<std::string> resume = {"bin/train", "--resume", "--out", c, "--steps", "3", "--threads", "1",
                                     "--quiet", "--no-plot"};
  r = run(resume);
  INFO(r.what());
  REQUIRE(r.code == 0);
  check_kept();
  CHECK(Json::parse(read_file(c + "/state.json")).at("step").as_int() == 3);
}

TEST_CASE("two trainers on one --out: the second is refused, naming the first's pid", "[outputs]") {
  const Fixture& f = fixture();
  ScratchDir d("outputs-lock");
  const std::string c = d.path + "/c", link = d.path + "/link";
  REQUIRE(::symlink(c.c_str(), link.c_str()) == 0);  // the same directory under another name, once it exists
  make_dirs(c);
  Child first(f.train_args(c, 1000000), d.path + "/first");
  // The first run holds the lock once its pid is in <out>.lock (taken before it reads any data).
  const std::string pid = std::to_string(first.pid());
  double t_end = monotonic_s() + 60;
  while (!(file_exists(c + ".lock") && read_file(c + ".lock") == pid + "\n")) {
    if (first.done() || monotonic_s() > t_end) FAIL("the first run never locked " << c << ".lock: " << first.wait(1).what());
    sleep_s(0.01);
  }
  for (const std::string& out : {c, link + "/"})
    expect_refusal(run(f.train_args(out, 2)), {"--out " + out, "in use by another process", "pid " + pid});
  REQUIRE_FALSE(first.done());  // the refusals came while it held the lock
  first.kill();
  REQUIRE(first.wait(60).signal == SIGKILL);
  // A SIGKILL leaves the lock file, but not the lock: the next run takes it over and removes it.
  CHECK(file_exists(c + ".lock"));
  ProcResult r = run(f.train_args(c, 2));
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK_FALSE(file_exists(c + ".lock"));
}

TEST_CASE("nothing is renamed over a FIFO or a device; a symlink is written through", "[outputs]") {
  ScratchDir d("outputs-special");
  const std::string fifo = d.path + "/fifo", dev = d.path + "/null-device";
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  // A character device of our own (/dev/null's numbers) under /tmp: never the machine's /dev/null.
  REQUIRE(::mknod(dev.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0);
  REQUIRE_THROWS_WITH(write_file_atomic(fifo, "data"), Catch::Contains("cannot write " + fifo) && Catch::Contains("FIFO"));
  REQUIRE_THROWS_WITH(write_file_atomic(dev, "data"), Catch::Contains(dev) && Catch::Contains("character device"));
  REQUIRE_THROWS_WITH(write_file_atomic(d.path, "data"), Catch::Contains("a directory"));
  CHECK(S_ISFIFO(lmode(fifo)));
  CHECK(S_ISCHR(lmode(dev)));
  CHECK(names_with(d.path, "fifo.tmp.").empty());
  // A symlink to a file: the target gets the new bytes, the link stays a link.
  const std::string target = d.put("target.bin", "old"), link = d.path + "/link.bin";
  REQUIRE(::symlink(target.c_str(), link.c_str()) == 0);
  write_file_atomic(link, "new");
  CHECK(S_ISLNK(lmode(link)));
  CHECK(read_file(target) == "new");
  // The same through bin/quantize: one line, the FIFO and the device stay what they were.
  for (const std::string& out : {fifo, dev}) {
    expect_refusal(run({"bin/quantize", "--model", fixture().ckpt, "--scheme", "q8_0", "--to-gguf", out, "--threads", "1"}),
                   {"cannot write " + out, "not a regular file"});
  }
  CHECK(S_ISFIFO(lmode(fifo)));
  CHECK(S_ISCHR(lmode(dev)));
}

TEST_CASE("bin/train --out: a symlink stays, a trailing slash works, a mount point is refused at start", "[outputs]") {
  const Fixture& f = fixture();
  ScratchDir d("outputs-paths");
  const std::string real = d.path + "/real", link = d.path + "/link";
  make_dirs(real);
  REQUIRE(::symlink(real.c_str(), link.c_str()) == 0);
  ProcResult r = run(f.train_args(link + "/", 2));
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK(S_ISLNK(lmode(link)));
  CHECK(file_exists(real + "/model.safetensors"));
  CHECK(file_exists(real + "/state.json"));
  r = run(f.train_args(d.path + "/plain/", 2));  // a directory that does not exist yet
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK(file_exists(d.path + "/plain/state.json"));
  CHECK(names_with(d.path, "plain") == std::vector<std::string>{"plain"});
  CHECK(names_with(d.path, "link") == std::vector<std::string>{"link"});
  // A mount point cannot be renamed: refused before any data is read (/proc is one on every Linux).
  REQUIRE(is_mount_point("/proc"));
  REQUIRE(is_mount_point("/"));
  REQUIRE_FALSE(is_mount_point(real));
  expect_refusal(run(f.train_args("/proc", 2)), {"--out /proc: a mount point"});
  CHECK_FALSE(file_exists("/proc.lock"));  // refused before the lock file beside it was made
}

TEST_CASE("read-only commands rename nothing; the next bin/train finishes an interrupted swap", "[outputs]") {
  ScratchDir d("outputs-readonly");
  // A user's own runs/foo.old, and what replace_directory's fallback leaves when killed between its two
  // renames (runs/foo.ckpt-old, runs/foo missing).
  const std::string foo = d.path + "/foo";
  copy_checkpoint(foo + ".old");
  for (const std::vector<std::string>& argv :
       {std::vector<std::string>{"bin/generate", "--model", foo, "--prompt", "the cat", "--tokens", "2", "--threads", "1"},
        std::vector<std::string>{"bin/eval", "--model", foo, "--windows", "1", "--threads", "1"},
        std::vector<std::string>{"bin/quantize", "--model", foo, "--to-gguf", d.path + "/x.gguf", "--threads", "1"}}) {
    expect_refusal(run(argv), {foo});
    CHECK_FALSE(file_exists(foo));
    CHECK(file_exists(foo + ".old/model.safetensors"));
  }
  copy_checkpoint(foo + ".ckpt-old");
  expect_refusal(run({"bin/generate", "--model", foo, "--prompt", "the cat", "--tokens", "2", "--threads", "1"}), {foo});
  CHECK_FALSE(file_exists(foo));
  // The writer recovers at its start: --resume continues the interrupted checkpoint; foo.old stays.
  ProcResult r = run({"bin/train", "--resume", "--out", foo, "--steps", "3", "--threads", "1", "--quiet", "--no-plot"});
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK(Json::parse(read_file(foo + "/state.json")).at("step").as_int() == 3);
  CHECK_FALSE(file_exists(foo + ".ckpt-old"));
  CHECK(file_exists(foo + ".old/model.safetensors"));
}

TEST_CASE("a killed bin/quantize's temp file is removed by the next write of that file", "[outputs]") {
  ScratchDir d("outputs-temps");
  const std::string out = d.path + "/m.gguf";
  std::vector<std::string> argv = {"bin/quantize", "--model", fixture().ckpt, "--scheme", "q8_0", "--to-gguf", out,
                                   "--threads", "1"};
  // Killed (SIGKILL) with the GGUF complete in its temp file, before the rename.
  ProcResult r = run(argv, {"QAT_CRASH_AT=write_file_atomic:1"});
  INFO(r.what());
  REQUIRE(r.signal == SIGKILL);
  REQUIRE(names_with(d.path, "m.gguf.tmp.").size() == 1);
  // Temp files that are not that dead writer's own stay: a live process's, another file's.
  const std::string live = "m.gguf.tmp." + std::to_string(::getpid());
  d.put(live, "being written");
  d.put("other.gguf.tmp.999999999", "not ours");
  r = run(argv);
  INFO(r.what());
  REQUIRE(r.code == 0);
  CHECK(names_with(d.path, "m.gguf.tmp.") == std::vector<std::string>{live});
  CHECK(file_exists(d.path + "/other.gguf.tmp.999999999"));
  CHECK(file_exists(out));
}
