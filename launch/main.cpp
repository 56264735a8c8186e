// zeroth: distributed zeroth-order finetuning of language models.
#include <cstdio>
#include <map>

#include "core/error.h"
#include "launch/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"zeroth: distributed zeroth-order (MeZO/SPSA) finetuning of quantized language models"};
  app.set_version_flag("--version", std::string("zeroth ") + ZEROTH_VERSION);
  app.require_subcommand(1);
  app.footer(
      "Exit status:\n"
      "  0        success\n"
      "  1        an error: bad input or a failed run; the message names what to fix\n"
      "  2        an internal error (a bug in zeroth: please report it with the message)\n"
      "  3        replicas disagreed: their θ hashes differ (the ledger keeps the steps so far)\n"
      "  100-127  a command-line error (CLI11): 105 a value failed its check, 106 a required\n"
      "           option is missing, 109 an argument or flag was not expected\n"
      "Each command's own --help lists its options.");
  std::map<CLI::App*, zeroth::cli::Runner> runners;
  auto add = [&](zeroth::cli::Runner (*f)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    auto run = f(app);
    runners[app.get_subcommands({})[before]] = std::move(run);
  };
  add(zeroth::cli::add_info);
  add(zeroth::cli::add_inspect);
  add(zeroth::cli::add_generate);
  add(zeroth::cli::add_eval);
  add(zeroth::cli::add_train);
  add(zeroth::cli::add_replay);
  add(zeroth::cli::add_export);
  add(zeroth::cli::add_coordinator);
  add(zeroth::cli::add_worker);
  add(zeroth::cli::add_status);
  add(zeroth::cli::add_token);
  add(zeroth::cli::add_calibrate);
  add(zeroth::cli::add_quantize);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto* sub : app.get_subcommands())
      if (auto it = runners.find(sub); it != runners.end()) return it->second();
  } catch (const zeroth::Error& e) {
    std::fprintf(stderr, "zeroth: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zeroth: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}
