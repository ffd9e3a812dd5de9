// The size figures of a model (see model_size.h).
#include "models/model_size.h"

#include <cstdio>

namespace qat {

int64_t parameter_count(const ModelConfig& cfg) { return cfg.n_params(); }

int64_t weight_bytes(const QuantizedModel& m) { return m.storage_bytes(); }

int64_t f32_weight_bytes(const ModelConfig& cfg) { return 4 * parameter_count(cfg); }

std::string mib(int64_t bytes) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.3f MiB", double(bytes) / double(1 << 20));
  return buf;
}

std::string weights_figure(int64_t bytes) { return "weights " + mib(bytes) + " as stored in GGUF"; }

std::string size_figures(const ModelConfig& cfg, int64_t bytes) {
  return std::to_string(parameter_count(cfg)) + " parameters, " + weights_figure(bytes);
}

}  // namespace qat
