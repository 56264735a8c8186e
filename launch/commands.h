// Each subcommand registers itself on the CLI11 app and runs when selected.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace zeroth::cli {

// Adds the subcommand to `app`; returns the function that runs it once parsed.
using Runner = std::function<int()>;
Runner add_info(CLI::App& app);
Runner add_inspect(CLI::App& app);
Runner add_generate(CLI::App& app);
Runner add_eval(CLI::App& app);
Runner add_train(CLI::App& app);
Runner add_replay(CLI::App& app);
Runner add_export(CLI::App& app);
Runner add_coordinator(CLI::App& app);
Runner add_worker(CLI::App& app);
Runner add_status(CLI::App& app);
Runner add_token(CLI::App& app);
Runner add_calibrate(CLI::App& app);
Runner add_quantize(CLI::App& app);

}  // namespace zeroth::cli
