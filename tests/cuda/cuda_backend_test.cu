// The backend's plumbing, on every machine with the CUDA toolkit: the loader registration, the
// error for a missing device, and the error naming an allocation that does not fit.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/cuda/cuda_model.hpp"
#include "core/cuda/device.hpp"
#include "decodelab/error.hpp"
#include "decodelab/model_factory.hpp"
#include "tests/cuda/cuda_test_support.hpp"

namespace decodelab {
namespace {

using testing::golden_path;

std::string error_of(const std::function<void()>& f, ErrorCode* code = nullptr) {
  try {
    f();
  } catch (const Error& e) {
    if (code) *code = e.code();
    return e.what();
  }
  return "";
}

TEST(CudaBackend, LoaderIsRegistered) {
  bool found = false;
  for (const ModelLoader* l : ModelLoaderRegistry::instance().list()) found |= l->name == "gguf-cuda";
  EXPECT_TRUE(found);
}

TEST(CudaBackend, MissingDeviceIsAClearError) {
  const std::string spec = "gguf(path=" + golden_path("tiny-llama.gguf") + ",backend=cuda,device=7)";
  ErrorCode code{};
  const std::string msg = error_of([&] { load_model(spec); }, &code);
  EXPECT_EQ(code, ErrorCode::unsupported) << msg;
  if (cuda::device_count() == 0) {
    EXPECT_NE(msg.find("no CUDA device"), std::string::npos) << msg;
  } else if (cuda::device_count() <= 7) {
    EXPECT_NE(msg.find("device 7 requested"), std::string::npos) << msg;
  }
}

TEST(CudaBackend, OutOfMemoryNamesTheAllocation) {
  DECODELAB_REQUIRE_GPU();
  ErrorCode code{};
  const std::string msg = error_of([&] { cuda::DeviceBuffer b(std::size_t(1) << 50, "a test buffer"); }, &code);
  EXPECT_EQ(code, ErrorCode::unsupported);
  EXPECT_NE(msg.find("allocating a test buffer"), std::string::npos) << msg;
  EXPECT_NE(msg.find("free of"), std::string::npos) << msg;
}

TEST(CudaBackend, BadDtypeIsRejected) {
  DECODELAB_REQUIRE_GPU();
  CudaModelOptions o;
  o.dtype = "f8";
  ErrorCode code{};
  const std::string msg = error_of([&] { CudaModel m(golden_path("tiny-llama.gguf"), o); }, &code);
  EXPECT_EQ(code, ErrorCode::invalid_argument) << msg;
}

}  // namespace
}  // namespace decodelab
