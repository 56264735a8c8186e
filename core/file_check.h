// Inputs that must be files: a clear error before a stream opens them, since
// std::ifstream opens a directory without complaint and then reads nothing,
// which surfaces later as a misleading message ("model.path is not set").
#pragma once
#include <string>
#include <string_view>

namespace zeroth {

// Throws zeroth::Error "<what> <path>: no such file" / "...: is a directory,
// not a file" / "...: cannot read it: <reason>" unless `path` can be opened
// for reading as a file. `what` names the input ("the config file").
void check_input_file(const std::string& path, std::string_view what);

}  // namespace zeroth
