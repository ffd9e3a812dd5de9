// Checkpoint save/load (see checkpoint.h).
#include "src/train/checkpoint.h"

#include <dirent.h>
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

// Hard-links (or copies) the regular files of `from` that are not in `skip` into `to`. A temp file of
// write_file_atomic (a process killed before its rename) is not carried: it goes with the old directory.
static void carry_over(const std::string& from, const std::string& to, const std::vector<std::string>& skip) {
  DIR* d = ::opendir(from.c_str());
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    bool skipped = false;
    for (const std::string& s : skip) skipped = skipped || s == name;
    std::string src = from + "/" + name, dst = to + "/" + name;
    if (skipped || is_atomic_temp_name(name) || is_directory(src)) continue;
    if (::link(src.c_str(), dst.c_str()) != 0) write_file_atomic(dst, read_file(src));
  }
  ::closedir(d);
}

void save_checkpoint(const std::string& dir, const CheckpointData& ck) {
  QAT_CHECK(ck.config && ck.params, "save_checkpoint: config and params are required");
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
    if (!ck.tokenizer_json.empty()) write_file_atomic(tmp + "/tokenizer.json", ck.tokenizer_json);
    if (ck.optimizer)
      save_safetensors(tmp + "/optimizer.safetensors", moments,
                       {{"format", "pt"}, {"step", std::to_string(ck.optimizer->steps_taken())}});
    if (!ck.state.is_null()) write_file_atomic(tmp + "/state.json", ck.state.dump(2) + "\n");
    carry_over(dir, tmp, {"model.safetensors", "config.json", "tokenizer.json", "optimizer.safetensors", "state.json"});
    make_dirs(dir.find('/') == std::string::npos ? "." : dir.substr(0, dir.find_last_of('/')));
    crash_point("checkpoint_swap");  // test hook: a complete temp directory, not yet swapped in
    replace_directory(tmp, dir);
  } catch (...) {
    remove_tree(tmp);
    throw;
  }
}

LoadedCheckpoint load_checkpoint(const std::string& dir) {
  recover_directory(dir);
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
  ck.tokenizer_path = dir + "/tokenizer.json";
  return ck;
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
