// `zeroth inspect PATH`: what a model file (GGUF, safetensors, HF directory,
// llama2.c .bin) holds: format, architecture summary, tensors and totals.
#include <fmt/format.h>

#include <memory>

#include "core/formats/inspect.h"
#include "launch/commands.h"

namespace zeroth::cli {

Runner add_inspect(CLI::App& app) {
  struct Options {
    std::string path;
    bool json = false;
    bool metadata = false;
  };
  auto opt = std::make_shared<Options>();
  auto* sub = app.add_subcommand("inspect", "Show a model file's format, metadata and tensors");
  sub->add_option("path", opt->path, "GGUF, .safetensors, index .json, llama2.c .bin, or a Hugging Face directory")
      ->required();
  sub->add_flag("--json", opt->json, "Print a machine-readable JSON report");
  sub->add_flag("--metadata", opt->metadata, "Include all metadata (long arrays abbreviated)");
  return [opt] {
    const ModelFileReport r = inspect_model_file(opt->path);
    if (opt->json) fmt::print("{}\n", render_report_json(r, opt->metadata).dump(2));
    else fmt::print("{}", render_report_text(r, opt->metadata));
    return 0;
  };
}

}  // namespace zeroth::cli
