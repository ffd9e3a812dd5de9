// Checkpoint save/load and the claim on an output directory (see checkpoint.h).
#include "models/checkpoint.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>

#include "models/transformer.h"
#include "src/io/file.h"

namespace qat {

static void require_finite(const Tensor& t, const std::string& name) {
  NonFinite nf = find_nonfinite(t);
  QAT_CHECK(nf.count == 0, "refusing to write a checkpoint: '", name, "' holds ", nf.count,
            " non-finite values (first: ", nf.first_value, " at index ", nf.first_index, ")");
}

namespace {

// The files a save writes anew; any other entry of the directory is carried into the new one.
const char* const kReplaced[] = {"model.safetensors", "config.json", "tokenizer.json", "tokenizer.gguf",
                                 "optimizer.safetensors", "state.json"};
// Written in place between checkpoints (carried over by the swap like a user's file).
const char* const kBetweenSaves[] = {"metrics.jsonl", "loss.png"};

bool in(const std::string& name, const auto& list) {
  for (const char* s : list)
    if (name == s) return true;
  return false;
}

// A temp file of write_file_atomic for one of the checkpoint's own files ("config.json.tmp.<pid>").
bool is_own_temp(const std::string& name) {
  if (!is_atomic_temp_name(name)) return false;
  std::string base = name.substr(0, name.rfind(".tmp."));
  return in(base, kReplaced) || in(base, kBetweenSaves);
}

void carry_over(const std::string& from, const std::string& to, dev_t dev, bool top);

// Recreates one entry of the old checkpoint in the new one without copying data where it can: a file
// is hard-linked (copied where links fail), a directory rebuilt with its contents carried the same
// way, a symlink recreated (not followed), a FIFO / device / socket made again.
void carry_entry(const std::string& src, const std::string& dst, const struct stat& st, dev_t dev) {
  if (S_ISDIR(st.st_mode)) {
    // Its files would be copied and the mount left behind in the old tree: refused, nothing removed.
    QAT_CHECK(st.st_dev == dev, "cannot save the checkpoint: ", src, " is a mount point; move it out of the directory");
    if (::mkdir(dst.c_str(), st.st_mode & 07777) != 0)
      fail("cannot save the checkpoint: ", dst, ": ", std::strerror(errno));
    carry_over(src, dst, dev, false);
  } else if (S_ISLNK(st.st_mode)) {
    std::string target(size_t(st.st_size) + 1, '\0');
    ssize_t n = ::readlink(src.c_str(), target.data(), target.size());
    if (n < 0 || size_t(n) >= target.size() || ::symlink(target.substr(0, size_t(n)).c_str(), dst.c_str()) != 0)
      fail("cannot save the checkpoint: cannot carry the symbolic link ", src, ": ", std::strerror(errno));
  } else if (S_ISREG(st.st_mode)) {
    if (::link(src.c_str(), dst.c_str()) != 0) write_file_atomic(dst, read_file(src));
  } else if (::mknod(dst.c_str(), st.st_mode, st.st_rdev) != 0) {
    fail("cannot save the checkpoint: cannot carry ", src, ": ", std::strerror(errno));
  }
}

// Carries every entry of `from` into `to`, except (at the top) the files the new checkpoint replaces
// and temp files of the checkpoint's own files (a process killed before its rename: they go with the
// old directory). Removing the old tree after the swap then removes nothing else.
void carry_over(const std::string& from, const std::string& to, dev_t dev, bool top) {
  DIR* d = ::opendir(from.c_str());
  if (!d) return;
  try {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string src = from + "/" + name;
      struct stat st;
      if (::lstat(src.c_str(), &st) != 0) continue;  // removed meanwhile
      bool own_file = S_ISREG(st.st_mode) || S_ISLNK(st.st_mode);
      if (top && ((own_file && in(name, kReplaced)) || is_own_temp(name))) continue;
      carry_entry(src, to + "/" + name, st, dev);
    }
  } catch (...) {
    ::closedir(d);
    throw;
  }
  ::closedir(d);
}

// Why a fresh or resumed run may not write into `dir` ("" when it may): it may when `dir` does not exist,
// is empty, is a bin/train checkpoint (state.json: replaced by the new run, other entries carried
// over), or holds only what a run killed before its first checkpoint leaves (metrics, temp files).
std::string output_dir_refusal(const std::string& dir) {
  struct stat st;
  if (::lstat(dir.c_str(), &st) != 0) return "";
  if (!S_ISDIR(st.st_mode)) return "exists and is not a directory";
  if (is_mount_point(dir))
    return "a mount point (a checkpoint is swapped in by renaming its directory); use a directory inside it";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return str("cannot list it: ", std::strerror(errno));
  std::string foreign;
  bool checkpoint = false;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (name == "state.json") checkpoint = ::lstat((dir + "/" + name).c_str(), &st) == 0 && S_ISREG(st.st_mode);
    else if (foreign.empty() && !in(name, kBetweenSaves) && !is_own_temp(name)) foreign = name;
  }
  ::closedir(d);
  if (checkpoint || foreign.empty()) return "";
  return "not empty and not a bin/train checkpoint (it holds '" + foreign +
         "' and no state.json); nothing was written: choose another directory";
}

}  // namespace

