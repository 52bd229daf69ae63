#pragma once
// Drafters of k sequences of length L, shared by sd, spectr and specinfer.
#include "decoders/speculative/drafter.hpp"

namespace decodelab::speculative {

// k sequences of length L drawn i.i.d. from q, merged into a prefix tree; every node proposes
// one child per sequence through it, in sequence order (SpecInfer with replacement, SpecTr, SD).
// Its nodes' children, in order of first occurrence, are draws without replacement with a stop
// that never looks at the token it would draw (see sequence_verify.hpp), so sequence-level rules
// verify it as such.
class IidSequencesDrafter final : public TreeDrafter {
 public:
  IidSequencesDrafter(int k, int length) : k_(k), length_(length) {}
  void build(DraftContext& context, DraftTree& tree) override;

 private:
  int k_;
  int length_;
};

// k sequences of length L where the sequences passing through a node draw their next tokens
// from q without replacement (distinct children, proposed in draw order); a sequence ends when
// its node has no draft mass left (Sequoia-style SpecInfer). With DraftDraw::most_probable the
// draws are replaced by the most probable remaining token: the k most probable draft tokens at the
// root, then each sequence follows the draft's argmax (the usual deterministic tree at T = 0).
class WorSequencesDrafter final : public TreeDrafter {
 public:
  WorSequencesDrafter(int k, int length, DraftDraw draw = DraftDraw::sample) : k_(k), length_(length), draw_(draw) {}
  void build(DraftContext& context, DraftTree& tree) override;

 private:
  int k_;
  int length_;
  DraftDraw draw_;
};

// Delayed tree expansion (Thomas et al., arXiv 2602.16994): one draft path for the first tokens,
// then k i.i.d. rollouts from its end, all of length L in total, merged into a prefix tree as
// IidSequencesDrafter merges its sequences (trunk nodes propose their one child; below the branch
// point every node proposes one child per rollout through it). The branch depth is `delay`, or,
// with a confidence threshold > 0, the first trunk node (at most `delay` deep) whose draft law has
// collision probability sum_x q(x)^2 below the threshold: while the draft is that sure, i.i.d.
// rollouts would mostly repeat one token. The choice looks only at the law of the node it is made
// at, never at the tokens about to be drawn, so every proposal keeps the law the rules assume.
class DelayedSequencesDrafter final : public TreeDrafter {
 public:
  DelayedSequencesDrafter(int k, int length, int delay, double threshold)
      : k_(k), length_(length), delay_(delay), threshold_(threshold) {}
  void build(DraftContext& context, DraftTree& tree) override;

 private:
  int k_, length_, delay_;
  double threshold_;
};

// sum_x q(x)^2: the probability that two i.i.d. draws from q agree.
double collision_probability(std::span<const float> q);

}  // namespace decodelab::speculative
