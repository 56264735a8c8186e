// The merge loop both BPE kinds share: repeatedly join the adjacent pair with the best
// priority (SentencePiece: score of the joined piece; GPT-2: -rank of the merge), leftmost
// first on ties, until no adjacent pair is mergeable.
//
// Symbols form a doubly linked list over the text and candidate pairs wait in a priority
// queue, so a text of n symbols costs O(n log n) instead of the O(n^2) rescans of
// llama2.c's run.c. A queued pair goes stale when either side has since merged with
// something else; it is recognised on pop because the two are no longer neighbours of the
// recorded combined length.
#pragma once
#include <algorithm>
#include <cstdint>
#include <optional>
#include <queue>
#include <string_view>
#include <vector>

#include "models/tokenizers/vocabulary.h"

namespace zeroth {

struct BpeSymbol {
  int32_t id = -1;     // token id of the current piece, -1 when it is not in the vocabulary
  uint32_t start = 0;  // byte offset of the piece in the text being merged
  uint32_t len = 0;    // bytes; 0 once merged into its left neighbour
  int32_t prev = -1;
  int32_t next = -1;
};

struct BpeMerge {
  double priority = 0;  // higher merges first
  int32_t id = -1;      // token id of the joined piece
};

// Merges `symbols` (in text order, linked prev/next, first one at index 0) in place.
// `lookup(left, right) -> std::optional<BpeMerge>` says whether the pair may join.
template <class Lookup>
void bpe_merge(std::vector<BpeSymbol>& symbols, Lookup&& lookup) {
  struct Candidate {
    double priority;
    int32_t left, right;
    int32_t id;
    uint32_t len;
    bool operator<(const Candidate& o) const {  // std::priority_queue pops the largest
      if (priority != o.priority) return priority < o.priority;
      return left > o.left;
    }
  };
  std::priority_queue<Candidate> queue;
  auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const std::optional<BpeMerge> m = lookup(symbols[left], symbols[right]);
    if (!m) return;
    queue.push({m->priority, left, right, m->id, symbols[left].len + symbols[right].len});
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i, i + 1);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    BpeSymbol& l = symbols[c.left];
    BpeSymbol& r = symbols[c.right];
    if (l.len == 0 || r.len == 0 || l.next != c.right || l.len + r.len != c.len) continue;
    l.len += r.len;
    l.id = c.id;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = c.left;
    r.len = 0;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }
}

// One symbol per UTF-8 character of `text`, linked in order; ids are left for the caller.
inline std::vector<BpeSymbol> bpe_symbols_per_char(std::string_view text) {
  std::vector<BpeSymbol> symbols;
  symbols.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const size_t n = std::min(utf8_sequence_length(static_cast<unsigned char>(text[pos])),
                              text.size() - pos);
    const int32_t i = static_cast<int32_t>(symbols.size());
    symbols.push_back({-1, static_cast<uint32_t>(pos), static_cast<uint32_t>(n), i - 1, -1});
    if (i > 0) symbols[i - 1].next = i;
    pos += n;
  }
  return symbols;
}

}  // namespace zeroth