FileLock claim_output_dir(const std::string& out) {
  const std::string dir = resolve_output_path(out);
  std::string why = output_dir_refusal(dir);
  if (!why.empty()) fail("--out ", out, ": ", why);
  size_t slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0) make_dirs(dir.substr(0, slash));  // where the lock file goes
  FileLock lock = lock_for_writing(dir, "--out " + out);
  recover_directory(dir);  // a save killed between the two renames of replace_directory's fallback
  return lock;
}

void save_checkpoint(const std::string& dir_given, const CheckpointData& ck) {
  QAT_CHECK(ck.config && ck.params, "save_checkpoint: config and params are required");
  // The real directory (a symlink's target, no trailing '/'): the temp directory goes beside it, and
  // the swap replaces it, not the link.
  const std::string dir = resolve_output_path(dir_given);
  struct stat dst;
  const bool exists = ::lstat(dir.c_str(), &dst) == 0;
  QAT_CHECK(!exists || S_ISDIR(dst.st_mode), "checkpoint ", dir_given, ": exists and is not a directory");
  std::vector<std::pair<std::string, Tensor>> weights, moments;
  for (int i = 0; i < ck.params->size(); i++) {
    const std::string& name = ck.params->info(i).name;
    require_finite((*ck.params)[i], name);
    weights.push_back({name, (*ck.params)[i]});
  }
  if (ck.optimizer) {
    for (int i = 0; i < ck.params->size(); i++) {
      const ParamInfo& p = ck.params->info(i);
      Tensor m = ck.optimizer->exp_avg().slice(0, p.offset, p.offset + p.numel).reshape(p.shape);
      Tensor v = ck.optimizer->exp_avg_sq().slice(0, p.offset, p.offset + p.numel).reshape(p.shape);
      require_finite(m, "exp_avg." + p.name);
      require_finite(v, "exp_avg_sq." + p.name);
      moments.push_back({"exp_avg." + p.name, m});
      moments.push_back({"exp_avg_sq." + p.name, v});
    }
  }
  std::string tmp = dir + ".ckpt-tmp";
  remove_tree(tmp);
  make_dirs(tmp);
  try {
    save_safetensors(tmp + "/model.safetensors", weights, {{"format", "pt"}});
    crash_point("checkpoint_partial");  // test hook: a half-built temp directory
    Json config = ck.config->to_json();
    if (!ck.quantization.is_null()) config.set("quantization_config", ck.quantization);
    write_file_atomic(tmp + "/config.json", config.dump(2) + "\n");
    if (!ck.tokenizer_json.empty()) write_file_atomic(tmp + "/" + ck.tokenizer_name, ck.tokenizer_json);
    if (ck.optimizer)
      save_safetensors(tmp + "/optimizer.safetensors", moments,
                       {{"format", "pt"}, {"step", std::to_string(ck.optimizer->steps_taken())}});
    if (!ck.state.is_null()) write_file_atomic(tmp + "/state.json", ck.state.dump(2) + "\n");
    if (exists) carry_over(dir, tmp, dst.st_dev, true);
    make_dirs(dir.find('/') == std::string::npos ? "." : dir.substr(0, dir.find_last_of('/')));
    crash_point("checkpoint_swap");  // test hook: a complete temp directory, not yet swapped in
    replace_directory(tmp, dir);
  } catch (...) {
    remove_tree(tmp);
    throw;
  }
}

