// Builds the inference model (decode.h) from a training checkpoint directory: f32 weights, every
// linear layer through OpenBLAS. Quantized models come from GGUF files (models/from_gguf.h).
#pragma once
#include "models/decode.h"
#include "models/transformer.h"
#include "models/checkpoint.h"

namespace qat {

DecodeModel decode_model_from_checkpoint(const LoadedCheckpoint& ck);
// The same from an in-memory FP32 model (copies the weights).
DecodeModel decode_model_from_transformer(const Transformer& t);

}  // namespace qat
