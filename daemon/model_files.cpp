// Model files of load_model requests: see model_files.hpp.
#include "daemon/model_files.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "daemon/protocol.hpp"
#include "decodelab/error.hpp"
#include "decodelab/model_factory.hpp"
#include "decodelab/params.hpp"

namespace decodelab::daemon {

namespace fs = std::filesystem;

std::string default_model_dir() {
  if (const char* dir = std::getenv("DECODELAB_MODELS"); dir && *dir) return dir;
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache/decodelab/models";
  return "";
}

namespace {

// Whether `path` is `root` or lies below it, component by component (both absolute and normal).
bool within(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // the empty last component of a root with a trailing slash
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

[[noreturn]] void refuse_outside(const std::string& path) {
  // The same words whether or not the file exists, so the reply reveals nothing about it.
  reject(to_string(ErrorCode::invalid_argument), "spec",
         "model file '" + sanitize_utf8(path) + "' is outside the daemon's model directory (--model-dir)");
}

// Where an open descriptor really points, symlinks resolved.
fs::path real_path(int fd) {
  char target[PATH_MAX];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  if (n <= 0) fail(ErrorCode::internal, "cannot resolve " + link + ": " + std::strerror(errno));
  return fs::path(std::string(target, std::size_t(n)));
}

// A parameter value as it is written in a spec (parse_spec gives strings; the rest for safety).
std::string spec_text(const std::string& v) { return v; }
std::string spec_text(bool v) { return v ? "true" : "false"; }
std::string spec_text(int64_t v) { return std::to_string(v); }
std::string spec_text(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", v);
  return buffer;
}

}  // namespace

OpenedModelSpec::OpenedModelSpec(const std::string& spec, const std::string& root) : load_spec_(spec) {
  try {
    open(spec, root);
  } catch (...) {
    release();  // a constructor that throws runs no destructor
    throw;
  }
}

OpenedModelSpec::~OpenedModelSpec() { release(); }

void OpenedModelSpec::release() {
  if (!link_.empty()) ::unlink(link_.c_str());
  if (!link_dir_.empty()) ::rmdir(link_dir_.c_str());
  if (fd_ >= 0) ::close(fd_);
  link_.clear();
  link_dir_.clear();
  fd_ = -1;
}

void OpenedModelSpec::open(const std::string& spec, const std::string& root) {
  std::string kind;
  ParamMap params;
  // include/decodelab/model_factory.hpp's rule: a bare path ending in ".gguf" means gguf(path=...).
  if (spec.size() > 5 && spec.ends_with(".gguf") && spec.find('(') == std::string::npos) {
    kind = "gguf";
    params["path"] = spec;
  } else {
    try {
      std::tie(kind, params) = parse_spec(spec);
    } catch (const Error& e) {
      reject(to_string(e.code()), "spec", e.what());
    }
  }
  const ModelLoader* loader = nullptr;
  try {
    loader = &ModelLoaderRegistry::instance().get(kind);
  } catch (const Error& e) {
    reject(to_string(e.code()), "spec", e.what());
  }
  // A loader's file parameter is `path` (gguf) or `file` (table's JSON tables).
  auto reads = [&](const char* name) {
    return std::any_of(loader->params.begin(), loader->params.end(),
                       [&](const ParamSpec& p) { return p.name == name && p.type == ParamType::string; });
  };
  auto given = params.end();
  for (const char* name : {"path", "file"}) {
    if (reads(name) && params.count(name)) {
      given = params.find(name);
      break;
    }
  }
  if (given == params.end()) return;  // no file (a missing path is the loader's error)
  const std::string* path = std::get_if<std::string>(&given->second);
  if (!path || path->empty()) return;
  client_path_ = *path;

  if (root.empty()) {
    reject(
        to_string(ErrorCode::invalid_argument), "spec",
        "no model directory is configured (--model-dir, $DECODELAB_MODELS or $HOME), so no model file can be loaded");
  }
  const fs::path root_path = fs::path(root).lexically_normal();
  fs::path file = fs::path(*path).is_absolute() ? fs::path(*path) : root_path / *path;
  file = file.lexically_normal();
  if (!within(file, root_path)) refuse_outside(*path);

  // O_NONBLOCK: opening a FIFO or a device must not wait for a writer or a carrier.
  fd_ = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd_ < 0) {
    const int error = errno;
    if (error == ENOENT) {
      reject(to_string(ErrorCode::not_found), "spec",
             "model file '" + sanitize_utf8(*path) + "' does not exist in the model directory");
    }
    reject(to_string(ErrorCode::invalid_argument), "spec",
           "cannot open model file '" + sanitize_utf8(*path) + "': " + std::strerror(error));
  }
  // Symlinks inside the directory may not lead out of it; checked before anything else is said
  // about the file.
  std::error_code ec;
  const fs::path real_root = fs::weakly_canonical(root_path, ec);
  if (ec || !within(real_path(fd_), real_root)) refuse_outside(*path);
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    reject(to_string(ErrorCode::invalid_argument), "spec",
           "model file '" + sanitize_utf8(*path) + "' is not a regular file");
  }

  // The loader opens a private link to this descriptor, named like the file (loaders name models
  // after their file).
  std::string dir = (fs::temp_directory_path() / "decodelabd-load-XXXXXX").string();
  if (!::mkdtemp(dir.data()))
    fail(ErrorCode::internal, std::string("cannot create a temporary directory: ") + std::strerror(errno));
  link_dir_ = dir;
  link_ = dir + "/" + file.filename().string();
  if (::symlink(("/proc/self/fd/" + std::to_string(fd_)).c_str(), link_.c_str()) != 0) {
    fail(ErrorCode::internal, "cannot link " + link_ + ": " + std::strerror(errno));
  }
  given->second = link_;
  load_spec_ = kind + "(";
  bool first = true;
  for (const auto& [name, value] : params) {
    load_spec_ += (first ? "" : ",") + name + "=" + std::visit([](const auto& v) { return spec_text(v); }, value);
    first = false;
  }
  load_spec_ += ")";
}

std::string OpenedModelSpec::client_message(std::string message) const {
  if (link_.empty()) return message;
  for (std::size_t at = message.find(link_); at != std::string::npos;
       at = message.find(link_, at + client_path_.size())) {
    message.replace(at, link_.size(), client_path_);
  }
  return message;
}

}  // namespace decodelab::daemon
