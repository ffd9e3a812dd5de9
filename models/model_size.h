// The size figures the binaries print about a model (bin/eval, bin/quantize, bin/generate), each defined
// once here so that one model gets one number everywhere, with its unit named:
//   parameters  the weights and norms of the architecture (ModelConfig::n_params); a QAT model's learned
//               scales are training state, not counted
//   weights     bytes of the weight tensors as stored in GGUF (QuantizedModel::storage_bytes: blocks with
//               their scales, norms in f32); an FP32 model stores 4 bytes a parameter. MiB = 2^20 bytes.
#pragma once
#include <cstdint>
#include <string>

#include "models/config.h"
#include "models/quantized.h"

namespace qat {

int64_t parameter_count(const ModelConfig& cfg);
int64_t weight_bytes(const QuantizedModel& m);  // as stored in GGUF
int64_t f32_weight_bytes(const ModelConfig& cfg);  // the same figure for the model in f32

// "0.028 MiB": every size is printed with this one precision.
std::string mib(int64_t bytes);
// "weights 0.028 MiB as stored in GGUF" and "51360 parameters, weights ...": the figures as printed.
std::string weights_figure(int64_t weight_bytes);
std::string size_figures(const ModelConfig& cfg, int64_t weight_bytes);

}  // namespace qat
