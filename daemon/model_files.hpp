#pragma once
// The files behind load_model requests. A client names a model by a spec string; when the spec's
// kind reads a file (a loader with a `path` or `file` parameter, e.g. gguf(path=...),
// table(file=...), or a bare *.gguf path)
// the daemon only reads regular files inside its model directory (--model-dir). Everything else is
// refused before the loader runs: a FIFO or device would block the worker in open() or read
// forever, and a path outside the directory would let any client probe the daemon's file system
// (the refusal says only "outside the model directory", never whether the file exists).
//
// The file is opened here without blocking and checked through its descriptor; the loader then
// reads that same open file (through a private link to /proc/self/fd/N), so the file that was
// checked is the file that is loaded even if the path is swapped meanwhile.

#include <string>

namespace decodelab::daemon {

// The default model directory: $DECODELAB_MODELS, else ~/.cache/decodelab/models ("" when
// neither is known, which refuses every model file).
std::string default_model_dir();

// A model spec whose file, if it has one, is open and checked.
class OpenedModelSpec {
 public:
  // `root`: the directory files must lie in, "/" for anywhere. Throws ProtocolError naming field
  // "spec" (not_found for an unknown model kind or a missing file inside the root,
  // invalid_argument for anything else refused).
  OpenedModelSpec(const std::string& spec, const std::string& root);
  ~OpenedModelSpec();
  OpenedModelSpec(const OpenedModelSpec&) = delete;
  OpenedModelSpec& operator=(const OpenedModelSpec&) = delete;

  // The spec to give core's load_model(): the client's, with the file's path replaced by the link.
  const std::string& spec() const { return load_spec_; }
  // An error message of the loader with the link replaced by the path the client gave.
  std::string client_message(std::string message) const;

 private:
  void open(const std::string& spec, const std::string& root);
  void release();

  std::string load_spec_;
  std::string client_path_;  // as given ("" for specs without a file)
  std::string link_;         // the private link the loader opens
  std::string link_dir_;
  int fd_ = -1;
};

}  // namespace decodelab::daemon
