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

}  // namespace decodelab::speculative
