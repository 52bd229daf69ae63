#pragma once
// Explicit next-token tables from a JSON file: the model spec table(file=PATH.json), usable as a
// target or a draft anywhere a model spec is (CLI, daemon, C API, Python). docs/table-models.md
// describes the format:
//
//   {
//     "vocab": 4,                          required: vocabulary size (>= 2)
//     "tokens": [" a", " b", " c", "."],   optional: token texts (distinct, non-empty)
//     "eos": 3,                            optional: end-of-sequence token
//     "order": 1,                          optional: context tokens a row depends on (default:
//                                          the longest context of "contexts")
//     "contexts": [                        the rows: the last `order` tokens -> next-token law
//       {"context": [], "probs": [0.5, 0.5, 0, 0]},
//       {"context": [0], "probs": [0, 0.5, 0.5, 0]},
//       {"context": [" b"], "probs": [0.25, 0.25, 0.25, 0.25]}
//     ],
//     "default": "uniform"                 required: the law of a context without a row: a
//                                          probability vector, "uniform", or "error"
//   }
//
// A history of n tokens looks up its last min(n, order) tokens, so a context shorter than the
// order matches only at the start of a sequence. Every law must have `vocab` entries, each finite
// and >= 0, summing to 1 within kTableSumTolerance. Each problem is an Error naming the file and
// the place (line, column, row index); a missing file is not_found, bad JSON is bad_format.
#include <memory>
#include <string>
#include <string_view>

#include "decodelab/table_model.hpp"

namespace decodelab {

// How far a row's probabilities may sum from 1 (decimals written by hand: 0.333 + 0.333 + 0.334).
inline constexpr double kTableSumTolerance = 1e-3;

// Reads and validates the file; the model is named "table(file=<file name>)".
std::shared_ptr<TableModel> load_table_file(const std::string& path);

// The same from the file's text; `name` names it in errors and in the model's name.
std::shared_ptr<TableModel> parse_table_json(std::string_view text, const std::string& name);

}  // namespace decodelab
