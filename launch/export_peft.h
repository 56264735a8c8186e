// Exports of a finetuned run in Hugging Face layouts.
#pragma once
#include <cstdint>
#include <string>

#include "models/llama.h"
#include "models/lora.h"

namespace zeroth::cli {

// adapter_model.safetensors (PEFT tensor names) + adapter_config.json. When the
// base uses Meta's interleaved q/k layout (GGUF, llama2.c), the rows of the q/k
// B factors are permuted to HF's rotate-half order, so the adapter applies to
// the HF checkpoint of the same model.
void export_peft(const std::string& dir, const LoraAdapters& lora, const std::string& base_path,
                 bool base_interleaved, int64_t n_heads, int64_t n_kv_heads);
// The finetuned model as an HF directory (model.safetensors in f32 +
// config.json): θ's own weights, norms, token embedding and output layer where
// the run trained them, and W + (alpha/r)·B·A merged into every adapted
// projection. `theta` is θ as an AdapterSet (variant 0).
void export_merged(const std::string& dir, const LlamaModel& model, const AdapterSet& theta);

}  // namespace zeroth::cli
