#pragma once
// Internal to libdecodelab.so: what a decodelab_model is (model.cpp creates them, generate.cpp
// runs decoders over them).
#include <memory>

#include "decodelab/language_model.hpp"

struct decodelab_model {
  std::shared_ptr<decodelab::LanguageModel> model;
};
