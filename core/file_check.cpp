#include "core/file_check.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace zeroth {

void check_input_file(const std::string& path, std::string_view what) {
  ZEROTH_CHECK(!path.empty(), "{}: no path given", what);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int e = errno;
    if (e == ENOENT) fail("{} {}: no such file", what, path);
    fail("{} {}: cannot read it: {}", what, path, std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) fail("{} {}: is a directory, not a file", what, path);
  if (::access(path.c_str(), R_OK) != 0) fail("{} {}: cannot read it: {}", what, path, std::strerror(errno));
}

}  // namespace zeroth