// Read-only: never renames anything (crash recovery is the next writer's, claim_output_dir).
LoadedCheckpoint load_checkpoint(const std::string& dir) {
  QAT_CHECK(is_directory(dir), "checkpoint ", dir, ": not a directory");
  LoadedCheckpoint ck;
  ck.dir = dir;
  Json config;
  try {
    config = Json::parse(read_file(dir + "/config.json", 1 << 20));
  } catch (const Error& e) {
    fail("checkpoint ", dir, ": config.json: ", e.what());
  }
  try {
    ck.config = ModelConfig::from_json(config);
  } catch (const Error& e) {
    fail("checkpoint ", dir, ": config.json: ", e.what());
  }
  if (const Json* q = config.find("quantization_config")) ck.quantization = *q;
  // Names and shapes are checked from the header, before any tensor is read (an extra tensor of 8 GB).
  std::optional<QatConfig> qat;
  try {
    if (!ck.quantization.is_null()) qat = QatConfig::from_json(ck.quantization, ck.config.n_layers, ck.config.tied);
  } catch (const Error& e) {
    fail("checkpoint ", dir, ": config.json: ", e.what());
  }
  const auto layout = Transformer::param_layout(ck.config, qat ? &*qat : nullptr);
  ck.weights = load_safetensors(dir + "/model.safetensors", {.reject_nonfinite = true, .expect = &layout});
  // The config must not describe more parameters than the file holds: checked before anything builds
  // a model of the config's size (a hostile config.json could otherwise ask for terabytes).
  int64_t stored = 0;
  for (const auto& [name, t] : ck.weights.tensors) stored += t.numel();
  QAT_CHECK(ck.config.n_params() <= stored, "checkpoint ", dir, ": config.json describes ", ck.config.n_params(),
            " parameters but model.safetensors holds ", stored, " values");
  if (file_exists(dir + "/optimizer.safetensors")) {
    std::vector<std::pair<std::string, Shape>> moments;  // exp_avg.<name>, exp_avg_sq.<name>
    for (const auto& [name, shape] : layout)
      for (const char* kind : {"exp_avg.", "exp_avg_sq."}) moments.emplace_back(kind + name, shape);
    ck.optimizer = load_safetensors(dir + "/optimizer.safetensors", {.reject_nonfinite = true, .expect = &moments});
  }
  if (file_exists(dir + "/state.json")) {
    try {
      ck.state = Json::parse(read_file(dir + "/state.json", 1 << 24));
    } catch (const Error& e) {
      fail("checkpoint ", dir, ": state.json: ", e.what());
    }
  }
  ck.tokenizer_path = dir + (file_exists(dir + "/tokenizer.gguf") ? "/tokenizer.gguf" : "/tokenizer.json");
  return ck;
}

std::shared_ptr<const Vocab> checkpoint_vocab(const LoadedCheckpoint& ck) {
  return ck.vocab ? ck.vocab : load_vocab_file(ck.tokenizer_path);
}

void load_params(ParamStore& params, const SafeTensors& weights, const std::string& what,
                 const std::vector<std::string>& allow_missing) {
  auto ends_with = [](const std::string& s, const std::string& suf) {
    return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
  };
  for (int i = 0; i < params.size(); i++) {
    const ParamInfo& p = params.info(i);
    const Tensor* t = weights.find(p.name);
    if (!t) {
      bool ok = false;
      for (const std::string& s : allow_missing) ok = ok || ends_with(p.name, s);
      QAT_CHECK(ok, what, ": missing tensor '", p.name, "'");
      continue;
    }
    QAT_CHECK(t->dtype() == DType::f32, what, ": tensor '", p.name, "' is ", dtype_name(t->dtype()), ", expected f32");
    if (t->shape() != p.shape)
      fail(what, ": tensor '", p.name, "' has shape ", t->shape_string(), ", the config expects ", shape_str(p.shape));
    params[i].copy_from(*t);
  }
  for (const auto& [name, t] : weights.tensors)
    QAT_CHECK(params.index_of(name) >= 0, what, ": unexpected tensor '", name, "' (not part of this model's config)");
}

void load_optimizer(AdamW& opt, const ParamStore& params, const SafeTensors& st) {
  for (int i = 0; i < params.size(); i++) {
    const ParamInfo& p = params.info(i);
    for (const char* kind : {"exp_avg.", "exp_avg_sq."}) {
      const Tensor& t = st.at(kind + p.name);
      if (t.shape() != p.shape || t.dtype() != DType::f32)
        fail(st.path, ": tensor '", kind, p.name, "' has shape ", t.shape_string(), ", expected ", shape_str(p.shape));
      Tensor& flat = std::strcmp(kind, "exp_avg.") == 0 ? opt.exp_avg() : opt.exp_avg_sq();
      flat.slice(0, p.offset, p.offset + p.numel).reshape(p.shape).copy_from(t);
    }
  }
  auto it = st.metadata.find("step");
  QAT_CHECK(it != st.metadata.end(), st.path, ": __metadata__ has no 'step'");
  char* end = nullptr;
  long long step = std::strtoll(it->second.c_str(), &end, 10);
  QAT_CHECK(*end == '\0' && step >= 0, st.path, ": __metadata__ 'step' is not a non-negative integer");
  opt.set_steps_taken(step);
}

}  // namespace qat
