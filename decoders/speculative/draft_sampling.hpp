#pragma once
// How the draft model's logits become the law drafts are drawn from, set apart from the target's.
//
// By default the draft goes through the target's sampler chain, so at temperature 0 the draft law
// is a point mass and every multi-draft tree collapses to one chain. These parameters give the
// draft its own law:
//
//   draft_temperature  temperature of the draft's chain (-1: the target's)
//   draft_top_k        top-k of the draft's chain (-1: the target's, 0: off)
//   draft_chain        an explicit draft chain, replacing the two above and the target's chain
//
// Verification stays exact whatever the draft law is, because every rule is given the law the
// draft was actually drawn from (q below is this chain's output), and the target law p still comes
// from the target's own chain. At target temperature 0, p is a point mass and every rule reduces to
// greedy matching, so the draft law only changes how many tokens a step accepts.
//
// Drafters that pick children deterministically (`deterministic`: the most probable draft tokens)
// rank by the draft law; a draft temperature of 0 would leave a single token to rank, so for them
// a draft temperature of 0 (given or inherited) is read as 1, which ranks the same way.
#include <memory>
#include <vector>

#include "decodelab/params.hpp"
#include "decodelab/sampler.hpp"

namespace decodelab::speculative {

// The parameters above, for the ParamSpec list of every draft-model decoder.
std::vector<ParamSpec> draft_sampling_params();

// The draft's chain, or null when the draft uses the target's chain (no draft parameter given, and
// not deterministic at temperature 0). Throws Error(invalid_argument) for a negative draft
// temperature other than -1, a draft_top_k below -1, or draft_temperature/draft_top_k combined with
// an explicit target `chain` (give draft_chain then).
std::unique_ptr<SamplerChain> draft_chain_from_params(const Params& params, bool deterministic);

}  // namespace decodelab::speculative
